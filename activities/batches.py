"""Running one batch of a plan, in a pool process: in order, checkpointed every second, so that
a retried batch (after a crash, a worker shutdown or a transient error) resumes where the last
attempt stopped instead of starting over, and a cancel stops it within a second.

Against storage where each file costs a round trip (object storage), a batch works on several
rows at once, each in a thread of its own: a row's counters, results and events are kept aside
and added to the batch's when the row is done, so that a checkpoint never holds half a row, and
it names the rows done beyond the first one not done, so that a resumed attempt skips them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from activities.bandwidth import RateLimiter
from activities.events import Events, report_step
from activities.pool import Control, Stopped
from activities.staging import ResultLog, StagingStore
from activities.storage import open_storage
from activities.storage.base import Storage, SyncIndex, describe_error
from models import build_models
from models.execution import ISSUES_PER_BATCH, BatchRef, BatchResult, Counters, FileIssue
from models.locations import Location
from models.reports import Category
from models.staging import StagingTraffic

log = logging.getLogger("ferry.transfer")

CHECKPOINT_SECONDS = 1.0
STOP_CHECK_SECONDS = 0.2
# Attempts that may fail on the same row with a transient error before that row is given up
# (a bad sector answers EIO every time; a flaky network does not).
TRIES_PER_ROW = 3


@dataclass
class _Tally:
    """What one row did, while its thread works on it."""

    counters: Counters = field(default_factory=Counters)
    results: list[list[Any]] = field(default_factory=list)
    events: list[tuple[Category, str, bool, dict[str, Any]]] = field(default_factory=list)
    issues: list[FileIssue] = field(default_factory=list)


class ThreadStorages:
    """One storage of a location per thread: adapters keep per-connection state (descriptors of
    folders, connection pools) that threads must not share."""

    def __init__(self, location: Location, tag: str, index: SyncIndex | None = None) -> None:
        """`index`: where each storage notes what it writes (its task's sync index)."""
        self.location = location
        self.tag = tag
        self.index = index
        self._local = threading.local()
        self._opened: list[Storage] = []
        self._lock = threading.Lock()

    def get(self) -> Storage:
        storage: Storage | None = getattr(self._local, "storage", None)
        if storage is None:
            storage = self._local.storage = open_storage(self.location, self.tag)
            if self.index is not None:
                storage.use_sync_index(self.index)
            with self._lock:
                self._opened.append(storage)
        return storage

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for storage in opened:
            storage.close()


class BatchRun:
    def __init__(
        self,
        store: StagingStore,
        ref: BatchRef,
        checkpoint: dict[str, Any],
        control: Control,
        *,
        results: bool = False,
        reverse: bool = False,
        of_results: bool = False,
        limiter: RateLimiter | None = None,
        parallel: int = 1,
    ) -> None:
        """`checkpoint`: where the last attempt got to ({} for the first). `results`: keep a log
        of what was done, for verification. `reverse`: run the rows last to first (deletes:
        contents before their folder). `of_results`: run over the result log of the batch
        instead of its plan (ONLY_FILES_TRANSFERRED verification). `limiter`: follows the share of
        the execution's bandwidth limit that the activity passes on. `parallel`: rows worked on
        at once. `store`: a view of the staging store of this attempt's own, which counts what
        it asks (with what the attempts before it asked, as far as their checkpoints say)."""
        control.started()
        self.store = store
        self.traffic = StagingTraffic(**checkpoint.get("staging_traffic", {}))
        self.ref = ref
        self.arn = ref.execution_arn
        self.control = control
        self.limiter = limiter
        report = (
            store.results(
                ref.execution_id,
                report_step(("verified-" if of_results else "") + ref.step),
                ref.index,
                checkpoint.get("report_parts"),
            )
            if ref.report
            else None
        )
        self.events = Events(store, ref.execution_arn, ref.options.LogLevel, report)
        where = store.result_key if of_results else store.batch_key
        self.rows: list[Any] = list(
            store.rows(
                where(ref.execution_id, ref.step, ref.index),
                sealed=bool(ref.staging_url),  # written by a Ferry that ends batches with a count
                written_to=ref.staging_url,
            )
        )
        if reverse:
            self.rows.reverse()
        # An attempt after one that may have done rows it did not checkpoint.
        self.resumed = bool(checkpoint)
        self.next: int = checkpoint.get("next", 0)  # the first row not done
        self._done: set[int] = set(checkpoint.get("done", []))  # rows done beyond `next`
        # Earlier attempts that ended at this same row with a transient error.
        self.tries = checkpoint.get("tries", 0) if checkpoint.get("failed") else 0
        self.counters = Counters(**checkpoint.get("counters", {}))
        self.issues = [FileIssue(**issue) for issue in checkpoint.get("issues", [])]
        self.results: ResultLog | None = (
            store.results(ref.execution_id, ref.step, ref.index, checkpoint.get("parts"))
            if results
            else None
        )
        self.parallel = parallel
        self._partial: dict[int, int] = {}  # bytes of the files being copied, by thread
        self._lock = threading.Lock()
        self._local = threading.local()  # a row thread's tally
        self._owner = threading.get_ident()  # the thread that checkpoints
        self._stopping: str | None = None
        self._transient_failure = False
        self._last_checkpoint = self._last_stop_check = time.monotonic()
        if self.next:
            log.info("%s: resuming %s batch %d at row %d", self.arn, ref.step, ref.index, self.next)

    def run(self, handle: Callable[[Any], None]) -> BatchResult:
        """Every row not done yet; then what the batch did is published whole. An attempt that
        ends early leaves what its last checkpoint saved, from which the next one goes on."""
        if self.parallel > 1:
            self._run_parallel(handle)
        else:
            for position in range(self.next, len(self.rows)):
                if position != self.next:
                    self.tries = 0
                self.next = position
                if position in self._done:
                    continue
                self.tick()
                self.control.guard()
                handle(self.rows[position])
            self.next = len(self.rows)
        self.control.guard()
        if self.results is not None:
            self.results.publish()
        self.events.publish()
        return BatchResult(
            counters=self.counters, issues=self.issues, staging_traffic=self.staging_traffic()
        )

    def staging_traffic(self) -> StagingTraffic:
        """What this batch asked of the staging store, with the attempts before it."""
        return self.traffic.plus(self.store.traffic)

    def _run_parallel(self, handle: Callable[[Any], None]) -> None:
        """Up to `parallel` rows at once, started in order; a failure or a stop lets the rows
        in flight end, then ends the attempt as one row would."""
        resumed_at = self.next
        position = self.next
        in_flight: set[Future[None]] = set()
        failure: BaseException | None = None
        build_models()  # here, rather than first by two rows at once
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="ferry-row") as threads:
            while True:
                while (
                    failure is None
                    and self._stopping is None
                    and len(in_flight) < self.parallel
                    and position < len(self.rows)
                ):
                    if position not in self._done:
                        in_flight.add(threads.submit(self._row, handle, position))
                    position += 1
                if not in_flight:
                    break
                finished, in_flight = wait(
                    in_flight, timeout=STOP_CHECK_SECONDS, return_when=FIRST_COMPLETED
                )
                for future in finished:
                    if failure is None and future.exception() is not None:
                        failure = future.exception()
                if self.next != resumed_at:
                    self.tries = 0  # past the row an earlier attempt failed on
                if failure is None and self._stopping is None:
                    self._poll()
        if self._stopping is not None and failure is None:
            failure = Stopped(self._stopping)
        if failure is not None:
            self.checkpoint(failed=self._transient_failure)
            raise failure

    def _row(self, handle: Callable[[Any], None], index: int) -> None:
        """One row, in a thread of its own; what it did joins the batch's when it is done."""
        tally = self._local.tally = _Tally()
        try:
            self.control.guard()
            handle(self.rows[index])
        finally:
            self._local.tally = None
            self._partial.pop(threading.get_ident(), None)
        with self._lock:
            for name, value in tally.counters:
                if value:
                    setattr(self.counters, name, getattr(self.counters, name) + value)
            if self.results is not None:
                for row in tally.results:
                    self.results.append(row)
            for category, path, failed, fields in tally.events:
                self.events.record(category, path, failed=failed, **fields)
            self.issues.extend(tally.issues[: ISSUES_PER_BATCH - len(self.issues)])
            self._done.add(index)
            while self.next in self._done:
                self._done.discard(self.next)
                self.next += 1

    def _tally(self) -> _Tally | None:
        return getattr(self._local, "tally", None)

    def tick(self) -> None:
        """Between rows and while copying: checkpoint now and then, stop if asked to."""
        if threading.get_ident() != self._owner:  # a row's thread: the owner polls
            if self._stopping is not None:
                raise Stopped(self._stopping)
            return
        self._poll()
        if self._stopping is not None:
            self.checkpoint()
            raise Stopped(self._stopping)

    def _poll(self) -> None:
        now = time.monotonic()
        if now - self._last_stop_check >= STOP_CHECK_SECONDS:
            self._last_stop_check = now
            self._stopping = self.control.stop_requested()
            if self._stopping is not None:
                return
            if self.limiter is not None and (rate := self.control.rate()) is not None:
                self.limiter.set_rate(rate)
        if now - self._last_checkpoint >= CHECKPOINT_SECONDS:
            self._last_checkpoint = now
            self.checkpoint()

    def progress(self, copied: int) -> None:
        """Bytes copied so far of the file this thread copies (0: none in progress)."""
        self._partial[threading.get_ident()] = copied

    def count(self, **deltas: int) -> None:
        tally = self._tally()
        counters = tally.counters if tally is not None else self.counters
        for name, value in deltas.items():
            setattr(counters, name, getattr(counters, name) + value)

    @property
    def keeps_successes(self) -> bool:
        return self.events.keeps_successes

    def event(self, category: Category, path: str, *, failed: bool = False, **fields: Any) -> None:
        tally = self._tally()
        if tally is not None:
            tally.events.append((category, path, failed, fields))
        else:
            self.events.record(category, path, failed=failed, **fields)

    def transient(
        self, path: str, kind: str, error: BaseException, *, verify: bool = False
    ) -> None:
        """A transient error on the current row: this attempt ends and Temporal retries the
        batch from here, unless the row already failed so on earlier attempts."""
        if self.tries + 1 >= TRIES_PER_ROW:
            detail = f"{describe_error(error)} (on {TRIES_PER_ROW} attempts)"
            self.fail(path, kind, detail, verify=verify)
            return
        if threading.get_ident() != self._owner:
            self._transient_failure = True  # the owner checkpoints when the rows in flight end
        else:
            self.checkpoint(failed=True)
        raise error

    def checkpoint(self, *, failed: bool = False) -> None:
        """Where this attempt got to, for the next one, on whichever host: what the rows done
        so far wrote goes to the staging store first, and the checkpoint names it. A lost
        attempt writes none: its retry may have begun from the last one."""
        self.control.guard()
        with self._lock:
            state = {
                "next": self.next,
                "done": sorted(self._done),
                "failed": failed,
                "tries": self.tries + 1 if failed else self.tries,
                "parts": self.results.save() if self.results else [],
                "report_parts": self.events.save(),
                "counters": self.counters.model_dump(),
                "issues": [issue.model_dump() for issue in self.issues],
                "partial_bytes": sum(self._partial.values()),
                "staging_traffic": self.staging_traffic().model_dump(),
            }
        self.control.checkpoint(state, self.store)

    def record(self, row: list[Any]) -> None:
        """What a row wrote, for verification (kept only when the batch keeps results)."""
        if self.results is None:
            return
        tally = self._tally()
        if tally is not None:
            tally.results.append(row)
        else:
            self.results.append(row)

    def fail(self, path: str, kind: str, detail: str, *, verify: bool = False) -> None:
        """A path that could not be done; the batch goes on with the next one."""
        if verify:
            self.count(VerifyFailed=1)
        else:
            self.count(FilesFailed=1)
        tally = self._tally()
        issues = tally.issues if tally is not None else self.issues
        if len(issues) < ISSUES_PER_BATCH:
            issues.append(FileIssue(path=path, kind=kind, detail=detail))
        log.error("%s: /%s: %s: %s", self.arn, path, kind, detail)
        category: Category = (
            "Verified"
            if verify
            else "Deleted"
            if kind == "delete"
            else "Skipped"
            if kind == "read"
            else "Transferred"
        )
        self.event(category, path, failed=True, ErrorCode=kind, ErrorDetail=detail)
