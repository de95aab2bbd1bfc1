"""Names Ferry gives things in Temporal: the task queue, well-known workflow ids and the search
attributes that make executions findable in the Temporal UI and `temporal workflow list`."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "ferry"
REGISTRY_WORKFLOW_ID = "ferry-registry"
REGISTRY_WORKFLOW = "Registry"
EXECUTION_WORKFLOW = "TaskExecution"

TASK_ARN = SearchAttributeKey.for_keyword("FerryTaskArn")
EXECUTION_STATUS = SearchAttributeKey.for_keyword("FerryExecutionStatus")
SEARCH_ATTRIBUTES = (TASK_ARN, EXECUTION_STATUS)

# The memo key under which an execution keeps its latest DescribeTaskExecution response, so that
# it can be described when it has ended (or while no worker is running) without a query.
DESCRIPTION_MEMO = "TaskExecution"
TAGS_MEMO = "Tags"  # an execution's tags, given by StartTaskExecution
