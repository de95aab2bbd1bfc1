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
from activities.preparing import COPY
from activities.staging import StagingStore, read_rows
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
            detailed = folder.format(kind="Detailed-Reports")
            for category in CATEGORIES:
                successes = config.level(category) == "SUCCESSES_AND_ERRORS"
                rows = _rows(store, execution, category, successes)
                for number, chunk in enumerate(_chunks(rows), start=1):
                    name = f"{run}.files-{category.lower()}-v1-{number:05d}.json"
                    _write(
                        storage,
                        f"{detailed}/{name}",
                        {"TaskExecutionArn": execution.TaskExecutionArn, category: chunk},
                    )
    finally:
        storage.close()
    return "/" + folder.format(kind="Summary-Reports")


def _location(location: Any) -> dict[str, str]:
    return {"LocationArn": location.LocationArn, "LocationUri": location.location_uri}


def _rows(
    store: StagingStore, execution: ExecutionInput, category: Category, successes: bool
) -> Iterator[dict[str, Any]]:
    if execution.DryRun:
        yield from _planned(store, execution, category)
        return
    for path in store.result_files(execution.execution_id, REPORT_PREFIX):
        for row in read_rows(path):
            if row["Category"] == category and (successes or row["Status"] == "FAILED"):
                row.pop("Category")
                yield row


def _planned(
    store: StagingStore, execution: ExecutionInput, category: Category
) -> Iterator[dict[str, Any]]:
    """What a dry run's plan would do."""
    if category == "Transferred":
        for path in store.batch_files(execution.execution_id, "files"):
            for row in read_rows(path):
                entry = Entry.from_row(row[2:])
                yield {
                    "RelativePath": "/" + entry.path,
                    "Status": "PLANNED",
                    "TransferType": "CONTENT_AND_METADATA" if row[0] == COPY else "METADATA_ONLY",
                    "SrcMetadata": metadata(entry),
                }
        for path in store.batch_files(execution.execution_id, "links"):
            for link, first, _ in read_rows(path):
                yield {
                    "RelativePath": "/" + link,
                    "Status": "PLANNED",
                    "TransferType": "HARD_LINK",
                    "LinkTo": "/" + first,
                }
        for path in store.batch_files(execution.execution_id, "directories"):
            for row in read_rows(path):
                if row[0]:  # the folder itself changes (not only its mtime, after its contents)
                    entry = Entry.from_row(row[1:])
                    yield {
                        "RelativePath": "/" + entry.path,
                        "Status": "PLANNED",
                        "TransferType": "METADATA_ONLY",
                        "SrcMetadata": metadata(entry),
                    }
    elif category == "Deleted":
        for path in store.batch_files(execution.execution_id, "deletes"):
            for row in read_rows(path):
                yield {"RelativePath": "/" + row[0], "Status": "PLANNED"}


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Lists of at most ENTRIES_PER_FILE rows; one empty list when there are none."""
    chunk: list[dict[str, Any]] = []
    written = False
    for row in rows:
        chunk.append(row)
        if len(chunk) == ENTRIES_PER_FILE:
            yield chunk
            chunk, written = [], True
    if chunk or not written:
        yield chunk


def _write(storage: Storage, path: str, document: dict[str, Any]) -> None:
    data = json.dumps(document, indent=2, default=str, ensure_ascii=False).encode()
    storage.make_dir(os.path.dirname(path))
    writer = storage.create_file(path)
    try:
        writer.write(data)
        now = time.time_ns()
        entry = Entry(path, FILE, size=len(data), mtime_ns=now, atime_ns=now, mode=0o644)
        writer.commit(entry, _WRITE_MODE_ONLY, exclusive=False)
    except BaseException:
        writer.abort()
        raise
