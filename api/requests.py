"""Request shapes of the DataSync operations Ferry serves, other than a location type's own
(those are declared with the type, in models/locations/), and SHAPES: every operation's.

Field names, patterns and limits follow the botocore `datasync` model; a bad request becomes an
InvalidRequestException whose message names the field and what it accepts (models.requests).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from models import manifests, options, reports
from models.access_keys import ACCESS_KEY_ID, AccessKeyStatus
from models.agents import ACTIVATION_KEY
from models.filters import FilterRule
from models.locations import KINDS
from models.requests import (
    AgentArnValue,
    LocationArnValue,
    MaxResultsValue,
    NameValue,
    NextTokenValue,
    Request,
    TagList,
    TaskArnValue,
    TaskExecutionArnValue,
    parse,
)
from models.schedules import TaskSchedule
from models.tags import MAX_TAGS
from models.timetable import check_timetable

__all__ = ["ACCESS_KEY_SHAPES", "SHAPES", "Request", "parse"]

FilterListValue = Annotated[list[FilterRule], Field(max_length=1)]


ResourceArnValue = Annotated[
    str,
    Field(
        max_length=128,
        pattern=r"^arn:(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b):datasync:[a-z\-0-9]+:"
        r"[0-9]{12}:(agent|task|location)/(agent|task|loc)-[a-z0-9]{17}"
        r"(/execution/exec-[a-f0-9]{17})?$",
    ),
]


LogGroupArnValue = Annotated[
    str,
    Field(
        max_length=562,
        pattern=r"^arn:(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b):logs:[a-z\-0-9]+:"
        r"[0-9]{12}:log-group:([^:\*]*)(:\*)?$",
    ),
]


TimetableValue = Annotated[str, Field(max_length=4096), AfterValidator(check_timetable)]


NewTimetableValue = Annotated[
    str, Field(min_length=1, max_length=4096), AfterValidator(check_timetable)
]


OperatorValue = Literal[
    "Equals",
    "NotEquals",
    "In",
    "LessThanOrEqual",
    "LessThan",
    "GreaterThanOrEqual",
    "GreaterThan",
    "Contains",
    "NotContains",
    "BeginsWith",
]


class CreateAgentRequest(Request):
    ActivationKey: Annotated[str, Field(max_length=29, pattern=ACTIVATION_KEY.pattern)]
    AgentName: NameValue | None = None
    Tags: TagList = []
    # Accepted for DataSync's sake; an agent reaches Temporal however its host is networked.
    VpcEndpointId: str | None = None
    SubnetArns: list[str] | None = None
    SecurityGroupArns: list[str] | None = None


class AgentArnRequest(Request):
    AgentArn: AgentArnValue


class ListAgentsRequest(Request):
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None


class UpdateAgentRequest(Request):
    AgentArn: AgentArnValue
    Name: NameValue | None = None


class LocationArnRequest(Request):
    LocationArn: LocationArnValue


class LocationFilter(Request):
    Name: Literal["LocationUri", "LocationType", "CreationTime"]
    Values: list[str]
    Operator: OperatorValue


class TaskFilter(Request):
    Name: Literal["LocationId", "CreationTime"]
    Values: list[str]
    Operator: OperatorValue


class ListLocationsRequest(Request):
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None
    Filters: list[LocationFilter] = []


class CreateTaskRequest(Request):
    SourceLocationArn: LocationArnValue
    DestinationLocationArn: LocationArnValue
    Name: NameValue | None = None
    Options: options.Options | None = None
    Includes: FilterListValue = []
    Excludes: FilterListValue = []
    CloudWatchLogGroupArn: LogGroupArnValue | None = None
    Schedule: TaskSchedule | None = None
    BandwidthTimetable: NewTimetableValue | None = None
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None
    Tags: TagList = []
    TaskMode: Literal["BASIC"] | None = None


class TaskArnRequest(Request):
    TaskArn: TaskArnValue


class ListTasksRequest(Request):
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None
    Filters: list[TaskFilter] = []


class UpdateTaskRequest(Request):
    TaskArn: TaskArnValue
    Name: NameValue | None = None
    Options: options.Options | None = None
    Includes: FilterListValue | None = None
    Excludes: FilterListValue | None = None
    CloudWatchLogGroupArn: LogGroupArnValue | None = None
    Schedule: TaskSchedule | None = None
    BandwidthTimetable: TimetableValue | None = None  # "" removes it
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None


class StartTaskExecutionRequest(Request):
    TaskArn: TaskArnValue
    OverrideOptions: options.Options | None = None
    Includes: FilterListValue | None = None
    Excludes: FilterListValue | None = None
    Tags: TagList = []
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None
    # Beyond DataSync: LAUNCHING and PREPARING only; the estimates say what a run would do.
    DryRun: bool | None = None


class TaskExecutionArnRequest(Request):
    TaskExecutionArn: TaskExecutionArnValue


class UpdateTaskExecutionRequest(Request):
    TaskExecutionArn: TaskExecutionArnValue
    Options: options.Options


class TagResourceRequest(Request):
    ResourceArn: ResourceArnValue
    Tags: TagList


class UntagResourceRequest(Request):
    ResourceArn: ResourceArnValue
    Keys: Annotated[list[str], Field(min_length=1, max_length=MAX_TAGS)]


class ListTagsForResourceRequest(Request):
    ResourceArn: ResourceArnValue
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None


class ListTaskExecutionsRequest(Request):
    TaskArn: TaskArnValue | None = None
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None


SHAPES: dict[str, type[Request]] = {
    "CreateAgent": CreateAgentRequest,
    "DescribeAgent": AgentArnRequest,
    "ListAgents": ListAgentsRequest,
    "UpdateAgent": UpdateAgentRequest,
    "DeleteAgent": AgentArnRequest,
    # Each location type's three operations, from its declaration.
    **{
        operation: shape
        for kind in KINDS
        for operation, shape in (
            (f"CreateLocation{kind.name}", kind.create),
            (f"DescribeLocation{kind.name}", LocationArnRequest),
            (f"UpdateLocation{kind.name}", kind.update),
        )
        if shape is not None
    },
    "ListLocations": ListLocationsRequest,
    "DeleteLocation": LocationArnRequest,
    "CreateTask": CreateTaskRequest,
    "DescribeTask": TaskArnRequest,
    "ListTasks": ListTasksRequest,
    "UpdateTask": UpdateTaskRequest,
    "DeleteTask": TaskArnRequest,
    "StartTaskExecution": StartTaskExecutionRequest,
    "DescribeTaskExecution": TaskExecutionArnRequest,
    "ListTaskExecutions": ListTaskExecutionsRequest,
    "CancelTaskExecution": TaskExecutionArnRequest,
    "UpdateTaskExecution": UpdateTaskExecutionRequest,
    "TagResource": TagResourceRequest,
    "UntagResource": UntagResourceRequest,
    "ListTagsForResource": ListTagsForResourceRequest,
}


# Ferry's own operations, beside DataSync's, as IAM spells them: the access keys that may call
# the endpoint. Only the CLI has them; the endpoint serves DataSync's operations alone.
AccessKeyIdValue = Annotated[str, Field(pattern=ACCESS_KEY_ID.pattern)]


class CreateAccessKeyRequest(Request):
    UserName: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w+=,.@-]+$")] = "ferry"


class ListAccessKeysRequest(Request):
    pass


class UpdateAccessKeyRequest(Request):
    AccessKeyId: AccessKeyIdValue
    Status: AccessKeyStatus


class AccessKeyIdRequest(Request):
    AccessKeyId: AccessKeyIdValue


ACCESS_KEY_SHAPES: dict[str, type[Request]] = {
    "CreateAccessKey": CreateAccessKeyRequest,
    "ListAccessKeys": ListAccessKeysRequest,
    "UpdateAccessKey": UpdateAccessKeyRequest,
    "DeleteAccessKey": AccessKeyIdRequest,
}
