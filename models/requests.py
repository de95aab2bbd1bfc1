"""How Ferry takes a request: a shape per operation (pydantic, field names and limits from the
botocore `datasync` model), and the InvalidRequestException that names each field a request gets
wrong. The values every resource's shapes share are here; each resource's own shapes are with it
(a location type's with its model in models/locations/)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.arn import AGENT_ARN, LOCATION_ARN, TASK_ARN, TASK_EXECUTION_ARN
from models.errors import InvalidRequestException
from models.tags import MAX_TAGS, TagListEntry

AgentArnValue = Annotated[str, Field(max_length=128, pattern=AGENT_ARN.pattern)]


LocationArnValue = Annotated[str, Field(max_length=128, pattern=LOCATION_ARN.pattern)]


TaskArnValue = Annotated[str, Field(max_length=128, pattern=TASK_ARN.pattern)]


TaskExecutionArnValue = Annotated[str, Field(max_length=128, pattern=TASK_EXECUTION_ARN.pattern)]


NameValue = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[a-zA-Z0-9\s+=._:@/-]+$")]


TagList = Annotated[list[TagListEntry], Field(max_length=MAX_TAGS)]


MaxResultsValue = Annotated[int, Field(ge=0, le=100)]


NextTokenValue = Annotated[str, Field(max_length=65535, pattern=r"^[a-zA-Z0-9=_-]+$")]


# The partitions of AWS ARNs.
PARTITIONS = "(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b)"


class Request(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


R = TypeVar("R", bound=Request)


AgentArnList = Annotated[list[AgentArnValue], Field(min_length=1, max_length=8)]


def parse(shape: type[R], request: dict[str, Any]) -> R:
    try:
        return shape.model_validate(request)
    except ValidationError as error:
        raise InvalidRequestException(explain(error, shape)) from None


def explain(error: ValidationError, shape: type[BaseModel]) -> str:
    """One sentence per problem, each naming the field (Options.VerifyMode, Includes[0].Value)."""
    problems = []
    for detail in error.errors(include_url=False):
        field = _field_name(detail["loc"])
        kind = detail["type"]
        if kind == "extra_forbidden":
            known = ", ".join(_fields_at(shape, detail["loc"][:-1]))
            problems.append(f"Unknown parameter {field}; the parameters here are: {known}.")
        elif kind == "missing":
            problems.append(f"Missing required parameter {field}.")
        elif kind == "value_error":
            # Ferry's own checks: their messages mostly name the field already.
            text = str(detail["ctx"]["error"])
            problems.append(text if text.startswith(field) else f"{field}: {text}.")
        elif kind == "string_pattern_mismatch" and field.endswith("Arn"):
            form = _ARN_FORMS.get(field, "a valid ARN")
            problems.append(f"{field}: {detail['input']!r} is not {form}.")
        else:
            given = detail.get("input")
            shown = f" (got {given!r})" if not isinstance(given, (dict, list)) else ""
            problems.append(f"{field}: {detail['msg']}{shown}.")
    return " ".join(problems)


_ARN_FORMS = {
    "AgentArn": "an agent ARN (arn:aws:datasync:REGION:ACCOUNT:agent/agent-ID)",
    "LocationArn": "a location ARN (arn:aws:datasync:REGION:ACCOUNT:location/loc-ID)",
    "TaskArn": "a task ARN (arn:aws:datasync:REGION:ACCOUNT:task/task-ID)",
    "TaskExecutionArn": (
        "a task execution ARN (arn:aws:datasync:REGION:ACCOUNT:task/task-ID/execution/exec-ID)"
    ),
}


_ARN_FORMS["SourceLocationArn"] = _ARN_FORMS["DestinationLocationArn"] = _ARN_FORMS["LocationArn"]


_ARN_FORMS["ResourceArn"] = "the ARN of an agent, a location, a task or a task execution"


_ARN_FORMS["CloudWatchLogGroupArn"] = "a CloudWatch log group ARN"


_ARN_FORMS["S3BucketArn"] = "an S3 bucket ARN (arn:aws:s3:::BUCKET) or access point ARN"


_ARN_FORMS["S3Config.BucketAccessRoleArn"] = "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"


def _field_name(loc: tuple[Any, ...]) -> str:
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not str(part).startswith(("function-", "nullable")):
            name += f".{part}" if name else str(part)
    return name or "request"


def _fields_at(shape: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    model: Any = shape
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        model = _model_in(annotation)
        if model is None:
            return []
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return getattr(annotation, "__origin__", None) and _model_in(annotation.__origin__)
