"""The staging store in a prefix of an S3-compatible bucket: `s3://BUCKET/PREFIX`, for workers
and agents on hosts that share no file system (an agent next to the storage at one site, the
workers elsewhere).

Credentials, region and endpoint are the process's AWS settings, as the AWS SDKs read them
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile or an instance role; AWS_REGION;
AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for MinIO and other servers). A PutObject is atomic, so
an object appears whole or not at all; ListObjectsV2 lists keys in order. Each request is
counted (a listing's pages, a deletion's DeleteObjects), with the bytes of their bodies.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator

from urllib3.exceptions import HTTPError

from activities.staging import StagingError
from activities.storage.s3client import AwsCredentialsMissing, S3Client, S3Error, aws_client
from models.staging import StagingTraffic

DELETE_BATCH = 1000  # keys per DeleteObjects
SPOOLED_BYTES = 16 << 20  # an object being written stays in memory up to this size
READ_CHUNK = 1 << 20


class _ObjectWriter:
    def __init__(self, backend: BucketBackend, key: str) -> None:
        self._backend = backend
        self._key = key
        self._file = tempfile.SpooledTemporaryFile(SPOOLED_BYTES)  # noqa: SIM115

    def write(self, text: str) -> None:
        self._file.write(text.encode())

    def commit(self) -> None:
        self._file.seek(0)
        data = self._file.read()
        self._file.close()
        self._backend.put(self._key, data)

    def abort(self) -> None:
        self._file.close()


class BucketBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.traffic = StagingTraffic()
        try:
            self.client: S3Client = aws_client(self.bucket)
        except AwsCredentialsMissing as error:
            raise StagingError(f"staging store {url}: {error}") from None

    def _fail(self, error: Exception) -> StagingError:
        return StagingError(f"staging store {self.url}: {error}")

    def writer(self, key: str) -> _ObjectWriter:
        return _ObjectWriter(self, key)

    def put(self, key: str, data: bytes) -> None:
        self.traffic.requests += 1
        self.traffic.bytes_written += len(data)
        try:
            self.client.put(self.prefix + key, data, {}, hashlib.sha256(data).digest())
        except (S3Error, HTTPError) as error:
            raise self._fail(error) from error

    def lines(self, key: str) -> Iterator[str]:
        self.traffic.requests += 1
        try:
            _, body = self.client.get(self.prefix + key)
        except S3Error as error:
            if error.status == 404:
                raise FileNotFoundError(key) from None
            raise self._fail(error) from error
        except HTTPError as error:
            raise self._fail(error) from error
        try:
            rest = b""
            while chunk := body.read(READ_CHUNK):
                self.traffic.bytes_read += len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    yield line.decode() + "\n"
            if rest:
                yield rest.decode()
        except HTTPError as error:
            raise self._fail(error) from error
        finally:
            body.close()

    def keys(self, prefix: str) -> list[str]:
        start = len(self.prefix)
        found: list[str] = []
        try:
            for page in self.client.list(self.prefix + prefix):
                self.traffic.requests += 1
                self.traffic.bytes_read += page.received
                found += [listed.key[start:] for listed in page.objects]
            return found
        except (S3Error, HTTPError) as error:
            raise self._fail(error) from error

    def delete(self, keys: list[str]) -> None:
        try:
            for first in range(0, len(keys), DELETE_BATCH):
                chunk = keys[first : first + DELETE_BATCH]
                self.traffic.requests += 1
                self.traffic.bytes_written += self.client.delete_many(
                    [self.prefix + key for key in chunk]
                )
        except (S3Error, HTTPError) as error:
            raise self._fail(error) from error

    def delete_prefix(self, prefix: str) -> None:
        self.delete(self.keys(prefix))
