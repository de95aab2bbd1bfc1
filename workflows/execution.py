"""One task execution: QUEUED -> LAUNCHING -> PREPARING -> TRANSFERRING -> VERIFYING ->
SUCCESS or ERROR, each phase one or more activities.

The workflow never sees a file list: PREPARING leaves the plan in the staging store and returns
batch counts; every later activity takes a reference to one batch. Long executions continue as
new between batches, carrying only counters and a position in the plan.

TRANSFERRING does not wait for the whole listing: PREPARING signals each batch of files it
completes, and the batch starts at once (after the removals planned before it), so that a bucket
of millions of keys is being copied while it is still being listed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from models import build_models
    from models.errors import ERROR_CODES, ErrorCode, invalid_request
    from models.execution import (
        TERMINAL,
        AgentsOnline,
        BatchRef,
        BatchResult,
        Counters,
        ExecutionInput,
        ExecutionState,
        FileIssue,
        PlanSummary,
        Status,
        VerifyPlan,
        describe,
    )
    from models.locations import Location
    from models.options import Options, resolve_options
    from models.reports import ReportResult
    from models.staging import StagingTraffic
    from models.temporal import (
        CLEAN_UP_EXECUTION,
        DESCRIPTION_MEMO,
        EXECUTION_STATUS,
        EXECUTION_WORKFLOW,
        LAUNCH_EXECUTION,
        PREPARE_TRANSFER,
        PREPARE_VERIFICATION,
        REGISTRY_WORKFLOW_ID,
        TRANSFER_BATCH,
        VERIFY_BATCH,
        VERIFY_TRANSFERRED,
        WAIT_FOR_AGENTS,
        WRITE_TASK_REPORT,
        agent_task_queue,
        location_task_queue,
    )
    from models.timetable import BandwidthTimetable
    from workflows.telemetry import ExecutionTelemetry

build_models()  # outside the sandbox, which cannot build them

# Temporal allows 51,200 events in a run's history; Ferry stays far below it.
HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW = 4000
# Under a bandwidth limit, batches share it; a few at once keep it in use while one of them is
# between files or between batches.
LIMITED_PARALLEL = 2
# How long an execution waits for its agents, for executions whose LAUNCHING did not say
# (FERRY_AGENT_WAIT_SECONDS of the worker that waited, which it says now).
AGENT_WAIT = timedelta(minutes=10)
# A batch no agent has taken for this long (or the agent wait, if shorter): the execution looks
# whether any agent of its location is ONLINE, and puts the batch back, or waits for one.
BATCH_PICKUP = timedelta(minutes=1)
ISSUES_KEPT = 50
ISSUES_SHOWN = 10

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)
_LAUNCH = {"start_to_close_timeout": timedelta(minutes=5), "retry_policy": _RETRY}
_WAIT_FOR_AGENTS = {
    "start_to_close_timeout": timedelta(hours=24),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": _RETRY,
}
_LONG = {
    "start_to_close_timeout": timedelta(hours=24),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": _RETRY,
    "cancellation_type": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}
# PREPARING is retried by the workflow, which tells the retry which batches ran meanwhile.
_PREPARE = {**_LONG, "retry_policy": RetryPolicy(maximum_attempts=1)}
_BATCH = {
    "start_to_close_timeout": timedelta(hours=12),
    # A worker that dies mid-batch is noticed this fast; the retry resumes at its checkpoint.
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": _RETRY,
    "cancellation_type": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}


class _Stage:
    """A series of batches run by one activity: `key` marks the position in the state."""

    def __init__(
        self,
        key: str,
        step: str,
        count: int,
        activity: str,
        parallel: int,
        reverse: bool = False,
        limited: bool = False,
    ) -> None:
        self.key = key
        self.step = step
        self.count = count
        self.activity = activity
        self.parallel = parallel
        self.reverse = reverse
        self.limited = limited  # moves data, so follows the execution's bandwidth limit


class _Batches:
    """The one scheduler of an execution's batches, whatever stage they are of: the batches in
    flight, how many a stage may have at once, what share of the bandwidth limit each has, and
    the one loop that starts them and takes in what they return.

    Batches start in rounds. Each batch of a round begins with its share of the limit among
    all in flight, the round's included, so that the first of a round never begins with the
    whole of it; the running ones learn their new share by asking."""

    def __init__(
        self,
        limit: Callable[[], int],
        start: Callable[[_Stage, int], asyncio.Future[BatchResult]],
        again: Callable[[BaseException], Awaitable[bool]],
    ) -> None:
        self.pending: dict[asyncio.Future[BatchResult], tuple[_Stage, int]] = {}
        self.sharing = 0  # batches the limit is divided among
        self._limit = limit  # the execution's, in bytes per second (-1: none)
        self._start = start
        self._again = again  # whether a batch that failed so starts again (once it may)

    def share(self) -> int:
        """Each batch's share of the limit (-1: no limit)."""
        limit = self._limit()
        return -1 if limit <= 0 else max(1, limit // max(1, self.sharing))

    def room(self, stage: _Stage, *, beside_preparing: bool = False) -> int:
        """How many more batches may start beside those in flight, for `stage`: as many as it
        runs at once; under a bandwidth limit, LIMITED_PARALLEL of those that move data, or one
        `beside_preparing` (a batch joining a running one would take its share before the
        running one gives up its own)."""
        parallel = stage.parallel
        if stage.limited and self._limit() > 0:
            if beside_preparing:
                parallel = 1
            else:
                # Executions started before batches shared the limit ran one batch at a time.
                shared = workflow.patched("bandwidth-shared-by-batches")
                parallel = min(stage.parallel, LIMITED_PARALLEL if shared else 1)
        return parallel - len(self.pending)

    def running(self, stage: _Stage) -> bool:
        return any(running is stage for running, _ in self.pending.values())

    async def run(
        self,
        ready: Callable[[], list[tuple[_Stage, int]]],
        ended: Callable[[_Stage, BatchResult], None],
        *,
        waiting: Callable[[], bool] = lambda: False,
        news: Callable[[], bool] = lambda: False,
    ) -> None:
        """Start the batches `ready` names, a round at a time, and hand each that ends to
        `ended` (in the order they started), until none is in flight and nothing is `waiting`
        (PREPARING, which may plan more). Between rounds it waits for a batch to end, for
        `waiting` to end, or for `news` (more batches ready). A batch that failed in a way
        `again` takes back starts again; another failed one raises its error, the others stay
        in flight, for the caller to stop."""
        while True:
            chosen = ready()
            self.sharing = len(self.pending) + len(chosen)
            for stage, index in chosen:
                self.pending[self._start(stage, index)] = (stage, index)
            self.sharing = len(self.pending)
            was_waiting = waiting()
            if not self.pending and not was_waiting:
                return
            await workflow.wait_condition(
                lambda was_waiting=was_waiting: (
                    any(batch.done() for batch in self.pending)
                    or (was_waiting and not waiting())
                    or news()
                )
            )
            for batch in [batch for batch in self.pending if batch.done()]:
                stage, index = self.pending.pop(batch)
                self.sharing = len(self.pending)
                error = batch.exception()
                if error is not None and await self._again(error):
                    self.pending[self._start(stage, index)] = (stage, index)
                    continue
                ended(stage, batch.result())


@workflow.defn(name=EXECUTION_WORKFLOW)
class TaskExecutionWorkflow:
    @workflow.init
    def __init__(self, execution: ExecutionInput, state: ExecutionState | None = None) -> None:
        self.execution = execution
        self.state = state or ExecutionState()
        self.granted = not execution.queued or state is not None
        self._cancelled_in: Status | None = None  # the phase a cancel interrupted
        self.batches = _Batches(
            lambda: self.state.BytesPerSecond or -1, self._start_batch, self._taken_again
        )
        self._prepare_attempt = 0  # PREPARING's attempt whose progress counts
        self.timetable = (
            BandwidthTimetable.parse(execution.BandwidthTimetable)
            if execution.BandwidthTimetable
            else None
        )
        if self.state.BytesPerSecond is None:
            self.state.BytesPerSecond = execution.Options.BytesPerSecond or -1
            if self.timetable is not None:
                self._set_limit(self.timetable.rate_at(workflow.now()))
        self.telemetry = ExecutionTelemetry(execution, self.state)

    @workflow.run
    async def run(self, execution: ExecutionInput, state: ExecutionState | None = None) -> Any:
        following = asyncio.create_task(self._follow_timetable()) if self.timetable else None
        self.telemetry.open()
        if self.state.Status in ("TRANSFERRING", "VERIFYING"):  # continued as new
            self.telemetry.begin(self.state.Status)
        try:
            await self._phases()
        except asyncio.CancelledError:
            self._cancelling()
            await self._end("ERROR", ErrorCode.CANCELLED, "Cancelled by CancelTaskExecution.")
            raise
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type in ERROR_CODES:
                code, detail = cause.type, cause.message
            elif isinstance(cause, ActivityTimeout) and cause.type == TimeoutType.SCHEDULE_TO_START:
                code = ErrorCode.AGENT_OFFLINE
                detail = (
                    f"No agent of {', '.join(self.execution.AgentArns)} took the execution's "
                    f"{error.activity_type} for {self._agent_wait().total_seconds():g} s: the "
                    "agents are OFFLINE. Start one again, then start the execution again."
                )
            elif isinstance(cause, ApplicationError):
                code, detail = ErrorCode.INTERNAL_ERROR, f"{cause.type}: {cause.message}"
            else:
                code, detail = ErrorCode.INTERNAL_ERROR, str(cause or error)
            await self._end("ERROR", code, detail)
        else:
            code, detail = self._outcome()
            await self._end("ERROR" if code else "SUCCESS", code, detail)
        finally:
            if following is not None:
                following.cancel()
        final = self.describe()
        if self.state.Status == "ERROR":
            raise ApplicationError(
                self.state.ErrorDetail or "", final, type=self.state.ErrorCode, non_retryable=True
            )
        return final

    @workflow.query
    def describe(self) -> dict[str, Any]:
        return describe(self.execution, self.state)

    @workflow.query
    def bandwidth_share(self) -> int:
        """What each running batch may use of the execution's bandwidth limit (-1: no limit)."""
        return self.batches.share()

    @workflow.update
    def update_options(self, options: Options) -> dict[str, Any]:
        """UpdateTaskExecution: a new BytesPerSecond, in force within seconds (-1: no limit),
        until the task's bandwidth timetable, if it has one, passes its next boundary."""
        self._set_limit(options.BytesPerSecond or -1)
        return {}

    def _set_limit(self, limit: int) -> None:
        """The execution's bandwidth limit; running batches pick it up within two seconds."""
        self.state.BytesPerSecond = limit
        changed = self.execution.Options.model_copy(update={"BytesPerSecond": limit})
        self.execution = self.execution.model_copy(update={"Options": changed})
        workflow.logger.info("%s: bandwidth limit now %s", self.execution.TaskExecutionArn, limit)

    async def _follow_timetable(self) -> None:
        assert self.timetable is not None
        while True:
            now = workflow.now()
            await workflow.sleep(self.timetable.next_change(now) - now)
            self._set_limit(self.timetable.rate_at(workflow.now()))

    @update_options.validator
    def _validate_update_options(self, options: Options) -> None:
        others = [name for name in options.given() if name != "BytesPerSecond"]
        if others or options.BytesPerSecond is None:
            raise invalid_request(
                "UpdateTaskExecution changes only Options.BytesPerSecond"
                + (
                    f"; {', '.join(others)} can't change while the execution runs."
                    if others
                    else "."
                )
            )
        try:
            resolve_options(self.execution.Options, options)
        except ValueError as error:
            raise invalid_request(str(error)) from None
        if self.state.Status in TERMINAL or self.state.Status == "CANCELLING":
            raise invalid_request(
                f"Task execution {self.execution.TaskExecutionArn} is no longer running "
                f"({self.state.Status})."
            )

    @workflow.signal
    def plan_progress(self, progress: PlanSummary, attempt: int) -> None:
        """From PREPARING: the plan so far, each time it completes a batch of files. Signals may
        overtake one another (the furthest counts), and an attempt that failed may still send
        some: only the running attempt's count."""
        s = self.state
        known = s.plan_progress.batches.get("files", -1) if s.plan_progress else -1
        if (
            s.plan is None
            and attempt == self._prepare_attempt
            and progress.batches.get("files", 0) > known
        ):
            s.plan_progress = progress

    @workflow.signal
    def grant(self) -> None:
        """From the registry: no execution holds this one's task or agents any more."""
        self.granted = True

    # --- phases --------------------------------------------------------------------------------

    async def _phases(self) -> None:
        s = self.state
        if s.Status == "QUEUED":
            if not self.granted:
                self._set_status("QUEUED")  # for the memo; the registry started it so
                await workflow.wait_condition(lambda: self.granted)
            s.LaunchTime = workflow.now()
            self.telemetry.queued(self.execution.StartTime, s.LaunchTime)
            self._begin("LAUNCHING")
            with self.telemetry.within("LAUNCHING"):
                if self.execution.AgentArns:
                    # Waits while every agent is OFFLINE; fails, naming them, past a limit.
                    found = await workflow.execute_activity(
                        WAIT_FOR_AGENTS,
                        self.execution.AgentArns,
                        # Before it said how long it waits, it answered with the agents alone.
                        result_type=AgentsOnline | list[str],  # type: ignore[arg-type]
                        **_WAIT_FOR_AGENTS,
                    )
                    if isinstance(found, AgentsOnline):
                        s.agents_online = found.online
                        s.agent_wait_seconds = found.wait_seconds
                    else:
                        s.agents_online = found
                held = await workflow.execute_activity(
                    LAUNCH_EXECUTION,
                    self.execution,
                    result_type=Location | None,  # type: ignore[arg-type]
                    **self._on(0),
                    **_LAUNCH,
                )
                if held is not None:  # the destination's server holds less than was asked
                    self.execution = self.execution.model_copy(update={"Destination": held})
            self.telemetry.end("LAUNCHING", "SUCCESS", s.LaunchTime)
            self._begin("PREPARING")
            s.plan = await self._prepare()
            s.plan_progress = None
            s.PrepareStatus = "ERROR" if s.plan.issue_count else "SUCCESS"
            s.PrepareDuration = self._elapsed()
            self.telemetry.end(
                "PREPARING",
                s.PrepareStatus,
                s.phase_started,
                files_to_transfer=s.plan.EstimatedFilesToTransfer,
                bytes_to_transfer=s.plan.EstimatedBytesToTransfer,
                files_to_delete=s.plan.EstimatedFilesToDelete,
                files_skipped=s.plan.FilesSkipped,
            )
            self._add(Counters(FilesSkipped=s.plan.FilesSkipped))
            if self.execution.DryRun:
                return  # what would be transferred, deleted and skipped is in the estimates
            if s.transfer_started is None:
                s.transfer_started = workflow.now()
            self._begin("TRANSFERRING")
        if s.Status == "TRANSFERRING":
            await self._run_stages(self._transfer_stages(), s.transfer_issues)
            s.TransferStatus = "ERROR" if s.counters.FilesFailed else "SUCCESS"
            s.TransferDuration = self._elapsed(s.transfer_started)
            self.telemetry.end("TRANSFERRING", s.TransferStatus, s.transfer_started)
            if self.execution.Options.VerifyMode == "NONE":
                return
            self._begin("VERIFYING")
        if s.Status == "VERIFYING":
            await self._verify()
            s.VerifyStatus = "ERROR" if s.counters.VerifyFailed else "SUCCESS"
            s.VerifyDuration = self._elapsed()
            self.telemetry.end("VERIFYING", s.VerifyStatus, s.phase_started)

    async def _prepare(self) -> PlanSummary:
        """PREPARING, with the batches of files it completes transferred meanwhile (not in a
        dry run). A failed PREPARING is retried here rather than by Temporal: the retry is told
        how many batches of each step ran, and numbers its own after them."""
        early = self._transfer_stages()[:2]
        for attempt in range(1, (_RETRY.maximum_attempts or 1) + 1):
            first = {stage.step: self.state.early.get(stage.key, 0) for stage in early}
            self._prepare_attempt = attempt
            self.state.plan_progress = None
            with self.telemetry.within("PREPARING"):
                prepare = workflow.start_activity(
                    PREPARE_TRANSFER,
                    args=[self.execution, first, attempt],
                    result_type=PlanSummary,
                    **self._on(0),
                    **_PREPARE,
                )
            await self._transfer_while(prepare, *early)
            try:
                summary = prepare.result()
            except ActivityError as error:
                if error.retry_state == RetryState.NON_RETRYABLE_FAILURE:
                    raise
                if attempt == _RETRY.maximum_attempts:
                    raise
                workflow.logger.warning("PREPARING failed, trying again: %s", error.cause)
                await workflow.sleep(min(30, 2 ** (attempt - 1)))
            else:
                self._staged(summary.staging_traffic)
                return summary
        raise AssertionError("unreachable")

    async def _transfer_while(
        self, prepare: asyncio.Future[PlanSummary], removals: _Stage, files: _Stage
    ) -> None:
        """Until PREPARING ends, run the batches it has completed: removals one at a time and
        in order, files once every removal planned before them is done. Returns when PREPARING
        and these batches have ended; a failed batch fails the execution."""
        s = self.state
        batches = self.batches
        launched = {stage.key: s.early.get(stage.key, 0) for stage in (removals, files)}

        def sealed() -> list[tuple[_Stage, int]]:
            """The batches PREPARING has completed that may start now."""
            if prepare.done() or s.plan_progress is None or self.execution.DryRun:
                return []
            planned = s.plan_progress.batches
            if batches.running(removals):
                return []
            if launched[removals.key] < planned.get("removals", 0):
                return [(removals, launched[removals.key])]
            room = batches.room(files, beside_preparing=True)
            end = min(planned.get("files", 0), launched[files.key] + room)
            return [(files, index) for index in range(launched[files.key], end)]

        def ready() -> list[tuple[_Stage, int]]:
            if self._history_is_long():  # the rest waits for TRANSFERRING
                return []
            chosen = sealed()
            if chosen and s.transfer_started is None:
                s.transfer_started = workflow.now()
                self._set_status("TRANSFERRING")
                self.telemetry.begin("TRANSFERRING")
            for stage, _ in chosen:
                launched[stage.key] += 1
            return chosen

        def ended(stage: _Stage, result: BatchResult) -> None:
            self._count(result, s.transfer_issues)
            s.early[stage.key] = s.early.get(stage.key, 0) + 1

        try:
            await batches.run(
                ready,
                ended,
                waiting=lambda: not prepare.done(),
                news=lambda: bool(sealed()) and not self._history_is_long(),
            )
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                self._cancelling()
            await self._stop([*batches.pending, prepare], s.transfer_issues)
            raise

    def _transfer_stages(self) -> list[_Stage]:
        plan = self.state.plan
        batches = plan.batches if plan is not None else {}
        parallel = self.execution.max_parallel_batches
        return [
            _Stage("transfer:removals", "removals", batches.get("removals", 0), TRANSFER_BATCH, 1),
            _Stage(
                "transfer:files",
                "files",
                batches.get("files", 0),
                TRANSFER_BATCH,
                parallel,
                False,
                True,
            ),
            _Stage("transfer:links", "links", batches.get("links", 0), TRANSFER_BATCH, parallel),
            # Deletes run last to first, so that folders are emptied before they are removed.
            _Stage(
                "transfer:deletes", "deletes", batches.get("deletes", 0), TRANSFER_BATCH, 1, True
            ),
            # Directory metadata comes deepest first and after their contents.
            _Stage(
                "transfer:dirs", "directories", batches.get("directories", 0), TRANSFER_BATCH, 1
            ),
        ]

    async def _verify(self) -> None:
        s = self.state
        mode = self.execution.Options.VerifyMode
        stages: list[_Stage] = []
        if mode == "POINT_IN_TIME_CONSISTENT":
            if s.verify_plan is None:
                with self.telemetry.within("VERIFYING"):
                    s.verify_plan = await workflow.execute_activity(
                        PREPARE_VERIFICATION,
                        self.execution,
                        result_type=VerifyPlan,
                        **self._on(0),
                        **_LONG,
                    )
                self._add(s.verify_plan.counters)
                self._staged(s.verify_plan.staging_traffic)
                self._keep(s.verify_issues, s.verify_plan.issues)
            stages.append(
                _Stage(
                    "verify:contents",
                    "verify",
                    s.verify_plan.batches,
                    VERIFY_BATCH,
                    self.execution.max_parallel_batches,
                )
            )
        if mode == "ONLY_FILES_TRANSFERRED" or self.execution.Options.OverwriteMode == "NEVER":
            assert s.plan is not None
            for step in ("files", "links", "directories"):
                count = s.plan.batches[step]
                parallel = self.execution.max_parallel_batches
                stages.append(_Stage(f"verify:{step}", step, count, VERIFY_TRANSFERRED, parallel))
        await self._run_stages(stages, s.verify_issues)

    # --- batches -------------------------------------------------------------------------------

    async def _run_stages(self, stages: list[_Stage], issues: list[FileIssue]) -> None:
        keys = [stage.key for stage in stages]
        start = keys.index(self.state.step) if self.state.step in keys else 0
        for stage in stages[start:]:
            await self._run_batches(stage, issues)

    async def _run_batches(self, stage: _Stage, issues: list[FileIssue]) -> None:
        s = self.state
        if s.step != stage.key:
            # Batches that ran while PREPARING went on come first in their stage.
            s.step, s.next_batch = stage.key, s.early.get(stage.key, 0)
        batches = self.batches

        def ready() -> list[tuple[_Stage, int]]:
            if s.next_batch >= stage.count and not batches.pending:
                return []
            count = min(stage.count - s.next_batch, batches.room(stage))
            if self._history_is_long():
                return []  # continued as new below, once nothing is in flight
            chosen = []
            for _ in range(max(0, count)):
                index = s.next_batch
                chosen.append((stage, stage.count - 1 - index if stage.reverse else index))
                s.next_batch += 1
            return chosen

        try:
            await batches.run(ready, lambda _, result: self._count(result, issues))
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                self._cancelling()
            await self._stop(list(batches.pending), issues)
            raise
        if s.next_batch < stage.count:
            self.telemetry.close()
            workflow.continue_as_new(args=[self.execution, s])

    async def _taken_again(self, error: BaseException) -> bool:
        """A batch that no agent took goes back on the agents' queue once one of them is
        ONLINE (the agents may only have been busy); past the agent wait, AgentOffline."""
        if not self._untaken(error):
            return False
        await self._wait_for_agents()
        return True

    def _untaken(self, error: BaseException) -> bool:
        """A batch that no agent took in time (executions from before this waited for none)."""
        return (
            isinstance(error, ActivityError)
            and isinstance(error.cause, ActivityTimeout)
            and error.cause.type == TimeoutType.SCHEDULE_TO_START
            and workflow.patched("batches-wait-for-agents")
        )

    async def _wait_for_agents(self) -> None:
        """Until an agent of the location (as it is now) is ONLINE; past the agent wait, the
        execution fails with AgentOffline naming them."""
        found = await workflow.execute_activity(
            WAIT_FOR_AGENTS,
            args=[self.execution.AgentArns, self.execution.agent_location_arn],
            result_type=AgentsOnline,
            **_WAIT_FOR_AGENTS,
        )
        self.state.agents_online = found.online

    def _count(self, result: BatchResult, issues: list[FileIssue]) -> None:
        self._add(result.counters)
        self._staged(result.staging_traffic)
        self._keep(issues, result.issues)

    def _add(self, counters: Counters) -> None:
        self.state.counters.add(counters)
        self.telemetry.count(counters)

    def _staged(self, traffic: StagingTraffic | None) -> None:
        if traffic is not None:
            self.state.staging_traffic.add(traffic)
            self.telemetry.staged(traffic)

    async def _stop(self, running: list[asyncio.Future[Any]], issues: list[FileIssue]) -> None:
        """Cancel activities and wait until each has stopped and cleaned up; what batches did
        before they stopped still counts."""
        for activity in running:
            activity.cancel()
        if running:
            await workflow.wait(running)
        for activity in running:
            if not activity.cancelled() and activity.exception() is None:
                result = activity.result()
                if isinstance(result, BatchResult):
                    self._count(result, issues)

    def _start_batch(self, stage: _Stage, index: int) -> asyncio.Future[BatchResult]:
        ref = BatchRef(
            execution_arn=self.execution.TaskExecutionArn,
            step=stage.step,  # type: ignore[arg-type]
            index=index,
            source=self.execution.Source,
            destination=self.execution.Destination,
            options=self.execution.Options,
            bytes_per_second=self.bandwidth_share() if stage.limited else -1,
            report=self.execution.detailed_report,
            staging_url=self._staging_url(stage),
        )
        phase = "TRANSFERRING" if stage.key.startswith("transfer:") else "VERIFYING"
        with self.telemetry.within(phase):
            return workflow.start_activity(
                stage.activity,
                ref,
                result_type=BatchResult,
                activity_id=f"{stage.key}-{index}",
                **self._on(index, batch=True),
                **_BATCH,
            )

    def _staging_url(self, stage: _Stage) -> str:
        """The staging store the batches of `stage` were written to (their writer's)."""
        s = self.state
        if stage.key == "verify:contents" and s.verify_plan is not None:
            return s.verify_plan.staging_url
        plan = s.plan or s.plan_progress
        return plan.staging_url if plan is not None else ""

    def _agent_wait(self) -> timedelta:
        seconds = self.state.agent_wait_seconds
        return AGENT_WAIT if seconds is None else timedelta(seconds=seconds)

    def _on(self, index: int, batch: bool = False) -> dict[str, Any]:
        """Where the `index`th activity runs: on the task queue that every agent of the
        execution's location polls (whichever takes it; a batch of an agent that was lost is
        retried there, by the others), else the workflow's own queue (the ordinary workers). If
        no agent takes it within the agent wait, they are taken for gone: the execution fails,
        naming them. A `batch` no agent took for BATCH_PICKUP waits for an agent to be ONLINE
        and goes back on the queue (the agents may only be busy)."""
        agents = self.state.agents_online
        if not agents:
            return {"task_queue": workflow.info().task_queue}
        if workflow.patched("location-task-queue"):
            queue = location_task_queue(self.execution.agent_location_arn)
        else:  # executions started before agents shared their location's queue
            queue = agent_task_queue(agents[index % len(agents)])
        wait = min(self._agent_wait(), BATCH_PICKUP) if batch else self._agent_wait()
        return {"task_queue": queue, "schedule_to_start_timeout": wait}

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() > HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW
            or info.is_continue_as_new_suggested()
        )

    # --- state ---------------------------------------------------------------------------------

    def _keep(self, kept: list[FileIssue], new: list[FileIssue]) -> None:
        kept.extend(new[: max(0, ISSUES_KEPT - len(kept))])

    def _begin(self, status: Status) -> None:
        self.state.phase_started = workflow.now()
        self._set_status(status)
        self.telemetry.begin(status)

    def _elapsed(self, since: datetime | None = None) -> int:
        started = since or self.state.phase_started or workflow.now()
        return int((workflow.now() - started).total_seconds() * 1000)

    def _set_status(self, status: Status) -> None:
        self.state.Status = status
        workflow.upsert_search_attributes([EXECUTION_STATUS.value_set(status)])
        workflow.upsert_memo({DESCRIPTION_MEMO: self.describe()})
        workflow.set_current_details(f"**{status}**")

    def _outcome(self) -> tuple[str | None, str | None]:
        """ErrorCode and ErrorDetail of an execution whose phases all ran."""
        s = self.state
        parts: list[str] = []
        code: str | None = None
        plan_issues = s.plan.issue_count if s.plan else 0
        failed = s.counters.FilesFailed + plan_issues
        if failed:
            code = ErrorCode.FILES_FAILED
            shown = (s.plan.issues if s.plan else []) + s.transfer_issues
            parts.append(_summary(f"{failed} file(s) could not be transferred", failed, shown))
        if s.counters.VerifyFailed:
            code = code or ErrorCode.VERIFICATION_FAILED
            parts.append(
                _summary(
                    f"verification found {s.counters.VerifyFailed} difference(s)",
                    s.counters.VerifyFailed,
                    s.verify_issues,
                )
            )
        return code, " ".join(parts) or None

    async def _write_report(self) -> ReportResult:
        try:
            with self.telemetry.within(None):
                return await workflow.execute_activity(
                    WRITE_TASK_REPORT,
                    args=[self.execution, self.describe()],
                    result_type=ReportResult,
                    **self._on(0),
                    start_to_close_timeout=timedelta(hours=1),
                    retry_policy=RetryPolicy(maximum_attempts=3),
                )
        except ActivityError as error:
            return _report_failed(error)

    def _cancelling(self) -> None:
        if self._cancelled_in is None:
            self._cancelled_in = self.state.Status
            self._set_status("CANCELLING")

    def _report_traffic(self, status: Status) -> None:
        """What the execution asked of the staging store, in the worker's log and (with the
        clean-up's share) in its final DescribeTaskExecution."""
        traffic = self.state.staging_traffic
        files = self.state.counters.FilesTransferred
        per_thousand = f" ({traffic.requests * 1000 / files:.1f} per 1,000 files)" if files else ""
        workflow.logger.info(
            "%s: %s; staging store: %d requests%s, %d bytes written, %d bytes read",
            self.execution.TaskExecutionArn,
            status,
            traffic.requests,
            per_thousand,
            traffic.bytes_written,
            traffic.bytes_read,
        )
        if workflow.patched("staging-traffic-described"):
            workflow.upsert_memo({DESCRIPTION_MEMO: self.describe()})

    async def _end(self, status: Status, code: str | None, detail: str | None) -> None:
        s = self.state
        if status == "ERROR":
            # The phase that was running when the execution failed or was cancelled failed too.
            phase = self._cancelled_in or s.Status
            elapsed = self._elapsed()
            # PREPARING may still run while TRANSFERRING has begun.
            if phase in ("PREPARING", "TRANSFERRING") and s.PrepareStatus == "PENDING":
                s.PrepareStatus, s.PrepareDuration = "ERROR", elapsed
            if phase == "TRANSFERRING" and s.TransferStatus == "PENDING":
                s.TransferStatus = "ERROR"
                s.TransferDuration = self._elapsed(s.transfer_started)
            if phase == "VERIFYING" and s.VerifyStatus == "PENDING":
                s.VerifyStatus, s.VerifyDuration = "ERROR", elapsed
        s.ErrorCode, s.ErrorDetail = code, detail
        s.EndTime = workflow.now()
        if self.execution.TaskReportConfig is not None:
            s.Status = status  # as the report's summary says it
            s.report = await self._write_report()
            self._staged(s.report.staging_traffic)
        self._set_status(status)
        try:
            with self.telemetry.within(None):
                cleared = await workflow.execute_activity(
                    CLEAN_UP_EXECUTION,
                    self.execution.execution_id,
                    # Before it said what it asked of the staging store, it answered nothing.
                    result_type=StagingTraffic | None,  # type: ignore[arg-type]
                    start_to_close_timeout=timedelta(minutes=5),
                    retry_policy=RetryPolicy(maximum_attempts=3),
                )
            self._staged(cleared)
        except ActivityError:
            workflow.logger.warning(
                "staging files of %s were not removed", self.execution.TaskExecutionArn
            )
        self._report_traffic(status)
        # Frees the task and its agents for the next queued executions.
        registry = workflow.get_external_workflow_handle(REGISTRY_WORKFLOW_ID)
        await registry.signal(
            "execution_finished",
            args=[self.execution.TaskExecutionArn, status, code or "", detail or ""],
        )
        self.telemetry.close(status, code)


def _report_failed(error: ActivityError) -> ReportResult:
    cause = error.cause
    detail = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
    return ReportResult(
        Status="ERROR",
        ErrorCode=ErrorCode.INTERNAL_ERROR,
        ErrorDetail=f"The task report could not be written: {detail}",
    )


def _summary(headline: str, count: int, issues: list[FileIssue]) -> str:
    shown = issues[:ISSUES_SHOWN]
    text = f"{headline}: " + "; ".join(str(issue) for issue in shown)
    if count > len(shown):
        text += f"; and {count - len(shown)} more (see the worker log)"
    return text + "."
