"""DataSync's wire protocol, AWS JSON 1.1: which operation a request asks for, and how answers
and errors are written (timestamps as epoch seconds, absent fields absent, errors as
`{"__type", "message"}`, with DataSync's `errorCode` on its own two exceptions)."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from api.requests import SHAPES
from models.errors import INTERNAL, INVALID_REQUEST, DataSyncError
from starter.endpoint.signatures import Refused

TARGET_PREFIX = "FmrsService."
CONTENT_TYPE = "application/x-amz-json-1.1"
# DataSync's largest request (an SMB location's keytab and krb5.conf) is under 300 KiB.
MAX_BODY_BYTES = 1 << 20
# The errorCode DataSync's model gives its two exceptions (a string, its values unlisted): what
# DataSync answers a request it refuses with ("InvalidParameter"), and its counterpart for a
# failure of its own.
ERROR_CODES = {INVALID_REQUEST: "InvalidParameter", INTERNAL: "InternalError"}


@functools.cache
def datasync_operations() -> frozenset[str]:
    """Every operation of DataSync's service model (botocore's), implemented by Ferry or not."""
    import botocore.session

    return frozenset(botocore.session.get_session().get_service_model("datasync").operation_names)


def operation(target: str | None) -> str:
    """The operation an X-Amz-Target names: one of DataSync's that Ferry serves, or Ferry's own
    beside them (CreateLocationLocal); Refused otherwise."""
    name = (target or "").removeprefix(TARGET_PREFIX)
    if target and target.startswith(TARGET_PREFIX) and name in SHAPES:
        return name
    if name not in datasync_operations():
        raise Refused("UnknownOperationException", f"Unknown operation: {target or '(none)'}")
    types = sorted(
        s.removeprefix("CreateLocation") for s in SHAPES if s.startswith("CreateLocation")
    )
    raise Refused(
        "InvalidRequestException",
        f"{name} is not supported by Ferry: it serves DataSync's operations on agents, tasks, "
        f"executions, tags and these location types: {', '.join(types)}.",
        prefix="",
    )


def request(body: bytes) -> dict[str, Any]:
    """The request's fields; Refused unless the body is a JSON object."""
    try:
        fields = json.loads(body) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Refused("SerializationException", f"The request body is not JSON: {error}.") from None
    if not isinstance(fields, dict):
        raise Refused("SerializationException", "The request body must be a JSON object.")
    return fields


def answer(response: dict[str, Any]) -> bytes:
    return json.dumps(_wire(response), separators=(",", ":"), ensure_ascii=False).encode()


def _wire(value: Any) -> Any:
    """A response as the JSON protocol has it: datetimes as epoch seconds, no nulls."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    if isinstance(value, datetime):
        seconds = value.timestamp()
        return int(seconds) if seconds.is_integer() else seconds
    return value


def error(kind: str, message: str) -> bytes:
    body = {"__type": kind, "message": message}
    if kind in ERROR_CODES:
        body["errorCode"] = ERROR_CODES[kind]
    return json.dumps(body).encode()


def status_of(failure: DataSyncError) -> int:
    return 500 if failure.code == INTERNAL else 400
