"""Running one batch of a plan, in a pool process: in order, checkpointed every second, so that
a retried batch (after a crash, a worker shutdown or a transient error) resumes where the last
attempt stopped instead of starting over, and a cancel stops it within a second."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from activities.bandwidth import RateLimiter
from activities.events import Events, report_step
from activities.pool import Control, Stopped
from activities.staging import ResultLog, StagingStore, read_rows
from activities.storage.base import describe_error
from models.execution import ISSUES_PER_BATCH, BatchRef, BatchResult, Counters, FileIssue
from models.reports import Category

log = logging.getLogger("ferry.transfer")

CHECKPOINT_SECONDS = 1.0
STOP_CHECK_SECONDS = 0.2
# Attempts that may fail on the same row with a transient error before that row is given up
# (a bad sector answers EIO every time; a flaky network does not).
TRIES_PER_ROW = 3


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
    ) -> None:
        """`checkpoint`: where the last attempt got to ({} for the first). `results`: keep a log
        of what was done, for verification. `reverse`: run the rows last to first (deletes:
        contents before their folder). `of_results`: run over the result log of the batch
        instead of its plan (ONLY_FILES_TRANSFERRED verification). `limiter`: follows the share of
        the execution's bandwidth limit that the activity passes on."""
        self.ref = ref
        self.arn = ref.execution_arn
        self.control = control
        self.limiter = limiter
        report = (
            store.open_results(
                ref.execution_id,
                report_step(("verified-" if of_results else "") + ref.step),
                ref.index,
                checkpoint.get("report_offset", 0),
            )
            if ref.report
            else None
        )
        self.events = Events(store.root, ref.execution_arn, ref.options.LogLevel, report)
        where = store.result_path if of_results else store.batch_path
        self.rows: list[Any] = list(read_rows(where(ref.execution_id, ref.step, ref.index)))
        if reverse:
            self.rows.reverse()
        self.next: int = checkpoint.get("next", 0)
        # Earlier attempts that ended at this same row with a transient error.
        self.tries = checkpoint.get("tries", 0) if checkpoint.get("failed") else 0
        self.counters = Counters(**checkpoint.get("counters", {}))
        self.issues = [FileIssue(**issue) for issue in checkpoint.get("issues", [])]
        self.results: ResultLog | None = (
            store.open_results(ref.execution_id, ref.step, ref.index, checkpoint.get("offset", 0))
            if results
            else None
        )
        self.partial_bytes = 0  # of the file being copied, not yet in `counters`
        self._last_checkpoint = self._last_stop_check = time.monotonic()
        if self.next:
            log.info("%s: resuming %s batch %d at row %d", self.arn, ref.step, ref.index, self.next)

    def run(self, handle: Callable[[Any], None]) -> BatchResult:
        try:
            for position in range(self.next, len(self.rows)):
                if position != self.next:
                    self.tries = 0
                self.next = position
                self.tick()
                handle(self.rows[position])
            self.next = len(self.rows)
        finally:
            if self.results is not None:
                self.results.close()
            if self.events.report is not None:
                self.events.report.close()
        return BatchResult(counters=self.counters, issues=self.issues)

    def tick(self) -> None:
        """Between rows and while copying: checkpoint now and then, stop if asked to."""
        now = time.monotonic()
        if now - self._last_stop_check >= STOP_CHECK_SECONDS:
            self._last_stop_check = now
            reason = self.control.stop_requested()
            if reason is not None:
                self.checkpoint()
                raise Stopped(reason)
            if self.limiter is not None and (rate := self.control.rate()) is not None:
                self.limiter.set_rate(rate)
        if now - self._last_checkpoint >= CHECKPOINT_SECONDS:
            self._last_checkpoint = now
            self.checkpoint()

    def transient(
        self, path: str, kind: str, error: BaseException, *, verify: bool = False
    ) -> None:
        """A transient error on the current row: this attempt ends and Temporal retries the
        batch from here, unless the row already failed so on earlier attempts."""
        if self.tries + 1 >= TRIES_PER_ROW:
            detail = f"{describe_error(error)} (on {TRIES_PER_ROW} attempts)"
            self.fail(path, kind, detail, verify=verify)
            return
        self.checkpoint(failed=True)
        raise error

    def checkpoint(self, *, failed: bool = False) -> None:
        self.control.checkpoint(
            {
                "next": self.next,
                "failed": failed,
                "tries": self.tries + 1 if failed else self.tries,
                "offset": self.results.offset() if self.results else 0,
                "report_offset": self.events.report.offset() if self.events.report else 0,
                "counters": self.counters.model_dump(),
                "issues": [issue.model_dump() for issue in self.issues],
                "partial_bytes": self.partial_bytes,
            }
        )

    def record(self, row: list[Any]) -> None:
        if self.results is not None:
            self.results.append(row)

    def fail(self, path: str, kind: str, detail: str, *, verify: bool = False) -> None:
        """A path that could not be done; the batch goes on with the next one."""
        if verify:
            self.counters.VerifyFailed += 1
        else:
            self.counters.FilesFailed += 1
        if len(self.issues) < ISSUES_PER_BATCH:
            self.issues.append(FileIssue(path=path, kind=kind, detail=detail))
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
        self.events.record(category, path, failed=True, ErrorCode=kind, ErrorDetail=detail)
