"""The staging store in a directory: the embedded default, for workers on one host.

Keys are paths below the directory. An object is written under a `.part` name and renamed into
place, so that it appears whole or not at all. Each file operation counts as a request.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import IO

from models.staging import StagingTraffic

PART = ".part"


class _FileWriter:
    def __init__(self, path: str, traffic: StagingTraffic) -> None:
        self._path = path
        self._traffic = traffic
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._file: IO[bytes] = open(path + PART, "wb")  # noqa: SIM115

    def write(self, text: str) -> None:
        self._file.write(text.encode())

    def commit(self) -> None:
        self._traffic.requests += 1
        self._traffic.bytes_written += self._file.tell()
        self._file.close()
        os.replace(self._path + PART, self._path)

    def abort(self) -> None:
        self._file.close()
        os.unlink(self._path + PART)


class DirectoryBackend:
    def __init__(self, root: str) -> None:
        self.url = self.root = root
        self.traffic = StagingTraffic()

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def writer(self, key: str) -> _FileWriter:
        return _FileWriter(self._path(key), self.traffic)

    def put(self, key: str, data: bytes) -> None:
        self.traffic.requests += 1
        self.traffic.bytes_written += len(data)
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + PART, "wb") as file:
            file.write(data)
        os.replace(path + PART, path)

    def lines(self, key: str) -> Iterator[str]:
        self.traffic.requests += 1
        with open(self._path(key), "rb") as file:
            for line in file:
                self.traffic.bytes_read += len(line)
                yield line.decode()

    def keys(self, prefix: str) -> list[str]:
        self.traffic.requests += 1
        folder, _, start = prefix.rpartition("/")
        base = self._path(folder)
        found: list[str] = []
        for top, folders, names in os.walk(base):
            relative = os.path.relpath(top, base)
            if relative == ".":
                folders[:] = [name for name in folders if name.startswith(start)]
                names = [name for name in names if name.startswith(start)]
            below = "" if relative == "." else relative + "/"
            found += [
                f"{folder}/{below}{name}" if folder else f"{below}{name}"
                for name in names
                if not name.endswith(PART)
            ]
        return sorted(found)

    def delete(self, keys: list[str]) -> None:
        self.traffic.requests += len(keys)
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(key))

    def delete_prefix(self, prefix: str) -> None:
        if prefix.endswith("/"):
            self.traffic.requests += 1
            shutil.rmtree(self._path(prefix), ignore_errors=True)
        else:
            self.delete(self.keys(prefix))
