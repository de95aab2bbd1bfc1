"""The local adapter on a real file system: it never follows a link out of its root, and never
writes through a temporary name another name shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import write

from activities.storage.base import FILE, Entry, MetadataPolicy, remove_tree, temp_name
from activities.storage.local import LocalStorage
from models.locations import LocalLocation

KEEP_ALL = MetadataPolicy(mtime=True, atime=True, uid=True, gid=True, mode=True, devices=True)


def test_a_link_in_the_destination_never_leads_a_write_outside(workdir: Path) -> None:
    outside = workdir / "outside"
    outside.mkdir()
    root = workdir / "root"
    root.mkdir()
    os.symlink(outside, root / "a")
    storage = LocalStorage(str(root))

    with pytest.raises(OSError, match="symbolic link is in the way"):
        storage.create_file("a/x", Entry("a/x", FILE), KEEP_ALL)
    with pytest.raises(OSError, match="symbolic link is in the way"):
        storage.create_file("a/deeper/x", Entry("a/deeper/x", FILE), KEEP_ALL)
    with pytest.raises(FileExistsError):
        storage.make_dir("a")
    with pytest.raises(OSError, match="symbolic link is in the way"):
        storage.open_read("a/anything")
    storage.remove("a", "l")  # the link itself goes; what it points to stays

    assert list(outside.iterdir()) == []


def test_metadata_is_never_set_through_a_link(workdir: Path) -> None:
    target = write(workdir / "target.txt", "x", 0o644)
    root = workdir / "root"
    root.mkdir()
    os.symlink(target, root / "f")
    storage = LocalStorage(str(root))
    entry = Entry("f", FILE, mode=0o600, mtime_ns=10**18, atime_ns=10**18, uid=0, gid=0)

    with pytest.raises(Exception, match="cannot set mode"):
        storage.set_metadata("f", entry, KEEP_ALL)

    assert os.stat(target).st_mode & 0o777 == 0o644


def test_a_recursive_removal_stays_inside(workdir: Path) -> None:
    outside = workdir / "outside"
    write(outside / "precious.txt", "keep")
    root = workdir / "root"
    write(root / "gone" / "a.txt", "a")
    os.symlink(outside, root / "gone" / "link-out")

    removed = remove_tree(LocalStorage(str(root)), "gone", LocalLocation.CAPABILITIES)

    assert removed == 3  # gone, gone/a.txt and the link
    assert (outside / "precious.txt").read_text() == "keep"
    assert not (root / "gone").exists()


def test_a_leftover_temporary_name_sharing_the_final_inode_is_not_written_through(
    workdir: Path,
) -> None:
    """An attempt that died between link() and unlink() leaves the temporary name as a second
    name of the final file; the retry must not truncate that file by reopening it."""
    root = workdir / "root"
    final = write(root / "data.bin", b"complete old copy")
    os.link(final, root / temp_name("exec-1", "data.bin"))
    storage = LocalStorage(str(root), "exec-1")

    writer = storage.create_file("data.bin", Entry("data.bin", FILE, size=3), KEEP_ALL)
    writer.write(b"new")
    assert final.read_bytes() == b"complete old copy"
    committed = writer.commit(exclusive=True)

    assert not committed  # OverwriteMode=NEVER: the file already there stays
    assert final.read_bytes() == b"complete old copy"
    assert sorted(p.name for p in root.iterdir()) == ["data.bin"]
