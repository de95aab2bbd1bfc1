"""The registry: Ferry's agents, locations and tasks, durable in Temporal, and the queue that
lets one execution at a time run per task and per agent.

A long-lived entity workflow: Updates (with validators, so that a rejected request leaves no
trace in its history) create, change and delete; Queries describe and list. It continues as new
when its history grows, carrying only its state.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from models import build_models
    from models.access_keys import MAX_ACCESS_KEYS, AccessKey
    from models.agents import ACTIVATION_KEY, ACTIVATION_KEY_SECONDS, Activation, Agent
    from models.arn import execution_id, task_arn_of
    from models.errors import INTERNAL, ErrorCode, invalid_request, missing
    from models.execution import ExecutionInput
    from models.locations import KIND_OF, Location
    from models.manifests import LocationManifestConfig, ManifestConfig
    from models.options import Options, resolve_options
    from models.registry import (
        MAX_AGENTS_PER_LOCATION,
        MAX_RESOURCES,
        AccessKeyUpdate,
        Admission,
        AgentUpdate,
        ExecutionQueue,
        ExecutionStart,
        FailureStreak,
        RegistryState,
        Tagging,
        TaskUpdate,
    )
    from models.reports import ReportDestinationLocation, TaskReportConfig
    from models.schedules import ScheduleDetails, TaskSchedule
    from models.tags import TagListEntry, merged
    from models.tasks import Task
    from models.temporal import (
        APPLY_SCHEDULE,
        CHECK_LOCATION,
        EXECUTION_STATUS,
        OPEN_EXECUTIONS,
        REGISTRY_WORKFLOW,
        TAGS_MEMO,
        TASK_ARN,
        agent_task_queue,
    )
    from workflows.execution import TaskExecutionWorkflow

build_models()  # outside the sandbox, which cannot build them

HISTORY_EVENTS_BEFORE_CONTINUE_AS_NEW = 2000
RECONCILE_EVERY = timedelta(minutes=2)
AGENT_ANSWER = timedelta(seconds=20)
_FEW_TRIES = RetryPolicy(maximum_attempts=3)


@workflow.defn(name=REGISTRY_WORKFLOW)
class RegistryWorkflow:
    @workflow.init
    def __init__(self, state: RegistryState | None = None) -> None:
        self.state = state or RegistryState()
        # Executions whose child workflow is being started: not yet there to be found.
        self._starting: set[str] = set()

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
        return bool(self.state.executions.arns())

    async def _reconcile(self) -> None:
        """Free the places of executions that ended without saying so (terminated by hand)."""
        known = [arn for arn in self.state.executions.arns() if arn not in self._starting]
        still_open = await workflow.execute_activity(
            OPEN_EXECUTIONS,
            [execution_id(arn) for arn in known],
            result_type=list[str],
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_FEW_TRIES,
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
    def executions(self) -> ExecutionQueue:
        return self.state.executions

    # --- agents --------------------------------------------------------------------------------

    @workflow.query
    def agents(self) -> list[Agent]:
        return list(self.state.agents.values())

    @workflow.query
    def agent_locations(self, agent_arn: str) -> list[str]:
        """The locations that name the agent: it polls each one's task queue."""
        return sorted(
            arn for arn, location in self.state.locations.items() if agent_arn in location.AgentArns
        )

    @workflow.query
    def activation(self, key: str) -> list[Activation]:
        """The key's activation, if the registry knows the key."""
        found = self.state.activations.get(key)
        return [found] if found else []

    @workflow.update
    def register_activation(self, key: str, seconds: int) -> Activation:
        """An agent process that was never activated waits with this key for CreateAgent."""
        # Keys that expired unused are forgotten an hour later (until then, using one says
        # that it expired).
        forget_before = workflow.now() - timedelta(hours=1)
        self.state.activations = {
            k: a
            for k, a in self.state.activations.items()
            if a.AgentArn or a.ExpiresAt > forget_before
        }
        now = workflow.now()
        activation = Activation(ActivationKey=key, ExpiresAt=now + timedelta(seconds=seconds))
        self.state.activations[key] = activation
        return activation

    @register_activation.validator
    def _validate_register_activation(self, key: str, seconds: int) -> None:
        if not ACTIVATION_KEY.match(key) or key in self.state.activations:
            raise invalid_request(f"Activation key {key!r} is malformed or taken.")
        if not 0 < seconds <= ACTIVATION_KEY_SECONDS:
            raise invalid_request(
                f"An activation key lives 1 to {ACTIVATION_KEY_SECONDS} seconds, not {seconds}."
            )

    @workflow.update
    def create_agent(self, agent: Agent, key: str, tags: list[TagListEntry] | None = None) -> None:
        self.state.agents[agent.AgentArn] = agent
        used = self.state.activations[key].model_copy(update={"AgentArn": agent.AgentArn})
        self.state.activations[key] = used
        if tags:
            self.state.tags[agent.AgentArn] = tags

    @create_agent.validator
    def _validate_create_agent(
        self, agent: Agent, key: str, tags: list[TagListEntry] | None = None
    ) -> None:
        self._check_room()
        activation = self.state.activations.get(key)
        if activation is None:
            raise invalid_request(
                f"ActivationKey: {key} is not waiting to be used: start the agent with "
                "`ferry worker --agent --state-dir DIR` and use the key it prints."
            )
        if activation.AgentArn is not None:
            raise invalid_request(
                f"ActivationKey: {key} was already used (by agent {activation.AgentArn}); "
                "a key activates one agent."
            )
        if activation.ExpiresAt <= workflow.now():
            raise invalid_request(
                f"ActivationKey: {key} expired at {activation.ExpiresAt.isoformat()}; restart "
                "the agent process for a new key."
            )

    @workflow.update
    def update_agent(self, update: AgentUpdate) -> None:
        agent = self._agent(update.AgentArn)
        if update.Name is not None:
            self.state.agents[agent.AgentArn] = agent.model_copy(update={"Name": update.Name})

    @update_agent.validator
    def _validate_update_agent(self, update: AgentUpdate) -> None:
        self._agent(update.AgentArn)

    @workflow.update
    def delete_agent(self, agent_arn: str) -> None:
        del self.state.agents[agent_arn]
        self.state.tags.pop(agent_arn, None)
        self.state.activations = {
            k: a for k, a in self.state.activations.items() if a.AgentArn != agent_arn
        }

    @delete_agent.validator
    def _validate_delete_agent(self, agent_arn: str) -> None:
        self._agent(agent_arn)
        using = [arn for arn, loc in self.state.locations.items() if agent_arn in loc.AgentArns]
        if using:
            # DataSync's words, which Terraform waits on while it deletes the locations.
            raise invalid_request(
                f"AgentArn: agent {agent_arn} is in-use by these location(s): "
                f"{', '.join(using)}. Delete the location(s) first."
            )

    # --- locations -----------------------------------------------------------------------------

    @workflow.update
    async def create_location(
        self, location: Location, tags: list[TagListEntry] | None = None
    ) -> None:
        await self._check_location(location)
        self.state.locations[location.LocationArn] = location
        if tags:
            self.state.tags[location.LocationArn] = tags

    @workflow.update
    async def update_location(self, location: Location) -> None:
        await self._check_location(location)
        self.state.locations[location.LocationArn] = location

    @update_location.validator
    def _validate_update_location(self, location: Location) -> None:
        before = self._location(location.LocationArn, "LocationArn")
        if before.LocationType != location.LocationType:
            raise invalid_request(
                f"Location {location.LocationArn} is a {before.LocationType} location."
            )
        self._check_agents(location)

    async def _check_location(self, location: Location) -> None:
        """Checked from where the location will be used: on its first agent, if it has any."""
        agent = location.AgentArns[0] if location.AgentArns else None
        try:
            await workflow.execute_activity(
                CHECK_LOCATION,
                location,
                task_queue=agent_task_queue(agent) if agent else workflow.info().task_queue,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_start_timeout=AGENT_ANSWER if agent else None,
                retry_policy=_FEW_TRIES,
            )
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError):
                raise invalid_request(cause.message) from None
            if agent and isinstance(cause, ActivityTimeout):
                raise invalid_request(
                    f"AgentArns: agent {agent} did not answer within "
                    f"{AGENT_ANSWER.seconds} s to check the location; is it ONLINE?"
                ) from None
            raise invalid_request(str(error)) from None

    @create_location.validator
    def _validate_create_location(
        self, location: Location, tags: list[TagListEntry] | None = None
    ) -> None:
        self._check_room()
        if location.LocationArn in self.state.locations:
            raise invalid_request(f"Location {location.LocationArn} already exists.")
        self._check_agents(location)

    def _check_agents(self, location: Location) -> None:
        if len(location.AgentArns) > MAX_AGENTS_PER_LOCATION:
            raise invalid_request(
                f"AgentArns: a location has at most {MAX_AGENTS_PER_LOCATION} agents."
            )
        for agent_arn in location.AgentArns:
            self._agent(agent_arn, "AgentArns")

    @workflow.update
    def delete_location(self, location_arn: str) -> None:
        del self.state.locations[location_arn]
        self.state.tags.pop(location_arn, None)

    @delete_location.validator
    def _validate_delete_location(self, location_arn: str) -> None:
        self._location(location_arn)
        for task in self.state.tasks.values():
            report = task.TaskReportConfig and task.TaskReportConfig.Destination.Location
            manifest = task.ManifestConfig and task.ManifestConfig.Source.Location
            used = {task.SourceLocationArn, task.DestinationLocationArn}
            used.update(x.LocationArn for x in (report, manifest) if x)
            if location_arn in used:
                raise invalid_request(
                    f"Location {location_arn} is used by task {task.TaskArn}; "
                    "delete the task first."
                )

    # --- tasks ---------------------------------------------------------------------------------

    @workflow.update
    async def create_task(self, task: Task, tags: list[TagListEntry] | None = None) -> None:
        if task.Schedule is not None:
            task = task.model_copy(
                update={"ScheduleDetails": ScheduleDetails(StatusUpdateTime=workflow.now())}
            )
            await self._apply_schedule(task)
        self.state.tasks[task.TaskArn] = task
        if tags:
            self.state.tags[task.TaskArn] = tags

    @create_task.validator
    def _validate_create_task(self, task: Task, tags: list[TagListEntry] | None = None) -> None:
        self._check_room()
        if task.TaskArn in self.state.tasks:
            raise invalid_request(f"Task {task.TaskArn} already exists.")
        source = self._location(task.SourceLocationArn, "SourceLocationArn")
        destination = self._location(task.DestinationLocationArn, "DestinationLocationArn")
        if source.LocationArn == destination.LocationArn:
            raise invalid_request(
                "SourceLocationArn and DestinationLocationArn are the same location; "
                "a task copies from one location to another."
            )
        if (
            source.AgentArns
            and destination.AgentArns
            and set(source.AgentArns) != set(destination.AgentArns)
        ):
            raise invalid_request(
                "The source and destination locations use different agents: a task runs on "
                "one set of agents, which must reach both. Give both locations the same "
                "AgentArns, or leave AgentArns out of the one they all reach."
            )
        _check_not_nested(source, destination)
        _check_options_fit(
            resolve_options(task.Options),
            source,
            destination,
            "Options",
            task.ManifestConfig,
        )
        self._report_location(task, task.TaskReportConfig)
        self._manifest_location(task, task.ManifestConfig)

    @workflow.update
    async def update_task(self, update: TaskUpdate) -> None:
        before = self._task(update.TaskArn)
        task = self._updated(update)
        if task.Schedule != before.Schedule:
            await self._apply_schedule(task)
            self.state.failures.pop(task.TaskArn, None)
        self.state.tasks[update.TaskArn] = task

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
        if update.Options is not None or update.ManifestConfig is not None:
            updated = update.Options or Options()
            try:
                changes["Options"] = resolve_options(task.Options, updated)
            except ValueError as error:
                raise invalid_request(str(error)) from None
            _check_options_fit(
                changes["Options"],  # type: ignore[arg-type]
                self._location(task.SourceLocationArn),
                self._location(task.DestinationLocationArn),
                "Options",
                update.ManifestConfig or task.ManifestConfig,
            )
        if update.Includes is not None:
            changes["Includes"] = update.Includes
        if update.Excludes is not None:
            changes["Excludes"] = update.Excludes
        if update.BandwidthTimetable is not None:
            changes["BandwidthTimetable"] = update.BandwidthTimetable or None
        if update.Schedule is not None:
            changes.update(self._rescheduled(task, update.Schedule))
        if update.TaskReportConfig is not None:
            self._report_location(task, update.TaskReportConfig)
            changes["TaskReportConfig"] = update.TaskReportConfig
        if update.ManifestConfig is not None:
            self._manifest_location(task, update.ManifestConfig)
            changes["ManifestConfig"] = update.ManifestConfig
        return task.model_copy(update=changes)

    def _manifest_location(self, task: Task, config: ManifestConfig | None) -> Location | None:
        """The location a manifest is read from."""
        if config is None:
            return None
        return self._task_location(task, config.Source.Location, "ManifestConfig.Source")

    def _report_location(self, task: Task, config: TaskReportConfig | None) -> Location | None:
        """The location a task report goes to."""
        if config is None:
            return None
        return self._task_location(
            task, config.Destination.Location, "TaskReportConfig.Destination"
        )

    def _task_location(
        self,
        task: Task,
        chosen: LocationManifestConfig | ReportDestinationLocation | None,
        field: str,
    ) -> Location:
        """A further location a task uses (`field`.Location, DataSync's `field`.S3 aside); it is
        used where the task runs, so it must have the task's agents."""
        if chosen is None:
            raise invalid_request(
                f"{field}.S3 is not taken: create the bucket's location with "
                f"create-location-s3 and give its LocationArn in {field}.Location."
            )
        arn_field = f"{field}.Location.LocationArn"
        location = self._location(chosen.LocationArn, arn_field)
        source = self._location(task.SourceLocationArn)
        destination = self._location(task.DestinationLocationArn)
        agents = set(source.AgentArns or destination.AgentArns)
        if set(location.AgentArns) != agents:
            raise invalid_request(
                f"{arn_field}: location {location.LocationArn} is reached by "
                f"{', '.join(location.AgentArns) or 'the ordinary workers'}, but the task runs "
                f"on {', '.join(sorted(agents)) or 'the ordinary workers'}; use a location "
                "with the task's agents."
            )
        return location

    def _rescheduled(self, task: Task, schedule: TaskSchedule) -> dict[str, object]:
        """UpdateTask's Schedule: an empty expression removes it; a change of Status by the
        user is noted in ScheduleDetails."""
        if not schedule.ScheduleExpression:
            return {"Schedule": None, "ScheduleDetails": None}
        details = task.ScheduleDetails
        if task.Schedule is None or task.Schedule.Status != schedule.Status or details is None:
            details = ScheduleDetails(
                StatusUpdateTime=workflow.now(),
                DisabledBy="USER" if schedule.Status == "DISABLED" else None,
            )
        return {"Schedule": schedule, "ScheduleDetails": details}

    async def _apply_schedule(self, task: Task) -> None:
        """Create, change, pause or delete the task's Temporal Schedule to match the task."""
        note = task.ScheduleDetails.DisabledReason if task.ScheduleDetails else None
        try:
            await workflow.execute_activity(
                APPLY_SCHEDULE,
                args=[task.TaskArn, task.Schedule, note or ""],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_FEW_TRIES,
            )
        except ActivityError as error:
            raise ApplicationError(
                f"The schedule of task {task.TaskArn} could not be set: {error.cause or error}",
                type=INTERNAL,
            ) from None

    @workflow.update
    async def delete_task(self, task_arn: str) -> None:
        task = self.state.tasks[task_arn]
        if task.Schedule is not None:  # first, so that a failure leaves the task as it was
            await self._apply_schedule(task.model_copy(update={"Schedule": None}))
        del self.state.tasks[task_arn]
        for arn in [arn for arn in self.state.tags if task_arn_of(arn) == task_arn]:
            del self.state.tags[arn]  # the task's, and its executions'
        self.state.failures.pop(task_arn, None)

    @delete_task.validator
    def _validate_delete_task(self, task_arn: str) -> None:
        self._task(task_arn)
        current, status = self.state.executions.of_task(task_arn)
        if current:
            raise invalid_request(
                f"Task {task_arn} has an execution {status.lower()} ({current}); cancel it or "
                "wait for it to end first."
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
        # An execution's task is here; the execution itself the caller found (its workflow).
        if not any(
            task_arn_of(arn) in kind
            for kind in (self.state.agents, self.state.locations, self.state.tasks)
        ):
            raise invalid_request(
                f"ResourceArn: {arn} is not an agent, location, task or task execution of Ferry."
            )
        try:
            tags = merged(self.state.tags.get(arn, []), tagging.Tags)
        except ValueError as error:
            raise invalid_request(str(error)) from None
        return [tag for tag in tags if tag.Key not in tagging.Keys]

    # --- executions ----------------------------------------------------------------------------

    @workflow.update
    async def start_task_execution(self, start: ExecutionStart) -> str:
        """Starts the execution workflow; returns QUEUED or LAUNCHING."""
        execution = self._execution_input(start)
        queue = self.state.executions
        admission = Admission(
            TaskExecutionArn=start.TaskExecutionArn, holds=[start.TaskArn, *execution.AgentArns]
        )
        if not queue.can_start(admission.holds, queue.waiting):
            await self._reconcile()  # is what it waits for really still there?
        execution.queued = not queue.can_start(admission.holds, queue.waiting)
        (queue.waiting if execution.queued else queue.running).append(admission)
        status = "QUEUED" if execution.queued else "LAUNCHING"
        self._starting.add(start.TaskExecutionArn)
        if start.Tags:  # kept here, as every resource's are, so that TagResource can change them
            self.state.tags[start.TaskExecutionArn] = start.Tags
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
            # Not started: nothing may wait for it.
            self.state.tags.pop(start.TaskExecutionArn, None)
            await self._finished(start.TaskExecutionArn)
            raise ApplicationError(
                f"Task execution {start.TaskExecutionArn} could not be started: {error}",
                type=INTERNAL,
            ) from None
        finally:
            self._starting.discard(start.TaskExecutionArn)
        return status

    @start_task_execution.validator
    def _validate_start_task_execution(self, start: ExecutionStart) -> None:
        execution = self._execution_input(start)
        if execution.Options.TaskQueueing == "DISABLED":
            blocker = self.state.executions.blocker([start.TaskArn, *execution.AgentArns])
            if blocker:
                raise invalid_request(
                    f"Task execution {blocker} is running or queued on the same task or agent "
                    f"as task {start.TaskArn}, whose TaskQueueing option is DISABLED, so this "
                    "execution would not be queued. Wait for it to end, or set "
                    "TaskQueueing=ENABLED."
                )

    def _execution_input(self, start: ExecutionStart) -> ExecutionInput:
        task = self._task(start.TaskArn)
        try:
            options = resolve_options(task.Options, start.OverrideOptions)
        except ValueError as error:
            raise invalid_request(str(error).replace("Options.", "OverrideOptions.")) from None
        source = self._location(task.SourceLocationArn)
        destination = self._location(task.DestinationLocationArn)
        report = start.TaskReportConfig or task.TaskReportConfig
        manifest = start.ManifestConfig or task.ManifestConfig
        _check_options_fit(options, source, destination, "OverrideOptions", manifest)
        return ExecutionInput(
            TaskExecutionArn=start.TaskExecutionArn,
            TaskArn=task.TaskArn,
            Source=source,
            Destination=destination,
            AgentArns=list(source.AgentArns or destination.AgentArns),
            BandwidthTimetable=task.BandwidthTimetable,
            DryRun=start.DryRun,
            TaskReportConfig=report,
            ReportLocation=self._report_location(task, report),
            ManifestConfig=manifest,
            ManifestLocation=self._manifest_location(task, manifest),
            Options=options,
            Includes=task.Includes if start.Includes is None else start.Includes,
            Excludes=task.Excludes if start.Excludes is None else start.Excludes,
            StartTime=workflow.now(),
        )

    @workflow.signal
    async def execution_finished(
        self, execution_arn: str, status: str = "", code: str = "", detail: str = ""
    ) -> None:
        await self._finished(execution_arn)
        await self._count_failure(task_arn_of(execution_arn), status, code, detail)

    async def _count_failure(self, task_arn: str, status: str, code: str, detail: str) -> None:
        """A scheduled task whose executions keep failing with the same error has its schedule
        disabled, as DataSync does (DisabledBy SERVICE)."""
        task = self.state.tasks.get(task_arn)
        if task is None or not status or code == ErrorCode.CANCELLED:
            return
        if status == "SUCCESS":
            self.state.failures.pop(task_arn, None)
            return
        streak = self.state.failures.get(task_arn)
        count = streak.count + 1 if streak and streak.ErrorCode == code else 1
        self.state.failures[task_arn] = FailureStreak(ErrorCode=code, count=count)
        schedule = task.Schedule
        if schedule is None or schedule.Status != "ENABLED" or count < schedule.failure_limit:
            return
        reason = (
            f"{count} executions in a row failed with {code}: {detail[:400]}. Fix the cause, "
            "then enable the schedule again with UpdateTask."
        )
        disabled = task.model_copy(
            update={
                "Schedule": schedule.model_copy(update={"Status": "DISABLED"}),
                "ScheduleDetails": ScheduleDetails(
                    StatusUpdateTime=workflow.now(), DisabledReason=reason, DisabledBy="SERVICE"
                ),
            }
        )
        self.state.tasks[task_arn] = disabled
        self.state.failures.pop(task_arn, None)
        try:
            await self._apply_schedule(disabled)
        except ApplicationError:
            workflow.logger.error("the schedule of %s could not be paused", task_arn)

    async def _finished(self, execution_arn: str) -> None:
        for following in self.state.executions.finished(execution_arn):
            try:
                await workflow.get_external_workflow_handle(execution_id(following)).signal("grant")
            except Exception:  # it ended while it waited: its place goes to the next
                await self._finished(following)

    # --- access keys: who may call the endpoint ----------------------------------------------

    @workflow.query
    def access_keys(self) -> list[AccessKey]:
        return list(self.state.access_keys.values())

    @workflow.update
    def create_access_key(self, key: AccessKey) -> None:
        self.state.access_keys[key.AccessKeyId] = key

    @create_access_key.validator
    def _validate_create_access_key(self, key: AccessKey) -> None:
        if len(self.state.access_keys) >= MAX_ACCESS_KEYS:
            raise invalid_request(
                f"Ferry holds {MAX_ACCESS_KEYS} access keys, its limit; delete ones no longer "
                "used (delete-access-key)."
            )

    @workflow.update
    def update_access_key(self, update: AccessKeyUpdate) -> None:
        key = self.state.access_keys[update.AccessKeyId]
        self.state.access_keys[key.AccessKeyId] = key.model_copy(update={"Status": update.Status})

    @update_access_key.validator
    def _validate_update_access_key(self, update: AccessKeyUpdate) -> None:
        self._access_key(update.AccessKeyId)

    @workflow.update
    def delete_access_key(self, key_id: str) -> None:
        del self.state.access_keys[key_id]

    @delete_access_key.validator
    def _validate_delete_access_key(self, key_id: str) -> None:
        self._access_key(key_id)

    # --- helpers -------------------------------------------------------------------------------

    def _check_room(self) -> None:
        held = len(self.state.agents) + len(self.state.locations) + len(self.state.tasks)
        if held >= MAX_RESOURCES:
            raise invalid_request(
                f"Ferry holds {MAX_RESOURCES} agents, locations and tasks, its limit; "
                "delete ones you no longer use."
            )

    def _access_key(self, key_id: str) -> AccessKey:
        key = self.state.access_keys.get(key_id)
        if key is None:
            raise invalid_request(missing("AccessKeyId", "access key", key_id))
        return key

    def _agent(self, arn: str, field: str = "AgentArn") -> Agent:
        agent = self.state.agents.get(arn)
        if agent is None:
            raise invalid_request(missing(field, "agent", arn))
        return agent

    def _location(self, arn: str, field: str = "LocationArn") -> Location:
        location = self.state.locations.get(arn)
        if location is None:
            raise invalid_request(missing(field, "location", arn))
        return location

    def _task(self, arn: str) -> Task:
        task = self.state.tasks.get(arn)
        if task is None:
            raise invalid_request(missing("TaskArn", "task", arn))
        return task


def _check_options_fit(
    options: Options,
    source: Location,
    destination: Location,
    field: str,
    manifest: ManifestConfig | None,
) -> None:
    """Options that ask for what the pair of locations cannot do are refused rather than
    ignored, as the locations' capabilities say. DataSync's defaults (INT_VALUE owners,
    PosixPermissions and ObjectTags PRESERVE, OWNER_DACL) keep what the destination can hold
    and are never refused: clients send them unasked (Terraform's provider sends every one),
    and DataSync takes them; what asks for more is refused, and what DataSync refuses even as
    its default (a full verification of archived objects)."""
    can, had = destination.capabilities, source.capabilities
    into = f"the destination ({KIND_OF[destination.LocationType].title} location)"
    refused: list[tuple[str, str, str]] = []  # the option, why it cannot act, what to set
    if options.VerifyMode == "POINT_IN_TIME_CONSISTENT" and not can.reads_back:
        why = f"{into} keeps its objects archived (they are restored before they can be read)"
        refused.append(("VerifyMode", why, "set VerifyMode=ONLY_FILES_TRANSFERRED or NONE"))
    if options.PreserveDevices == "PRESERVE" and not can.devices:
        why = f"{into} cannot hold devices or named pipes"
        refused.append(("PreserveDevices", why, "set PreserveDevices=NONE"))
    windows = had.windows_metadata and can.windows_metadata
    if options.SecurityDescriptorCopyFlags == "OWNER_DACL_SACL" and not windows:
        why = "security descriptors are copied only between SMB locations"
        refused.append(
            ("SecurityDescriptorCopyFlags", why, "set it to OWNER_DACL (the default) or NONE")
        )
    kept = {"NAME": can.owner_names, "BOTH": can.posix_owners and can.owner_names}
    held = "names" if can.owner_names else "numbers" if can.posix_owners else ""
    for name in ("Uid", "Gid"):
        value = getattr(options, name)
        if not kept.get(value, True):
            why = f"{into} keeps owners as {held} only" if held else f"{into} keeps no owners"
            fix = "INT_VALUE" if held else "NONE"  # INT_VALUE keeps names where names are kept
            refused.append((name, why, f"set {name}={fix}"))
    if options.PreserveDeletedFiles == "REMOVE" and manifest is not None:
        why = (
            "with a manifest only the files it lists are looked at, so nothing at the "
            "destination is found missing from the source"
        )
        fix = "set PreserveDeletedFiles=PRESERVE, or leave ManifestConfig out"
        refused.append(("PreserveDeletedFiles", why, fix))
    if refused:
        name, why, fix = refused[0]
        raise invalid_request(f"{field}.{name}={getattr(options, name)}: {why}; {fix}.")


def _check_not_nested(source: Location, destination: Location) -> None:
    """Copying a folder into itself (or its parent into it) never ends."""
    (where, a), (there, b) = source.tree, destination.tree
    if where == there and (a.startswith(b) or b.startswith(a)):
        raise invalid_request(
            f"The source ({source.location_uri}) and destination ({destination.location_uri}) "
            "are inside one another; choose folders that do not contain each other."
        )
