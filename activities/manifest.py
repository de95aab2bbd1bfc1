"""A manifest: the paths an execution transfers, as a CSV file in a location (DataSync's format:
a path relative to the source location on each line, RFC 4180 quoting, an optional second
column with an object version). PREPARING and VERIFYING then look at those paths only.

`ManifestWalk` stands in for the folder walk: it yields (source, destination) pairs for the
listed paths in the manifest's order, reading the manifest as a stream, and records what it
cannot take (a path missing from the source, a folder, a malformed line) as issues.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

import xxhash

from activities.storage import open_storage
from activities.storage.base import (
    DIR,
    Entry,
    Reader,
    Storage,
    StorageError,
    describe_error,
)
from models.execution import ExecutionInput, FileIssue
from models.filters import PathFilter, Scope


class _RawReader(io.RawIOBase):
    """A storage Reader as a Python binary stream, for csv over a text wrapper."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._reader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def manifest_paths(execution: ExecutionInput) -> Iterator[tuple[int, str]]:
    """(line number, path) of each row of the execution's manifest."""
    assert execution.ManifestConfig is not None and execution.ManifestLocation is not None
    source = execution.ManifestConfig.Source.Location
    assert source is not None
    field = f"ManifestConfig.Source.Location.ManifestObjectPath {source.ManifestObjectPath}"
    storage = open_storage(execution.ManifestLocation)
    try:
        reader = storage.open_read(source.ManifestObjectPath.lstrip("/"))
    except OSError as error:
        storage.close()
        raise StorageError(f"{field}: {describe_error(error)}") from error
    number = 0
    try:
        text = io.TextIOWrapper(io.BufferedReader(_RawReader(reader)), encoding="utf-8", newline="")
        for number, row in enumerate(csv.reader(text), start=1):
            if row and row[0]:
                yield number, row[0]
    except (UnicodeDecodeError, csv.Error) as error:
        raise StorageError(
            f"{field}: line {number + 1} is not UTF-8 CSV ({error}); a manifest has one path "
            "relative to the source location on each line."
        ) from error
    finally:
        storage.close_reader(reader)
        storage.close()


def _selected(paths: PathFilter, path: str) -> bool:
    """Whether the task's filters take `path`, deciding folder by folder as a listing does."""
    scope = Scope.ON_THE_WAY
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        scope = paths.scope("/".join(parts[:depth]), depth < len(parts), scope)
        if scope is Scope.OUT:
            return False
    return True


class ManifestWalk:
    """The manifest's paths as (source, destination) pairs; the destination is looked at only
    when `listed`. Attributes as FolderWalk's, for the planner and verification."""

    def __init__(
        self, execution: ExecutionInput, beat: Callable[[], None], *, listed: bool = True
    ) -> None:
        self.execution = execution
        self.beat = beat
        self.listed = listed
        self.issues: list[FileIssue] = []
        self.unlisted: set[str] = set()
        self.stale_temps: list[str] = []
        self.equal = 0

    def __iter__(self) -> Iterator[tuple[Entry | None, Entry | None]]:
        tag = self.execution.execution_id
        source = open_storage(self.execution.Source, tag)
        destination = open_storage(self.execution.Destination, tag)
        paths = PathFilter(self.execution.Includes, self.execution.Excludes)
        seen: set[int] = set()  # hashes of the paths taken, to take each once
        try:
            for number, given in manifest_paths(self.execution):
                self.beat()
                path = given.lstrip("/")  # names may begin or end with spaces
                if any(part in ("", ".", "..") for part in path.split("/")):
                    self._issue(given, "manifest", f"line {number} is not a relative path")
                    continue
                key = xxhash.xxh64_intdigest(path.encode(errors="surrogateescape"))
                if key in seen or not _selected(paths, path):
                    continue
                seen.add(key)
                pair = self._pair(source, destination, path)
                if pair is not None:
                    yield pair
        finally:
            source.close()
            destination.close()

    def _pair(
        self, source: Storage, destination: Storage, path: str
    ) -> tuple[Entry, Entry | None] | None:
        try:
            found = source.stat(path)
            there = destination.stat(path) if self.listed and found is not None else None
        except (OSError, ValueError) as error:
            detail = describe_error(error) if isinstance(error, OSError) else str(error)
            self._issue(path, "read", detail)
            return None
        if found is None:
            self._issue(path, "missing", "listed in the manifest but not in the source location")
            return None
        if found.kind == DIR:
            self._issue(path, "manifest", "is a folder; a manifest lists files")
            return None
        return found, there

    def _issue(self, path: str, kind: str, detail: str) -> None:
        self.issues.append(FileIssue(path=path, kind=kind, detail=detail))
