"""VERIFYING: check the destination against the source, per VerifyMode.

POINT_IN_TIME_CONSISTENT lists both locations again, compares every entry's metadata, and reads
both copies of every file to compare checksums. ONLY_FILES_TRANSFERRED reads back what this
execution wrote and compares it with the checksums computed while the bytes passed. Findings
carry DataSync's kinds: checksum, metadata, added (in the source, not at the destination) and
removed (at the destination, no longer in the source).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import xxhash

from activities.batches import BatchRun, ThreadStorages
from activities.events import Events
from activities.listing import FolderWalk, Sides, is_below
from activities.manifest import ManifestWalk
from activities.metadata import Holding, compare
from activities.plan import WROTE_FILE, VerifiedFile, WrittenLink, written_from_row
from activities.pool import Control, Stopped, WorkPool
from activities.staging import StagingStore, open_staging
from activities.storage import files_in_flight, metadata_policy, time_resolution_ns
from activities.storage.base import (
    DIR,
    FILE,
    SOCKET,
    SPECIAL_KINDS,
    Storage,
    describe_error,
    is_transient,
)
from models.execution import (
    ISSUES_PER_BATCH,
    BatchRef,
    BatchResult,
    ExecutionInput,
    FileIssue,
    VerifyPlan,
)

CHUNK = 1 << 20

log = logging.getLogger("ferry.verify")


def checksum(storage: Storage, path: str, tick: Callable[[], None]) -> str:
    reader = storage.open_read(path)
    try:
        hasher = xxhash.xxh3_128()
        while data := reader.read(CHUNK):
            hasher.update(data)
            tick()
        return hasher.hexdigest()
    finally:
        storage.close_reader(reader)


def prepare_verification(
    store: StagingStore,
    pool: WorkPool,
    execution: ExecutionInput,
    beat: Callable[[], None],
    events: Events,
) -> VerifyPlan:
    """POINT_IN_TIME_CONSISTENT: compare both sides' listings now; files whose metadata matches
    go into `verify` batches for their contents. With OverwriteMode=NEVER, only presence is
    compared here: files left as they were are not the source's, and those written by this
    execution are checked from the result logs."""
    options = execution.Options
    policy = metadata_policy(options, execution.Destination)
    never = options.OverwriteMode == "NEVER"
    remove = options.PreserveDeletedFiles == "REMOVE"
    batches = store.batches(execution.execution_id, "verify")
    batches.max_bytes = 64 << 20
    plan = VerifyPlan(batches=0)
    sides = Sides(
        source=execution.Source,
        destination=execution.Destination,
        includes=tuple(execution.Includes),
        excludes=tuple(execution.Excludes),
        options=options,
        tag=execution.execution_id,
        destination_only_subtrees=remove,
        report_equal_files=not never,
    )
    equal_files = 0

    def equal_file(path: str, size: int) -> None:
        nonlocal equal_files
        equal_files += 1
        batches.add(VerifiedFile(path).to_row(), size)

    def issue(path: str, kind: str, detail: str) -> None:
        plan.counters.VerifyFailed += 1
        if len(plan.issues) < ISSUES_PER_BATCH:
            plan.issues.append(FileIssue(path=path, kind=kind, detail=detail))
        log.error("%s: /%s: %s: %s", execution.TaskExecutionArn, path, kind, detail)
        events.record("Verified", path, failed=True, ErrorCode=kind, ErrorDetail=detail)

    walk: FolderWalk | ManifestWalk = (
        ManifestWalk(execution, beat)  # the listed paths only
        if execution.ManifestConfig is not None
        else FolderWalk(pool, sides, beat, equal_file)
    )
    resolution = time_resolution_ns(execution.Source, execution.Destination)
    holding = Holding(execution.Destination, options.PreserveDevices == "PRESERVE")
    links: dict[tuple[int, int], tuple[str, int]] = {}
    for s, d in walk:
        beat()
        if s is None:
            assert d is not None
            if remove and not any(is_below(d.path, u) for u in walk.unlisted):
                issue(d.path, "removed", "at the destination but not in the source")
            continue
        # What the destination cannot hold was skipped, and said so, by PREPARING.
        if holding.why_not(s) is not None:
            continue
        if s.kind == SOCKET or (s.kind in SPECIAL_KINDS and not policy.devices):
            continue
        if d is None:
            if s.kind != DIR or holding.empty_folders:
                issue(s.path, "added", "in the source but not at the destination")
            continue
        differences = compare(s, d, policy, resolution)
        if never:
            if s.kind != d.kind:
                issue(s.path, "metadata", differences.describe())
            continue
        if differences:
            kind = "checksum" if s.kind == d.kind == FILE and s.size != d.size else "metadata"
            issue(s.path, kind, differences.describe())
            continue
        if (key := s.hard_link_key) is not None:
            first, first_inode = links.setdefault(key, (s.path, d.inode))
            if d.inode != first_inode:
                issue(s.path, "metadata", f"not a hard link of /{first} at the destination")
                continue
        if s.kind == FILE:
            batches.add(VerifiedFile(s.path).to_row(), s.size)
        else:
            plan.counters.FilesVerified += 1
    if not never:
        # Equal pairs other than files (links, devices) need no further reading.
        plan.counters.FilesVerified += walk.equal - equal_files
    if execution.ManifestConfig is None:  # a manifest's problems were PREPARING's to report
        for problem in walk.issues:
            issue(problem.path, "read", problem.detail)
    plan.batches = batches.close()
    return plan


def verify_batch(
    staging: str, ref: BatchRef, checkpoint: dict[str, Any], control: Control
) -> BatchResult:
    """Contents of the files of one `verify` batch, read on both sides (in a pool process)."""
    tag = ref.execution_id
    sources, destinations = ThreadStorages(ref.source, tag), ThreadStorages(ref.destination, tag)
    parallel = files_in_flight(ref.source, ref.destination)
    run = BatchRun(open_staging(staging).counted(), ref, checkpoint, control, parallel=parallel)

    def handle(row: list[Any]) -> None:
        path = VerifiedFile.from_row(row).path
        try:
            expected = checksum(sources.get(), path, run.tick)
        except Exception as error:
            _unreadable(run, path, "source", error)
            return
        try:
            actual = checksum(destinations.get(), path, run.tick)
        except Exception as error:
            _unreadable(run, path, "destination", error)
            return
        if actual != expected:
            run.fail(path, "checksum", _checksums(expected, actual), verify=True)
        else:
            run.count(FilesVerified=1)
            run.event("Verified", path, SrcChecksum=expected, DstChecksum=actual)

    try:
        return run.run(handle)
    finally:
        sources.close()
        destinations.close()


def verify_transferred(
    staging: str, ref: BatchRef, checkpoint: dict[str, Any], control: Control
) -> BatchResult:
    """What one transfer batch wrote, read back from the destination (in a pool process)."""
    destinations = ThreadStorages(ref.destination, ref.execution_id)
    policy = metadata_policy(ref.options, ref.destination)
    resolution = time_resolution_ns(ref.destination)
    parallel = files_in_flight(ref.destination) if ref.step == "files" else 1
    run = BatchRun(
        open_staging(staging).counted(),
        ref,
        checkpoint,
        control,
        of_results=True,
        parallel=parallel,
    )

    def handle(row: list[Any]) -> None:
        wrote = written_from_row(row)
        destination = destinations.get()
        if isinstance(wrote, WrittenLink):
            path, first = wrote
            here, there = destination.stat(path), destination.stat(first)
            if here is None or there is None or here.inode != there.inode:
                run.fail(path, "metadata", f"not a hard link of /{first}", verify=True)
            else:
                run.count(FilesVerified=1)
                run.event("Verified", path, LinkTo="/" + first)
            return
        kind, written, expected, torn = wrote
        sums: dict[str, str] = {}
        actual = destination.stat(written.path)
        if actual is None:
            run.fail(written.path, "added", "written, but not at the destination", verify=True)
            return
        differences = compare(written, actual, policy, resolution)
        if differences:
            run.fail(written.path, "metadata", differences.describe(), verify=True)
            return
        if kind == WROTE_FILE:
            if torn:
                detail = "the source changed while it was being copied"
                run.fail(written.path, "checksum", detail, verify=True)
                return
            try:
                digest = checksum(destination, written.path, run.tick)
            except Exception as error:
                _unreadable(run, written.path, "destination", error)
                return
            if digest != expected:
                run.fail(written.path, "checksum", _checksums(expected, digest), verify=True)
                return
            sums = {"SrcChecksum": expected, "DstChecksum": digest}
        run.count(FilesVerified=1)
        run.event("Verified", written.path, **sums)

    try:
        return run.run(handle)
    finally:
        destinations.close()


def _unreadable(run: BatchRun, path: str, side: str, error: Exception) -> None:
    if isinstance(error, Stopped):
        raise error
    if is_transient(error):
        run.transient(path, "checksum", error, verify=True)
        return
    run.fail(path, "checksum", f"{side} could not be read: {describe_error(error)}", verify=True)


def _checksums(expected: str, actual: str) -> str:
    return f"content differs (XXH3-128 {actual} at the destination, {expected} in the source)"
