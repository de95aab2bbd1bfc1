"""Errors in DataSync's shape, and the ErrorCodes an execution can end with."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

# ApplicationError types that cross the Temporal boundary and come back to the client as the
# DataSync exception of the same name.
INVALID_REQUEST = "InvalidRequestException"
INTERNAL = "InternalException"


class DataSyncError(Exception):
    """An API error: `code` is DataSync's exception name, `message` what the user reads."""

    code = INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestException(DataSyncError):
    """The request is malformed or refers to something that does not exist."""

    code = INVALID_REQUEST


class InternalException(DataSyncError):
    """Ferry itself failed, or could not reach Temporal or a worker."""

    code = INTERNAL


def missing(field: str, resource: str, arn: str) -> str:
    """DataSync's words for a resource that is not there, which its clients match (Terraform
    forgets a resource on them): an agent "does not exist", anything else is "not found"."""
    return f"{field}: {resource} {arn} {'does not exist' if resource == 'agent' else 'not found'}."


def invalid_request(message: str) -> ApplicationError:
    """A rejection from a workflow's Update validator, which the client raises as
    InvalidRequestException."""
    return ApplicationError(message, type=INVALID_REQUEST, non_retryable=True)


class ErrorCode:
    """Result.ErrorCode values of a failed execution (DataSync leaves the set open)."""

    AGENT_OFFLINE = "AgentOffline"
    LOCATION_UNAVAILABLE = "LocationUnavailable"
    DESTINATION_UNAVAILABLE = "DestinationUnavailable"
    FILES_FAILED = "FilesFailed"
    VERIFICATION_FAILED = "VerificationFailed"
    STORAGE_ERROR = "StorageError"
    STAGING_UNAVAILABLE = "StagingUnavailable"  # the staging store lacks what another wrote
    CANCELLED = "Cancelled"
    TERMINATED = "Terminated"
    INTERNAL_ERROR = "InternalError"


# The codes an execution reports as they are; any other failure is an InternalError.
ERROR_CODES = frozenset(
    value for name, value in vars(ErrorCode).items() if name.isupper() and isinstance(value, str)
)
