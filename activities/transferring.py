"""TRANSFERRING: carry out one batch of one step of the plan.

Every file is streamed once: read, checksummed (XXH3-128) as the bytes pass, written under a
temporary name, given its metadata, and only then renamed to its final name. What was written
goes to the batch's result log (`activities.plan.Written`), which ONLY_FILES_TRANSFERRED
verification reads back.
"""

from __future__ import annotations

import logging
from typing import Any

import xxhash

from activities.bandwidth import RateLimiter
from activities.batches import BatchRun, ThreadStorages
from activities.events import metadata
from activities.metadata import compare
from activities.plan import (
    COPY,
    MAKE_SYMLINK,
    SET_METADATA,
    WROTE_DIRECTORY,
    WROTE_FILE,
    WROTE_METADATA,
    WROTE_OTHER,
    Deletion,
    DirectoryMetadata,
    FileAction,
    HardLink,
    Removal,
    Written,
    WrittenLink,
)
from activities.pool import Control, Stopped
from activities.staging import StagingStore, open_staging
from activities.storage import (
    carries_attributes,
    files_in_flight,
    metadata_policy,
    time_resolution_ns,
)
from activities.storage.base import (
    DIR,
    FILE,
    KIND_NAMES,
    Entry,
    MetadataError,
    Reader,
    Storage,
    StorageError,
    Writer,
    describe_error,
    is_transient,
    location_error,
    remove_tree,
)
from models.execution import BatchRef, BatchResult

log = logging.getLogger("ferry.transfer")


class _ReadFailed(Exception):
    """Reading the source failed in the middle of a copy."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def transfer_batch(
    staging: str, ref: BatchRef, checkpoint: dict[str, Any], control: Control
) -> BatchResult:
    """One attempt at one batch (runs in a pool process)."""
    return BatchTransfer(open_staging(staging).counted(), ref, checkpoint, control).execute()


class BatchTransfer:
    """One attempt at one batch, between the execution's two locations."""

    def __init__(
        self, store: StagingStore, ref: BatchRef, checkpoint: dict[str, Any], control: Control
    ) -> None:
        self.ref = ref
        tag = ref.execution_id
        self.sources = ThreadStorages(ref.source, tag)
        self.index = store.sync_index(ref.execution_arn, reading=False)
        self.destinations = ThreadStorages(ref.destination, tag, self.index)
        self.policy = metadata_policy(ref.options, ref.destination)
        self.resolution = time_resolution_ns(ref.source, ref.destination)
        self.with_attributes = carries_attributes(ref.source, ref.destination)
        self.limiter = RateLimiter(ref.bytes_per_second)
        reverse = ref.step == "deletes"
        # Files are independent of each other; the other steps' rows run in order.
        parallel = files_in_flight(ref.source, ref.destination) if ref.step == "files" else 1
        self.run = BatchRun(
            store,
            ref,
            checkpoint,
            control,
            results=True,
            reverse=reverse,
            limiter=self.limiter,
            parallel=parallel,
        )

    @property
    def source(self) -> Storage:
        return self.sources.get()

    @property
    def destination(self) -> Storage:
        storage = self.destinations.get()
        # A batch's first attempt is the first to write under its rows' temporary names.
        storage.leftovers = self.run.resumed
        return storage

    def execute(self) -> BatchResult:
        handlers = {
            "files": self._file_row,
            "links": self._link_row,
            "removals": self._removal_row,
            "deletes": self._delete_row,
            "directories": self._directory_row,
        }
        try:
            result = self.run.run(handlers[self.ref.step])
            self.index.flush()
            return result.model_copy(update={"staging_traffic": self.run.staging_traffic()})
        finally:
            self.index.flush()  # what an attempt that ends early wrote too
            self.sources.close()
            self.destinations.close()

    def _source_attributes(self, entry: Entry) -> None:
        if self.with_attributes:
            entry.attributes = self.source.attributes(entry.path)

    # --- errors ------------------------------------------------------------------------------

    def _problem(self, path: str, kind: str, error: BaseException) -> None:
        """Record a per-path failure, or end this attempt for what is not one: a failed
        location, a cancel, a worker shutting down, or a transient error (retried)."""
        if isinstance(error, (StorageError, Stopped)):
            raise error
        if isinstance(error, OSError) and (fatal := location_error(error)) is not None:
            raise fatal from error
        if is_transient(error):
            self.run.transient(path, kind, error)
            return
        if isinstance(error, MetadataError):
            kind = "metadata"
        self.run.fail(path, kind, describe_error(error))

    # --- files ---------------------------------------------------------------------------------

    def _file_row(self, row: list[Any]) -> None:
        action, exclusive, entry = FileAction.from_row(row)
        try:
            if action == COPY:
                self._copy(entry, exclusive)
                return
            if action == SET_METADATA:
                self._source_attributes(entry)
                self.destination.set_metadata(entry.path, entry, self.policy)
                self.run.record(Written(WROTE_METADATA, entry).to_row())
                self._transferred(entry, "METADATA_ONLY")
            else:
                make = (
                    self.destination.make_symlink
                    if action == MAKE_SYMLINK
                    else self.destination.make_special
                )
                if not make(entry.path, entry, self.policy, exclusive=exclusive):
                    self._skipped(entry.path)  # OverwriteMode=NEVER: it appeared meanwhile
                    return
                self.run.record(Written(WROTE_OTHER, entry).to_row())
                self._transferred(entry, "CONTENT_AND_METADATA")
            self.run.count(FilesTransferred=1)
        except Exception as error:
            self._problem(entry.path, "write", error)

    def _copy(self, entry: Entry, exclusive: bool) -> None:
        path = entry.path
        if self.run.resumed and self._finished_before(entry):
            return
        try:
            reader = self.source.open_read(path)
        except FileNotFoundError:
            # Deleted since PREPARING: nothing to copy; verification sees the same.
            self.run.count(FilesSkipped=1)
            log.warning("%s: /%s: vanished from the source since PREPARING", self.run.arn, path)
            return
        except OSError as error:
            self._unreadable(path, error)
            return
        try:
            self._stream(entry, reader, exclusive)
        finally:
            self.source.close_reader(reader)

    def _stream(self, entry: Entry, reader: Reader, exclusive: bool) -> None:
        path = entry.path
        try:
            before = reader.stat()
            version = reader.version()
            if before.kind != FILE:
                raise OSError(f"no longer a regular file but a {KIND_NAMES[before.kind]}")
        except Exception as error:
            self._unreadable(path, error)
            return
        # Metadata as it was when the read began; atime as PREPARING saw it, before any read.
        written = Entry(
            path,
            FILE,
            size=before.size,
            mtime_ns=before.mtime_ns,
            atime_ns=entry.atime_ns,
            mode=before.mode,
            uid=before.uid,
            gid=before.gid,
            owner=before.owner,
            group=before.group,
            attributes=before.attributes,
        )
        try:
            writer = self.destination.create_file(path, written, self.policy)
        except Exception as error:
            self._problem(path, "write", error)
            return
        try:
            digest, copied = self._pump(reader, writer, before.size)
            torn = copied != before.size or reader.version() != version
            written.size = copied
            self.run.control.guard()  # a lost attempt puts nothing under a final name
            committed = writer.commit(exclusive=exclusive)
        except BaseException as error:
            writer.abort()
            self.run.progress(0)
            if isinstance(error, _ReadFailed):
                self._unreadable(path, error.error)
            elif isinstance(error, Exception):
                self._problem(path, "write", error)
            else:
                raise
            return
        self.run.progress(0)
        if not committed:
            self._skipped(path)  # OverwriteMode=NEVER and the file appeared meanwhile
            return
        if torn:
            log.warning("%s: /%s changed while it was being copied", self.run.arn, path)
        self.run.count(FilesTransferred=1, BytesTransferred=copied, BytesWritten=copied)
        self.run.record(Written(WROTE_FILE, written, digest, torn).to_row())
        self._transferred(written, "CONTENT_AND_METADATA", SrcChecksum=digest)

    def _finished_before(self, entry: Entry) -> bool:
        """In an attempt that resumes a batch: whether an earlier one finished this file after
        its last checkpoint (it died before the next). A file stands under its final name only
        once it is whole and has its metadata, so one that matches the plan there is that
        file: it is read once on the source for the checksum verification needs, and counted
        as transferred, but not written again."""
        try:
            there = self.destination.stat(entry.path)
        except Exception:
            return False  # the copy will say what is wrong
        if there is None or compare(entry, there, self.policy, self.resolution):
            return False
        try:
            reader = self.source.open_read(entry.path)
        except OSError:
            return False
        try:
            digest, size = self._pump(reader, None, entry.size)
        except _ReadFailed:
            return False
        finally:
            self.source.close_reader(reader)
            self.run.progress(0)
        if size != entry.size:
            return False  # the source changed since: copy it again
        log.info("%s: /%s was written by an earlier attempt", self.run.arn, entry.path)
        self.run.count(FilesTransferred=1, BytesTransferred=size, BytesWritten=size)
        self.run.record(Written(WROTE_FILE, entry, digest).to_row())
        self._transferred(entry, "CONTENT_AND_METADATA", SrcChecksum=digest)
        return True

    def _transferred(self, entry: Entry, transfer_type: str, **fields: Any) -> None:
        if not self.run.keeps_successes:
            return
        self.run.event(
            "Transferred",
            entry.path,
            TransferType=transfer_type,
            SrcMetadata=metadata(entry),
            **fields,
        )

    def _skipped(self, path: str) -> None:
        self.run.count(FilesSkipped=1)
        self.run.event(
            "Skipped", path, Reason="exists at the destination, and OverwriteMode is NEVER"
        )

    def _unreadable(self, path: str, error: BaseException) -> None:
        if not is_transient(error):
            self.run.count(FilesSkipped=1)
        self._problem(path, "read", error)

    def _pump(self, reader: Reader, writer: Writer | None, size: int) -> tuple[str, int]:
        """Copy `size` bytes, hashing them on the way (with no `writer`, only hash them);
        returns the digest and the byte count."""
        hasher = xxhash.xxh3_128()
        copied = 0
        while copied < size:
            try:
                data = reader.read(min(self.limiter.chunk_size, size - copied))
            except OSError as error:
                raise _ReadFailed(error) from error
            if not data:
                break  # the file shrank since it was opened
            hasher.update(data)
            if writer is not None:
                writer.write(data)
            copied += len(data)
            self.run.progress(copied)
            self.limiter.take(len(data))
            if copied < size:
                self.run.tick()
        return hasher.hexdigest(), copied

    # --- links, deletions, directories ---------------------------------------------------------

    def _link_row(self, row: list[Any]) -> None:
        path, first, exclusive = HardLink.from_row(row)
        try:
            linked = self.destination.make_hard_link(path, first, exclusive=exclusive)
        except Exception as error:
            self._problem(path, "write", error)
            return
        if not linked:
            self._skipped(path)
            return
        self.run.count(FilesTransferred=1)
        self.run.record(WrittenLink(path, first).to_row())
        self.run.event("Transferred", path, TransferType="HARD_LINK", LinkTo="/" + first)

    def _removal_row(self, row: list[Any]) -> None:
        path, kind = Removal.from_row(row)
        try:
            if kind == DIR:
                can = self.ref.destination.capabilities
                removed = remove_tree(self.destination, path, can)
            else:
                self.destination.remove(path, kind)
                removed = 1
        except FileNotFoundError:
            return
        except Exception as error:
            self._problem(path, "delete", error)
            return
        self.run.count(FilesDeleted=removed)

    def _delete_row(self, row: list[Any]) -> None:
        path, kind = Deletion.from_row(row)
        try:
            self.destination.remove(path, kind)
        except FileNotFoundError:
            return
        except Exception as error:
            self._problem(path, "delete", error)
            return
        self.run.count(FilesDeleted=1)
        self.run.event("Deleted", path)

    def _directory_row(self, row: list[Any]) -> None:
        changed, entry = DirectoryMetadata.from_row(row)
        try:
            self.destination.make_dir(entry.path)
            self._source_attributes(entry)
            self.destination.set_metadata(entry.path, entry, self.policy)
        except Exception as error:
            self._problem(entry.path, "write", error)
            return
        if changed:
            self.run.count(FilesTransferred=1)
            self.run.record(Written(WROTE_DIRECTORY, entry).to_row())
            self._transferred(entry, "METADATA_ONLY")
