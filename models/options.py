"""DataSync's task `Options`: the 15 fields, their values, defaults and the combinations DataSync
rejects."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VerifyModeValue = Literal["POINT_IN_TIME_CONSISTENT", "ONLY_FILES_TRANSFERRED", "NONE"]
OverwriteModeValue = Literal["ALWAYS", "NEVER"]
AtimeValue = Literal["NONE", "BEST_EFFORT"]
MtimeValue = Literal["NONE", "PRESERVE"]
IdMappingValue = Literal["NONE", "INT_VALUE", "NAME", "BOTH"]
PreserveDeletedFilesValue = Literal["PRESERVE", "REMOVE"]
PreserveDevicesValue = Literal["NONE", "PRESERVE"]
PosixPermissionsValue = Literal["NONE", "PRESERVE"]
TaskQueueingValue = Literal["ENABLED", "DISABLED"]
LogLevelValue = Literal["OFF", "BASIC", "TRANSFER"]
TransferModeValue = Literal["CHANGED", "ALL"]
SecurityDescriptorCopyFlagsValue = Literal["NONE", "OWNER_DACL", "OWNER_DACL_SACL"]
ObjectTagsValue = Literal["PRESERVE", "NONE"]

NO_BANDWIDTH_LIMIT = -1


class Options(BaseModel):
    """Options as given by a user: any subset of the fields; unset ones are None."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    VerifyMode: VerifyModeValue | None = None
    OverwriteMode: OverwriteModeValue | None = None
    Atime: AtimeValue | None = None
    Mtime: MtimeValue | None = None
    Uid: IdMappingValue | None = None
    Gid: IdMappingValue | None = None
    PreserveDeletedFiles: PreserveDeletedFilesValue | None = None
    PreserveDevices: PreserveDevicesValue | None = None
    PosixPermissions: PosixPermissionsValue | None = None
    BytesPerSecond: int | None = Field(default=None, ge=-1)
    TaskQueueing: TaskQueueingValue | None = None
    LogLevel: LogLevelValue | None = None
    TransferMode: TransferModeValue | None = None
    SecurityDescriptorCopyFlags: SecurityDescriptorCopyFlagsValue | None = None
    ObjectTags: ObjectTagsValue | None = None

    def given(self) -> dict[str, object]:
        """The fields the user set."""
        return self.model_dump(exclude_none=True)


DEFAULTS = Options(
    VerifyMode="POINT_IN_TIME_CONSISTENT",
    OverwriteMode="ALWAYS",
    Atime="BEST_EFFORT",
    Mtime="PRESERVE",
    Uid="INT_VALUE",
    Gid="INT_VALUE",
    PreserveDeletedFiles="PRESERVE",
    PreserveDevices="NONE",
    PosixPermissions="PRESERVE",
    BytesPerSecond=NO_BANDWIDTH_LIMIT,
    TaskQueueing="ENABLED",
    LogLevel="OFF",
    TransferMode="CHANGED",
    SecurityDescriptorCopyFlags="OWNER_DACL",
    ObjectTags="PRESERVE",
)


def resolve_options(*layers: Options | None) -> Options:
    """Defaults, then each layer's set fields on top (task options, then start overrides).

    Raises ValueError with a message naming the fields when the result is a combination
    DataSync rejects.
    """
    merged = DEFAULTS.model_dump()
    for layer in layers:
        if layer is not None:
            merged.update(layer.given())
    options = Options(**merged)
    check_combination(options)
    return options


def check_combination(options: Options) -> None:
    if options.BytesPerSecond == 0:
        raise ValueError(
            "Options.BytesPerSecond=0 is not a valid limit: use -1 for no limit or a positive "
            "number of bytes per second."
        )
    if options.Atime == "BEST_EFFORT" and options.Mtime != "PRESERVE":
        raise ValueError(
            "Options.Atime=BEST_EFFORT requires Options.Mtime=PRESERVE: set Mtime=PRESERVE, "
            "or set both Atime=NONE and Mtime=NONE."
        )
    if options.Mtime == "NONE" and options.Atime != "NONE":
        raise ValueError(
            "Options.Mtime=NONE requires Options.Atime=NONE: set Atime=NONE too, or keep "
            "Mtime=PRESERVE."
        )
    if options.PreserveDeletedFiles == "REMOVE" and options.TransferMode == "ALL":
        raise ValueError(
            "Options.PreserveDeletedFiles=REMOVE can't be used with Options.TransferMode=ALL: "
            "with ALL the destination is not scanned, so there is no way to know what to delete. "
            "Use TransferMode=CHANGED, or PreserveDeletedFiles=PRESERVE."
        )
