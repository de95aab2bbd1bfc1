"""The DataSync operations over Temporal: what every group of them shares.

The registry workflow holds agents, locations and tasks: a request becomes an Update of it
(validated before anything is written) or a Query; executions are workflows of their own.
Errors become DataSync's InvalidRequestException and InternalException.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.presence import last_poll
from api.requests import ACCESS_KEY_SHAPES, SHAPES
from models.agents import Agent
from models.arn import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    TASK_EXECUTION_ARN,
    execution_id,
    task_arn_of,
)
from models.errors import (
    INVALID_REQUEST,
    DataSyncError,
    InternalException,
    InvalidRequestException,
    missing,
)
from models.locations import KINDS, Location, LocationBase
from models.tasks import Task
from models.temporal import (
    REGISTRY_WORKFLOW,
    REGISTRY_WORKFLOW_ID,
    TASK_ARN,
    TASK_QUEUE,
)

T = TypeVar("T")
L = TypeVar("L", bound=LocationBase)
Response = dict[str, Any]
QUERY_TIMEOUT = timedelta(seconds=10)
# The registry's Updates and Queries one process has in flight: Temporal allows 10 Updates of one
# workflow in flight, and holds few Queries while it works (bench/endpoint.py: fewer errors and
# shorter waits with one at a time than with four).
REGISTRY_WRITES = 8
REGISTRY_READS = 1


class Operations:
    """The DataSync API over Temporal: the client, the registry, and finding resources."""

    def __init__(self, client: Client, region: str | None = None, account: str | None = None):
        self.client = client
        self.region = region or os.environ.get("FERRY_REGION", DEFAULT_REGION)
        self.account = account or os.environ.get("FERRY_ACCOUNT_ID", DEFAULT_ACCOUNT)
        if not re.fullmatch(r"[a-z\-0-9]+", self.region) or not re.fullmatch(
            r"[0-9]{12}", self.account
        ):
            raise InvalidRequestException(
                "FERRY_REGION must be lower-case letters, digits and '-', and FERRY_ACCOUNT_ID "
                "twelve digits."
            )
        self._worker_seen = False
        # What this process has in flight on the registry: see _update and _query.
        self._writing = asyncio.Semaphore(REGISTRY_WRITES)
        self._reading = asyncio.Semaphore(REGISTRY_READS)
        self._next_reads: dict[tuple[Any, ...], asyncio.Task[Any]] = {}

    async def call(self, operation: str, request: dict[str, Any]) -> Response:
        """Run an operation by its DataSync name (`CreateTask`), or one of Ferry's own."""
        if operation not in SHAPES and operation not in ACCESS_KEY_SHAPES:
            raise InvalidRequestException(f"Unknown operation {operation}.")
        return await getattr(self, method_name(operation))(request)

    async def _execution(self, arn: str) -> WorkflowExecutionDescription:
        """The execution's workflow, checked to belong to the task its ARN names."""
        if not TASK_EXECUTION_ARN.match(arn):
            raise no_execution(arn)
        try:
            info = await self.client.get_workflow_handle(execution_id(arn)).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise no_execution(arn) from None
            raise unreachable(self.client, error) from None
        if info.typed_search_attributes.get(TASK_ARN) != task_arn_of(arn):
            raise no_execution(arn)
        return info

    async def _agent(self, arn: str) -> Agent:
        for agent in await self._query("agents", list[Agent]):
            if agent.AgentArn == arn:
                return agent
        raise InvalidRequestException(missing("AgentArn", "agent", arn))

    async def _location(self, arn: str, kind: type[L] = LocationBase) -> L:  # type: ignore[assignment]
        for location in await self._query("locations", list[Location]):
            if location.LocationArn == arn:
                if not isinstance(location, kind):
                    raise InvalidRequestException(
                        f"LocationArn: location {arn} is not {_title(kind)} location "
                        f"but {location.location_uri}."
                    )
                return location
        raise InvalidRequestException(missing("LocationArn", "location", arn))

    async def _task(self, arn: str) -> Task:
        for task in await self._query("tasks", list[Task]):
            if task.TaskArn == arn:
                return task
        raise InvalidRequestException(missing("TaskArn", "task", arn))

    async def _update(self, update: str, *args: Any) -> Any:
        """An Update on the registry, which is started by the first one; REGISTRY_WRITES at once
        from this process, as Temporal refuses more than 10 in flight on one workflow."""
        async with self._writing:
            return await self._update_now(update, *args)

    async def _update_now(self, update: str, *args: Any) -> Any:
        await self._require_worker()
        start = WithStartWorkflowOperation(
            REGISTRY_WORKFLOW,
            None,
            id=REGISTRY_WORKFLOW_ID,
            task_queue=TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            return await self.client.execute_update_with_start_workflow(
                update, args=args, start_workflow_operation=start
            )
        except WorkflowUpdateFailedError as error:
            raise api_error(error.cause) from None
        except RPCError as error:
            raise unreachable(self.client, error) from None

    async def _query(self, query: str, result_type: type[T], *args: Any) -> T:
        """A Query on the registry; what it holds when nothing was ever created is empty.

        Temporal holds few queries of one workflow while it works (more are refused: "consistent
        query buffer is full"), and every read of Ferry's is one of the registry: so this
        process runs REGISTRY_READS at once, and those who ask for the same while one waits its
        turn share it. The query they share starts after they asked: a read sees every write
        answered before it."""
        key = (query, result_type, *args)
        shared = self._next_reads.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._query_in_turn(key, query, result_type, *args))
            self._next_reads[key] = shared
        result = await asyncio.shield(shared)
        return copy.copy(result)  # a list of one's own

    async def _query_in_turn(
        self, key: tuple[Any, ...], query: str, result_type: type[T], *args: Any
    ) -> T:
        async with self._reading:
            del self._next_reads[key]  # who asks from now on waits for a query begun later
            return await self._query_now(query, result_type, *args)

    async def _query_now(self, query: str, result_type: type[T], *args: Any) -> T:
        handle = self.client.get_workflow_handle(REGISTRY_WORKFLOW_ID)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + QUERY_TIMEOUT.total_seconds()
        pause = 0.1
        while True:
            try:
                return await handle.query(
                    query, args=args, result_type=result_type, rpc_timeout=QUERY_TIMEOUT
                )
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return result_type()  # type: ignore[call-arg]
                # Other processes' queries filled the workflow's buffer: a read may wait its turn.
                if error.status == RPCStatusCode.RESOURCE_EXHAUSTED and loop.time() < deadline:
                    await asyncio.sleep(pause)
                    pause = min(2 * pause, 1.0)
                    continue
                await self._require_worker()
                raise unreachable(self.client, error) from None

    async def _require_worker(self, patience: float = 5.0) -> None:
        """Fail fast, and say why, when no worker would take the request (allowing one that
        is just starting a few seconds to poll)."""
        if self._worker_seen:
            return
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            try:
                seen = await last_poll(
                    self.client, TASK_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
                )
            except RPCError as error:
                raise unreachable(self.client, error) from None
            if seen is not None:
                self._worker_seen = True
                return
            if asyncio.get_running_loop().time() > deadline:
                raise InternalException(
                    f"No Ferry worker is polling task queue {TASK_QUEUE!r} on "
                    f"{self.client.service_client.config.target_host}: start `ferry dev` (the "
                    "embedded stack) or `ferry worker`."
                )
            await asyncio.sleep(0.1)


def method_name(operation: str) -> str:
    """`CreateTask` -> `create_task`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def api_error(cause: BaseException | None) -> DataSyncError:
    if isinstance(cause, ApplicationError) and cause.type == INVALID_REQUEST:
        return InvalidRequestException(cause.message)
    return InternalException(str(cause) if cause else "the request failed")


def unreachable(client: Client, error: RPCError) -> InternalException:
    return InternalException(
        f"Temporal at {client.service_client.config.target_host} did not answer "
        f"({error.status.name if error.status else 'error'}: {error.message})."
    )


def listed(field: str, entries: list[Any], token: str | None) -> Response:
    """A List* response: the page's entries, and NextToken when there are more."""
    response: Response = {field: entries}
    if token:
        response["NextToken"] = token
    return response


def paginate(
    items: list[T],
    order: Callable[[T], tuple[str, ...]],
    max_results: int | None,
    token: str | None,
) -> tuple[list[T], str | None]:
    """A page of `items` in `order`, and the token of the next page if there is one. The token
    names where the page ended, not a position, so that resources created or deleted between
    pages neither repeat nor hide the rest."""
    ordered = sorted(items, key=order)
    if token:
        try:
            after = tuple(json.loads(base64.urlsafe_b64decode(token.encode())))
        except ValueError:
            raise InvalidRequestException(
                "NextToken: not a token this list gave; start again without it."
            ) from None
        ordered = [item for item in ordered if order(item) > after]
    size = max_results or 100
    page = ordered[:size]
    if len(ordered) <= size:
        return page, None
    return page, base64.urlsafe_b64encode(json.dumps(order(page[-1])).encode()).decode()


def matches(actual: Any, operator: str, values: list[str]) -> bool:
    """DataSync's list filters; LocationId matches a task by either of its locations."""
    candidates = actual if isinstance(actual, list) else [actual]
    tests: dict[str, Callable[[str, str], bool]] = {
        "Equals": lambda a, v: a == v,
        "In": lambda a, v: a == v,
        "LessThan": lambda a, v: a < v,
        "LessThanOrEqual": lambda a, v: a <= v,
        "GreaterThan": lambda a, v: a > v,
        "GreaterThanOrEqual": lambda a, v: a >= v,
        "Contains": lambda a, v: v in a,
        "BeginsWith": lambda a, v: a.startswith(v),
    }
    if operator in ("NotEquals", "NotContains"):
        positive = tests["Equals" if operator == "NotEquals" else "Contains"]
        return not any(positive(a, v) for a in candidates for v in values)
    return any(tests[operator](a, v) for a in candidates for v in values)


def no_execution(arn: str) -> InvalidRequestException:
    return InvalidRequestException(missing("TaskExecutionArn", "task execution", arn))


def _title(model: type[LocationBase]) -> str:
    return next(kind.title for kind in KINDS if kind.model is model)
