"""Names Ferry gives things in Temporal: the task queue, well-known workflow ids and the search
attributes that make executions findable in the Temporal UI and `temporal workflow list`."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

from models.arn import resource_id

TASK_QUEUE = "ferry"
REGISTRY_WORKFLOW_ID = "ferry-registry"
REGISTRY_WORKFLOW = "Registry"
EXECUTION_WORKFLOW = "TaskExecution"
SCHEDULED_START_WORKFLOW = "ScheduledStart"

# Activity names: workflows start activities by these names, and workers host them under them.
WAIT_FOR_AGENTS = "WaitForAgents"
LAUNCH_EXECUTION = "LaunchExecution"
PREPARE_TRANSFER = "PrepareTransfer"
TRANSFER_BATCH = "TransferBatch"
PREPARE_VERIFICATION = "PrepareVerification"
VERIFY_BATCH = "VerifyBatch"
VERIFY_TRANSFERRED = "VerifyTransferred"
WRITE_TASK_REPORT = "WriteTaskReport"
CLEAN_UP_EXECUTION = "CleanUpExecution"
OPEN_EXECUTIONS = "OpenExecutions"
CHECK_LOCATION = "CheckLocation"
APPLY_SCHEDULE = "ApplySchedule"
START_SCHEDULED_EXECUTION = "StartScheduledExecution"

TASK_ARN = SearchAttributeKey.for_keyword("FerryTaskArn")
EXECUTION_STATUS = SearchAttributeKey.for_keyword("FerryExecutionStatus")
SEARCH_ATTRIBUTES = (TASK_ARN, EXECUTION_STATUS)

# The memo key under which an execution keeps its latest DescribeTaskExecution response, so that
# it can be described when it has ended (or while no worker is running) without a query.
DESCRIPTION_MEMO = "TaskExecution"
TAGS_MEMO = "Tags"  # an execution's tags, given by StartTaskExecution


def agent_task_queue(agent_arn: str) -> str:
    """The task queue of one agent: it answers there for itself (its presence, a check of a
    new location on its first agent)."""
    return "ferry-" + resource_id(agent_arn)


def location_task_queue(location_arn: str) -> str:
    """The task queue every agent of a location polls: an execution's activities run there,
    on whichever of its agents takes them, so that when one is lost the rest go on, and an
    agent added to the location takes work from the next activity on."""
    return "ferry-" + resource_id(location_arn)


def schedule_id(task_arn: str) -> str:
    """A task's Temporal Schedule is named after it: `task-0123456789abcdef0`."""
    return resource_id(task_arn)
