"""Listing both locations side by side, folder by folder, in walk order.

A folder is listed on both sides at once by a pool process, which pairs the children by name
and keeps back the pairs that need no attention (a file equal on both sides) as a count. The
activity's thread walks the folders depth-first in listing order and receives the pairs in that
order, which is the order of the plan; it asks for the folders it will enter next ahead of time,
so that listing runs on every core while it plans. Nothing holds a whole tree in memory, nor a
whole folder: a folder of more than SLICE_ENTRIES children (a flat bucket prefix of millions of
keys) is listed in slices, each ending where both sides have been listed up to.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from activities.metadata import compare
from activities.pool import WorkPool, process_died
from activities.staging import StagingStore, open_staging
from activities.storage import metadata_policy, open_storage, time_resolution_ns
from activities.storage.base import (
    DIR,
    FILE,
    TEMP_NAME,
    Entry,
    MetadataPolicy,
    Storage,
    StorageError,
    describe_error,
    listing_key,
)
from models.execution import FileIssue
from models.filters import FilterRule, PathFilter, Scope
from models.locations import Location
from models.options import Options
from models.staging import StagingTraffic

log = logging.getLogger("ferry.listing")

# A listing task takes up to this many folders of the walk's queue, and goes on into their
# subfolders until it has listed this many entries.
FOLDERS_PER_TASK = 16
ENTRIES_PER_TASK = 2000
# Children of a folder listed at once on each side, at most.
SLICE_ENTRIES = int(os.environ.get("FERRY_LIST_SLICE_ENTRIES", "10000"))

WAIT_SECONDS = 0.5  # between heartbeats while a listing is awaited
STALE_TEMP_SECONDS = 3600

Pair = tuple[Entry | None, Entry | None]
ScopedPair = tuple[Entry | None, Entry | None, Scope]


def is_below(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies beneath it ("" is the root)."""
    return folder == "" or path.startswith(folder + "/")


def is_strictly_below(path: str, folder: str) -> bool:
    return path != folder and is_below(path, folder)


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
    # (staging URL, execution ARN): the destination's listings use its task's sync index.
    sync_index: tuple[str, str] | None = None


@dataclass(frozen=True)
class Task:
    """A folder to list, or the next slice of one."""

    path: str
    scope: Scope
    source: bool  # list it on the source; False below a destination folder that goes away
    destination: bool
    # Where the slice starts on each side (a listing key; "" the beginning, None: nothing more
    # there), and how many children each side lists at most.
    after: tuple[str | None, str | None] = ("", "")
    limit: int = SLICE_ENTRIES


@dataclass
class Folder:
    """One folder, or a slice of one, listed on both sides."""

    task: Task
    pairs: list[ScopedPair]  # need attention; listing order
    equal: int = 0  # pairs equal on both sides, counted only
    equal_files: list[tuple[str, int]] = field(default_factory=list)
    source_error: str | None = None
    destination_error: str | None = None
    stale_temps: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # names no file can have
    rest: Task | None = None  # the folder's next slice
    staging: StagingTraffic | None = None  # what its listing asked of the sync index

    @property
    def path(self) -> str:
        return self.task.path

    @property
    def source_listed(self) -> bool:
        return self.task.source


def list_folders(sides: Sides, tasks: list[Task]) -> list[Folder]:
    """List the folders of `tasks`, each followed by its subfolders depth-first while fewer
    than ENTRIES_PER_TASK entries have been listed; runs in a pool process."""
    lister = _lister(sides)
    folders: list[Folder] = []
    listed = 0
    for task in tasks:
        below = [task]
        while below:
            folder = lister.folder(below.pop())
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
        return Task((s or d).path, scope, source, destination)  # type: ignore[union-attr]
    return None


class _Lister:
    def __init__(self, sides: Sides) -> None:
        self.sides = sides
        self.source = open_storage(sides.source, sides.tag)
        self.destination = open_storage(sides.destination, sides.tag) if sides.destination else None
        self.staging: StagingStore | None = None  # counts what the sync index asks of it
        if self.destination is not None and sides.sync_index is not None:
            url, execution_arn = sides.sync_index
            self.staging = open_staging(url).counted()
            self.destination.use_sync_index(self.staging.sync_index(execution_arn, reading=True))
        self.filter = PathFilter(list(sides.includes), list(sides.excludes))
        self.policy = metadata_policy(sides.options, sides.destination)
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

    def folder(self, task: Task) -> Folder:
        folder = Folder(task, [])
        nothing: tuple[dict[str, Entry], list[str], bool] = ({}, [], False)
        mine, mine_keys, mine_more = (
            self._children(self.source, task, 0, folder, "source") if task.source else nothing
        )
        theirs, their_keys, their_more = (
            self._children(self.destination, task, 1, folder, "destination")
            if task.destination and self.destination is not None
            else nothing
        )
        cut = _cut(mine_keys, mine_more, their_keys, their_more)
        if cut is not None and task.after == ("", ""):
            log.info("/%s has more than %d children: listed in slices", task.path, task.limit)
        if cut is not None:
            folder.rest = _rest(task, cut, mine_keys, mine_more, their_keys, their_more)
            mine = {name: e for name, e in mine.items() if listing_key(name, e.kind) < cut}
            theirs = {name: e for name, e in theirs.items() if listing_key(name, e.kind) < cut}
        keep_equal_files = self.sides.report_equal_files
        scope = task.scope
        for name in sorted(mine.keys() | theirs.keys(), key=lambda n: _pair_key(n, mine, theirs)):
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
        if self.staging is not None:
            folder.staging, self.staging.backend.traffic = self.staging.traffic, StagingTraffic()
        return folder

    def _children(
        self, storage: Storage, task: Task, side_index: int, folder: Folder, side: str
    ) -> tuple[dict[str, Entry], list[str], bool]:
        """A side's children in this slice by name, the listing keys of all it listed (temporary
        files too), and whether more follow."""
        after = task.after[side_index]
        if after is None:  # this side has no more
            return {}, [], False
        path = task.path
        try:
            entries, more = storage.list_dir(path, after=after, limit=task.limit)
        except FileNotFoundError:
            return {}, [], False  # not on this side
        except OSError as error:
            setattr(folder, f"{side}_error", describe_error(error))
            return {}, [], False
        finally:
            folder.rejected += storage.take_rejected()
        skip = len(path) + 1 if path else 0
        children = {}
        keys = []
        for entry in entries:
            name = entry.path[skip:]
            keys.append(listing_key(name, entry.kind))
            if name.startswith(".ferry-") and TEMP_NAME.fullmatch(name):
                if side == "destination" and entry.mtime_ns < self.stale_before:
                    folder.stale_temps.append(entry.path)
                continue
            children[name] = entry
        return children, keys, more


def _pair_key(name: str, mine: dict[str, Entry], theirs: dict[str, Entry]) -> str:
    entry = mine.get(name) or theirs[name]
    return listing_key(name, entry.kind)


def _cut(mine: list[str], mine_more: bool, theirs: list[str], their_more: bool) -> str | None:
    """Where a slice ends when a side has more to list: before the first key that could pair
    with one not listed yet. Both sides have been listed up to `bound`; a name belongs to this
    slice when it would be listed by then as a folder too ("name/"), so that a file on one side
    and a folder of that name on the other always meet in one slice. None: the folder ends here."""
    bounds = [keys[-1] for keys, more in ((mine, mine_more), (theirs, their_more)) if more]
    if not bounds:
        return None
    bound = min(bounds)
    for key in sorted(mine + theirs):
        if (key if key.endswith("/") else key + "/") > bound:
            return key
    return bound + "\0"  # everything listed belongs to this slice


def _rest(
    task: Task, cut: str, mine: list[str], mine_more: bool, theirs: list[str], their_more: bool
) -> Task | None:
    """The slice after `cut`: each side goes on after the last key it had before the cut."""
    after: list[str | None] = []
    progressed = False
    sides = ((mine, mine_more, task.after[0]), (theirs, their_more, task.after[1]))
    for keys, more, start in sides:
        taken = [key for key in keys if key < cut]
        progressed = progressed or bool(taken)
        if not more and len(taken) == len(keys):
            after.append(None)  # this side is done
        else:
            after.append(taken[-1] if taken else start)
    if after == [None, None]:
        return None
    # A slice that kept nothing (a file name right at the bound) is listed again, wider.
    limit = task.limit if progressed else task.limit * 2
    return dataclasses.replace(task, after=(after[0], after[1]), limit=limit)


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
        and s.owner == d.owner
        and s.group == d.group
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
        self.staging = StagingTraffic()  # what the listings asked of the staging store
        self.lookahead = 2 * pool.processes  # tasks in flight
        self._ready: dict[Task, Folder] = {}
        self._pending: dict[Task, Future[list[Folder]]] = {}  # by each folder a listing takes
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
        # Each level: the pairs of a folder (slice) still to yield, in reverse order for pop(),
        # whether the folder was listed on the source side, and its next slice.
        pairs, rest = self._pairs(Task("", scope, True, has_destination))
        stack = [(pairs, True, rest)]
        while stack:
            pairs, in_source, rest = stack[-1]
            if not pairs:
                stack.pop()
                if rest is not None:  # the folder's next slice, at the same level
                    more, after_that = self._pairs(rest)
                    stack.append((more, in_source, after_that))
                continue
            s, d, scope = pairs.pop()
            yield s, d
            task = descent(s, d, scope, self.sides, in_source)
            if task is not None:
                below, below_rest = self._pairs(task)
                stack.append((below, task.source, below_rest))

    def _pairs(self, task: Task) -> tuple[list[ScopedPair], Task | None]:
        """A folder's (slice's) pairs in reverse walk order, and its next slice."""
        if task not in self._ready:
            pending = self._pending.get(task) or self._submit([task])
            while True:
                try:
                    listed_folders = pending.result(timeout=WAIT_SECONDS)
                    break
                except FutureTimeout:
                    self.beat()
                except BrokenProcessPool as error:
                    raise process_died(error) from error
            for listed in listed_folders:
                self._ready[listed.task] = listed
            self._in_flight.discard(pending)
        folder = self._ready.pop(task)
        self._pending.pop(task, None)
        self._take(folder)
        below = [task for task in subfolders(folder, self.sides) if task not in self._ready]
        self._upcoming.extendleft(reversed(below))
        if folder.rest is not None:
            self._upcoming.appendleft(folder.rest)  # listed while the walk goes below this slice
        while self._upcoming and len(self._in_flight) < self.lookahead:
            batch: list[Task] = []
            while self._upcoming and len(batch) < FOLDERS_PER_TASK:
                upcoming = self._upcoming.popleft()
                if upcoming not in self._ready and upcoming not in self._pending:
                    batch.append(upcoming)
            if batch:
                self._submit(batch)
        return list(reversed(folder.pairs)), folder.rest

    def _submit(self, tasks: list[Task]) -> Future[list[Folder]]:
        future = self.pool.submit(list_folders, self.sides, tasks)
        self._in_flight.add(future)
        for task in tasks:
            self._pending[task] = future
        return future

    def _take(self, folder: Folder) -> None:
        self.equal += folder.equal
        if folder.staging is not None:
            self.staging.add(folder.staging)
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
