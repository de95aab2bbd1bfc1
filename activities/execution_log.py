"""An execution's log, at DataSync's LogLevel: OFF, BASIC (errors: files that could not be
transferred, deleted or verified) or TRANSFER (also every file transferred, deleted and
verified).

Each event is one JSON line carrying the execution's ARN: it goes to the worker's log, where a
log shipper can take it, and is appended to `logs/<execution id>.jsonl` in the staging store,
which `ferry logs` reads. A batch retried from its checkpoint may log the rows since that
checkpoint a second time.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from models.arn import execution_id

log = logging.getLogger("ferry.executionlog")

LEVELS = {"OFF": 0, "BASIC": 1, "TRANSFER": 2}


def log_path(staging_root: str, execution_arn: str) -> str:
    return os.path.join(staging_root, "logs", execution_id(execution_arn) + ".jsonl")


class ExecutionLog:
    def __init__(self, staging_root: str, execution_arn: str, level: str | None) -> None:
        self.arn = execution_arn
        self.level = LEVELS.get(level or "OFF", 0)
        self.path = log_path(staging_root, execution_arn)

    def error(self, path: str, kind: str, detail: str) -> None:
        self._emit(
            1, "ERROR", {"Event": "FAILED", "Path": "/" + path, "Kind": kind, "Detail": detail}
        )

    def transferred(self, path: str, size: int, checksum: str) -> None:
        self._emit(
            2,
            "INFO",
            {"Event": "TRANSFERRED", "Path": "/" + path, "Bytes": size, "Checksum": checksum},
        )

    def deleted(self, path: str) -> None:
        self._emit(2, "INFO", {"Event": "DELETED", "Path": "/" + path})

    def verified(self, path: str, checksum: str | None = None) -> None:
        fields: dict[str, Any] = {"Event": "VERIFIED", "Path": "/" + path}
        if checksum:
            fields["Checksum"] = checksum
        self._emit(2, "INFO", fields)

    def _emit(self, level: int, severity: str, fields: dict[str, Any]) -> None:
        if self.level < level:
            return
        record = {
            "Time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "Level": severity,
            "TaskExecutionArn": self.arn,
            **fields,
        }
        line = json.dumps(record, ensure_ascii=False)
        log.info("%s", line)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        # One write per line on an O_APPEND descriptor: lines from several processes don't mix.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
