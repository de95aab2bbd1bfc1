"""The staging store: an execution's plan, results and logs, kept out of workflow history.

PREPARING writes the plan here as batches of JSON lines, one object per batch; the workflow only
ever holds batch counts. Each batch keeps what it did (what it wrote, its report rows) in a
result log here, and every activity its log lines. This store is the only thing besides Temporal
that the workers and agents of an execution share, so everything one host leaves for another
goes through it; a process's own scratch (the files between an activity and its pool process)
stays on its disk.

Two back ends, one small interface (`Backend`): a directory (the embedded default) and a prefix
of an S3-compatible bucket (`s3://BUCKET/PREFIX`), for workers and agents on hosts that share no
file system. Objects appear whole or not at all and list in key order.

Keys, under the store's root:
    EXEC/STEP-NNNNNN.jsonl                     a batch of the plan
    EXEC/results/STEP-NNNNNN.jsonl             what that batch did, published when it ends
    EXEC/results/STEP-NNNNNN.parts/...         what an attempt did up to a checkpoint
    EXEC/checkpoints/STEP-NNNNNN.PHASE.json    a batch's last checkpoint, for the next attempt
    logs/EXEC/TIME-TOKEN-NNNNN.jsonl           log lines (LogLevel), kept after the execution
    index/TASK/FOLDER/TIME-TOKEN.jsonl         a task's sync index: rows of one destination
                                               folder (FOLDER a digest of its name)
The execution's own prefix is removed when it ends; its logs stay for `ferry logs`, a task's
sync index for its next execution.

A batch and a published result log end with their row count (`{"@rows": N}`), so that a reader
tells a whole one from a short one; one that is not there at all is an error naming the store
(a worker or agent given another staging store than the rest), never an empty batch. Each
activity counts what it asks of the store through a view of its own (`counted`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import xxhash

from models.arn import execution_id as execution_id_of
from models.arn import resource_id, task_arn_of
from models.staging import StagingTraffic

log = logging.getLogger("ferry.staging")

_encode = json.JSONEncoder(separators=(",", ":")).encode
ROW_COUNT = "@rows"  # the last line of a batch or a published result log: {"@rows": N}


class ObjectWriter(Protocol):
    """An object being written: it appears under its key only at commit()."""

    def write(self, text: str) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class Backend(Protocol):
    url: str  # what opens the same store in another process (a pool process, another host)
    traffic: StagingTraffic  # what was asked of the store through this backend (or copy)

    def writer(self, key: str) -> ObjectWriter: ...

    def put(self, key: str, data: bytes) -> None:
        """The whole object at once, atomically."""
        ...

    def lines(self, key: str) -> Iterator[str]:
        """The object's lines as they are read; FileNotFoundError if there is no such object."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, in order."""
        ...

    def delete(self, keys: list[str]) -> None: ...

    def delete_prefix(self, prefix: str) -> None:
        """Every object whose key starts with `prefix`."""
        ...


class StagingError(Exception):
    """The staging store did not answer or refused (retried: the store may come back)."""


class StagingMissing(Exception):
    """An object that must be in the staging store is not there, or not whole: most likely the
    process that wrote it was given another staging store (not retried: it stays so)."""


@functools.cache
def open_staging(url: str) -> StagingStore:
    """The store at `url`: `s3://BUCKET/PREFIX`, or a directory. One per process and URL."""
    if url.startswith("s3://"):
        from activities.staging.bucket import BucketBackend

        return StagingStore(BucketBackend(url))
    from activities.staging.directory import DirectoryBackend

    return StagingStore(DirectoryBackend(url))


def check_url(url: str) -> str:
    """A staging URL as given on the command line, or an error that says what is taken."""
    if url.startswith("s3://"):
        bucket = url.removeprefix("s3://").partition("/")[0]
        if not bucket:
            raise ValueError(f"--staging-url {url}: name a bucket, as in s3://BUCKET/PREFIX")
        return url.rstrip("/")
    if "://" in url:
        raise ValueError(
            f"--staging-url {url}: a staging store is s3://BUCKET/PREFIX or a directory"
        )
    return os.path.abspath(url)


class StagingStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def url(self) -> str:
        return self.backend.url

    def counted(self) -> StagingStore:
        """This store, counting what is asked of it through the copy on its own (`traffic`);
        the copy shares the backend's connections."""
        backend = copy.copy(self.backend)
        backend.traffic = StagingTraffic()
        return StagingStore(backend)

    @property
    def traffic(self) -> StagingTraffic:
        return self.backend.traffic

    def lines(self, key: str, written_to: str = "") -> Iterator[str]:
        """The lines of an object that must be there; `written_to`: the store its writer
        named, if known."""
        try:
            yield from self.backend.lines(key)
        except FileNotFoundError:
            elsewhere = (
                f" (it was written to {written_to})" if written_to not in ("", self.url) else ""
            )
            raise StagingMissing(
                f"The {_what(key)} {key} is not in the staging store {self.url}{elsewhere}: is "
                "every worker and agent given the same --staging-url / FERRY_STAGING_URL?"
            ) from None

    # --- the plan ----------------------------------------------------------------------------

    def batch_key(self, execution_id: str, step: str, index: int) -> str:
        return f"{execution_id}/{step}-{index:06d}.jsonl"

    def batches(self, execution_id: str, step: str, first: int = 0) -> BatchWriter:
        return BatchWriter(self, execution_id, step, first=first)

    def batch_keys(self, execution_id: str, step: str) -> list[str]:
        """A step's batches, in order."""
        prefix = f"{execution_id}/{step}-"
        return [key for key in self.backend.keys(prefix) if _is_batch(key, prefix)]

    def rows(self, key: str, *, sealed: bool = False, written_to: str = "") -> Iterator[Any]:
        """The rows of a batch or result log, which must be there and whole: as many as the
        count it ends with (`sealed`: it must end with one; older ones did not)."""
        count, declared = 0, None
        for line in self.lines(key, written_to):
            row = json.loads(line)
            if isinstance(row, dict) and ROW_COUNT in row:
                declared = row[ROW_COUNT]
                continue
            count += 1
            yield row
        if (declared is None and sealed) or (declared is not None and declared != count):
            said = "no row count at its end" if declared is None else f"{declared} written"
            raise StagingMissing(
                f"The {_what(key)} {key} in the staging store {self.url} is not whole: {count} "
                f"rows read, {said}."
            )

    def clear(self, execution_id: str, step: str, start: int = 0) -> None:
        """Drop a step's batches from `start` on, their results and checkpoints, so that a
        retried PREPARING starts clean after the batches that already ran."""
        doomed = [
            key
            for folder in ("", "results/", "checkpoints/")
            for prefix in [f"{execution_id}/{folder}{step}-"]
            for key in self.backend.keys(prefix)
            if _index(key[len(prefix) :]) >= start
        ]
        self.backend.delete(doomed)

    def checkpoint_key(self, execution_id: str, step: str, index: int, phase: str) -> str:
        """Where a batch's last checkpoint is kept, for the attempt after it."""
        return f"{execution_id}/checkpoints/{step}-{index:06d}.{phase}.json"

    def remove(self, execution_id: str) -> None:
        """Everything of an execution but its logs."""
        self.backend.delete_prefix(f"{execution_id}/")

    # --- what batches did ---------------------------------------------------------------------

    def result_key(self, execution_id: str, step: str, index: int) -> str:
        return f"{execution_id}/results/{step}-{index:06d}.jsonl"

    def result_keys(self, execution_id: str, prefix: str) -> list[str]:
        """The published result logs whose step starts with `prefix`, in order."""
        start = f"{execution_id}/results/{prefix}"
        return [key for key in self.backend.keys(start) if _is_batch(key, start)]

    def results(
        self, execution_id: str, step: str, index: int, saved: list[str] | None = None
    ) -> ResultLog:
        """The result log of a batch, going on from the parts an earlier attempt saved."""
        return ResultLog(self, self.result_key(execution_id, step, index), saved or [])

    # --- a task's sync index ----------------------------------------------------------------

    def sync_index(self, execution_arn: str, *, reading: bool) -> SyncIndex:
        """The sync index of the execution's task; `reading`: for a listing (else only what is
        written is noted)."""
        return SyncIndex(self, f"index/{resource_id(task_arn_of(execution_arn))}/", reading)

    # --- log lines ------------------------------------------------------------------------------

    def log(self, execution_arn: str) -> EventLog:
        return EventLog(self, f"logs/{execution_id_of(execution_arn)}/")

    def log_lines(self, execution_arn: str) -> Iterator[str]:
        """Every log line of an execution: each activity's in order, activities by the time
        they first saved lines."""
        for key in self.backend.keys(f"logs/{execution_id_of(execution_arn)}/"):
            with contextlib.suppress(FileNotFoundError):  # removed since it was listed
                yield from self.backend.lines(key)


class BatchWriter:
    """Cuts a stream of rows of one step into batches of at most `max_rows` rows and, where rows
    carry a size, about `max_bytes` bytes; a batch appears under its key only when complete."""

    def __init__(
        self,
        store: StagingStore,
        execution_id: str,
        step: str,
        max_rows: int = 1000,
        max_bytes: int = 1 << 62,
        first: int = 0,
    ) -> None:
        """`first`: the number of the first batch (after batches an earlier attempt left)."""
        self._store = store
        self._execution_id = execution_id
        self._step = step
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.count = first
        self.on_seal: Callable[[], None] | None = None  # called when a full batch is sealed
        self._writer: ObjectWriter | None = None
        self._rows = 0
        self._bytes = 0

    def add(self, row: list[Any], size: int = 0) -> None:
        if self._writer is None:
            key = self._store.batch_key(self._execution_id, self._step, self.count)
            self._writer = self._store.backend.writer(key)
        self._writer.write(_encode(row) + "\n")
        self._rows += 1
        self._bytes += size
        if self._rows >= self.max_rows or self._bytes >= self.max_bytes:
            self._seal()
            if self.on_seal is not None:
                self.on_seal()

    def close(self) -> int:
        """Seal the last batch; the number of batches written."""
        if self._writer is not None:
            self._seal()
        return self.count

    def _seal(self) -> None:
        assert self._writer is not None
        self._writer.write(_encode({ROW_COUNT: self._rows}) + "\n")
        self._writer.commit()
        self._writer = None
        self._rows = 0
        self._bytes = 0
        self.count += 1


class ResultLog:
    """What a batch did, one JSON row per entry, as it goes.

    What outlives an attempt is what its checkpoints saved: at each checkpoint the rows since
    the last one go to the store as a part of their own (`save`), and the checkpoint names the
    parts. A retry, on this host or another, starts from the parts its checkpoint names (an
    attempt that died after its last checkpoint left parts no checkpoint names: they are
    ignored and go with the execution). The attempt that finishes publishes the whole log under
    the batch's key; readers only ever see whole logs."""

    def __init__(self, store: StagingStore, key: str, saved: list[str]) -> None:
        self._store = store
        self._key = key
        self.saved = list(saved)  # the parts this log is made of so far
        self._pending: list[str] = []
        self._token = _token()

    def append(self, row: list[Any] | dict[str, Any]) -> None:
        self._pending.append(_encode(row) + "\n")

    def save(self) -> list[str]:
        """Save the rows since the last checkpoint; the parts to name in this one."""
        if self._pending:
            part = f"{self._key.removesuffix('.jsonl')}.parts/{self._token}-{len(self.saved):05d}"
            self._store.backend.put(part, "".join(self._pending).encode())
            self.saved.append(part)
            self._pending = []
        return list(self.saved)

    def publish(self) -> None:
        """The whole log under the batch's key (the parts it was made of are then dropped)."""
        writer = self._store.backend.writer(self._key)
        rows = len(self._pending)
        try:
            for part in self.saved:
                for line in self._store.lines(part):
                    writer.write(line)
                    rows += 1
            writer.write("".join(self._pending) + _encode({ROW_COUNT: rows}) + "\n")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        self._store.backend.delete(self.saved)
        self.saved, self._pending = [], []


class EventLog:
    """An activity's log lines, saved to the store a part at a time (at each checkpoint and at
    the end). A retried batch may log the rows since its checkpoint twice."""

    def __init__(self, store: StagingStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix
        self._pending: list[str] = []
        self._token = _token()
        self._parts = 0

    def append(self, line: str) -> None:
        self._pending.append(line + "\n")

    def save(self) -> None:
        if not self._pending:
            return
        # Named by the time they are saved, so that `ferry logs` lists them about in order.
        key = f"{self._prefix}{time.time_ns() // 1_000_000:013d}-{self._token}-{self._parts:05d}"
        self._store.backend.put(key + ".jsonl", "".join(self._pending).encode())
        self._parts += 1
        self._pending = []


class SyncIndex:
    """A task's sync index (the storage adapter's rows, `activities.storage.base.SyncIndex`):
    each folder's rows are pieces under a key of the folder's own, written whole; a listing
    that read them all keeps one piece instead. It only ever spares requests: a store that
    fails here is logged and the rows are lost, which costs the next listing its requests."""

    def __init__(self, store: StagingStore, prefix: str, reading: bool) -> None:
        self._store = store
        self._prefix = prefix
        self._reading = reading
        self._read: dict[str, list[str]] = {}  # the pieces `recall` read, by folder
        self._notes: dict[str, list[list[Any]]] = {}
        self._lock = threading.Lock()

    def _folder(self, folder: str) -> str:
        return (
            f"{self._prefix}{xxhash.xxh3_128_hexdigest(folder.encode(errors='surrogateescape'))}/"
        )

    def recall(self, folder: str) -> Iterator[list[Any]]:
        if not self._reading:
            return
        backend = self._store.backend
        try:
            pieces = backend.keys(self._folder(folder))
            self._read[folder] = pieces
            for piece in pieces:
                with contextlib.suppress(FileNotFoundError):  # kept whole by another listing
                    for line in backend.lines(piece):
                        yield json.loads(line)
        except (StagingError, ValueError) as error:
            log.warning("the sync index is not readable: %s", error)
            self._read.pop(folder, None)

    def keep(
        self, folder: str, rows: list[list[Any]], *, whole: bool, unchanged: bool = False
    ) -> None:
        if not self._reading:
            return
        if unchanged and len(self._read.get(folder, ())) == 1:
            del self._read[folder]  # that one piece says it all already
            return
        if self._put(folder, rows) and whole:
            with contextlib.suppress(StagingError):
                self._store.backend.delete(self._read.pop(folder, []))

    def note(self, folder: str, row: list[Any]) -> None:
        with self._lock:
            self._notes.setdefault(folder, []).append(row)

    def flush(self) -> None:
        """Keep the rows noted, a piece per folder."""
        with self._lock:
            notes, self._notes = self._notes, {}
        for folder, rows in notes.items():
            self._put(folder, rows)

    def _put(self, folder: str, rows: list[list[Any]]) -> bool:
        if not rows:
            return True
        key = f"{self._folder(folder)}{time.time_ns():019d}-{_token()}.jsonl"
        try:
            self._store.backend.put(key, "".join(_encode(row) + "\n" for row in rows).encode())
        except StagingError as error:
            log.warning("the sync index is not kept: %s", error)
            return False
        return True


def _what(key: str) -> str:
    if ".parts/" in key:
        return "saved part of a result log"
    return "result log of the batch" if "/results/" in key else "batch of the plan"


def _token() -> str:
    """Tells the parts of one attempt from another's, wherever either ran."""
    return os.urandom(6).hex()


def _is_batch(key: str, prefix: str) -> bool:
    """A whole batch (or result log) right under `prefix`'s folder, not a part of one."""
    name = key[len(prefix) :]
    return "/" not in name and name.endswith(".jsonl")


def _index(name: str) -> int:
    """The batch number in what follows "STEP-" in a key: "000012.jsonl", "000012.parts/..."."""
    digits = name.partition(".")[0]
    return int(digits) if digits.isdigit() else 1 << 62
