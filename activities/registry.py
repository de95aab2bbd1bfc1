"""The activities of the registry: what it must ask the world outside its own state."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.storage import open_storage
from activities.storage.base import StorageError
from api import Ferry
from models.errors import INVALID_REQUEST, InvalidRequestException
from models.locations import Location
from models.schedules import TaskSchedule, schedule_spec
from models.temporal import (
    APPLY_SCHEDULE,
    CHECK_LOCATION,
    OPEN_EXECUTIONS,
    SCHEDULED_START_WORKFLOW,
    START_SCHEDULED_EXECUTION,
    TASK_QUEUE,
    schedule_id,
)


class RegistryActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name=APPLY_SCHEDULE)
    async def apply_schedule(self, task_arn: str, schedule: TaskSchedule | None, note: str) -> None:
        """Make the task's Temporal Schedule match `schedule`: created, changed, paused while
        DISABLED, or deleted when None."""
        handle = self.client.get_schedule_handle(schedule_id(task_arn))
        if schedule is None:
            try:
                await handle.delete()
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
            return
        wanted = Schedule(
            action=ScheduleActionStartWorkflow(
                SCHEDULED_START_WORKFLOW,
                task_arn,
                id=f"{schedule_id(task_arn)}-scheduled",
                task_queue=TASK_QUEUE,
            ),
            spec=schedule_spec(schedule.ScheduleExpression),
            # Every start reaches the registry, where TaskQueueing decides.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
            state=ScheduleState(paused=schedule.Status == "DISABLED", note=note or None),
        )
        try:
            await self.client.create_schedule(schedule_id(task_arn), wanted)
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=wanted)

            await handle.update(replace)

    @activity.defn(name=START_SCHEDULED_EXECUTION)
    async def start_scheduled_execution(self, task_arn: str) -> str:
        """StartTaskExecution for the task's schedule; a start the task refuses (TaskQueueing
        DISABLED while it runs, or a task since deleted) is skipped, not retried."""
        region, account = task_arn.split(":")[3:5]
        try:
            started = await Ferry(self.client, region, account).start_task_execution(
                {"TaskArn": task_arn}
            )
        except InvalidRequestException as error:
            raise ApplicationError(
                f"Scheduled start skipped: {error.message}",
                type=INVALID_REQUEST,
                non_retryable=True,
            ) from None
        return started["TaskExecutionArn"]

    @activity.defn(name=CHECK_LOCATION)
    def check_location(self, location: Location) -> None:
        """Before a location is created: its path exists and can be listed from a worker."""
        storage = open_storage(location)
        try:
            storage.check(writable=False)
        except StorageError as error:
            raise ApplicationError(
                f"{location.location_uri} cannot be used: {error}",
                type=INVALID_REQUEST,
                non_retryable=True,
            ) from error
        finally:
            storage.close()

    @activity.defn(name=OPEN_EXECUTIONS)
    async def open_executions(self, workflow_ids: list[str]) -> list[str]:
        """Which of these executions' workflows still run."""
        still_open = []
        for workflow_id in workflow_ids:
            try:
                info = await self.client.get_workflow_handle(workflow_id).describe()
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    continue
                raise
            if info.status == WorkflowExecutionStatus.RUNNING:
                still_open.append(workflow_id)
        return still_open
