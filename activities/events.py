"""What happened to each path of an execution, said twice: as LogLevel asks, in structured log
lines, and, when the task wants a STANDARD task report, as rows the report is made from.

LogLevel OFF says nothing; BASIC says what failed (not transferred, deleted or verified);
TRANSFER also what was transferred, deleted, verified and skipped. Each line is one JSON object
with the execution's ARN: it goes to the worker's log, where a log shipper can take it, and to
the execution's log in the staging store, which `ferry logs` reads. (A batch retried from its
checkpoint may log the rows since that checkpoint twice; its report rows are those its
checkpoint saved, so the report has each path once.)
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from activities.staging import ResultLog, StagingStore
from activities.storage.base import KIND_NAMES, Entry
from models.reports import Category

log = logging.getLogger("ferry.events")

LEVELS = {"OFF": 0, "BASIC": 1, "TRANSFER": 2}


REPORT_PREFIX = "report-"


def report_step(step: str) -> str:
    """The name under which a step's report rows are kept in the staging store."""
    return REPORT_PREFIX + step


def metadata(entry: Entry) -> dict[str, Any]:
    """An entry's metadata as a report shows it."""
    shown = {
        "Type": KIND_NAMES.get(entry.kind, entry.kind),
        "ContentSize": entry.size,
        "Mtime": _time(entry.mtime_ns),
        "Atime": _time(entry.atime_ns),
        "Uid": entry.uid,
        "Gid": entry.gid,
        "Mode": f"{entry.mode:04o}",
    }
    if entry.owner or entry.group:  # HDFS's names
        shown.update(Owner=entry.owner, Group=entry.group)
    return shown


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds")


def notice_line(execution_arn: str, message: str) -> str:
    """A line of the execution's log about the execution itself, not a path."""
    return json.dumps(
        {
            "Time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "Level": "WARNING",
            "TaskExecutionArn": execution_arn,
            "Event": "NOTICE",
            "Message": message,
        },
        ensure_ascii=False,
    )


class Events:
    def __init__(
        self,
        store: StagingStore,
        execution_arn: str,
        level: str | None,
        report: ResultLog | None = None,
    ) -> None:
        self.arn = execution_arn
        self.level = LEVELS.get(level or "OFF", 0)
        self.log = store.log(execution_arn)
        self.report = report

    @property
    def keeps_successes(self) -> bool:
        """Whether successes are recorded at all (worth describing them)."""
        return self.report is not None or self.level >= LEVELS["TRANSFER"]

    def record(self, category: Category, path: str, *, failed: bool = False, **fields: Any) -> None:
        """`path` (relative to the location) was transferred, verified, deleted or skipped, or
        failed to be; `fields` say how (ErrorCode and ErrorDetail when it failed)."""
        shown = "/" + path
        status = "FAILED" if failed else "SUCCESS"
        if self.report is not None:
            self.report.append(
                {"Category": category, "RelativePath": shown, "Status": status, **fields}
            )
        if self.level < (1 if failed else 2):
            return
        line = json.dumps(
            {
                "Time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "Level": "ERROR" if failed else "INFO",
                "TaskExecutionArn": self.arn,
                "Event": "FAILED" if failed else category.upper(),
                "Category": category,
                "Path": shown,
                **fields,
            },
            ensure_ascii=False,
        )
        log.info("%s", line)
        self.log.append(line)

    def save(self) -> list[str]:
        """At a checkpoint: the lines so far to the store, and the report rows so far (the
        parts the checkpoint names)."""
        self.log.save()
        return self.report.save() if self.report is not None else []

    def publish(self) -> None:
        """At the end: the rest of the lines, and the whole report log."""
        self.log.save()
        if self.report is not None:
            self.report.publish()
