"""Listing both locations side by side, folder by folder, in walk order.

A folder is listed on both sides at once by a pool process, which pairs the children by name
and keeps back the pairs that need no attention (a file equal on both sides) as a count. The
activity's thread walks the folders depth-first with names sorted and receives the pairs in that
order, which is the order of the plan; it asks for the folders it will enter next ahead of time,
so that listing runs on every core while it plans. Nothing holds a whole tree in memory.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from activities.metadata import compare
from activities.pool import WorkPool
from activities.storage import open_storage, time_resolution_ns
from activities.storage.base import (
    DIR,
    FILE,
    TEMP_NAME,
    Entry,
    MetadataPolicy,
    Storage,
    StorageError,
    describe_error,
)
from models.execution import FileIssue
from models.filters import FilterRule, PathFilter, Scope
from models.locations import Location
from models.options import Options

log = logging.getLogger("ferry.listing")

# A listing task takes up to this many folders of the walk's queue, and goes on into their
# subfolders until it has listed this many entries.
FOLDERS_PER_TASK = 16
ENTRIES_PER_TASK = 2000

WAIT_SECONDS = 0.5  # between heartbeats while a listing is awaited
STALE_TEMP_SECONDS = 3600

Pair = tuple[Entry | None, Entry | None]


@dataclass(frozen=True)
class Sides:
    """The two locations and what decides which pairs matter; travels to pool processes."""

    source: Location
    destination: Location | None  # None: the destination is not listed (TransferMode ALL)
    includes: tuple[FilterRule, ...]
    excludes: tuple[FilterRule, ...]
    options: Options
    tag: str
    destination_only_subtrees: bool  # list folders only the destination has (to delete them)
    report_equal_files: bool  # name equal files too (verification reads them)


@dataclass
class Folder:
    """One folder, listed on both sides."""

    path: str
    source_listed: bool  # False below a destination folder that goes away as a whole
    pairs: list[tuple[Entry | None, Entry | None, Scope]]  # need attention; name order
    equal: int = 0  # pairs equal on both sides, counted only
    equal_files: list[tuple[str, int]] = field(default_factory=list)
    source_error: str | None = None
    destination_error: str | None = None
    stale_temps: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # names no file can have


Task = tuple[str, Scope, bool, bool]  # a folder, its scope, list it on the source, destination


def list_folders(sides: Sides, tasks: list[Task]) -> list[Folder]:
    """List the folders of `tasks`, each followed by its subfolders depth-first while fewer
    than ENTRIES_PER_TASK entries have been listed; runs in a pool process."""
    lister = _lister(sides)
    folders: list[Folder] = []
    listed = 0
    for task in tasks:
        below = [task]
        while below:
            folder = lister.folder(*below.pop())
            folders.append(folder)
            listed += len(folder.pairs) + folder.equal
            if listed < ENTRIES_PER_TASK:
                below.extend(reversed(list(subfolders(folder, sides))))
    return folders


_listers: dict[Sides, _Lister] = {}


def _lister(sides: Sides) -> _Lister:
    """Storages and filters stay open in a pool process from one task to the next."""
    lister = _listers.get(sides)
    if lister is None:
        for done in _listers.values():
            done.close()
        _listers.clear()
        lister = _listers[sides] = _Lister(sides)
    return lister


def subfolders(folder: Folder, sides: Sides) -> Iterator[Task]:
    """The folders below `folder` to list, in walk order, with the sides to list them on."""
    for s, d, scope in folder.pairs:
        task = descent(s, d, scope, sides, folder.source_listed)
        if task is not None:
            yield task


def descent(
    s: Entry | None, d: Entry | None, scope: Scope, sides: Sides, in_source: bool = True
) -> Task | None:
    """Whether the walk goes below this pair, and on which sides. A destination folder the
    source lacks is listed when it will be deleted: with REMOVE, or when a source file takes
    its place (and then everything below it, `in_source` being False there)."""
    source = s is not None and s.kind == DIR
    destination = d is not None and d.kind == DIR and sides.destination is not None
    removed = sides.destination_only_subtrees or s is not None or not in_source
    if source or (destination and removed):
        return (s or d).path, scope, source, destination  # type: ignore[union-attr]
    return None


class _Lister:
    def __init__(self, sides: Sides) -> None:
        self.sides = sides
        self.source = open_storage(sides.source, sides.tag)
        self.destination = open_storage(sides.destination, sides.tag) if sides.destination else None
        self.filter = PathFilter(list(sides.includes), list(sides.excludes))
        self.policy = MetadataPolicy.from_options(sides.options)
        # A temporary file untouched this long belongs to no copy in progress.
        self.stale_before = time.time_ns() - STALE_TEMP_SECONDS * 1_000_000_000
        self.resolution = time_resolution_ns(
            sides.source, *([sides.destination] if sides.destination else [])
        )

    def folder_metadata(self, path: str) -> bool:
        return self.destination is None or self.destination.keeps_folder_metadata(path)

    def close(self) -> None:
        self.source.close()
        if self.destination is not None:
            self.destination.close()

    def folder(self, path: str, scope: Scope, source: bool, destination: bool) -> Folder:
        folder = Folder(path, source, [])
        mine = self._children(self.source, path, folder, "source") if source else {}
        theirs = (
            self._children(self.destination, path, folder, "destination")
            if destination and self.destination is not None
            else {}
        )
        keep_equal_files = self.sides.report_equal_files
        for name in sorted(mine.keys() | theirs.keys()):
            s, d = mine.get(name), theirs.get(name)
            if s and d and s.kind == d.kind == DIR and not self.folder_metadata(d.path):
                d = dataclasses.replace(s)
            child_scope = Scope.IN
            if not self.filter.selects_all:
                child_scope = self.filter.scope((s or d).path, (s or d).kind == DIR, scope)  # type: ignore[union-attr]
                if child_scope is Scope.OUT:
                    continue
            if s is not None and d is not None and _equal(s, d, self.policy, self.resolution):
                folder.equal += 1
                if keep_equal_files and s.kind == FILE:
                    folder.equal_files.append((s.path, s.size))
                continue
            folder.pairs.append((s, d, child_scope))
        return folder

    def _children(self, storage: Storage, path: str, folder: Folder, side: str) -> dict[str, Entry]:
        try:
            entries = storage.list_dir(path)
        except FileNotFoundError:
            return {}  # not on this side
        except OSError as error:
            setattr(folder, f"{side}_error", describe_error(error))
            return {}
        finally:
            folder.rejected += storage.take_rejected()
        skip = len(path) + 1 if path else 0
        children = {}
        for entry in entries:
            name = entry.path[skip:]
            if name.startswith(".ferry-") and TEMP_NAME.fullmatch(name):
                if side == "destination" and entry.mtime_ns < self.stale_before:
                    folder.stale_temps.append(entry.path)
                continue
            children[name] = entry
        return children


def _equal(s: Entry, d: Entry, policy: MetadataPolicy, resolution: int) -> bool:
    """A pair that needs nothing: not a folder, not hard-linked, alike in what the task keeps."""
    if s.kind != d.kind or s.kind == DIR or s.hard_link_key is not None:
        return False
    # Most pairs are files alike in every field: decide those without building Differences.
    if (
        s.kind == FILE
        and s.size == d.size
        and s.mtime_ns == d.mtime_ns
        and s.mode == d.mode
        and s.uid == d.uid
        and s.gid == d.gid
    ):
        return True
    return not compare(s, d, policy, resolution)


class FolderWalk:
    """Walks two locations side by side from the activity's thread: yields the root pair, then
    every pair that needs attention in walk order (a folder, everything below it, its next
    sibling), while pool processes list the folders ahead."""

    def __init__(
        self,
        pool: WorkPool,
        sides: Sides,
        beat: Callable[[], None],
        equal_file: Callable[[str, int], None] | None = None,
    ) -> None:
        """`beat` is called often, also while waiting for listings (the activity's heartbeat);
        `equal_file` gets each file that is equal on both sides, when Sides ask for them."""
        self.pool = pool
        self.sides = sides
        self.beat = beat
        self.equal_file = equal_file
        self.unlisted: set[str] = set()  # source folders that could not be listed
        self.issues: list[FileIssue] = []
        self.stale_temps: list[str] = []
        self.equal = 0
        self.lookahead = 2 * pool.processes  # tasks in flight
        self._ready: dict[str, Folder] = {}
        self._pending: dict[str, Future[list[Folder]]] = {}  # by each folder a task takes
        self._in_flight: set[Future[list[Folder]]] = set()
        self._upcoming: deque[Task] = deque()

    def __iter__(self) -> Iterator[Pair]:
        source = open_storage(self.sides.source, self.sides.tag)
        root = source.stat("")
        if root is None or root.kind != DIR:
            raise StorageError("the source location's root is not a directory")
        destination_root = None
        if self.sides.destination is not None:
            destination = open_storage(self.sides.destination, self.sides.tag)
            destination_root = destination.stat("")
            if destination_root is not None and not destination.keeps_folder_metadata(""):
                destination_root = dataclasses.replace(root)
            destination.close()
        source.close()
        yield root, destination_root
        scope = PathFilter(self.sides.includes, self.sides.excludes).scope(
            "", True, Scope.ON_THE_WAY
        )
        has_destination = destination_root is not None and destination_root.kind == DIR
        # Each level: the pairs of a folder still to yield (in reverse order, for pop()), and
        # whether the folder was listed on the source side.
        stack = [(self._pairs(("", scope, True, has_destination)), True)]
        while stack:
            pairs, in_source = stack[-1]
            if not pairs:
                stack.pop()
                continue
            s, d, scope = pairs.pop()
            yield s, d
            task = descent(s, d, scope, self.sides, in_source)
            if task is not None:
                stack.append((self._pairs(task), task[2]))

    def _pairs(self, task: Task) -> list[tuple[Entry | None, Entry | None, Scope]]:
        path = task[0]
        if path not in self._ready:
            pending = self._pending.get(path) or self._submit([task])
            while True:
                try:
                    listed_folders = pending.result(timeout=WAIT_SECONDS)
                    break
                except FutureTimeout:
                    self.beat()
            for listed in listed_folders:
                self._ready[listed.path] = listed
            self._in_flight.discard(pending)
        folder = self._ready.pop(path)
        self._pending.pop(path, None)
        self._take(folder)
        below = [task for task in subfolders(folder, self.sides) if task[0] not in self._ready]
        self._upcoming.extendleft(reversed(below))
        while self._upcoming and len(self._in_flight) < self.lookahead:
            batch: list[Task] = []
            while self._upcoming and len(batch) < FOLDERS_PER_TASK:
                upcoming = self._upcoming.popleft()
                if upcoming[0] not in self._ready and upcoming[0] not in self._pending:
                    batch.append(upcoming)
            if batch:
                self._submit(batch)
        return list(reversed(folder.pairs))

    def _submit(self, tasks: list[Task]) -> Future[list[Folder]]:
        future = self.pool.submit(list_folders, self.sides, tasks)
        self._in_flight.add(future)
        for task in tasks:
            self._pending[task[0]] = future
        return future

    def _take(self, folder: Folder) -> None:
        self.equal += folder.equal
        for path, reason in folder.rejected:
            self.issues.append(FileIssue(path=path, kind="read", detail=f"skipped: {reason}"))
            log.warning("skipped /%s: %s", path, reason)
        self.stale_temps.extend(folder.stale_temps)
        if self.equal_file is not None:
            for path, size in folder.equal_files:
                self.equal_file(path, size)
        for side, error in (
            ("source", folder.source_error),
            ("destination", folder.destination_error),
        ):
            if error is None:
                continue
            if side == "source":
                self.unlisted.add(folder.path)
            issue = FileIssue(path=folder.path, kind="read", detail=f"cannot list: {error}")
            self.issues.append(issue)
            log.warning("cannot list %s folder /%s: %s", side, folder.path, error)
