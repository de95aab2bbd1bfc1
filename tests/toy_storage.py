"""A location type added as docs/architecture.md says: files in the worker's memory."""

from __future__ import annotations

import errno
import io
from typing import Any, ClassVar, Literal

from activities.storage.base import DIR, Entry, Storage, listing_key, listing_slice
from models.locations import BY_CONDITION, Capabilities, LocationBase, LocationKind
from models.requests import Request, TagList


# 1. The declaration: its model with what it can hold, its request shape, its kind.
class MemoryLocation(LocationBase):
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        posix_owners=False, posix_modes=False, hard_links=False, devices=False,
        refused_characters="*", exclusive_commit=BY_CONDITION, access_times=False,
    )  # fmt: skip
    LocationType: Literal["MEMORY"] = "MEMORY"
    Name: str

    @property
    def location_uri(self) -> str:
        return f"memory://{self.Name}/"

    @property
    def tree(self) -> tuple[str, str]:
        return "memory", f"/{self.Name}/"


class CreateLocationMemoryRequest(Request):
    Name: str
    Tags: TagList = []


KINDS = (  # this module is named in FERRY_LOCATION_TYPES
    LocationKind(
        name="Memory", title="a memory", model=MemoryLocation,
        create=CreateLocationMemoryRequest, adapter="toy_storage",
    ),
)  # fmt: skip
VOLUMES: dict[str, dict[str, list[Any]]] = {}  # a location's files: path -> [entry, bytes]


# 2. The adapter: the storage interface over a dict, and open_location.
class _Writer:
    def __init__(self, storage: MemoryStorage, entry: Entry) -> None:
        self.storage, self.entry, self.data = storage, entry, bytearray()

    def write(self, data: bytes | memoryview) -> None:
        self.data += data

    def commit(self, *, exclusive: bool) -> bool:  # the write is the commit: BY_CONDITION
        if exclusive and self.entry.path in self.storage.files:
            return False
        self.storage.make_dir(self.entry.path.rpartition("/")[0])
        self.entry.size = len(self.data)
        self.storage.files[self.entry.path] = [self.entry, bytes(self.data)]
        return True

    def abort(self) -> None:
        self.data = bytearray()


class _Reader(io.BytesIO):
    def __init__(self, item: list[Any]) -> None:
        super().__init__(item[1])
        self.item = item  # a snapshot: a file written again is a new item

    def stat(self) -> Entry:
        return self.item[0]

    def version(self) -> object:
        return id(self.item)


class MemoryStorage(Storage):
    def __init__(self, files: dict[str, list[Any]]) -> None:
        self.files = files
        self.make_dir("")

    def check(self, *, writable: bool) -> None: ...  # always there

    def stat(self, path: str) -> Entry | None:
        return self.files[path][0] if path in self.files else None

    def list_dir(self, path: str, *, after: str = "", limit: int = 0) -> tuple[list[Entry], bool]:
        self._existing(path)
        keyed = [(listing_key(p.rpartition("/")[2], e.kind), e) for p, (e, _) in self.files.items()]
        inside = [
            pair for pair in keyed if pair[1].path and pair[1].path.rpartition("/")[0] == path
        ]
        chosen, more = listing_slice(inside, after, limit)
        return [entry for _, entry in chosen], more

    def _existing(self, path: str) -> list[Any]:
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, "no such entry", path)
        return self.files[path]

    def open_read(self, path: str) -> _Reader:
        return _Reader(self._existing(path))

    def close_reader(self, reader: Any) -> None: ...

    def create_file(self, path: str, entry: Entry, policy: Any) -> _Writer:
        if "*" in path:
            raise OSError(errno.EINVAL, "a memory location holds no name with '*'", path)
        return _Writer(self, Entry(path, entry.kind, mtime_ns=entry.mtime_ns, mode=0o644))

    def make_dir(self, path: str) -> bool:
        parts, made = path.split("/") if path else [], path not in self.files
        for folder in ["/".join(parts[:depth]) for depth in range(len(parts) + 1)]:
            self.files.setdefault(folder, [Entry(folder, DIR, mode=0o755), None])
        return made

    def make_symlink(self, path: str, entry: Entry, policy: Any, **_: Any) -> bool:
        self.files[path] = [Entry(path, entry.kind, target=entry.target), None]
        return True

    def make_special(self, path: str, entry: Entry, policy: Any, **_: Any) -> bool:
        raise OSError(errno.EOPNOTSUPP, "a memory location holds no devices", path)

    def make_hard_link(self, path: str, existing: str, **_: Any) -> bool:
        raise OSError(errno.EOPNOTSUPP, "a memory location has no hard links", path)

    def set_metadata(self, path: str, entry: Entry, policy: Any) -> None:
        self._existing(path)[0].mtime_ns = entry.mtime_ns

    def remove(self, path: str, kind: str) -> None:  # a tree: remove_tree, above
        if self._existing(path)[0].kind == DIR and self.list_dir(path, limit=1)[0]:
            raise OSError(errno.ENOTEMPTY, "a folder with something in it", path)
        del self.files[path]


def open_location(location: MemoryLocation, temp_tag: str = "") -> MemoryStorage:
    return MemoryStorage(VOLUMES.setdefault(location.Name, {}))
