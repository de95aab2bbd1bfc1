"""Walking a location in a fixed order, and pairing two walks path by path.

Both sides are walked depth-first with each directory's children sorted by name, so that a
source and a destination listing can be merged in one pass without holding either in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from activities.storage.base import DIR, TEMP_NAME, Entry, Storage, StorageError, describe_error
from models.execution import FileIssue
from models.filters import PathFilter, Scope

log = logging.getLogger(__name__)


def order_key(path: str) -> str:
    """Sorts paths the way the walk yields them: a folder, then everything below it, then its
    next sibling ("a", "a/b", "a-b"); '/' sorts before every character a name can hold."""
    return path.replace("/", "\0")


class Walk:
    """Pre-order walk of one location, filtered. Directories that cannot be listed are reported
    in `unlisted` (and `issues`) and walked as if empty."""

    def __init__(self, storage: Storage, path_filter: PathFilter, side: str) -> None:
        self.storage = storage
        self.filter = path_filter
        self.side = side
        self.unlisted: set[str] = set()
        self.stale_temps: list[str] = []
        self.issues: list[FileIssue] = []
        self.count = 0

    def __iter__(self) -> Iterator[Entry]:
        root = self.storage.stat("")
        if root is None or root.kind != DIR:
            raise StorageError(f"the {self.side} location's root is not a directory")
        self.count += 1
        yield root
        # Each level: the sorted children still to visit and the scope they inherit.
        root_scope = self.filter.scope("", True, Scope.ON_THE_WAY)
        stack: list[tuple[list[Entry], Scope]] = [(self._children(""), root_scope)]
        while stack:
            children, parent_scope = stack[-1]
            if not children:
                stack.pop()
                continue
            entry = children.pop()
            scope = self.filter.scope(entry.path, entry.kind == DIR, parent_scope)
            if scope is Scope.OUT:
                continue
            self.count += 1
            yield entry
            if entry.kind == DIR:
                stack.append((self._children(entry.path), scope))

    def _children(self, path: str) -> list[Entry]:
        """Children in reverse name order, so that pop() takes them in order."""
        try:
            children = list(self.storage.list_dir(path))
        except OSError as error:
            self.unlisted.add(path)
            detail = f"cannot list: {describe_error(error)}"
            issue = FileIssue(path=path, kind="read", detail=detail)
            self.issues.append(issue)
            log.warning("cannot list %s directory /%s: %s", self.side, path, issue.detail)
            return []
        kept = []
        for child in children:
            if TEMP_NAME.fullmatch(child.path.rpartition("/")[2]):
                self.stale_temps.append(child.path)
            else:
                kept.append(child)
        kept.sort(key=lambda e: e.path, reverse=True)
        return kept


def merge(
    source: Iterator[Entry], destination: Iterator[Entry]
) -> Iterator[tuple[Entry | None, Entry | None]]:
    """Pairs of (source, destination) entries with the same path, in walk order; a side is None
    where only the other has the path."""
    s = next(source, None)
    d = next(destination, None)
    while s is not None or d is not None:
        if d is None:
            yield s, None
            s = next(source, None)
        elif s is None:
            yield None, d
            d = next(destination, None)
        else:
            ks, kd = order_key(s.path), order_key(d.path)
            if ks == kd:
                yield s, d
                s = next(source, None)
                d = next(destination, None)
            elif ks < kd:
                yield s, None
                s = next(source, None)
            else:
                yield None, d
                d = next(destination, None)
