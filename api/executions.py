"""DataSync's task execution operations: start, describe (live while it runs), list, cancel
and update (a new bandwidth limit)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError

from api.base import QUERY_TIMEOUT, Operations, Response, api_error, unreachable
from api.requests import (
    ListTaskExecutionsRequest,
    StartTaskExecutionRequest,
    TaskExecutionArnRequest,
    UpdateTaskExecutionRequest,
    parse,
)
from models.arn import execution_id, new_id
from models.errors import (
    ErrorCode,
    InvalidRequestException,
)
from models.execution import TERMINAL, Counters
from models.registry import ExecutionStart
from models.temporal import (
    DESCRIPTION_MEMO,
    EXECUTION_STATUS,
    EXECUTION_WORKFLOW,
    TASK_ARN,
)


class ExecutionOperations(Operations):
    async def start_task_execution(self, request: dict[str, Any]) -> Response:
        req = parse(StartTaskExecutionRequest, request)
        self._check_filters(req.Includes, req.Excludes)
        arn = f"{req.TaskArn}/execution/{new_id('exec')}"
        start = ExecutionStart(
            TaskArn=req.TaskArn,
            TaskExecutionArn=arn,
            OverrideOptions=req.OverrideOptions,
            Includes=req.Includes,
            Excludes=req.Excludes,
            Tags=req.Tags,
            DryRun=bool(req.DryRun),
            TaskReportConfig=req.TaskReportConfig,
            ManifestConfig=req.ManifestConfig,
        )
        await self._update("start_task_execution", start)
        return {"TaskExecutionArn": arn}

    async def describe_task_execution(self, request: dict[str, Any]) -> Response:
        req = parse(TaskExecutionArnRequest, request)
        info = await self._execution(req.TaskExecutionArn)
        description: Response | None = None
        if info.status == WorkflowExecutionStatus.RUNNING:
            handle = self.client.get_workflow_handle(info.id)
            try:
                description = await handle.query("describe", rpc_timeout=QUERY_TIMEOUT)
                # Batches in flight, from their heartbeats: asked after the query, so that a
                # batch that ends in between is not counted twice.
                description = _add(description, await self._in_flight(await handle.describe()))
            except RPCError:
                description = None  # no worker answers now: the last phase change will do
        if description is None:
            description = (await info.memo()).get(DESCRIPTION_MEMO) or {}
        description = _with_times(description)
        if info.status not in (WorkflowExecutionStatus.RUNNING, None) and (
            description.get("Status") not in TERMINAL
        ):
            # Ended without finishing its phases: terminated or timed out from outside Ferry.
            description["Status"] = "ERROR"
            result = description.setdefault("Result", {})
            result["ErrorCode"] = ErrorCode.TERMINATED
            result["ErrorDetail"] = f"The execution's workflow was {info.status.name.lower()}."
            if info.close_time:
                description["EndTime"] = info.close_time
        return description

    async def list_task_executions(self, request: dict[str, Any]) -> Response:
        req = parse(ListTaskExecutionsRequest, request)
        query = f"WorkflowType = '{EXECUTION_WORKFLOW}'"
        if req.TaskArn:
            query += f" AND {TASK_ARN.name} = '{req.TaskArn}'"
        token = base64.urlsafe_b64decode(req.NextToken) if req.NextToken else None
        iterator = self.client.list_workflows(
            query, page_size=req.MaxResults or 100, next_page_token=token
        )
        entries = []
        try:
            await iterator.fetch_next_page()
        except RPCError as error:
            raise unreachable(self.client, error) from None
        for workflow in iterator.current_page or []:
            task_arn = workflow.typed_search_attributes.get(TASK_ARN)
            status = workflow.typed_search_attributes.get(EXECUTION_STATUS) or "QUEUED"
            if workflow.status != WorkflowExecutionStatus.RUNNING and status not in TERMINAL:
                status = "ERROR"
            entries.append(
                {
                    "TaskExecutionArn": f"{task_arn}/execution/{workflow.id}",
                    "Status": status,
                    "TaskMode": "BASIC",
                }
            )
        response: Response = {"TaskExecutions": entries}
        if iterator.next_page_token:
            response["NextToken"] = base64.urlsafe_b64encode(iterator.next_page_token).decode()
        return response

    async def cancel_task_execution(self, request: dict[str, Any]) -> Response:
        req = parse(TaskExecutionArnRequest, request)
        description = await self.describe_task_execution(request)
        if description.get("Status") in TERMINAL:
            raise InvalidRequestException(
                f"Task execution {req.TaskExecutionArn} has already ended "
                f"({description.get('Status')})."
            )
        await self.client.get_workflow_handle(execution_id(req.TaskExecutionArn)).cancel()
        return {}

    async def update_task_execution(self, request: dict[str, Any]) -> Response:
        """A new bandwidth limit for a running execution, in force within seconds."""
        req = parse(UpdateTaskExecutionRequest, request)
        info = await self._execution(req.TaskExecutionArn)
        if info.status != WorkflowExecutionStatus.RUNNING:
            raise InvalidRequestException(
                f"Task execution {req.TaskExecutionArn} is no longer running."
            )
        handle = self.client.get_workflow_handle(info.id)
        try:
            await handle.execute_update("update_options", req.Options)
        except WorkflowUpdateFailedError as error:
            raise api_error(error.cause) from None
        except RPCError as error:
            raise unreachable(self.client, error) from None
        return {}

    async def _in_flight(self, info: WorkflowExecutionDescription) -> Counters:
        """Progress of the batches running now, from their heartbeats."""
        total = Counters()
        for pending in info.raw_description.pending_activities:
            if not pending.heartbeat_details.payloads:
                continue
            details = await self.client.data_converter.decode(pending.heartbeat_details.payloads)
            checkpoint = details[0] if details and isinstance(details[0], dict) else {}
            counters = Counters(**checkpoint.get("counters", {}))
            partial = checkpoint.get("partial_bytes", 0)
            counters.BytesTransferred += partial
            counters.BytesWritten += partial
            total.add(counters)
        return total


_TIME_FIELDS = ("StartTime", "LaunchTime", "EndTime")


_LIVE_COUNTERS = (
    "FilesTransferred",
    "BytesWritten",
    "BytesTransferred",
    "FilesDeleted",
    "FilesSkipped",
    "FilesVerified",
)


def _add(description: Response, in_flight: Counters) -> Response:
    for field in _LIVE_COUNTERS:
        description[field] = description.get(field, 0) + getattr(in_flight, field)
    description["BytesCompressed"] = description["BytesTransferred"]
    return description


def _with_times(description: Response) -> Response:
    for field in _TIME_FIELDS:
        value = description.get(field)
        if isinstance(value, str):
            description[field] = datetime.fromisoformat(value)
    return description
