"""The activities of the registry: what it must ask the world outside its own state."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.storage import open_storage
from activities.storage.base import StorageError
from models.errors import INVALID_REQUEST
from models.locations import Location


class RegistryActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name="CheckLocation")
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

    @activity.defn(name="OpenExecutions")
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
