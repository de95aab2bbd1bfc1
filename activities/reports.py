"""The task report, written when an execution ends: a summary (SUMMARY_ONLY and STANDARD) and,
for STANDARD, the paths transferred, verified, deleted and skipped, each with its outcome, as
DataSync lays them out:

    SUBDIRECTORY/Summary-Reports/TASK-ID/EXEC-ID/EXEC-ID.summary-v1.json
    SUBDIRECTORY/Detailed-Reports/TASK-ID/EXEC-ID/EXEC-ID.files-transferred-v1-00001.json
    ... (files-verified, files-deleted, files-skipped; 100,000 paths a file)

The per-path rows come from the batches' report logs in the staging store, read one at a time,
so a report of millions of paths never sits in memory whole. A dry run's report lists what a
real run would transfer and delete (Status PLANNED).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

from activities.events import REPORT_PREFIX, metadata
from activities.plan import COPY, Deletion, DirectoryMetadata, FileAction, HardLink
from activities.staging import StagingStore
from activities.storage import open_storage
from activities.storage.base import FILE, Entry, MetadataPolicy, Storage
from models.arn import resource_id
from models.execution import ExecutionInput
from models.reports import CATEGORIES, Category

ENTRIES_PER_FILE = 100_000
_WRITE_MODE_ONLY = MetadataPolicy(
    mtime=False, atime=False, uid=False, gid=False, mode=True, devices=False
)


def write_report(store: StagingStore, execution: ExecutionInput, summary: dict[str, Any]) -> str:
    """Write the report; returns where (a path in the report location)."""
    config = execution.TaskReportConfig
    location = execution.ReportLocation
    assert config is not None and location is not None and config.Destination.Location
    storage = open_storage(location, execution.execution_id)
    task, run = resource_id(execution.TaskArn), execution.execution_id
    base = (config.Destination.Location.Subdirectory or "").strip("/")
    folder = "/".join(part for part in (base, "{kind}", task, run) if part)
    try:
        _write(
            storage,
            f"{folder.format(kind='Summary-Reports')}/{run}.summary-v1.json",
            {
                # Its own outcome is not known while it is written.
                **{key: value for key, value in summary.items() if key != "ReportResult"},
                "TaskArn": execution.TaskArn,
                "AccountId": execution.TaskArn.split(":")[4],
                "SourceLocation": _location(execution.Source),
                "DestinationLocation": _location(execution.Destination),
            },
        )
        if config.detailed:
            lists = _DetailedLists(storage, folder.format(kind="Detailed-Reports"), execution)
            successes = {c: config.level(c) == "SUCCESSES_AND_ERRORS" for c in CATEGORIES}
            for category, row in _rows(store, execution):
                if successes[category] or row["Status"] != "SUCCESS":  # FAILED or PLANNED
                    lists.add(category, row)
            lists.close()
    finally:
        storage.close()
    return "/" + folder.format(kind="Summary-Reports")


def _location(location: Any) -> dict[str, str]:
    return {"LocationArn": location.LocationArn, "LocationUri": location.location_uri}


def _rows(store: StagingStore, execution: ExecutionInput) -> Iterator[tuple[Category, Any]]:
    """Every report row of the execution, in one pass over the staging store."""
    if execution.DryRun:
        yield from _planned(store, execution)
        return
    for key in store.result_keys(execution.execution_id, REPORT_PREFIX):
        for row in store.rows(key):
            yield row.pop("Category"), row


def _planned(store: StagingStore, execution: ExecutionInput) -> Iterator[tuple[Category, Any]]:
    """What a dry run's plan would do."""
    execution_id = execution.execution_id
    for key in store.batch_keys(execution_id, "files"):
        for row in store.rows(key):
            action, _, entry = FileAction.from_row(row)
            yield (
                "Transferred",
                {
                    "RelativePath": "/" + entry.path,
                    "Status": "PLANNED",
                    "TransferType": "CONTENT_AND_METADATA" if action == COPY else "METADATA_ONLY",
                    "SrcMetadata": metadata(entry),
                },
            )
    for key in store.batch_keys(execution_id, "links"):
        for row in store.rows(key):
            link = HardLink.from_row(row)
            yield (
                "Transferred",
                {
                    "RelativePath": "/" + link.path,
                    "Status": "PLANNED",
                    "TransferType": "HARD_LINK",
                    "LinkTo": "/" + link.first,
                },
            )
    for key in store.batch_keys(execution_id, "directories"):
        for row in store.rows(key):
            changed, entry = DirectoryMetadata.from_row(row)
            if changed:  # the folder itself changes (not only its mtime, after its contents)
                yield (
                    "Transferred",
                    {
                        "RelativePath": "/" + entry.path,
                        "Status": "PLANNED",
                        "TransferType": "METADATA_ONLY",
                        "SrcMetadata": metadata(entry),
                    },
                )
    for key in store.batch_keys(execution_id, "deletes"):
        for row in store.rows(key):
            yield (
                "Deleted",
                {"RelativePath": "/" + Deletion.from_row(row).path, "Status": "PLANNED"},
            )


class _DetailedLists:
    """The detailed report's files, per category, written as each fills up to
    ENTRIES_PER_FILE paths; a category with nothing to list gets one empty file."""

    def __init__(self, storage: Storage, folder: str, execution: ExecutionInput) -> None:
        self.storage = storage
        self.folder = folder
        self.execution = execution
        self.rows: dict[Category, list[Any]] = {c: [] for c in CATEGORIES}
        self.written: dict[Category, int] = dict.fromkeys(CATEGORIES, 0)

    def add(self, category: Category, row: Any) -> None:
        self.rows[category].append(row)
        if len(self.rows[category]) == ENTRIES_PER_FILE:
            self._flush(category)

    def close(self) -> None:
        for category in CATEGORIES:
            if self.rows[category] or not self.written[category]:
                self._flush(category)

    def _flush(self, category: Category) -> None:
        self.written[category] += 1
        run = self.execution.execution_id
        name = f"{run}.files-{category.lower()}-v1-{self.written[category]:05d}.json"
        document = {
            "TaskExecutionArn": self.execution.TaskExecutionArn,
            category: self.rows[category],
        }
        _write(self.storage, f"{self.folder}/{name}", document)
        self.rows[category] = []


def _write(storage: Storage, path: str, document: dict[str, Any]) -> None:
    data = json.dumps(document, indent=2, default=str, ensure_ascii=False).encode()
    storage.make_dir(os.path.dirname(path))
    now = time.time_ns()
    entry = Entry(path, FILE, size=len(data), mtime_ns=now, atime_ns=now, mode=0o644)
    writer = storage.create_file(path, entry, _WRITE_MODE_ONLY)
    try:
        writer.write(data)
        writer.commit(exclusive=False)
    except BaseException:
        writer.abort()
        raise
