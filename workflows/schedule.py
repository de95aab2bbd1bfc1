"""What a task's Temporal Schedule starts: a short workflow that asks the registry to start an
execution of the task, so that a scheduled start queues (or is refused) like any other."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.temporal import SCHEDULED_START_WORKFLOW, START_SCHEDULED_EXECUTION


@workflow.defn(name=SCHEDULED_START_WORKFLOW)
class ScheduledStartWorkflow:
    @workflow.run
    async def run(self, task_arn: str) -> str:
        """The TaskExecutionArn it started."""
        return await workflow.execute_activity(
            START_SCHEDULED_EXECUTION,
            task_arn,
            result_type=str,
            # Once: a retry after a timeout could start a second execution.
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
