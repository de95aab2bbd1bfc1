"""Comparing two entries by what a task keeps, and what a destination can hold at all: used to
decide what to transfer (PREPARING) and to check the result (VERIFYING)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from activities.storage.base import (
    DIR,
    FILE,
    KIND_NAMES,
    SPECIAL_KINDS,
    SYMLINK,
    Entry,
    MetadataPolicy,
)
from models.locations import KIND_OF, Location


@dataclass(slots=True)
class Differences:
    content: list[str]  # the data differs: a copy is needed
    metadata: list[str]  # only metadata differs: setting it is enough

    def __bool__(self) -> bool:
        return bool(self.content or self.metadata)

    def describe(self) -> str:
        return ", ".join(self.content + self.metadata)


def compare(
    source: Entry, destination: Entry, policy: MetadataPolicy, resolution_ns: int = 1
) -> Differences:
    """How `destination` differs from `source` in the data and the metadata `policy` keeps.

    Atime is never compared: reading a file changes it on most file systems.
    """
    content: list[str] = []
    metadata: list[str] = []
    if source.kind != destination.kind:
        content.append(f"{KIND_NAMES[destination.kind]} instead of {KIND_NAMES[source.kind]}")
        return Differences(content, metadata)
    same_time = abs(source.mtime_ns - destination.mtime_ns) < resolution_ns
    if source.kind == FILE:
        if source.size != destination.size:
            content.append(f"size {destination.size} instead of {source.size}")
        if policy.mtime and not same_time:
            content.append(_mtime(source, destination))
        elif not policy.mtime and source.mtime_ns > destination.mtime_ns:
            # Without preserved mtimes, a source newer than its copy was modified since.
            content.append("source modified after the destination was written")
    elif source.kind == SYMLINK:
        if source.target != destination.target:
            content.append(f"link target {destination.target!r} instead of {source.target!r}")
    elif source.kind != DIR and source.rdev != destination.rdev:
        content.append(f"device number {destination.rdev} instead of {source.rdev}")
    times_kept = source.kind != SYMLINK or policy.link_times
    if policy.mtime and source.kind != FILE and times_kept and not same_time:
        metadata.append(_mtime(source, destination))
    if policy.mode and source.kind != SYMLINK:
        bits = policy.mode_bits
        if source.mode & bits != destination.mode & bits:
            metadata.append(
                f"mode {destination.mode & bits:04o} instead of {source.mode & bits:04o}"
            )
    if policy.uid and source.uid != destination.uid:
        metadata.append(f"uid {destination.uid} instead of {source.uid}")
    if policy.gid and source.gid != destination.gid:
        metadata.append(f"gid {destination.gid} instead of {source.gid}")
    # Names are compared where both sides have them (a POSIX source has none to keep).
    if policy.owner_name and source.owner and source.owner != destination.owner:
        metadata.append(f"owner {destination.owner!r} instead of {source.owner!r}")
    if policy.group_name and source.group and source.group != destination.group:
        metadata.append(f"group {destination.group!r} instead of {source.group!r}")
    return Differences(content, metadata)


def _mtime(source: Entry, destination: Entry) -> str:
    return f"mtime {_time(destination.mtime_ns)} instead of {_time(source.mtime_ns)}"


def _time(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{fraction:09d}Z"


class Holding:
    """What a destination can hold of the source's entries, as a walk meets them in order: a
    name it refuses, a kind it has not (symbolic links; devices, when `devices` are kept), and
    everything inside a folder it cannot hold."""

    def __init__(self, destination: Location, devices: bool) -> None:
        self.can = destination.capabilities
        self.name = f"the destination ({KIND_OF[destination.LocationType].title} location)"
        self.devices = devices
        self._unheld: str | None = None  # the folder being walked that cannot be held
        # Where names differ in more than case: the folders being walked, with the names of
        # their children so far, case-folded, as the walk gave them.
        self._folded: list[tuple[str, dict[str, str]]] = []

    def why_not(self, entry: Entry) -> str | None:
        """Why the destination cannot hold `entry` (None: it can)."""
        if self._unheld is not None:
            if entry.path.startswith(self._unheld + "/"):
                return f"it lies in /{self._unheld}, which {self.name} cannot hold"
            self._unheld = None
        reason = None
        if entry.path and (refused := self.can.refuses(entry.path.rpartition("/")[2])):
            reason = f"{self.name} cannot hold {refused}"
        elif len(entry.path.encode(errors="surrogateescape")) > self.can.max_path_bytes:
            reason = f"{self.name} cannot hold a path longer than {self.can.max_path_bytes} bytes"
        elif unreachable := self.can.unreachable(entry.path):
            reason = f"{self.name} cannot reach {unreachable}"
        elif not self.can.case_sensitive and (same := self._same_name(entry.path)):
            reason = (
                f"{self.name} cannot hold it beside /{same}: names that differ only in case "
                "are one name there"
            )
        elif entry.kind == SYMLINK and not self.can.symlinks:
            reason = f"{self.name} cannot hold symbolic links"
        elif entry.kind in SPECIAL_KINDS and self.devices and not self.can.devices:
            reason = f"{self.name} cannot hold devices or named pipes"
        if reason is not None and entry.kind == DIR:
            self._unheld = entry.path
        return reason

    def _same_name(self, path: str) -> str | None:
        """The path of an earlier child of the same folder whose name differs from this one's
        only in case (None: there is none); the walk gives a folder's children in order, each
        subfolder's subtree after it."""
        if not path:
            return None
        parent, _, name = path.rpartition("/")
        while self._folded and not _below(parent, self._folded[-1][0]):
            self._folded.pop()
        if not self._folded or self._folded[-1][0] != parent:
            self._folded.append((parent, {}))
        seen = self._folded[-1][1]
        earlier = seen.setdefault(name.casefold(), path)
        return earlier if earlier != path else None

    @property
    def empty_folders(self) -> bool:
        return self.can.empty_folders


def _below(path: str, folder: str) -> bool:
    return folder == "" or path == folder or path.startswith(folder + "/")
