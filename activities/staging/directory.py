"""The staging store in a directory: the embedded default, for workers on one host.

Keys are paths below the directory. An object is written under a `.part` name and renamed into
place, so that it appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import IO

PART = ".part"


class _FileWriter:
    def __init__(self, path: str) -> None:
        self._path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._file: IO[str] = open(path + PART, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, text: str) -> None:
        self._file.write(text)

    def commit(self) -> None:
        self._file.close()
        os.replace(self._path + PART, self._path)

    def abort(self) -> None:
        self._file.close()
        os.unlink(self._path + PART)


class DirectoryBackend:
    def __init__(self, root: str) -> None:
        self.url = self.root = root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def writer(self, key: str) -> _FileWriter:
        return _FileWriter(self._path(key))

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + PART, "wb") as file:
            file.write(data)
        os.replace(path + PART, path)

    def lines(self, key: str) -> Iterator[str]:
        try:
            file = open(self._path(key), encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            return
        with file:
            yield from file

    def keys(self, prefix: str) -> list[str]:
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
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(key))

    def delete_prefix(self, prefix: str) -> None:
        if prefix.endswith("/"):
            shutil.rmtree(self._path(prefix), ignore_errors=True)
        else:
            self.delete(self.keys(prefix))
