"""DataSync's task operations."""

from __future__ import annotations

from typing import Any

from api.base import Operations, Response, listed, matches, now, paginate
from api.requests import (
    CreateTaskRequest,
    ListTasksRequest,
    TaskArnRequest,
    UpdateTaskRequest,
    parse,
)
from models.arn import arn_prefix, new_id
from models.errors import (
    InvalidRequestException,
)
from models.filters import check_filters
from models.options import resolve_options
from models.registry import ExecutionQueue, TaskUpdate
from models.tasks import Task


class TaskOperations(Operations):
    async def create_task(self, request: dict[str, Any]) -> Response:
        req = parse(CreateTaskRequest, request)
        try:
            options = resolve_options(req.Options)
            check_filters(req.Includes, "Includes", include=True)
            check_filters(req.Excludes, "Excludes", include=False)
        except ValueError as error:
            raise InvalidRequestException(str(error)) from None
        schedule = req.Schedule if req.Schedule and req.Schedule.ScheduleExpression else None
        arn = f"{arn_prefix(self.region, self.account)}task/{new_id('task')}"
        task = Task(
            TaskArn=arn,
            Name=req.Name,
            SourceLocationArn=req.SourceLocationArn,
            DestinationLocationArn=req.DestinationLocationArn,
            Options=options,
            Includes=req.Includes,
            Excludes=req.Excludes,
            CreationTime=now(),
            CloudWatchLogGroupArn=req.CloudWatchLogGroupArn,
            Schedule=schedule,
            BandwidthTimetable=req.BandwidthTimetable,
            TaskReportConfig=req.TaskReportConfig,
            ManifestConfig=req.ManifestConfig,
        )
        await self._update("create_task", task, req.Tags)
        return {"TaskArn": arn}

    async def describe_task(self, request: dict[str, Any]) -> Response:
        req = parse(TaskArnRequest, request)
        task = await self._task(req.TaskArn)
        executions = await self._query("executions", ExecutionQueue)
        return task.describe(*executions.of_task(task.TaskArn))

    async def list_tasks(self, request: dict[str, Any]) -> Response:
        req = parse(ListTasksRequest, request)
        tasks = await self._query("tasks", list[Task])
        executions = await self._query("executions", ExecutionQueue)
        chosen = [
            task
            for task in tasks
            if all(matches(_task_field(task, f.Name), f.Operator, f.Values) for f in req.Filters)
        ]
        page, token = paginate(
            chosen, lambda x: (x.CreationTime.isoformat(), x.TaskArn), req.MaxResults, req.NextToken
        )
        entries = []
        for task in page:
            entry = {
                "TaskArn": task.TaskArn,
                "Status": executions.of_task(task.TaskArn)[1],
                "TaskMode": "BASIC",
            }
            if task.Name:
                entry["Name"] = task.Name
            entries.append(entry)
        return listed("Tasks", entries, token)

    async def update_task(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateTaskRequest, request)
        self._check_filters(req.Includes, req.Excludes)
        update = TaskUpdate(
            TaskArn=req.TaskArn,
            Name=req.Name,
            CloudWatchLogGroupArn=req.CloudWatchLogGroupArn,
            Options=req.Options,
            Includes=req.Includes,
            Excludes=req.Excludes,
            Schedule=req.Schedule,
            BandwidthTimetable=req.BandwidthTimetable,
            TaskReportConfig=req.TaskReportConfig,
            ManifestConfig=req.ManifestConfig,
        )
        await self._update("update_task", update)
        return {}

    async def delete_task(self, request: dict[str, Any]) -> Response:
        req = parse(TaskArnRequest, request)
        await self._update("delete_task", req.TaskArn)
        return {}

    def _check_filters(self, includes: Any, excludes: Any) -> None:
        try:
            check_filters(includes or [], "Includes", include=True)
            check_filters(excludes or [], "Excludes", include=False)
        except ValueError as error:
            raise InvalidRequestException(str(error)) from None


def _task_field(task: Task, name: str) -> Any:
    if name == "LocationId":
        return [task.SourceLocationArn, task.DestinationLocationArn]
    return task.CreationTime.isoformat()
