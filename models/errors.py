"""Errors in DataSync's shape, and the ErrorCodes an execution can end with."""

from __future__ import annotations

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


class ErrorCode:
    """Result.ErrorCode values of a failed execution (DataSync leaves the set open)."""

    LOCATION_UNAVAILABLE = "LocationUnavailable"
    DESTINATION_UNAVAILABLE = "DestinationUnavailable"
    FILES_FAILED = "FilesFailed"
    VERIFICATION_FAILED = "VerificationFailed"
    STORAGE_ERROR = "StorageError"
    CANCELLED = "Cancelled"
    TERMINATED = "Terminated"
    INTERNAL_ERROR = "InternalError"


# The codes an execution reports as they are; any other failure is an InternalError.
ERROR_CODES = frozenset(
    value for name, value in vars(ErrorCode).items() if name.isupper() and isinstance(value, str)
)
