"""The rows of a plan in the staging store, and what batches write back: one class per kind of
row. PREPARING writes them, TRANSFERRING, VERIFYING and the task report read them by name.

A row is stored as a JSON list; an entry, where a row has one, comes last (its length varies:
owner names come only where a storage has them).

The plan's steps, in the order TRANSFERRING runs them:
  removals     Removal: a destination entry in the way of a source entry of another kind
  files        FileAction: a file, symbolic link or device to create, replace or update
  links        HardLink: a further name of a hard-linked file, once the file exists
  deletes      Deletion: a destination entry the source no longer has
  directories  DirectoryMetadata: a folder's metadata, deepest first, after its contents
and VERIFYING's `verify` step, VerifiedFile: a file whose contents are read on both sides.
A batch's result log holds Written rows (and WrittenLink rows for hard links).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from activities.storage.base import Entry

# FileAction.action
COPY = "copy"
SET_METADATA = "meta"
MAKE_SYMLINK = "symlink"
MAKE_SPECIAL = "special"


class Removal(NamedTuple):
    path: str
    kind: str

    def to_row(self) -> list[Any]:
        return [self.path, self.kind]

    @classmethod
    def from_row(cls, row: list[Any]) -> Removal:
        return cls(row[0], row[1])


Deletion = Removal  # the same two fields: a path and what it is


class FileAction(NamedTuple):
    action: str  # COPY, SET_METADATA, MAKE_SYMLINK or MAKE_SPECIAL
    exclusive: bool  # OverwriteMode NEVER: never replace what is there
    entry: Entry  # the source's, as PREPARING listed it

    def to_row(self) -> list[Any]:
        return [self.action, int(self.exclusive), *self.entry.row()]

    @classmethod
    def from_row(cls, row: list[Any]) -> FileAction:
        return cls(row[0], bool(row[1]), Entry.from_row(row[2:]))


class HardLink(NamedTuple):
    path: str
    first: str  # the name the file was written under
    exclusive: bool

    def to_row(self) -> list[Any]:
        return [self.path, self.first, int(self.exclusive)]

    @classmethod
    def from_row(cls, row: list[Any]) -> HardLink:
        return cls(row[0], row[1], bool(row[2]))


class DirectoryMetadata(NamedTuple):
    changed: bool  # the folder itself differs (else only its mtime, moved by its contents)
    entry: Entry

    def to_row(self) -> list[Any]:
        return [int(self.changed), *self.entry.row()]

    @classmethod
    def from_row(cls, row: list[Any]) -> DirectoryMetadata:
        return cls(bool(row[0]), Entry.from_row(row[1:]))


class VerifiedFile(NamedTuple):
    path: str

    def to_row(self) -> list[Any]:
        return [self.path]

    @classmethod
    def from_row(cls, row: list[Any]) -> VerifiedFile:
        return cls(row[0])


# Written.what
WROTE_FILE = "f"
WROTE_METADATA = "m"
WROTE_OTHER = "o"  # symbolic link or device
WROTE_DIRECTORY = "d"
WROTE_LINK = "h"


class Written(NamedTuple):
    """What a batch wrote, for ONLY_FILES_TRANSFERRED verification."""

    what: str  # WROTE_FILE, WROTE_METADATA, WROTE_OTHER or WROTE_DIRECTORY
    entry: Entry  # as written
    checksum: str = ""  # a file's XXH3-128, taken as its bytes passed
    torn: bool = False  # the source changed while the file was read

    def to_row(self) -> list[Any]:
        return [self.what, self.checksum, int(self.torn), *self.entry.row()]


class WrittenLink(NamedTuple):
    path: str
    first: str

    def to_row(self) -> list[Any]:
        return [WROTE_LINK, self.path, self.first]


def written_from_row(row: list[Any]) -> Written | WrittenLink:
    if row[0] == WROTE_LINK:
        return WrittenLink(row[1], row[2])
    return Written(row[0], Entry.from_row(row[3:]), row[1], bool(row[2]))
