"""The staging store: an execution's plan and results, kept out of workflow history.

PREPARING writes the plan here as batches of JSON lines, one file per batch; the workflow only
ever holds batch counts. On one machine this is a directory under Ferry's data directory; workers
on several machines must share it (a shared file system).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from typing import IO, Any

_encode = json.JSONEncoder(separators=(",", ":")).encode


class StagingStore:
    def __init__(self, root: str) -> None:
        self.root = root

    def _dir(self, execution_id: str) -> str:
        return os.path.join(self.root, execution_id)

    def batch_path(self, execution_id: str, step: str, index: int) -> str:
        return os.path.join(self._dir(execution_id), f"{step}-{index:06d}.jsonl")

    def result_path(self, execution_id: str, step: str, index: int) -> str:
        return os.path.join(self._dir(execution_id), "results", f"{step}-{index:06d}.jsonl")

    def batch_files(self, execution_id: str, step: str) -> list[str]:
        """A step's batches, in order."""
        folder = self._dir(execution_id)
        names = sorted(
            name
            for name in _names(folder)
            if name.startswith(step + "-") and name.endswith(".jsonl")
        )
        return [os.path.join(folder, name) for name in names]

    def result_files(self, execution_id: str, prefix: str) -> list[str]:
        """The result logs whose step starts with `prefix`, in order."""
        folder = os.path.join(self._dir(execution_id), "results")
        names = sorted(name for name in _names(folder) if name.startswith(prefix))
        return [os.path.join(folder, name) for name in names]

    def control_dir(self, execution_id: str) -> str:
        """Checkpoint and stop files between batches and the activities waiting for them."""
        return os.path.join(self._dir(execution_id), "control")

    def create(self, execution_id: str) -> None:
        os.makedirs(os.path.join(self._dir(execution_id), "results"), exist_ok=True)
        os.makedirs(self.control_dir(execution_id), exist_ok=True)

    def clear(self, execution_id: str, step: str, start: int = 0) -> None:
        """Drop a step's batches from `start` on, and their results, so that a retried
        PREPARING starts clean after the batches that already ran."""
        for folder in (self._dir(execution_id), os.path.join(self._dir(execution_id), "results")):
            if os.path.isdir(folder):
                for name in os.listdir(folder):
                    if name.startswith(step + "-") and _index(name, step) >= start:
                        os.unlink(os.path.join(folder, name))

    def remove(self, execution_id: str) -> None:
        shutil.rmtree(self._dir(execution_id), ignore_errors=True)

    def batches(self, execution_id: str, step: str, first: int = 0) -> BatchWriter:
        return BatchWriter(self, execution_id, step, first=first)

    def open_results(self, execution_id: str, step: str, index: int, offset: int) -> ResultLog:
        return ResultLog(self.result_path(execution_id, step, index), offset)


class BatchWriter:
    """Cuts a stream of rows of one step into batches of at most `max_rows` rows and, where rows
    carry a size, about `max_bytes` bytes; a batch appears under its name only when complete."""

    def __init__(
        self,
        store: StagingStore,
        execution_id: str,
        step: str,
        max_rows: int = 1000,
        max_bytes: int = 1 << 62,
        first: int = 0,
    ) -> None:
        """`first`: the number of the first batch (after batches an earlier attempt left)."""
        self._store = store
        self._execution_id = execution_id
        self._step = step
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.count = first
        self.on_seal: Callable[[], None] | None = None  # called when a full batch is sealed
        self._file: IO[str] | None = None
        self._rows = 0
        self._bytes = 0

    def add(self, row: list[Any], size: int = 0) -> None:
        if self._file is None:
            self._file = open(self._part(), "w", encoding="utf-8")  # noqa: SIM115
        self._file.write(_encode(row))
        self._file.write("\n")
        self._rows += 1
        self._bytes += size
        if self._rows >= self.max_rows or self._bytes >= self.max_bytes:
            self._seal()
            if self.on_seal is not None:
                self.on_seal()

    def close(self) -> int:
        """Seal the last batch; the number of batches written."""
        if self._file is not None:
            self._seal()
        return self.count

    def _part(self) -> str:
        return self._store.batch_path(self._execution_id, self._step, self.count) + ".part"

    def _seal(self) -> None:
        assert self._file is not None
        self._file.close()
        part = self._part()
        os.replace(part, part.removesuffix(".part"))
        self._file = None
        self._rows = 0
        self._bytes = 0
        self.count += 1


class ResultLog:
    """What a batch did, one JSON line per entry, appended as it goes. A retried batch reopens
    it at the offset of its last heartbeat, dropping lines for entries it will do again."""

    def __init__(self, path: str, offset: int) -> None:
        self._file = open(path, "a+", encoding="utf-8")  # noqa: SIM115
        self._file.truncate(offset)
        self._file.seek(offset)

    def append(self, row: list[Any] | dict[str, Any]) -> None:
        self._file.write(_encode(row))
        self._file.write("\n")

    def offset(self) -> int:
        self._file.flush()
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def _index(name: str, step: str) -> int:
    """The batch number in a name like "files-000012.jsonl" (also its results and .part)."""
    digits = name[len(step) + 1 :].partition(".")[0]
    return int(digits) if digits.isdigit() else 1 << 62


def _names(folder: str) -> list[str]:
    """A folder's names; none if it was never made (an execution that ended in LAUNCHING)."""
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def read_rows(path: str) -> Iterator[Any]:
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)
