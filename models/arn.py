"""DataSync ARNs and the identifiers inside them."""

from __future__ import annotations

import re
import secrets

# Where Ferry's ARNs say they are: a region shaped like AWS's, which Terraform's AWS provider
# insists on ([a-z]{2}(-[a-z]+)+-N), under "xx", ISO 3166's code for private use, so that it is
# never taken for a real one. FERRY_REGION and FERRY_ACCOUNT_ID change them.
DEFAULT_REGION = "xx-ferry-1"
DEFAULT_ACCOUNT = "000000000000"

_PREFIX = r"arn:(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b):datasync:[a-z\-0-9]+:[0-9]{12}:"
AGENT_ARN = re.compile(_PREFIX + r"agent/(agent-[0-9a-z]{17})$")
LOCATION_ARN = re.compile(_PREFIX + r"location/(loc-[0-9a-z]{17})$")
TASK_ARN = re.compile(_PREFIX + r"task/(task-[0-9a-f]{17})$")
TASK_EXECUTION_ARN = re.compile(
    _PREFIX + r"task/(task-[0-9a-f]{17})/execution/(exec-[0-9a-f]{17})$"
)


def new_id(prefix: str) -> str:
    """A fresh resource id such as `task-0123456789abcdef0` (17 hex digits, as DataSync)."""
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def arn_prefix(region: str, account: str) -> str:
    return f"arn:aws:datasync:{region}:{account}:"


def resource_id(arn: str) -> str:
    """The id at the end of an ARN: `task-...`, `loc-...`, `agent-...`."""
    return arn.rpartition("/")[2]


def execution_id(task_execution_arn: str) -> str:
    """The `exec-...` id, which is also the execution's Temporal workflow id."""
    return task_execution_arn.rpartition("/execution/")[2]


def task_arn_of(task_execution_arn: str) -> str:
    return task_execution_arn.split("/execution/", 1)[0]
