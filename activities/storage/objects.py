"""S3 and self-managed object storage (any S3-compatible server).

A bucket prefix is shown to the rest of Ferry as a file tree, the way DataSync writes one:
`/`-separated keys are paths, a directory is an empty object whose key ends in `/`, and POSIX
metadata rides in user metadata under DataSync's keys (`file-mtime`, `file-atime`, `file-owner`,
`file-group`, `file-permissions`, the latter with the file type bits, so that a symbolic link,
stored as an object holding its target, comes back as a link). Objects without that metadata
get DataSync's defaults: uid and gid 65534, mode 0644 (0755 for folders), LastModified as mtime.

Uploads stream: a file up to one part is one PutObject, a larger one a multipart upload with
parts sent in parallel and sized so that no file needs more than S3's 10,000 parts; at most
PARTS_IN_FLIGHT parts are held in memory. Each request carries a SHA-256 flexible checksum, and
the checksum the server returns, where it returns one, must be the one Ferry computed. A failed
upload is aborted, and a multipart upload of the same key left by a crashed attempt is aborted
before the key is written again.

A listing shows each object's ETag, size and LastModified, not its user metadata: that costs a
HeadObject per object. So a destination keeps a sync index (`use_sync_index`) of what Ferry
wrote (the ETag and Date of each answer, the metadata sent) and of what its listings read, and
takes an object's metadata from it only while the listing shows the same ETag and size and a
LastModified no later than the row's time; anything else (an object changed since, no row) is
read with a HeadObject. A server that keeps LastModified through a metadata-only change
(`rclone serve s3` does) hides such a change from the index, as it does from other sync tools.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import stat
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from urllib3.exceptions import HTTPError, SSLError

from activities.storage.base import (
    DIR,
    FILE,
    NO_POSIX_DIR_MODE,
    NO_POSIX_FILE_MODE,
    NO_POSIX_ID,
    SYMLINK,
    Entry,
    MetadataPolicy,
    Storage,
    StorageError,
    SyncIndex,
    listing_key,
    temp_name,
    unsealed,
)
from activities.storage.s3client import (
    AwsCredentialsMissing,
    Body,
    Listed,
    S3Client,
    S3Error,
    aws_client,
    b64,
)
from models.errors import ErrorCode
from models.locations import Location, ObjectLocation, ObjectStorageLocation, S3Location

MIB = 1 << 20
PART_SIZE = 8 * MIB  # S3's minimum is 5 MiB; s3transfer's default is 8
MAX_PARTS = 10_000
PARTS_IN_FLIGHT = 4
HEADS_IN_FLIGHT = 16  # objects whose metadata a listing reads at once
CONNECTIONS = HEADS_IN_FLIGHT + PARTS_IN_FLIGHT
DELETE_BATCH = 1000  # keys per DeleteObjects request, S3's maximum


META_MTIME = "file-mtime"
META_ATIME = "file-atime"
META_OWNER = "file-owner"
META_GROUP = "file-group"
META_PERMISSIONS = "file-permissions"
FERRY_METADATA = frozenset({META_MTIME, META_ATIME, META_OWNER, META_GROUP, META_PERMISSIONS})
# An object's system metadata that object-to-object copies keep.
SYSTEM_METADATA = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
)
_TYPE_BITS = {FILE: stat.S_IFREG, DIR: stat.S_IFDIR, SYMLINK: stat.S_IFLNK}

# Answers that say the whole location is unusable, not one object.
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
_BUSY = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "503", "500"}


def part_size(size: int) -> int:
    """Parts of at least PART_SIZE, whole MiB, few enough for S3's 10,000-part limit."""
    needed = -(-size // MAX_PARTS)
    return max(PART_SIZE, -(-needed // MIB) * MIB)


class IntegrityError(OSError):
    """The server stored other bytes than Ferry sent (retried: the network may have flipped a
    bit)."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EIO, message)


# --- metadata ------------------------------------------------------------------------------


def user_metadata(entry: Entry, policy: MetadataPolicy) -> dict[str, str]:
    metadata: dict[str, str] = {}
    if policy.mtime:
        metadata[META_MTIME] = f"{entry.mtime_ns}ns"
        if policy.atime:
            metadata[META_ATIME] = f"{entry.atime_ns}ns"
    # A name where the source has one (HDFS), else the number.
    if policy.owner_name and entry.owner:
        metadata[META_OWNER] = entry.owner
    elif policy.uid and entry.uid >= 0:
        metadata[META_OWNER] = str(entry.uid)
    if policy.group_name and entry.group:
        metadata[META_GROUP] = entry.group
    elif policy.gid and entry.gid >= 0:
        metadata[META_GROUP] = str(entry.gid)
    if policy.mode or entry.kind == SYMLINK:  # a link is known by its type bits
        mode = entry.mode if policy.mode else 0o777
        metadata[META_PERMISSIONS] = f"0{_TYPE_BITS.get(entry.kind, 0) | mode:o}"
    return metadata


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip().removesuffix("ns"))
    except ValueError:
        return None


def entry_from_object(path: str, answer: dict[str, Any], kind: str) -> Entry:
    """An entry from a HeadObject or GetObject answer: size, LastModified and user metadata
    (keys in any case: some servers change it)."""
    size, last_modified = answer["ContentLength"], answer.get("LastModified")
    meta = {key.lower(): value for key, value in answer["Metadata"].items()}
    mtime = _number(meta.get(META_MTIME))
    if mtime is None:
        mtime = int(last_modified.timestamp()) * 1_000_000_000 if last_modified else 0
    atime = _number(meta.get(META_ATIME))
    permissions = meta.get(META_PERMISSIONS)
    mode = NO_POSIX_DIR_MODE if kind == DIR else NO_POSIX_FILE_MODE
    if permissions is not None:
        try:
            bits = int(permissions, 8)
        except ValueError:
            bits = None
        if bits is not None:
            mode = bits & 0o7777
            if kind == FILE and stat.S_IFMT(bits) == stat.S_IFLNK:
                kind = SYMLINK
    owner, group = meta.get(META_OWNER, ""), meta.get(META_GROUP, "")
    uid, gid = _number(owner), _number(group)
    return Entry(
        path,
        kind,
        size=0 if kind == DIR else size,
        mtime_ns=mtime,
        atime_ns=mtime if atime is None else atime,
        mode=mode,
        uid=NO_POSIX_ID if uid is None else uid,
        gid=NO_POSIX_ID if gid is None else gid,
        owner="" if uid is not None else owner,  # a name, not a number (from HDFS)
        group="" if gid is not None else group,
    )


def _ferry_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Of an object's user metadata, what `entry_from_object` reads."""
    return {key.lower(): value for key, value in metadata.items() if key.lower() in FERRY_METADATA}


def _folder(path: str) -> Entry:
    """A folder that only exists as the common prefix of its objects."""
    return Entry(path, DIR, mode=NO_POSIX_DIR_MODE, uid=NO_POSIX_ID, gid=NO_POSIX_ID)


# --- errors --------------------------------------------------------------------------------


@contextlib.contextmanager
def _translated(where: str, key: str = "") -> Iterator[None]:
    """S3's errors as the OS errors and StorageErrors the phases understand: a missing key is
    FileNotFoundError, a key refused PermissionError, a refused or unreachable location a
    StorageError, a busy server a transient error."""
    try:
        yield
    except S3Error as error:
        code, status = error.code, error.status
        if code in _MISSING_KEY or (status == 404 and code not in _MISSING_BUCKET):
            raise FileNotFoundError(errno.ENOENT, "no such object", key) from None
        if key and code in ("AccessDenied", "403"):  # a HEAD's 403 has no body to name it
            # One object refused (its ACL, a policy on a prefix): that file alone fails.
            raise PermissionError(errno.EACCES, f"access denied ({error.message})", key) from None
        if code in _DENIED or status == 403:
            raise StorageError(
                f"{where}: access denied ({code}: {error.message}); check the credentials and "
                "the bucket's policy",
                code=ErrorCode.LOCATION_UNAVAILABLE,
            ) from None
        if code in _MISSING_BUCKET:
            raise StorageError(
                f"{where}: the bucket does not exist", code=ErrorCode.LOCATION_UNAVAILABLE
            ) from None
        if code in _BUSY or status >= 500:
            raise OSError(errno.EAGAIN, f"{code}: {error.message}", key) from None
        raise OSError(errno.EINVAL, f"{code}: {error.message}", key) from None
    except SSLError as error:
        raise StorageError(
            f"{where}: the server's TLS certificate is not trusted ({error}); give the "
            "location a ServerCertificate with the chain of its certificate authority",
            code=ErrorCode.LOCATION_UNAVAILABLE,
        ) from None
    except HTTPError as error:  # no answer, after the client's retries
        raise ConnectionError(f"{where}: {error}") from None


# --- the storage ---------------------------------------------------------------------------


class _ObjectReader:
    __slots__ = ("body", "entry", "etag")

    def __init__(self, body: Body, entry: Entry, etag: str) -> None:
        self.body = body
        self.entry = entry
        self.etag = etag

    def read(self, size: int) -> bytes:
        with _translated("read", self.entry.path):
            return self.body.read(size)

    def stat(self) -> Entry:
        return self.entry

    def version(self) -> str:
        return self.etag  # one GET reads one version of the object


class _ObjectWriter:
    """Bytes go out as they come: one PutObject at commit for a file of one part, else the
    parts of a multipart upload while the file is read."""

    def __init__(
        self, storage: ObjectStorage, path: str, entry: Entry, policy: MetadataPolicy
    ) -> None:
        self.storage = storage
        self.client = storage.client
        self.path = path
        self.key = storage.key(path)
        self.fields = storage.new_object_fields(entry, policy)
        self.part_size = part_size(entry.size)
        self.buffer = bytearray()
        self.size = 0
        self.upload_id: str | None = None
        self.parts: list[Future[dict[str, Any]]] = []
        self.in_flight = threading.BoundedSemaphore(PARTS_IN_FLIGHT)

    def write(self, data: bytes | memoryview) -> None:
        self.buffer += data
        self.size += len(data)
        while len(self.buffer) >= self.part_size:
            part = bytes(self.buffer[: self.part_size])
            del self.buffer[: self.part_size]
            self._send_part(part)

    def _send_part(self, data: bytes) -> None:
        if self.upload_id is None:
            self.storage.abort_uploads(self.key)  # a crashed attempt's, of this key
            with _translated("upload", self.path):
                self.upload_id = self.client.create_upload(self.key, self.fields)
        self.in_flight.acquire()  # bounds the parts held in memory
        number = len(self.parts) + 1
        try:
            future = self.storage.threads.submit(self._upload_part, number, data)
        except BaseException:
            self.in_flight.release()
            raise
        self.parts.append(future)

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        try:
            digest = hashlib.sha256(data).digest()
            assert self.upload_id is not None
            with _translated("upload", self.path):
                answer = self.client.upload_part(self.key, self.upload_id, number, data, digest)
            sent = b64(digest)
            _check_checksum(answer, sent, self.path, f"part {number}")
            return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": sent}
        finally:
            self.in_flight.release()

    def commit(self, *, exclusive: bool) -> bool:
        if self.storage.exclusive_conflict(self.path, exclusive):
            self.abort()
            return False
        if self.upload_id is None:
            body = bytes(self.buffer)
            digest = hashlib.sha256(body).digest()
            with _translated("upload", self.path):
                answer = self.client.put(self.key, body, self.fields, digest)
            _check_checksum(answer, b64(digest), self.path, "object")
            self.storage.wrote(self.path, answer, self.size, self.fields["Metadata"])
            return True
        if self.buffer or not self.parts:
            self._send_part(bytes(self.buffer))
            self.buffer.clear()
        parts = [future.result() for future in self.parts]
        composite = hashlib.sha256(
            b"".join(base64.b64decode(part["ChecksumSHA256"]) for part in parts)
        ).digest()
        with _translated("upload", self.path):
            answer = self.client.complete_upload(self.key, self.upload_id, parts)
        self.upload_id = None
        _check_checksum(answer, f"{b64(composite)}-{len(parts)}", self.path, "object")
        self.storage.wrote(self.path, answer, self.size, self.fields["Metadata"])
        return True

    def abort(self) -> None:
        for future in self.parts:
            future.cancel()
        for future in self.parts:
            with contextlib.suppress(BaseException):
                future.result()
        self.parts.clear()
        self.buffer.clear()
        if self.upload_id is not None:
            upload_id, self.upload_id = self.upload_id, None
            with contextlib.suppress(Exception):
                self.client.abort_upload(self.key, upload_id)


def _check_checksum(answer: dict[str, Any], sent: str, path: str, what: str) -> None:
    returned = answer.get("ChecksumSHA256")
    # A multipart object's checksum ends in "-PARTS" on S3; some servers leave that out.
    if returned and returned.split("-")[0] != sent.split("-")[0]:
        raise IntegrityError(
            f"the server stored the {what} with SHA-256 {returned}, but Ferry sent {sent}"
        )


class ObjectStorage(Storage):
    def __init__(self, location: ObjectLocation, temp_tag: str = "") -> None:
        self.where = location.location_uri
        prefix = location.Subdirectory.strip("/")
        self.prefix = prefix + "/" if prefix else ""
        self.storage_class: str | None = None
        self._ca_file: str | None = None
        if isinstance(location, S3Location):
            self.storage_class = location.S3StorageClass
            self.client = _s3_client(location)
        else:
            self.client = self._object_storage_client(location)
        self._threads: ThreadPoolExecutor | None = None
        self._rejected: list[tuple[str, str]] = []
        self.markers = location.FolderMarkers == "ENABLED"
        self._index: SyncIndex | None = None
        self._tree = location.tree[0]  # names this bucket of this server in the index

    def _object_storage_client(self, location: ObjectStorageLocation) -> S3Client:
        from botocore.credentials import Credentials

        credentials = None
        if location.AccessKey:
            secret = unsealed(location.SecretKey, location.LocationArn)
            credentials = Credentials(location.AccessKey, secret)
        if location.ServerCertificate:
            handle, self._ca_file = tempfile.mkstemp(prefix="ferry-ca-", suffix=".pem")
            with os.fdopen(handle, "w", encoding="ascii") as file:
                file.write(location.ServerCertificate)
        return S3Client(
            location.BucketName,
            region="us-east-1",
            credentials=credentials,
            endpoint=location.endpoint_url,
            ca_file=self._ca_file,
            connections=CONNECTIONS,
        )

    @property
    def threads(self) -> ThreadPoolExecutor:
        """For parts in flight and metadata reads; made on first use."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(HEADS_IN_FLIGHT, thread_name_prefix="ferry-s3")
        return self._threads

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
        self.client.http.clear()
        if self._ca_file is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._ca_file)
            self._ca_file = None

    # --- keys ----------------------------------------------------------------------------------

    def key(self, path: str) -> str:
        return self.prefix + path

    def _folder_key(self, path: str) -> str:
        return self.prefix + path + "/" if path else self.prefix

    def new_object_fields(self, entry: Entry, policy: MetadataPolicy) -> dict[str, Any]:
        """What a new object gets: Ferry's metadata, and from an object source its system and
        user metadata and (ObjectTags PRESERVE) its tags; the location's storage class."""
        attributes = entry.attributes or {}
        metadata = {**attributes.get("Metadata", {}), **user_metadata(entry, policy)}
        fields = self._new_object(metadata)
        fields.update((name, attributes[name]) for name in SYSTEM_METADATA if name in attributes)
        if policy.tags and "tags" in attributes and (tags := attributes["tags"]()):
            fields["Tagging"] = urllib.parse.urlencode([(t["Key"], t["Value"]) for t in tags])
        return fields

    def _new_object(self, metadata: dict[str, str]) -> dict[str, Any]:
        fields: dict[str, Any] = {"Metadata": metadata}
        if self.storage_class and self.storage_class != "STANDARD":
            fields["StorageClass"] = self.storage_class
        return fields

    def keeps_folder_metadata(self, path: str) -> bool:
        # In a marker, which the bucket's own root has not.
        return self.markers and bool(path or self.prefix)

    def take_rejected(self) -> list[tuple[str, str]]:
        rejected, self._rejected = self._rejected, []
        return rejected

    # --- the sync index: rows [name, ETag, size, time, Ferry's metadata, a link's target] -----
    # `time`: the object's LastModified was no later than this (the server's clock), so that a
    # listing showing a later one is of an object changed since.

    def use_sync_index(self, index: SyncIndex) -> None:
        self._index = index

    def _index_folder(self, path: str) -> str:
        return f"{self._tree}/{self._folder_key(path)}"

    def wrote(
        self,
        path: str,
        answer: dict[str, Any],
        size: int,
        metadata: dict[str, str],
        target: str | None = None,
        etag: str = "",
    ) -> None:
        """Note an object just written, from the server's answer: its LastModified is before
        the answer's Date, which is to the second."""
        etag = (answer.get("ETag") or etag).strip('"')
        if self._index is None or not etag or "Date" not in answer:
            return
        folder, _, name = path.rpartition("/")
        row = [name, etag, size, answer["Date"] + 1, _ferry_metadata(metadata), target]
        self._index.note(self._index_folder(folder), row)

    def _recalled(self, path: str, objects: dict[str, Listed]) -> tuple[dict[str, list[Any]], int]:
        """The index's row for each listed object (by name) that it still describes: the same
        ETag and size, not modified since (the latest such row); and how many rows it had."""
        found: dict[str, list[Any]] = {}
        rows = 0
        if self._index is None:
            return found, rows
        for row in self._index.recall(self._index_folder(path)):
            rows += 1
            listed = objects.get(row[0]) if isinstance(row, list) and len(row) == 6 else None
            if (
                listed is None
                or not listed.etag
                or not listed.last_modified
                or (listed.etag, listed.size) != (row[1], row[2])
                or listed.last_modified > row[3]
            ):
                continue
            if row[0] not in found or row[3] > found[row[0]][3]:
                found[row[0]] = row
        return found, rows

    def _listed_entry(
        self, path: str, listed: Listed, row: list[Any] | None
    ) -> tuple[Entry | None, list[Any] | None]:
        """A listed object's entry, from its index row or else a HeadObject; with the row that
        the index keeps of it (None: the object changed between the listing and the read)."""
        name = path.rpartition("/")[2]
        if row is not None:
            modified = datetime.fromtimestamp(listed.last_modified, UTC)
            answer = {"ContentLength": listed.size, "LastModified": modified, "Metadata": row[4]}
            entry = entry_from_object(path, answer, FILE)
            if entry.kind == SYMLINK:
                if row[5] is None:  # a row of its own, to be kept with the target
                    row = [*row[:5], self._target(path)]
                entry.target = row[5]
            return entry, row
        try:
            with _translated(self.where, path):
                answer = self.client.head(listed.key)
        except FileNotFoundError:
            return None, None  # deleted since it was listed
        entry = entry_from_object(path, answer, FILE)
        if entry.kind == SYMLINK:
            entry.target = self._target(path)
        if (answer["ETag"].strip('"'), answer["ContentLength"]) != (listed.etag, listed.size):
            return entry, None
        metadata = _ferry_metadata(answer["Metadata"])
        return entry, [name, listed.etag, listed.size, listed.last_modified, metadata, entry.target]

    # --- the interface -------------------------------------------------------------------------

    def check(self, *, writable: bool) -> None:
        try:
            with _translated(self.where):
                next(self.client.list(self.prefix, max_keys=1))
        except ConnectionError as error:
            raise StorageError(
                f"cannot reach the server: {error}", code=ErrorCode.LOCATION_UNAVAILABLE
            ) from None
        except OSError as error:
            raise StorageError(
                f"{self.where}: {error.strerror}", code=ErrorCode.LOCATION_UNAVAILABLE
            ) from None

    def _head(self, key: str, path: str, kind: str) -> Entry | None:
        try:
            with _translated(self.where, path):
                answer = self.client.head(key)
        except FileNotFoundError:
            return None
        return entry_from_object(path, answer, kind)

    def stat(self, path: str) -> Entry | None:
        if not path:
            marker = self._head(self.prefix, "", DIR) if self.keeps_folder_metadata("") else None
            return marker or _folder("")
        entry = self._head(self.key(path), path, FILE)
        if entry is not None:
            if entry.kind == SYMLINK:
                entry.target = self._target(path)
            return entry
        marker = self._head(self._folder_key(path), path, DIR) if self.markers else None
        if marker is not None:
            return marker
        with _translated(self.where, path):
            inside = next(self.client.list(self._folder_key(path), max_keys=1))
        if inside.objects or inside.prefixes:
            return _folder(path)
        return None

    def _target(self, path: str) -> str:
        with _translated(self.where, path):
            _, body = self.client.get(self.key(path))
            try:
                return body.read().decode(errors="surrogateescape")
            finally:
                body.close()

    def list_dir(self, path: str, *, after: str = "", limit: int = 0) -> tuple[list[Entry], bool]:
        folder = self._folder_key(path)
        base = path + "/" if path else ""
        # After a common prefix "a/", the next key after everything below it.
        start = folder + after + ("\U0010ffff" if after.endswith("/") else "") if after else ""
        files: dict[str, Listed] = {}  # objects by name, whose metadata is read next
        folders: list[str] = []
        more = False
        with _translated(self.where, path):
            for page in self.client.list(folder, delimiter="/", start_after=start, max_keys=limit):
                for prefix in page.prefixes:
                    name = prefix[len(folder) : -1]
                    if self._acceptable(base, name):
                        folders.append(base + name)
                for listed in page.objects:
                    name = listed.key[len(folder) :]
                    if name and self._acceptable(base, name):  # "" is the folder's own marker
                        files[name] = listed
                more = page.truncated
        if not files and not folders and path and not after and self.stat(path) is None:
            raise FileNotFoundError(errno.ENOENT, "no such folder", path)
        known, recalled = self._recalled(path, files)
        read = list(
            self.threads.map(
                lambda item: self._listed_entry(base + item[0], item[1], known.get(item[0])),
                files.items(),
            )
        )
        if self._index is not None:
            # A folder listed whole keeps one piece; a slice only what it had to read.
            whole = not after and not more
            kept = [row for _, row in read if row is not None]
            new = [row for row in kept if known.get(row[0]) is not row]
            unchanged = whole and not new and len(kept) == recalled
            rows = kept if whole else new
            self._index.keep(self._index_folder(path), rows, whole=whole, unchanged=unchanged)
        if self.markers:
            markers = self.threads.map(lambda p: self._head(self._folder_key(p), p, DIR), folders)
            found = [m or _folder(p) for m, p in zip(markers, folders, strict=True)]
        else:
            found = [_folder(p) for p in folders]
        found += [entry for entry, _ in read if entry is not None]
        skip = len(base)
        found.sort(key=lambda entry: listing_key(entry.path[skip:], entry.kind))
        return found, more

    def _acceptable(self, base: str, name: str) -> bool:
        """Keys that cannot be a path in a file tree are left out, each named once."""
        if name in ("", ".", ".."):
            self._rejected.append(
                (base + name, f"the key has a {name!r} segment, which no file can be named")
            )
            return False
        if "\0" in name:
            self._rejected.append((base + name, "the key holds a NUL character"))
            return False
        return True

    def open_read(self, path: str) -> _ObjectReader:
        key = self.key(path)
        with _translated(self.where, path):
            answer, body = self.client.get(key)
        entry = entry_from_object(path, answer, FILE)
        attributes = {name: answer[name] for name in SYSTEM_METADATA if answer.get(name)}
        attributes["Metadata"] = {
            name: value
            for name, value in answer["Metadata"].items()
            if name.lower() not in FERRY_METADATA
        }
        attributes["tags"] = lambda: self._tags(key, path)
        entry.attributes = attributes
        return _ObjectReader(body, entry, answer["ETag"])

    def _tags(self, key: str, path: str) -> list[dict[str, str]]:
        with _translated(self.where, path):
            return self.client.tags(key)

    def close_reader(self, reader: _ObjectReader) -> None:  # type: ignore[override]
        reader.body.close()

    def create_file(self, path: str, entry: Entry, policy: MetadataPolicy) -> _ObjectWriter:
        return _ObjectWriter(self, path, entry, policy)

    def abort_uploads(self, key: str) -> None:
        try:
            with _translated(self.where, key):
                uploads = self.client.uploads(key)
        except FileNotFoundError:
            return  # rclone answers 404 when there are none
        for upload_key, upload_id in uploads:
            if upload_key == key:
                with _translated(self.where, key):
                    self.client.abort_upload(key, upload_id)

    def _put(self, key: str, body: bytes, metadata: dict[str, str], path: str) -> dict[str, Any]:
        with _translated(self.where, path):
            return self.client.put(
                key, body, self._new_object(metadata), hashlib.sha256(body).digest()
            )

    def held_as(self, location: Location) -> Location:
        """With FolderMarkers ENABLED, whether a folder's marker ("name/") can stand beside
        what is in it: not on servers that keep objects as files (`rclone serve s3`, where
        "name/" is a file called name). Tried under a temporary name; where it cannot, the
        location is used with FolderMarkers DISABLED, folders as prefixes only."""
        if location.FolderMarkers != "ENABLED":  # type: ignore[union-attr]
            return location
        # One name per location, as Ferry's temporary files are named, which listings pass
        # over: a server that keeps objects as files keeps the emptied folder too.
        folder = f"{self.prefix}{temp_name('folder markers', self.prefix)}/"
        kept = True
        try:
            with _translated(self.where, ""):
                self.client.put(folder + "inside", b"", {}, hashlib.sha256(b"").digest())
                try:
                    self.client.put(folder, b"", {}, hashlib.sha256(b"").digest())
                except S3Error:
                    kept = False
        finally:
            for key in (folder + "inside", folder):
                with contextlib.suppress(S3Error, OSError, HTTPError):
                    self.client.delete(key)
        if kept:
            return location
        return location.model_copy(update={"FolderMarkers": "DISABLED"})

    def make_dir(self, path: str) -> bool:
        if not self.keeps_folder_metadata(path):
            return False  # a prefix exists through the objects under it
        if self._head(self._folder_key(path), path, DIR) is not None:
            return False
        self._put(self._folder_key(path), b"", {}, path)
        return True

    def exclusive_conflict(self, path: str, exclusive: bool) -> bool:
        return exclusive and self.stat(path) is not None

    def make_symlink(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        if self.exclusive_conflict(path, exclusive):
            return False
        target = (entry.target or "").encode(errors="surrogateescape")
        metadata = user_metadata(entry, policy)
        answer = self._put(self.key(path), target, metadata, path)
        self.wrote(path, answer, len(target), metadata, entry.target)
        return True

    def make_special(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        raise OSError(errno.EOPNOTSUPP, "object storage cannot hold devices or named pipes", path)

    def make_hard_link(self, path: str, existing: str, *, exclusive: bool = False) -> bool:
        """Object storage has no links: the second name becomes a copy, made by the server."""
        if self.exclusive_conflict(path, exclusive):
            return False
        with _translated(self.where, path):
            self.client.copy(self.key(path), self.key(existing), {})
        return True

    def set_metadata(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        metadata = user_metadata(entry, policy)
        if entry.kind == DIR:
            if self.keeps_folder_metadata(path):
                self._put(self._folder_key(path), b"", metadata, path)
            return
        key = self.key(path)
        # A copy onto itself is the only way S3 changes an object's metadata; the object's
        # other user metadata and its system metadata stay.
        with _translated(self.where, path):
            current = self.client.head(key)
            kept = {k: v for k, v in current["Metadata"].items() if k.lower() not in FERRY_METADATA}
            system = {name: current[name] for name in SYSTEM_METADATA if current.get(name)}
            answer = self.client.copy(
                key,
                key,
                {**system, "Metadata": {**kept, **metadata}, "MetadataDirective": "REPLACE"},
            )
        # The content stays: where the copy's answer has no ETag, it is the HeadObject's.
        target = entry.target if entry.kind == SYMLINK else None
        size = current["ContentLength"]
        self.wrote(path, answer, size, metadata, target, etag=current["ETag"])

    def remove(self, path: str, kind: str) -> None:
        """What is removed is looked for first, so that one already gone is told apart (a
        DeleteObject of a key that is not there succeeds): a file's object; a folder's marker,
        where it has one, else the objects beneath it (which keep it there)."""
        folder = self._folder_key(path)
        if kind == DIR and self.markers and self._head(folder, path, DIR) is not None:
            with _translated(self.where, path):
                self.client.delete(folder)
            return
        with _translated(self.where, path):
            if kind != DIR:
                self.client.head(self.key(path))
                self.client.delete(self.key(path))
            elif not next(self.client.list(folder, max_keys=1)).objects:
                raise FileNotFoundError(errno.ENOENT, "no such folder", path)

    def purge(self, path: str) -> int:
        """Every key under the folder's prefix, listed flat a page at a time and deleted a
        thousand a request; counted as a listing shows them: each file, and each folder with a
        marker or without. Keys come in order, so the keys of a folder come together: a key's
        folders that the key before it had were counted already."""
        folder = self._folder_key(path)
        doomed = [folder] if self.markers else []  # without markers, a folder is no object
        removed, before = 1, []  # the folder itself; the folders of the last key
        with _translated(self.where, path):
            for page in self.client.list(folder):
                for listed in page.objects:
                    key = listed.key
                    inside = key[len(folder) :]
                    if not inside:
                        continue  # the marker, deleted above
                    parts = inside.rstrip("/").split("/")
                    # A marker ("a/b/") is the folder a/b; a file's folders are above it.
                    folders = parts if inside.endswith("/") else parts[:-1]
                    shared = 0
                    while shared < min(len(folders), len(before)) and (
                        folders[shared] == before[shared]
                    ):
                        shared += 1
                    removed += len(folders) - shared + (not inside.endswith("/"))
                    before = folders
                    doomed.append(key)
                    if len(doomed) == DELETE_BATCH:
                        self.client.delete_many(doomed)
                        doomed = []
            if doomed:
                self.client.delete_many(doomed)
        return removed


def _s3_client(location: S3Location) -> S3Client:
    """The worker's AWS credential chain; through STS when the location names a role."""
    try:
        return aws_client(
            location.bucket,
            location.S3Config.BucketAccessRoleArn,
            location.EndpointUrl,
            connections=CONNECTIONS,
        )
    except AwsCredentialsMissing as error:
        raise StorageError(
            f"{location.location_uri}: {error}", code=ErrorCode.LOCATION_UNAVAILABLE
        ) from None


def open_location(location: ObjectLocation, temp_tag: str) -> ObjectStorage:
    """An S3 bucket or a bucket of an S3-compatible server."""
    return ObjectStorage(location, temp_tag)
