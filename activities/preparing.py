"""PREPARING: list both locations, decide what each path needs, write the plan to staging.

The plan is five steps, each a series of batches of the rows `activities.plan` describes:
removals, files, links, deletes (PreserveDeletedFiles=REMOVE) and directories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from activities.listing import FolderWalk, Sides, is_below, is_strictly_below
from activities.manifest import ManifestWalk
from activities.metadata import Holding, compare
from activities.plan import (
    COPY,
    MAKE_SPECIAL,
    MAKE_SYMLINK,
    SET_METADATA,
    Deletion,
    DirectoryMetadata,
    FileAction,
    HardLink,
    Removal,
)
from activities.pool import WorkPool
from activities.staging import StagingStore
from activities.storage import metadata_policy, time_resolution_ns
from activities.storage.base import DIR, FILE, SOCKET, SPECIAL_KINDS, Entry, MetadataPolicy
from activities.storage.base import SYMLINK as SYMLINK_KIND
from models.execution import (
    ISSUES_PER_BATCH,
    TRANSFER_STEPS,
    ExecutionInput,
    FileIssue,
    PlanSummary,
)
from models.locations import Location
from models.options import Options

FILES_PER_BATCH = 1000
BYTES_PER_BATCH = 64 << 20
ROWS_PER_LIST_BATCH = 10000

_KEPT = -1


@dataclass(slots=True)
class _OpenDirectory:
    entry: Entry
    changed: bool  # new at the destination, or its own metadata differs
    writable: bool  # False when OverwriteMode=NEVER keeps an existing directory as it is
    new: bool  # not at the destination yet
    dirty: bool = False  # something inside it was written or removed, which moves its mtime
    filled: bool = False  # the source has something in it


@dataclass(slots=True)
class _Removal:
    """A destination entry in the way of a source entry of another kind: its subtree, walked
    next, is counted to it."""

    path: str
    entries: int = 1


class Planner:
    """Turns (source, destination) pairs in walk order into the plan's batches."""

    def __init__(
        self,
        store: StagingStore,
        execution_id: str,
        options: Options,
        policy: MetadataPolicy,
        resolution_ns: int,
        unlisted_source: set[str],
        files_per_batch: int = FILES_PER_BATCH,
        bytes_per_batch: int = BYTES_PER_BATCH,
        first: dict[str, int] | None = None,
        announce: Callable[[PlanSummary], None] | None = None,
        destination: Location | None = None,
        skipped: Callable[[str, str], None] = lambda path, reason: None,
    ) -> None:
        """`first`: batches of a step that ran before this attempt (numbering goes on after
        them). `announce`: gets the plan so far each time a batch of files is complete, so that
        it can be transferred while PREPARING goes on. `destination`: what it can hold decides
        what is skipped, each path told to `skipped` with the reason."""
        self.policy = policy
        devices = options.PreserveDevices == "PRESERVE"
        # Where the destination has neither hard links nor copies made by the server, each name
        # of a hard-linked file is a file of its own, copied like any other.
        can = destination.capabilities if destination is not None else None
        self._links_kept = can is None or can.hard_links or can.server_side_copy
        self.holding = Holding(destination, devices) if destination is not None else None
        self._skipped = skipped
        self.never = options.OverwriteMode == "NEVER"
        self.remove = options.PreserveDeletedFiles == "REMOVE"
        self.resolution_ns = resolution_ns
        self.unlisted_source = unlisted_source
        first = first or {}
        self.writers = {
            step: store.batches(execution_id, step, first.get(step, 0)) for step in TRANSFER_STEPS
        }
        self.writers["files"].max_rows = files_per_batch
        self.writers["files"].max_bytes = bytes_per_batch
        for step in ("removals", "links", "deletes", "directories"):
            self.writers[step].max_rows = ROWS_PER_LIST_BATCH
        self.summary = PlanSummary(batches={})
        self._open: list[_OpenDirectory] = []
        # Hard-link groups: source (device, inode) -> first path and its destination inode
        # (None when that file is being rewritten, so that every other name is linked anew;
        # _KEPT when OverwriteMode=NEVER keeps other content under the first name).
        self._links: dict[tuple[int, int], tuple[str, int | None]] = {}
        self._removal: _Removal | None = None
        self._blocked: str | None = None  # a source folder NEVER keeps from being written
        self._announce = announce
        if announce is not None:
            self.writers["files"].on_seal = self._files_sealed

    def _files_sealed(self) -> None:
        # The removals planned so far go first: a file may take the place of one of them.
        self.writers["removals"].close()
        assert self._announce is not None
        batches = {step: self.writers[step].count for step in ("removals", "files")}
        self._announce(self.summary.model_copy(update={"batches": batches}))

    def add(self, source: Entry | None, destination: Entry | None) -> None:
        path = source.path if source is not None else destination.path  # type: ignore[union-attr]
        self._close_directories(path)
        if self._removal is not None and not is_strictly_below(path, self._removal.path):
            self._end_removal()
        if self._blocked is not None and not is_strictly_below(path, self._blocked):
            self._blocked = None
        if source is not None and self._open:
            self._open[-1].filled = True
        if source is None:
            assert destination is not None
            if self._removal is not None:
                self._removal.entries += 1  # goes with the tree being removed
            else:
                self._destination_only(destination)
            return
        if self._blocked is not None:
            self.summary.FilesSkipped += 1
            return
        if self.holding is not None and (reason := self.holding.why_not(source)) is not None:
            self._skip(source, reason)
            return
        if source.kind == SOCKET or (source.kind in SPECIAL_KINDS and not self.policy.devices):
            return  # not transferred, and whatever the destination has there stays
        if destination is not None and destination.kind != source.kind:
            if self.never:
                self.summary.FilesSkipped += 1
                if source.kind == DIR:
                    self._blocked = path
                return
            self._removal = _Removal(destination.path)
            # Planned at once, before the source entry that takes its place.
            self.writers["removals"].add(Removal(destination.path, destination.kind).to_row())
            self._dirty_parent()
            destination = None
        if source.kind == DIR:
            self._directory(source, destination)
        else:
            self._non_directory(source, destination)

    def _skip(self, source: Entry, reason: str) -> None:
        """A source entry the destination cannot hold: counted and told (and so is everything
        in it, if it is a folder); what the destination has there stays."""
        self.summary.FilesSkipped += 1
        self._skipped(source.path, reason)

    def _directory(self, source: Entry, destination: Entry | None) -> None:
        changed = destination is None or bool(
            compare(source, destination, self.policy, self.resolution_ns)
        )
        writable = not (self.never and destination is not None)
        if changed and not writable:
            self.summary.FilesSkipped += 1
            changed = False
        if changed:
            self.summary.EstimatedFilesToTransfer += 1
        if destination is None:
            self._dirty_parent()
        self._open.append(_OpenDirectory(source, changed, writable, destination is None))

    def _non_directory(self, source: Entry, destination: Entry | None) -> None:
        key = source.hard_link_key if self._links_kept else None
        if key is not None and key in self._links:
            first, first_inode = self._links[key]
            if first_inode != _KEPT:
                self._hard_link(source, destination, first, first_inode)
                return
            # The first name holds other content that NEVER keeps: copy this one on its own.
        action = self._action(source, destination)
        kept = action is not None and destination is not None and self.never
        if key is not None and key not in self._links:
            if kept and action == COPY:
                self._links[key] = (source.path, _KEPT)
            else:
                unchanged = destination.inode if destination and action != COPY else None
                self._links[key] = (source.path, unchanged)
        if action is None:
            return
        if kept:
            self.summary.FilesSkipped += 1
            return
        size = source.size if action == COPY else 0
        self.writers["files"].add(FileAction(action, self.never, source).to_row(), size)
        self.summary.EstimatedFilesToTransfer += 1
        self.summary.EstimatedBytesToTransfer += size
        if action != SET_METADATA:
            self._dirty_parent()

    def _action(self, source: Entry, destination: Entry | None) -> str | None:
        if destination is None:
            if source.kind == FILE:
                return COPY
            return MAKE_SYMLINK if source.kind == SYMLINK_KIND else MAKE_SPECIAL
        differences = compare(source, destination, self.policy, self.resolution_ns)
        if differences.content:
            if source.kind == FILE:
                return COPY
            return MAKE_SYMLINK if source.kind == SYMLINK_KIND else MAKE_SPECIAL
        return SET_METADATA if differences.metadata else None

    def _hard_link(
        self, source: Entry, destination: Entry | None, first: str, first_inode: int | None
    ) -> None:
        if destination is not None and first_inode is not None and destination.inode == first_inode:
            return  # already the same file at the destination
        if destination is not None and self.never:
            self.summary.FilesSkipped += 1
            return
        self.writers["links"].add(HardLink(source.path, first, self.never).to_row())
        self.summary.EstimatedFilesToTransfer += 1
        self._dirty_parent()

    def _destination_only(self, destination: Entry) -> None:
        if not self.remove or self._under_unlisted_source(destination.path):
            return
        self.writers["deletes"].add(Deletion(destination.path, destination.kind).to_row())
        self.summary.EstimatedFilesToDelete += 1
        self._dirty_parent()

    def _under_unlisted_source(self, path: str) -> bool:
        """A source folder that could not be listed may hold this path: never delete it."""
        if not self.unlisted_source:
            return False
        while path:
            path = path.rpartition("/")[0]
            if path in self.unlisted_source:
                return True
        return "" in self.unlisted_source

    def _end_removal(self) -> None:
        assert self._removal is not None
        removal, self._removal = self._removal, None
        self.summary.EstimatedFilesToDelete += removal.entries

    def _dirty_parent(self) -> None:
        if self._open:
            self._open[-1].dirty = True

    # --- directories, deepest first ----------------------------------------------------------

    def _close_directories(self, path: str) -> None:
        while self._open and not is_below(path, self._open[-1].entry.path):
            self._close(self._open.pop())

    def _close(self, folder: _OpenDirectory) -> None:
        empty = folder.new and not folder.filled and folder.entry.path
        if empty and self.holding is not None and not self.holding.empty_folders:
            # Written as nothing: a storage of key prefixes holds a folder only by what is in it.
            if folder.changed:
                self.summary.EstimatedFilesToTransfer -= 1
            self._skip(folder.entry, f"{self.holding.name} cannot hold an empty folder")
            return
        if folder.writable and (folder.changed or folder.dirty):
            self.writers["directories"].add(
                DirectoryMetadata(folder.changed, folder.entry).to_row()
            )

    def finish(self) -> PlanSummary:
        if self._removal is not None:
            self._end_removal()
        while self._open:
            self._close(self._open.pop())
        self.summary.batches = {step: w.close() for step, w in self.writers.items()}
        return self.summary


def plan(
    store: StagingStore,
    pool: WorkPool,
    execution: ExecutionInput,
    beat: Callable[[], None],
    *,
    files_per_batch: int = FILES_PER_BATCH,
    bytes_per_batch: int = BYTES_PER_BATCH,
    first: dict[str, int] | None = None,
    announce: Callable[[PlanSummary], None] | None = None,
    skipped: Callable[[str, str], None] = lambda path, reason: None,
) -> tuple[PlanSummary, list[str], list[FileIssue]]:
    """List both sides (only the source with TransferMode=ALL, unless OverwriteMode=NEVER) and
    write the plan; returns it with the temporary files earlier attempts left behind and every
    path that could not be listed or read. What the destination cannot hold is told to
    `skipped`, path by path."""
    options = execution.Options
    # ALL skips listing the destination; NEVER must know what is there to leave it alone.
    listed = options.TransferMode == "CHANGED" or options.OverwriteMode == "NEVER"
    sides = Sides(
        source=execution.Source,
        destination=execution.Destination if listed else None,
        includes=tuple(execution.Includes),
        excludes=tuple(execution.Excludes),
        options=options,
        tag=execution.execution_id,
        destination_only_subtrees=options.PreserveDeletedFiles == "REMOVE",
        report_equal_files=False,
        sync_index=(store.url, execution.TaskExecutionArn),
    )
    walk: FolderWalk | ManifestWalk = (
        ManifestWalk(execution, beat, listed=listed)
        if execution.ManifestConfig is not None
        else FolderWalk(pool, sides, beat)
    )
    resolution = time_resolution_ns(execution.Source, execution.Destination)
    planner = Planner(
        store,
        execution.execution_id,
        options,
        metadata_policy(options, execution.Destination),
        resolution,
        walk.unlisted,
        files_per_batch,
        bytes_per_batch,
        first,
        announce,
        execution.Destination,
        skipped,
    )
    sources = destinations = 0
    for s, d in walk:
        planner.add(s, d)
        sources += s is not None
        destinations += d is not None
        beat()
    summary = planner.finish()
    if isinstance(walk, FolderWalk):
        store.traffic.add(walk.staging)  # the destination's sync index
    summary.source_entries = sources + walk.equal
    summary.destination_entries = destinations + walk.equal
    summary.issue_count = len(walk.issues)
    summary.issues = walk.issues[:ISSUES_PER_BATCH]
    return summary, walk.stale_temps, walk.issues
