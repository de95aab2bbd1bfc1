"""A small S3 REST client: SigV4-signed requests over kept connections (urllib3), for one bucket.

Why not botocore for the requests themselves: on these machines botocore spends 2.4 to 2.8 ms of
CPU on every request (building it from its model, its event hooks, parsing the answer), this
client 0.3 to 0.5 ms. A folder of small files is one request per file, a no-op re-run one per
object, and with two cores shared with the storage that CPU is what limits Ferry. botocore
still provides the credentials (the whole AWS chain, refreshed as they expire) and STS.

Requests and answers keep S3's names (`ContentType`, `Metadata`, `ETag`, ...) so that the
adapter reads like the S3 API reference. Errors are S3Error with S3's code; a HEAD, which has no
body, gets its HTTP status as the code, as in botocore.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import random
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple, Protocol
from xml.sax.saxutils import escape

import urllib3
from urllib3.exceptions import HTTPError, SSLError

from api import sigv4

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ATTEMPTS = 5  # as botocore's "standard" retry mode
CONNECT_SECONDS = 10.0
READ_SECONDS = 60.0
# Answers worth another attempt: the server is busy or failed, not the request.
_RETRIED_STATUS = {500, 502, 503, 504, 429}
_RETRIED_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}

# Request fields sent as headers, and the answer's headers read back under the same names.
_HEADERS = {
    "ContentType": "content-type",
    "CacheControl": "cache-control",
    "ContentDisposition": "content-disposition",
    "ContentEncoding": "content-encoding",
    "ContentLanguage": "content-language",
    "Expires": "expires",
    "StorageClass": "x-amz-storage-class",
    "Tagging": "x-amz-tagging",
    "ChecksumSHA256": "x-amz-checksum-sha256",
    "ChecksumAlgorithm": "x-amz-checksum-algorithm",
    "MetadataDirective": "x-amz-metadata-directive",
}
_META = "x-amz-meta-"


class Credentials(Protocol):
    """botocore's credentials: `get_frozen_credentials()` refreshes them when they expire."""

    def get_frozen_credentials(self) -> Any: ...


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message or code


class Listed(NamedTuple):
    """An object as ListObjectsV2 shows it."""

    key: str
    size: int
    etag: str  # without its quotes, which some servers leave out
    last_modified: float  # seconds since the epoch, as precise as the server keeps it


@dataclass
class Listing:
    """One page of ListObjectsV2: objects and, with a delimiter, common prefixes."""

    objects: list[Listed] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False  # more keys follow
    received: int = 0  # the answer's bytes


class Body:
    """A GetObject body, read as it arrives; closing it keeps the connection if it was read to
    the end."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self.response = response

    def read(self, size: int = -1) -> bytes:
        return self.response.read(None if size < 0 else size, decode_content=False)

    def close(self) -> None:
        if self.response.length_remaining == 0:
            self.response.release_conn()
        else:
            self.response.close()  # the rest of the body would have to be read first


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rpartition("}")[2]


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _tag(child) == name]


def _text(element: ElementTree.Element, name: str, default: str = "") -> str:
    for child in element:
        if _tag(child) == name:
            return child.text or ""
    return default


class S3Client:
    def __init__(
        self,
        bucket: str,
        *,
        region: str,
        credentials: Credentials | None,
        endpoint: str | None = None,
        ca_file: str | None = None,
        connections: int = 20,
    ) -> None:
        """`endpoint`: an S3-compatible server (path-style requests); None: AWS S3 in `region`.
        `credentials`: None sends unsigned requests. `ca_file`: the PEM chain to trust instead
        of the system's."""
        self.bucket = bucket
        self.credentials = credentials
        self.endpoint = urllib.parse.urlsplit(endpoint) if endpoint else None
        self._address(region)
        self.http = urllib3.PoolManager(
            num_pools=4,
            maxsize=connections,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_file,
            timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS),
            retries=False,
        )

    # --- addressing and signing ------------------------------------------------------------------

    def _address(self, region: str) -> None:
        """Where requests go, worked out once (and again if the bucket is in another region):
        scheme, Host header, host and port, and the path before a key."""
        self.region = region
        self._keys: tuple[str, str, bytes] | None = None  # (day, secret, signing key)
        if self.endpoint is not None:  # an S3-compatible server: the bucket in the path
            url = self.endpoint
            self.scheme, self.host = url.scheme, url.netloc
            self.hostname, self.port = url.hostname or "", url.port
            self.prefix = f"{url.path.rstrip('/')}/{self.bucket}/"
        elif "." in self.bucket:  # a dotted name breaks the wildcard certificate
            self.scheme, self.host = "https", f"s3.{region}.amazonaws.com"
            self.hostname, self.port, self.prefix = self.host, None, f"/{self.bucket}/"
        else:
            self.scheme, self.host = "https", f"{self.bucket}.s3.{region}.amazonaws.com"
            self.hostname, self.port, self.prefix = self.host, None, "/"

    def _signing_key(self, day: str, secret: str) -> bytes:
        if self._keys is None or self._keys[:2] != (day, secret):
            self._keys = (day, secret, sigv4.signing_key(secret, day, self.region, "s3"))
        return self._keys[2]

    def _sign(
        self, method: str, path: str, query: str, headers: dict[str, str], payload: str
    ) -> None:
        headers["x-amz-content-sha256"] = payload
        if self.credentials is None:
            return
        frozen = self.credentials.get_frozen_credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        headers["x-amz-date"] = stamp
        if frozen.token:
            headers["x-amz-security-token"] = frozen.token
        names = sorted(headers)
        canonical = sigv4.canonical_request(method, path, query, headers, names, payload)
        scope = sigv4.scope(stamp[:8], self.region, "s3")
        key = self._signing_key(stamp[:8], frozen.secret_key)
        signature = sigv4.signature(key, stamp, scope, canonical)
        headers["authorization"] = sigv4.authorization(frozen.access_key, scope, names, signature)

    # --- one request -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        key: str = "",
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        payload: str | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request, retried with backoff while the server is busy or unreachable;
        an error answer raises S3Error. `payload`: the body's SHA-256 (hex) if known."""
        query_text = sigv4.canonical_query((query or {}).items())
        payload = payload or (hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256)
        for attempt in range(1, ATTEMPTS + 1):
            path = sigv4.quote(self.prefix + key, "/-_.~")
            sent = dict(headers or {}, host=self.host)
            self._sign(method, path, query_text, sent, payload)
            try:
                pool = self.http.connection_from_host(self.hostname, self.port, self.scheme)
                response = pool.urlopen(
                    method,
                    f"{path}?{query_text}" if query_text else path,
                    body=body or None,
                    headers=sent,
                    preload_content=not stream,
                    decode_content=False,
                    redirect=False,
                    retries=False,
                )
            except SSLError:
                raise
            except HTTPError:
                if attempt == ATTEMPTS:
                    raise
                _pause(attempt)
                continue
            if response.status < 300:
                return response
            error = self._error(response)
            region = response.headers.get("x-amz-bucket-region")
            if region and region != self.region and self.endpoint is None and attempt == 1:
                self._address(region)  # the bucket lives elsewhere: ask there
                continue
            if attempt < ATTEMPTS and (
                response.status in _RETRIED_STATUS or error.code in _RETRIED_CODES
            ):
                _pause(attempt)
                continue
            raise error
        raise AssertionError("unreachable")

    @staticmethod
    def _error(response: urllib3.BaseHTTPResponse) -> S3Error:
        data = response.data  # read already, or now for a streamed answer
        response.release_conn()
        try:
            root = ElementTree.fromstring(data) if data else None
        except ElementTree.ParseError:
            root = None
        if root is None or _tag(root) != "Error":
            return S3Error(response.status, str(response.status), response.reason or "")
        return S3Error(response.status, _text(root, "Code"), _text(root, "Message"))

    @staticmethod
    def _xml(response: urllib3.BaseHTTPResponse) -> ElementTree.Element:
        """An answer's XML; an Error document in a 200 answer (CopyObject and
        CompleteMultipartUpload send one when they fail late) raises."""
        root = ElementTree.fromstring(response.data)
        if _tag(root) == "Error":
            raise S3Error(response.status, _text(root, "Code"), _text(root, "Message"))
        return root

    # --- objects ---------------------------------------------------------------------------------

    @staticmethod
    def _fields(fields: dict[str, Any]) -> dict[str, str]:
        headers = {_HEADERS[name]: str(value) for name, value in fields.items() if name in _HEADERS}
        for name, value in fields.get("Metadata", {}).items():
            headers[_META + name.lower()] = value
        return headers

    @staticmethod
    def _answer(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
        """An object's headers under S3's names."""
        headers = response.headers
        answer: dict[str, Any] = {
            name: headers[header] for name, header in _HEADERS.items() if header in headers
        }
        answer["ETag"] = headers.get("etag", "")
        answer["ContentLength"] = int(headers.get("content-length", 0))
        if "last-modified" in headers:
            answer["LastModified"] = parsedate_to_datetime(headers["last-modified"])
        if "date" in headers:  # the server's clock when it answered (to the second)
            answer["Date"] = parsedate_to_datetime(headers["date"]).timestamp()
        answer["Metadata"] = {
            name[len(_META) :]: value
            for name, value in headers.items()
            if name.lower().startswith(_META)
        }
        return answer

    def head(self, key: str) -> dict[str, Any]:
        return self._answer(self.request("HEAD", key))

    def get(self, key: str) -> tuple[dict[str, Any], Body]:
        response = self.request("GET", key, stream=True)
        return self._answer(response), Body(response)

    def put(self, key: str, body: bytes, fields: dict[str, Any], sha256: bytes) -> dict[str, Any]:
        """PutObject with `fields` (S3's names); `sha256`: the body's digest, signed and sent
        as its flexible checksum."""
        headers = self._fields({**fields, "ChecksumSHA256": b64(sha256)})
        return self._answer(
            self.request("PUT", key, headers=headers, body=body, payload=sha256.hex())
        )

    def copy(self, key: str, source: str, fields: dict[str, Any]) -> dict[str, Any]:
        """CopyObject within the bucket; with MetadataDirective REPLACE in `fields`, the copy gets
        `fields` instead of the source's metadata. The answer's ETag (where the server tells
        it) and Date."""
        headers = self._fields(fields)
        headers["x-amz-copy-source"] = sigv4.quote(f"/{self.bucket}/{source}", "/-_.~")
        response = self.request("PUT", key, headers=headers)
        answer = self._answer(response)
        answer["ETag"] = _text(self._xml(response), "ETag")
        return answer

    def delete(self, key: str) -> None:
        self.request("DELETE", key)

    def delete_many(self, keys: list[str]) -> int:
        """DeleteObjects (up to 1,000 keys); a key the server could not delete raises. The
        request's bytes."""
        body = (
            "<Delete><Quiet>true</Quiet>"
            + "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in keys)
            + "</Delete>"
        ).encode()
        headers = {"content-md5": b64(hashlib.md5(body).digest())}  # S3 asks for it here
        root = self._xml(self.request("POST", query={"delete": ""}, headers=headers, body=body))
        for failed in _children(root, "Error"):
            detail = f"{_text(failed, 'Key')}: {_text(failed, 'Message')}"
            raise S3Error(200, _text(failed, "Code"), detail)
        return len(body)

    def tags(self, key: str) -> list[dict[str, str]]:
        root = self._xml(self.request("GET", key, query={"tagging": ""}))
        return [
            {"Key": _text(tag, "Key"), "Value": _text(tag, "Value")}
            for tag_set in _children(root, "TagSet")
            for tag in _children(tag_set, "Tag")
        ]

    # --- listing ---------------------------------------------------------------------------------

    def list(
        self, prefix: str, *, delimiter: str = "", start_after: str = "", max_keys: int = 0
    ) -> Iterator[Listing]:
        """ListObjectsV2 under `prefix`, a page at a time, from the first key after
        `start_after`; with `max_keys`, no more keys and common prefixes than that in all."""
        query = {"list-type": "2", "prefix": prefix, "encoding-type": "url"}
        if delimiter:
            query["delimiter"] = delimiter
        if start_after:
            query["start-after"] = start_after
        left = max_keys
        while True:
            if max_keys:
                query["max-keys"] = str(min(left, 1000))
            response = self.request("GET", query=query)
            root = self._xml(response)
            # Keys come percent-encoded when the server honours encoding-type (XML 1.0 cannot
            # carry every character a key may hold).
            decode = urllib.parse.unquote_plus if _text(root, "EncodingType") == "url" else _same
            page = Listing(
                truncated=_text(root, "IsTruncated") == "true", received=len(response.data)
            )
            for item in _children(root, "Contents"):
                page.objects.append(
                    Listed(
                        decode(_text(item, "Key")),
                        int(_text(item, "Size", "0")),
                        _text(item, "ETag").strip('"'),
                        _timestamp(_text(item, "LastModified")),
                    )
                )
            for common in _children(root, "CommonPrefixes"):
                page.prefixes.append(decode(_text(common, "Prefix")))
            yield page
            left -= len(page.objects) + len(page.prefixes)
            token = _text(root, "NextContinuationToken")
            if not page.truncated or not token or (max_keys and left <= 0):
                return
            query["continuation-token"] = token
            query.pop("start-after", None)

    # --- multipart uploads -----------------------------------------------------------------------

    def create_upload(self, key: str, fields: dict[str, Any]) -> str:
        headers = self._fields({**fields, "ChecksumAlgorithm": "SHA256"})
        root = self._xml(self.request("POST", key, query={"uploads": ""}, headers=headers))
        return _text(root, "UploadId")

    def upload_part(
        self, key: str, upload: str, number: int, body: bytes, sha256: bytes
    ) -> dict[str, Any]:
        """One part, with its SHA-256; the answer has its ETag and the checksum the server
        computed."""
        response = self.request(
            "PUT",
            key,
            query={"partNumber": str(number), "uploadId": upload},
            headers={"x-amz-checksum-sha256": b64(sha256)},
            body=body,
            payload=sha256.hex(),
        )
        return self._answer(response)

    def complete_upload(self, key: str, upload: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        body = (
            "<CompleteMultipartUpload>"
            + "".join(
                f"<Part><PartNumber>{part['PartNumber']}</PartNumber>"
                f"<ETag>{escape(part['ETag'])}</ETag>"
                f"<ChecksumSHA256>{part['ChecksumSHA256']}</ChecksumSHA256></Part>"
                for part in parts
            )
            + "</CompleteMultipartUpload>"
        ).encode()
        response = self.request("POST", key, query={"uploadId": upload}, body=body)
        root = self._xml(response)
        answer = self._answer(response)
        answer.update(ETag=_text(root, "ETag"), ChecksumSHA256=_text(root, "ChecksumSHA256"))
        return answer

    def abort_upload(self, key: str, upload: str) -> None:
        self.request("DELETE", key, query={"uploadId": upload})

    def uploads(self, prefix: str) -> list[tuple[str, str]]:
        """Multipart uploads in progress under `prefix`: (key, upload id)."""
        root = self._xml(self.request("GET", query={"uploads": "", "prefix": prefix}))
        return [
            (_text(upload, "Key"), _text(upload, "UploadId"))
            for upload in _children(root, "Upload")
        ]


def b64(digest: bytes) -> str:
    """A digest as S3's checksum headers carry it."""
    return base64.b64encode(digest).decode()


def _same(text: str) -> str:
    return text


def _timestamp(text: str) -> float:
    """An ISO 8601 time of a listing ("2026-12-07T22:40:11.645Z"); 0 if there is none."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def _pause(attempt: int) -> None:
    """Exponential backoff with full jitter, as the AWS SDKs do."""
    time.sleep(random.uniform(0, min(20.0, 0.1 * 2**attempt)))


class AwsCredentialsMissing(Exception):
    """This process has no AWS credentials (or cannot assume the role it was given)."""


def aws_client(
    bucket: str, role: str | None = None, endpoint: str | None = None, connections: int = 20
) -> S3Client:
    """A client of `bucket` with this process's AWS settings, as the AWS SDKs read them: the
    credential chain (environment, profile, instance role; through STS when `role` is given),
    the region, and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL unless `endpoint` is given."""
    region, credentials = aws_credentials(role)
    if credentials is None:
        raise AwsCredentialsMissing(
            "no AWS credentials found for this process (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile, or an instance role)"
        )
    return S3Client(
        bucket,
        region=region,
        credentials=credentials,
        endpoint=(
            endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        ),
        connections=connections,
    )


@functools.cache
def aws_credentials(role: str | None) -> tuple[str, Credentials | None]:
    """The region and credentials of this process, found once: botocore's credentials refresh
    themselves (an instance role's, an assumed role's) before they expire."""
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    session = botocore.session.get_session()
    region = session.get_config_variable("region") or "us-east-1"
    credentials = session.get_credentials()
    if credentials is None or not role:
        return region, credentials
    sts = session.create_client("sts", region_name=region)

    def assume() -> dict[str, str]:
        try:
            answer = sts.assume_role(RoleArn=role, RoleSessionName="ferry")["Credentials"]
        except Exception as error:
            raise AwsCredentialsMissing(f"cannot assume the role {role}: {error}") from None
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": answer["Expiration"].isoformat(),
        }

    assumed = RefreshableCredentials.create_from_metadata(
        metadata=assume(), refresh_using=assume, method="sts-assume-role"
    )
    return region, assumed
