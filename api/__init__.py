"""DataSync's API over Temporal: one method per operation, taking a request and returning a
response in the API's shapes (dicts with DataSync's field names, timestamps as datetimes), or
raising InvalidRequestException or InternalException.

The `ferry` CLI is a thin shell over `Ferry`, and so are the workers and agents where they need
an operation (a scheduled start, an agent's activation), and the endpoint that speaks DataSync's
JSON protocol (starter/endpoint/), through `Ferry.call`. The operations are grouped by the
resource they act on, one module each; beside DataSync's, the access keys that may call the
endpoint.
"""

from __future__ import annotations

from api.access_keys import AccessKeyOperations
from api.agents import AgentOperations
from api.base import Response, method_name
from api.executions import ExecutionOperations
from api.locations import LocationOperations
from api.tags import TagOperations
from api.tasks import TaskOperations

__all__ = ["Ferry", "Response", "method_name"]


class Ferry(
    AgentOperations,
    LocationOperations,
    TaskOperations,
    ExecutionOperations,
    TagOperations,
    AccessKeyOperations,
):
    """The DataSync API over Temporal."""
