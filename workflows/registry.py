"""The registry: Ferry's locations and tasks, durable in Temporal, and the per-task queue that
lets one execution of a task run at a time.

A long-lived entity workflow: Updates (with validators, so that a rejected request leaves no
trace in its history) create, change and delete; Queries describe and list. It continues as new
when its history grows, carrying only its state.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.arn import execution_id, task_arn_of
    from models.errors import INTERNAL, INVALID_REQUEST
    from models.execution import ExecutionInput
    from models.locations import Location
    from models.options import resolve_options
    from models.registry import (
        MAX_RESOURCES,
        ExecutionStart,
        RegistryState,
        Tagging,
        TaskQueue,
        TaskUpdate,
    )
    from models.tags import TagListEntry, merged
    from models.tasks import Task
    from models.temporal import EXECUTION_STATUS, REGISTRY_WORKFLOW, TAGS_MEMO, TASK_ARN
    from workflows.execution import TaskExecutionWorkflow

HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW = 2000
RECONCILE_EVERY = timedelta(minutes=2)


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_REQUEST, non_retryable=True)


@workflow.defn(name=REGISTRY_WORKFLOW)
class RegistryWorkflow:
    @workflow.init
    def __init__(self, state: RegistryState | None = None) -> None:
        self.state = state or RegistryState()

    @workflow.run
    async def run(self, state: RegistryState | None = None) -> None:
        def ready_to_continue() -> bool:
            return self._history_is_long() and workflow.all_handlers_finished()

        while not ready_to_continue():
            busy = self._busy()
            try:
                # While executions run or wait, look now and then whether each is still there.
                await workflow.wait_condition(
                    lambda: ready_to_continue() or self._busy() != busy,  # noqa: B023
                    timeout=RECONCILE_EVERY if busy else None,
                )
            except TimeoutError:
                await self._reconcile()
        workflow.continue_as_new(self.state)

    def _busy(self) -> bool:
        return any(queue.running or queue.waiting for queue in self.state.queues.values())

    async def _reconcile(self) -> None:
        """Free the places of executions that ended without saying so (terminated by hand)."""
        known = [
            arn
            for queue in self.state.queues.values()
            for arn in (queue.running, *queue.waiting)
            if arn
        ]
        still_open = await workflow.execute_activity(
            "OpenExecutions",
            [execution_id(arn) for arn in known],
            result_type=list[str],
            start_to_close_timeout=timedelta(seconds=60),
        )
        for arn in known:
            if execution_id(arn) not in still_open:
                await self._finished(arn)

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() > HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW
            or info.is_continue_as_new_suggested()
        )

    # --- queries -------------------------------------------------------------------------------

    @workflow.query
    def locations(self) -> list[Location]:
        return list(self.state.locations.values())

    @workflow.query
    def tasks(self) -> list[Task]:
        return list(self.state.tasks.values())

    @workflow.query
    def queues(self) -> dict[str, TaskQueue]:
        return self.state.queues

    # --- locations -----------------------------------------------------------------------------

    @workflow.update
    async def create_location(
        self, location: Location, tags: list[TagListEntry] | None = None
    ) -> None:
        try:
            await workflow.execute_activity(
                "CheckLocation", location, start_to_close_timeout=timedelta(seconds=60)
            )
        except ActivityError as error:
            cause = error.cause
            raise _invalid(
                cause.message if isinstance(cause, ApplicationError) else str(error)
            ) from None
        self.state.locations[location.LocationArn] = location
        if tags:
            self.state.tags[location.LocationArn] = tags

    @create_location.validator
    def _validate_create_location(
        self, location: Location, tags: list[TagListEntry] | None = None
    ) -> None:
        self._check_room()
        if location.LocationArn in self.state.locations:
            raise _invalid(f"Location {location.LocationArn} already exists.")

    @workflow.update
    def delete_location(self, location_arn: str) -> None:
        del self.state.locations[location_arn]
        self.state.tags.pop(location_arn, None)

    @delete_location.validator
    def _validate_delete_location(self, location_arn: str) -> None:
        self._location(location_arn)
        for task in self.state.tasks.values():
            if location_arn in (task.SourceLocationArn, task.DestinationLocationArn):
                raise _invalid(
                    f"Location {location_arn} is used by task {task.TaskArn}; "
                    "delete the task first."
                )

    # --- tasks ---------------------------------------------------------------------------------

    @workflow.update
    def create_task(self, task: Task, tags: list[TagListEntry] | None = None) -> None:
        self.state.tasks[task.TaskArn] = task
        if tags:
            self.state.tags[task.TaskArn] = tags

    @create_task.validator
    def _validate_create_task(self, task: Task, tags: list[TagListEntry] | None = None) -> None:
        self._check_room()
        if task.TaskArn in self.state.tasks:
            raise _invalid(f"Task {task.TaskArn} already exists.")
        source = self._location(task.SourceLocationArn, "SourceLocationArn")
        destination = self._location(task.DestinationLocationArn, "DestinationLocationArn")
        if source.LocationArn == destination.LocationArn:
            raise _invalid(
                "SourceLocationArn and DestinationLocationArn are the same location; "
                "a task copies from one location to another."
            )
        _check_not_nested(source, destination)

    @workflow.update
    def update_task(self, update: TaskUpdate) -> None:
        self.state.tasks[update.TaskArn] = self._updated(update)

    @update_task.validator
    def _validate_update_task(self, update: TaskUpdate) -> None:
        self._updated(update)

    def _updated(self, update: TaskUpdate) -> Task:
        task = self._task(update.TaskArn)
        changes: dict[str, object] = {}
        if update.Name is not None:
            changes["Name"] = update.Name
        if update.CloudWatchLogGroupArn is not None:
            changes["CloudWatchLogGroupArn"] = update.CloudWatchLogGroupArn
        if update.Options is not None:
            try:
                changes["Options"] = resolve_options(task.Options, update.Options)
            except ValueError as error:
                raise _invalid(str(error)) from None
        if update.Includes is not None:
            changes["Includes"] = update.Includes
        if update.Excludes is not None:
            changes["Excludes"] = update.Excludes
        return task.model_copy(update=changes)

    @workflow.update
    def delete_task(self, task_arn: str) -> None:
        del self.state.tasks[task_arn]
        self.state.queues.pop(task_arn, None)
        self.state.tags.pop(task_arn, None)

    @delete_task.validator
    def _validate_delete_task(self, task_arn: str) -> None:
        self._task(task_arn)
        queue = self.state.queues.get(task_arn)
        if queue and (queue.running or queue.waiting):
            raise _invalid(
                f"Task {task_arn} has an execution running or queued "
                f"({queue.running or queue.waiting[0]}); cancel it or wait for it to end first."
            )

    # --- tags ----------------------------------------------------------------------------------

    @workflow.query
    def tags(self, resource_arn: str) -> list[TagListEntry]:
        return self.state.tags.get(resource_arn, [])

    @workflow.update
    def tag_resource(self, tagging: Tagging) -> None:
        self.state.tags[tagging.ResourceArn] = self._tagged(tagging)

    @tag_resource.validator
    def _validate_tag_resource(self, tagging: Tagging) -> None:
        self._tagged(tagging)

    def _tagged(self, tagging: Tagging) -> list[TagListEntry]:
        arn = tagging.ResourceArn
        if arn not in self.state.locations and arn not in self.state.tasks:
            raise _invalid(
                f"ResourceArn: {arn} is not a location or task of Ferry (the tags of a task "
                "execution are given when it starts)."
            )
        try:
            tags = merged(self.state.tags.get(arn, []), tagging.Tags)
        except ValueError as error:
            raise _invalid(str(error)) from None
        return [tag for tag in tags if tag.Key not in tagging.Keys]

    # --- executions ----------------------------------------------------------------------------

    @workflow.update
    async def start_task_execution(self, start: ExecutionStart) -> str:
        """Starts the execution workflow; returns QUEUED or LAUNCHING."""
        execution = self._execution_input(start)
        queue = self.state.queues.setdefault(start.TaskArn, TaskQueue())
        if queue.running is not None:
            await self._reconcile()  # is it really still running?
        execution.queued = queue.running is not None
        if execution.queued:
            queue.waiting.append(start.TaskExecutionArn)
        else:
            queue.running = start.TaskExecutionArn
        status = "QUEUED" if execution.queued else "LAUNCHING"
        try:
            await workflow.start_child_workflow(
                TaskExecutionWorkflow.run,
                args=[execution, None],
                id=execution.execution_id,
                search_attributes=TypedSearchAttributes(
                    [TASK_ARN.value_set(start.TaskArn), EXECUTION_STATUS.value_set(status)]
                ),
                memo={TAGS_MEMO: [tag.model_dump() for tag in start.Tags]},
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        except Exception as error:
            # Not started: the task must not stay busy with it.
            if execution.queued:
                queue.waiting.remove(start.TaskExecutionArn)
            else:
                queue.running = None
            raise ApplicationError(
                f"Task execution {start.TaskExecutionArn} could not be started: {error}",
                type=INTERNAL,
            ) from None
        return status

    @start_task_execution.validator
    def _validate_start_task_execution(self, start: ExecutionStart) -> None:
        execution = self._execution_input(start)
        queue = self.state.queues.get(start.TaskArn)
        if queue and queue.running and execution.Options.TaskQueueing == "DISABLED":
            raise _invalid(
                f"Task {start.TaskArn} is already running ({queue.running}) and its "
                "TaskQueueing option is DISABLED, so this execution would not be queued. "
                "Wait for the running execution to end, or set TaskQueueing=ENABLED."
            )

    def _execution_input(self, start: ExecutionStart) -> ExecutionInput:
        task = self._task(start.TaskArn)
        try:
            options = resolve_options(task.Options, start.OverrideOptions)
        except ValueError as error:
            raise _invalid(str(error).replace("Options.", "OverrideOptions.")) from None
        return ExecutionInput(
            TaskExecutionArn=start.TaskExecutionArn,
            TaskArn=task.TaskArn,
            Source=self._location(task.SourceLocationArn),
            Destination=self._location(task.DestinationLocationArn),
            Options=options,
            Includes=task.Includes if start.Includes is None else start.Includes,
            Excludes=task.Excludes if start.Excludes is None else start.Excludes,
            StartTime=workflow.now(),
        )

    @workflow.signal
    async def execution_finished(self, execution_arn: str) -> None:
        await self._finished(execution_arn)

    async def _finished(self, execution_arn: str) -> None:
        task_arn = task_arn_of(execution_arn)
        queue = self.state.queues.get(task_arn)
        if queue is None:
            return
        if execution_arn in queue.waiting:
            queue.waiting.remove(execution_arn)
            return
        if queue.running != execution_arn:
            return
        queue.running = None
        while queue.waiting and queue.running is None:
            following = queue.waiting.pop(0)
            queue.running = following
            try:
                await workflow.get_external_workflow_handle(execution_id(following)).signal("grant")
            except Exception:  # it ended while it waited: on to the next one
                queue.running = None

    # --- helpers -------------------------------------------------------------------------------

    def _check_room(self) -> None:
        if len(self.state.locations) + len(self.state.tasks) >= MAX_RESOURCES:
            raise _invalid(
                f"Ferry holds {MAX_RESOURCES} locations and tasks, its limit; "
                "delete ones you no longer use."
            )

    def _location(self, arn: str, field: str = "LocationArn") -> Location:
        location = self.state.locations.get(arn)
        if location is None:
            raise _invalid(f"{field}: location {arn} does not exist.")
        return location

    def _task(self, arn: str) -> Task:
        task = self.state.tasks.get(arn)
        if task is None:
            raise _invalid(f"TaskArn: task {arn} does not exist.")
        return task


def _check_not_nested(source: Location, destination: Location) -> None:
    """Copying a local folder into itself (or its parent into it) never ends."""
    a, b = source.Path.rstrip("/") + "/", destination.Path.rstrip("/") + "/"
    if a.startswith(b) or b.startswith(a):
        raise _invalid(
            f"The source ({source.Path}) and destination ({destination.Path}) folders are "
            "inside one another; choose folders that do not contain each other."
        )
