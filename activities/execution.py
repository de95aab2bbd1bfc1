"""The activities of a task execution, as the worker registers them.

Each is synchronous and runs on a thread of the worker; the heavy ones (listing, batches) hand
their work to the worker's process pool and relay its progress to Temporal.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from opentelemetry import trace
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, CancelledError

from activities.events import Events, notice_line, report_step
from activities.lease import Background, Lease
from activities.pool import Control, WorkPool
from activities.preparing import BYTES_PER_BATCH, FILES_PER_BATCH, plan
from activities.reports import write_report
from activities.staging import StagingMissing, StagingStore
from activities.storage import open_storage
from activities.storage.base import FILE, StorageError, describe_error, is_transient
from activities.transferring import transfer_batch
from activities.verifying import prepare_verification, verify_batch, verify_transferred
from models.errors import ErrorCode
from models.execution import (
    TRANSFER_STEPS,
    BatchRef,
    BatchResult,
    ExecutionInput,
    PlanSummary,
    VerifyPlan,
    metric_attributes,
)
from models.locations import Location
from models.reports import ReportResult
from models.staging import StagingTraffic
from models.temporal import (
    CLEAN_UP_EXECUTION,
    LAUNCH_EXECUTION,
    PREPARE_TRANSFER,
    PREPARE_VERIFICATION,
    TRANSFER_BATCH,
    VERIFY_BATCH,
    VERIFY_TRANSFERRED,
    WRITE_TASK_REPORT,
)

log = logging.getLogger("ferry.execution")


@contextlib.contextmanager
def storage_failures(what: str) -> Iterator[None]:
    """Turn a failing location into an ApplicationError that Temporal retries (transient) or
    that ends the execution with an ErrorCode and a readable ErrorDetail."""
    try:
        yield
    except StagingMissing as error:
        raise ApplicationError(
            f"{what}: {error}", type=ErrorCode.STAGING_UNAVAILABLE, non_retryable=True
        ) from error
    except StorageError as error:
        raise ApplicationError(
            f"{what}: {error}",
            type=error.code or ErrorCode.STORAGE_ERROR,
            non_retryable=not error.transient,
        ) from error
    except OSError as error:
        detail = f"{what}: {error.filename or ''} {describe_error(error)}".replace("  ", " ")
        raise ApplicationError(
            detail, type=ErrorCode.STORAGE_ERROR, non_retryable=not is_transient(error)
        ) from error


class _Pulse:
    """Heartbeats a listing activity at most once a second, however often it is called; a
    cancel, a worker shutdown or a lost lease (its heartbeats no longer reach Temporal, which
    starts PREPARING again elsewhere) ends the activity there."""

    def __init__(self, lease: Lease) -> None:
        self.beats = 0
        self._last = 0.0
        self.lease = lease

    def __call__(self) -> None:
        self.beats += 1
        now = time.monotonic()
        if now - self._last < 1.0:
            return
        self._last = now
        activity.heartbeat(self.beats)
        self.lease.renew(self.beats)
        if self.lease.lost:
            log.warning(
                "%s: no heartbeat has reached Temporal for %.1f s: stopped, as it may run "
                "again elsewhere",
                activity.info().workflow_id,
                self.lease.unanswered,
            )
            raise ApplicationError(
                "the attempt's heartbeats did not reach Temporal: it stopped", type="HeartbeatLost"
            )
        if activity.is_cancelled():
            raise CancelledError("task execution cancelled")
        if activity.is_worker_shutdown():
            raise ApplicationError(
                "the worker is shutting down; PREPARING starts again on another attempt",
                type="WorkerShutdown",
            )


class BandwidthShare:
    """Asks a running execution what share of its bandwidth limit each batch may use (a Query:
    nothing in its history), from an activity's thread through the worker's client, without
    ever waiting for the answer: the batch keeps its share until a new one has come."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop, workflow_id: str):
        self.handle = client.get_workflow_handle(workflow_id)
        self._asking = Background(loop)

    def __call__(self) -> int | None:
        """The share that came since the last call, in bytes per second (-1: no limit), or
        None; then asks again."""
        answer = None
        if (asked := self._asking.finished()) is not None:
            try:
                answer = asked.result()
            except Exception as error:  # an unanswered query only delays a change of limit
                log.debug("bandwidth share of %s not known now: %s", self.handle.id, error)
        if not self._asking.busy:
            self._asking.start(
                self.handle.query(
                    "bandwidth_share", result_type=int, rpc_timeout=timedelta(seconds=5)
                )
            )
        return answer

    def close(self) -> None:
        self._asking.close()


class _Announcer:
    """Signals the plan so far to the execution from PREPARING's thread, on the worker's loop;
    the execution keeps the largest it has seen, so signals may overtake one another."""

    def __init__(
        self, activities: ExecutionActivities, execution: ExecutionInput, attempt: int
    ) -> None:
        self.handle = activities.client.get_workflow_handle(execution.execution_id)
        self.loop = activities.loop
        self.attempt = attempt
        self.sent: list[concurrent.futures.Future[None]] = []

    def announce(self, progress: PlanSummary) -> None:
        self.sent = [signal for signal in self.sent if not signal.done()]
        signal = self.handle.signal("plan_progress", args=[progress, self.attempt])
        self.sent.append(asyncio.run_coroutine_threadsafe(signal, self.loop))

    def __enter__(self) -> _Announcer:
        return self

    def __exit__(self, *_: object) -> None:
        for signal in self.sent:  # the activity's result says it all anyway
            signal.cancel()


class ExecutionActivities:
    """The activities share the worker's staging store, process pool and client; `scratch` is
    this worker's own folder (no other host reads it), where batches and the activities waiting
    for them exchange checkpoints and stop requests."""

    def __init__(
        self,
        store: StagingStore,
        scratch: str,
        pool: WorkPool,
        client: Client,
        loop: asyncio.AbstractEventLoop,
        files_per_batch: int = FILES_PER_BATCH,
        bytes_per_batch: int = BYTES_PER_BATCH,
    ) -> None:
        self.store = store
        self.scratch = scratch
        self.pool = pool
        self.client = client
        self.loop = loop
        self.files_per_batch = files_per_batch
        self.bytes_per_batch = bytes_per_batch

    @activity.defn(name=LAUNCH_EXECUTION)
    def launch(self, execution: ExecutionInput) -> Location | None:
        """LAUNCHING: both locations answer, the source can be listed, the destination written;
        the destination as the server can really hold it, where that is not as it was given
        (None: as given)."""
        held: Location | None = None
        for side, location, writable in (
            ("source", execution.Source, False),
            ("destination", execution.Destination, True),
        ):
            storage = None
            try:
                storage = open_storage(location)
                storage.check(writable=writable)
                if writable and (held := storage.held_as(location)) != location:
                    _notice(self.store, execution, _settled(location, held))
            except StorageError as error:
                raise ApplicationError(
                    f"{side} location {location.LocationArn} ({location.location_uri}): {error}",
                    type=ErrorCode.LOCATION_UNAVAILABLE,
                    non_retryable=not error.transient,
                ) from error
            finally:
                if storage is not None:
                    storage.close()
        return held if held != execution.Destination else None

    @activity.defn(name=PREPARE_TRANSFER)
    def prepare(
        self, execution: ExecutionInput, first: dict[str, int] | None = None, attempt: int = 1
    ) -> PlanSummary:
        """PREPARING: list both sides, compare, write the plan to the staging store. Each batch
        of files is announced to the execution as soon as it is complete, so that it starts
        while the listing goes on; `first`: batches per step that an earlier attempt's plan
        had, which ran already (this attempt numbers its own after them); `attempt`: the
        execution's count of PREPARING attempts, which tags the announcements."""
        execution_id = execution.execution_id
        first = first or {}
        store = self.store.counted()
        for step in TRANSFER_STEPS:
            store.clear(execution_id, step, first.get(step, 0))
        lease = Lease(self.client, self.loop)
        with (
            self._events(store, execution, "prepare") as events,
            storage_failures("PREPARING"),
            _Announcer(self, execution, attempt) as announcer,
        ):

            def skipped(path: str, reason: str) -> None:  # the destination cannot hold it
                log.warning("%s: skipped /%s: %s", execution.TaskExecutionArn, path, reason)
                events.record("Skipped", path, Reason=reason)

            def announce(progress: PlanSummary) -> None:
                announcer.announce(progress.model_copy(update={"staging_url": store.url}))

            try:
                summary, stale, problems = plan(
                    store,
                    self.pool,
                    execution,
                    _Pulse(lease),
                    files_per_batch=self.files_per_batch,
                    bytes_per_batch=self.bytes_per_batch,
                    first=first,
                    announce=None if execution.DryRun else announce,
                    skipped=skipped,
                )
            finally:
                lease.close()
            for problem in problems:  # unreadable: skipped
                events.record(
                    "Skipped", problem.path, failed=True, ErrorCode=problem.kind,
                    ErrorDetail=problem.detail,
                )  # fmt: skip
        if not execution.DryRun and stale:
            destination = open_storage(execution.Destination, execution_id)
            try:
                for path in stale:  # temporary files of an attempt that crashed
                    with contextlib.suppress(OSError):
                        destination.remove(path, FILE)
            finally:
                destination.close()
        log.info(
            "%s: prepared %d files (%d bytes) to transfer, %d to delete",
            execution.TaskExecutionArn,
            summary.EstimatedFilesToTransfer,
            summary.EstimatedBytesToTransfer,
            summary.EstimatedFilesToDelete,
        )
        return summary.model_copy(
            update={"staging_url": store.url, "staging_traffic": store.traffic}
        )

    @activity.defn(name=TRANSFER_BATCH)
    def transfer_batch(self, ref: BatchRef) -> BatchResult:
        if ref.step != "files":  # only files move data
            return self._batch(transfer_batch, ref, "TRANSFERRING")
        share = BandwidthShare(self.client, self.loop, activity.info().workflow_id)
        try:
            return self._batch(transfer_batch, ref, "TRANSFERRING", share)
        finally:
            share.close()

    @activity.defn(name=PREPARE_VERIFICATION)
    def prepare_verification(self, execution: ExecutionInput) -> VerifyPlan:
        store = self.store.counted()
        store.clear(execution.execution_id, "verify")
        lease = Lease(self.client, self.loop)
        try:
            with (
                storage_failures("VERIFYING"),
                self._events(store, execution, "verify-prepare") as events,
            ):
                found = prepare_verification(store, self.pool, execution, _Pulse(lease), events)
        finally:
            lease.close()
        return found.model_copy(update={"staging_url": store.url, "staging_traffic": store.traffic})

    @activity.defn(name=VERIFY_BATCH)
    def verify_batch(self, ref: BatchRef) -> BatchResult:
        return self._batch(verify_batch, ref, "VERIFYING")

    @activity.defn(name=VERIFY_TRANSFERRED)
    def verify_transferred(self, ref: BatchRef) -> BatchResult:
        return self._batch(verify_transferred, ref, "VERIFYING")

    @activity.defn(name=WRITE_TASK_REPORT)
    def write_task_report(self, execution: ExecutionInput, summary: dict[str, Any]) -> ReportResult:
        """The task report, into the location the task names; its failure fails only the
        report (ReportResult), never the execution."""
        store = self.store.counted()
        try:
            where = write_report(store, execution, summary)
        except (OSError, StorageError, StagingMissing) as error:
            detail = describe_error(error) if isinstance(error, OSError) else str(error)
            return ReportResult(
                Status="ERROR",
                ErrorCode=ErrorCode.STORAGE_ERROR,
                ErrorDetail=f"The task report could not be written: {detail}",
                staging_traffic=store.traffic,
            )
        log.info("%s: task report in %s", execution.TaskExecutionArn, where)
        return ReportResult(Status="SUCCESS", staging_traffic=store.traffic)

    @contextlib.contextmanager
    def _events(
        self, store: StagingStore, execution: ExecutionInput, step: str
    ) -> Iterator[Events]:
        """Events of an activity that runs once per execution (a retry starts it over, and
        publishes its report rows in place of the last attempt's)."""
        report = (
            store.results(execution.execution_id, report_step(step), 0)
            if execution.detailed_report
            else None
        )
        events = Events(store, execution.TaskExecutionArn, execution.Options.LogLevel, report)
        try:
            yield events
        except BaseException:
            events.log.save()  # the lines of an attempt that failed are worth reading too
            raise
        events.publish()

    @activity.defn(name=CLEAN_UP_EXECUTION)
    def clean_up(self, execution_id: str) -> StagingTraffic:
        store = self.store.counted()
        store.remove(execution_id)
        return store.traffic

    def _batch(
        self,
        function: Callable[..., BatchResult],
        ref: BatchRef,
        phase: str,
        share: BandwidthShare | None = None,
    ) -> BatchResult:
        """Run one batch in the pool, resuming from the last attempt's checkpoint."""
        details = activity.info().heartbeat_details
        store = self.store.counted()  # what this side asks; the pool process counts its own
        control = Control(
            self.scratch,
            f"{ref.execution_id}-{phase}-{ref.step}-{ref.index}",
            store.checkpoint_key(ref.execution_id, ref.step, ref.index, phase),
        )
        info = activity.info()
        checkpoint = control.saved(store) or (
            details[0] if details and isinstance(details[0], dict) else {}
        )
        if info.attempt > 1 and not checkpoint:
            checkpoint = {"next": 0}  # the last attempt died before its first checkpoint
        # A child of its phase's span: Temporal's plugin brought the workflow's context here.
        with trace.get_tracer("ferry.batches").start_as_current_span(
            info.activity_type,
            attributes={
                "ferry.task_execution_arn": ref.execution_arn,
                "ferry.step": ref.step,
                "ferry.batch": ref.index,
                "ferry.attempt": info.attempt,
                "ferry.resumed_at_row": checkpoint.get("next", 0),
            },
        ) as span:
            started = time.monotonic()
            lease = Lease(self.client, self.loop)
            try:
                with storage_failures(phase):
                    result = self.pool.run_batch(
                        function, control, checkpoint, store.url, ref, share=share, lease=lease
                    )
            finally:
                lease.close()
            control.discard(store)  # done: no later attempt will look for its checkpoint
            result.staging_traffic.add(store.traffic)
            written = result.counters.BytesWritten
            span.set_attributes(
                {f"ferry.{name}": value for name, value in result.counters.named().items()}
            )
            if written:
                _batch_throughput(ref).record(written / max(time.monotonic() - started, 1e-3))
            return result


def _batch_throughput(ref: BatchRef) -> Any:
    """A batch's bytes written per second, by execution and location types."""
    return (
        activity.metric_meter()
        .with_additional_attributes(
            metric_attributes(ref.execution_arn, ref.source, ref.destination)
        )
        .create_histogram_float("ferry_batch_throughput", "Bytes a batch wrote per second", "By/s")
    )


def _settled(given: Location, held: Location) -> str:
    """What LAUNCHING found the destination's server cannot do, and what is done instead."""
    return (
        f"{given.location_uri}: the server cannot keep a folder marker beside what is in the "
        "folder (it keeps objects as files): folders are written as key prefixes only, as with "
        "FolderMarkers DISABLED, and empty folders are skipped."
    )


def _notice(store: StagingStore, execution: ExecutionInput, message: str) -> None:
    """A line for the worker's log and the execution's log, whatever its LogLevel."""
    log.warning("%s: %s", execution.TaskExecutionArn, message)
    lines = store.log(execution.TaskExecutionArn)
    lines.append(notice_line(execution.TaskExecutionArn, message))
    lines.save()
