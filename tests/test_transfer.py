"""Transfers between two `local` locations: what lands at the destination, with which metadata,
and what DescribeTaskExecution counts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from helpers import create_task, differences, empty_folder, run, snapshot, transfer, write

from api import Ferry

OLD = 1_600_000_000_123_456_789  # 2020-09-13, nanoseconds
OLDER = 1_500_000_000_987_654_321


def make_rich_tree(root: Path) -> None:
    """Every kind of thing a file server holds, with metadata that differs from the defaults."""
    write(root / "plain.txt", "hello\n", 0o640)
    write(root / "empty.bin", b"", 0o600)
    write(root / "bin" / "tool", b"#!/bin/sh\necho hi\n" * 100, 0o755)
    write(root / "bin" / "setuid-tool", b"\x7fELF" + os.urandom(3000), 0o4755)
    write(root / "big.dat", os.urandom(3 * 1024 * 1024 + 17), 0o644)
    (root / "shared").mkdir()
    os.chmod(root / "shared", 0o1777)
    (root / "empty dir" / "nested empty").mkdir(parents=True)
    write(root / "names" / "with space.txt", "space")
    write(root / "names" / "new\nline.txt", "newline")
    write(root / "names" / "é café 日本語.txt", "unicode")
    write(root / "names" / ("x" * 251 + ".txt"), "255 bytes long")  # the longest name ext4 takes
    write(root / "names" / ("é" * 127 + "x"), "255 bytes of UTF-8")
    deep = root / "deep"
    for level in range(40):
        deep = deep / f"level-{level:02d}"
    write(deep / "bottom.txt", "deep")
    os.symlink("plain.txt", root / "link-relative")
    os.symlink("/etc/hostname", root / "link-absolute")
    os.symlink("does/not/exist", root / "link-dangling")
    write(root / "hard" / "one", b"linked" * 1000)
    os.link(root / "hard" / "one", root / "hard" / "two")
    os.link(root / "hard" / "one", root / "three-at-top")
    # Owners that are not the worker's, and times in the past, everywhere.
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in [*files, *dirs]:
            path = os.path.join(folder, name)
            os.chown(path, 1234, 2345, follow_symlinks=False)
            os.utime(path, ns=(OLDER, OLD), follow_symlinks=False)
    os.chown(root, 1234, 2345)
    os.utime(root, ns=(OLDER, OLD))
    os.chmod(root / "bin" / "setuid-tool", 0o4755)  # chown cleared the bit


async def test_everything_comes_across_with_its_metadata(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    make_rich_tree(source)
    empty_folder(destination)
    regular = [p for p in source.rglob("*") if stat.S_ISREG(os.lstat(p).st_mode)]
    atimes_before = {p: os.lstat(p).st_atime_ns for p in regular}

    _, result = await transfer(ferry, source, destination)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert differences(source, destination, atime=True) == []
    entries = len(snapshot(source))
    assert result["EstimatedFilesToTransfer"] == result["FilesTransferred"] == entries
    files = [st for st in map(os.lstat, source.rglob("*")) if stat.S_ISREG(st.st_mode)]
    size = sum({st.st_ino: st.st_size for st in files}.values())  # hard links count once
    assert result["BytesWritten"] == result["EstimatedBytesToTransfer"] == size
    assert result["FilesVerified"] == entries
    assert result["Result"]["PrepareStatus"] == "SUCCESS"
    assert result["Result"]["TransferStatus"] == "SUCCESS"
    assert result["Result"]["VerifyStatus"] == "SUCCESS"
    assert result["EndTime"] >= result["LaunchTime"] >= result["StartTime"]
    # Reading the source did not change its files' atimes (O_NOATIME).
    assert {p: os.lstat(p).st_atime_ns for p in atimes_before} == atimes_before
    # The setuid bit survived the change of owner.
    assert os.stat(destination / "bin" / "setuid-tool").st_mode & 0o7777 == 0o4755


async def test_a_second_execution_with_nothing_changed_transfers_nothing(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    make_rich_tree(source)
    empty_folder(destination)
    task, first = await transfer(ferry, source, destination)
    assert first["Status"] == "SUCCESS"
    inodes = {p: os.lstat(p).st_ino for p in destination.rglob("*")}

    second = await run(ferry, task)

    assert second["Status"] == "SUCCESS"
    assert second["EstimatedFilesToTransfer"] == second["FilesTransferred"] == 0
    assert second["BytesWritten"] == second["BytesTransferred"] == 0
    assert {p: os.lstat(p).st_ino for p in destination.rglob("*")} == inodes
    assert differences(source, destination) == []


async def test_changed_copies_only_what_differs(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    for folder in "abc":
        for name in ("x", "y", "old"):
            write(source / folder / name, f"{folder}/{name} first version" * 50)
    empty_folder(destination)
    task, first = await transfer(ferry, source, destination)
    assert first["Status"] == "SUCCESS"

    write(source / "a" / "x", "a/x second version!" * 50)  # content (and mtime)
    os.chmod(source / "a" / "y", 0o600)  # metadata only
    write(source / "b" / "new", "brand new")  # new file; b's mtime moves
    os.unlink(source / "c" / "old")  # gone from the source; c's mtime moves
    second = await run(ferry, task)

    assert second["Status"] == "SUCCESS", second["Result"].get("ErrorDetail")
    # a/x, a/y, b/new, and the folders b and c whose mtimes changed.
    assert second["FilesTransferred"] == second["EstimatedFilesToTransfer"] == 5
    assert second["BytesWritten"] == len("a/x second version!" * 50) + len("brand new")
    assert (destination / "a" / "x").read_text() == "a/x second version!" * 50
    assert stat.S_IMODE(os.stat(destination / "a" / "y").st_mode) == 0o600
    assert (destination / "c" / "old").exists()  # PreserveDeletedFiles=PRESERVE
    assert second["FilesDeleted"] == 0


async def test_transfer_mode_all_copies_everything_again(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    for number in range(20):
        write(source / "f" / f"{number}.txt", "x" * number)
    empty_folder(destination)
    task, _ = await transfer(ferry, source, destination)

    again = await run(ferry, task, OverrideOptions={"TransferMode": "ALL"})

    assert again["Status"] == "SUCCESS"
    assert again["FilesTransferred"] == 22  # 20 files, the folder and the root
    assert again["BytesWritten"] == sum(range(20))
    assert again["Options"]["TransferMode"] == "ALL"


async def test_overwrite_never_leaves_existing_files_alone(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "kept.txt", "from the source")
    write(source / "new.txt", "new")
    write(destination / "kept.txt", "already at the destination")
    before = os.stat(destination / "kept.txt")

    _, result = await transfer(ferry, source, destination, Options={"OverwriteMode": "NEVER"})

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert (destination / "kept.txt").read_text() == "already at the destination"
    after = os.stat(destination / "kept.txt")
    assert (after.st_ino, after.st_mtime_ns, after.st_mode) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_mode,
    )
    assert (destination / "new.txt").read_text() == "new"
    assert result["FilesSkipped"] >= 1


async def test_remove_deletes_what_the_source_no_longer_has(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "stays.txt", "stays")
    write(destination / "stale.txt", "stale")
    write(destination / "gone" / "a.txt", "a")
    write(destination / "gone" / "deeper" / "b.txt", "b")
    os.symlink("stays.txt", destination / "stale-link")

    _, result = await transfer(
        ferry, source, destination, Options={"PreserveDeletedFiles": "REMOVE"}
    )

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert sorted(p.name for p in destination.iterdir()) == ["stays.txt"]
    # stale.txt, stale-link, gone, gone/a.txt, gone/deeper, gone/deeper/b.txt
    assert result["FilesDeleted"] == result["EstimatedFilesToDelete"] == 6


async def test_preserve_keeps_what_the_source_no_longer_has(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "stays.txt", "stays")
    write(destination / "stale.txt", "stale")

    _, result = await transfer(ferry, source, destination)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert (destination / "stale.txt").read_text() == "stale"
    assert result["FilesDeleted"] == result["EstimatedFilesToDelete"] == 0


async def test_includes_and_excludes(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    for path in (
        "docs/guide.md",
        "docs/draft.tmp",
        "docs/cache/blob",
        "keep-a/1.txt",
        "keepsake.txt",
        "other/skip.txt",
        "top.txt",
    ):
        write(source / path, path)
    write(destination / "other" / "not-mine.txt", "outside the includes: never deleted")
    write(destination / "docs" / "local.tmp", "excluded: never deleted")

    _, result = await transfer(
        ferry,
        source,
        destination,
        Options={"PreserveDeletedFiles": "REMOVE"},
        Includes=[{"FilterType": "SIMPLE_PATTERN", "Value": "/docs|/keep*"}],
        Excludes=[{"FilterType": "SIMPLE_PATTERN", "Value": "*.tmp|*/cache"}],
    )

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    found = sorted(str(p.relative_to(destination)) for p in destination.rglob("*") if p.is_file())
    assert found == [
        "docs/guide.md",
        "docs/local.tmp",
        "keep-a/1.txt",
        "keepsake.txt",
        "other/not-mine.txt",
    ]
    assert result["FilesDeleted"] == 0


async def test_devices_and_pipes_follow_preserve_devices(ferry: Ferry, workdir: Path) -> None:
    source = workdir / "source"
    source.mkdir()
    os.mknod(source / "null-like", 0o620 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(source / "pipe", 0o640)
    write(source / "file.txt", "file")
    ignored, preserved = workdir / "ignored", workdir / "preserved"
    ignored.mkdir()
    preserved.mkdir()

    _, without = await transfer(ferry, source, ignored)
    _, with_devices = await transfer(
        ferry, source, preserved, Options={"PreserveDevices": "PRESERVE"}
    )

    assert without["Status"] == with_devices["Status"] == "SUCCESS"
    assert sorted(p.name for p in ignored.iterdir()) == ["file.txt"]
    assert differences(source, preserved) == []
    st = os.lstat(preserved / "null-like")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(preserved / "pipe").st_mode)


async def test_metadata_options_set_to_none_keep_nothing(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "file.txt", "data", 0o600)
    os.chown(source / "file.txt", 1234, 2345)
    os.utime(source / "file.txt", ns=(OLDER, OLD))
    empty_folder(destination)
    options = {
        "Uid": "NONE",
        "Gid": "NONE",
        "PosixPermissions": "NONE",
        "Mtime": "NONE",
        "Atime": "NONE",
    }

    _, result = await transfer(ferry, source, destination, Options=options)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    st = os.stat(destination / "file.txt")
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
    assert stat.S_IMODE(st.st_mode) == 0o666 & ~_umask()
    assert st.st_mtime_ns > OLD
    assert (destination / "file.txt").read_text() == "data"


async def test_a_different_kind_at_the_destination_is_replaced(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "was-a-folder", "now a file")
    write(source / "was-a-file" / "inside.txt", "now a folder")
    os.symlink("target", source / "was-a-link")
    write(destination / "was-a-folder" / "old" / "x.txt", "x")
    write(destination / "was-a-file", "old file")
    write(destination / "was-a-link", "a file where the link goes")

    _, result = await transfer(ferry, source, destination)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert differences(source, destination) == []
    # was-a-folder with old and old/x.txt; the files was-a-file and was-a-link.
    assert result["FilesDeleted"] == result["EstimatedFilesToDelete"] == 5


async def test_task_description_and_listing(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "a.txt", "a")
    empty_folder(destination)
    task = await create_task(ferry, source, destination, Name="nightly copy")

    described = await ferry.describe_task({"TaskArn": task})
    executions = await ferry.list_task_executions({"TaskArn": task})

    assert described["Name"] == "nightly copy"
    assert described["Status"] == "AVAILABLE"
    assert described["Options"]["VerifyMode"] == "POINT_IN_TIME_CONSISTENT"
    assert described["Options"]["TaskQueueing"] == "ENABLED"
    assert len(described["Options"]) == 15
    assert executions["TaskExecutions"] == []
    result = await run(ferry, task)
    listed = await ferry.list_task_executions({"TaskArn": task})
    assert listed["TaskExecutions"] == [
        {"TaskExecutionArn": result["TaskExecutionArn"], "Status": "SUCCESS", "TaskMode": "BASIC"}
    ]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_overwrite_never_still_gives_new_folders_their_metadata(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "new-folder" / "inner" / "file.txt", "inside a new folder")
    for folder in (source / "new-folder" / "inner", source / "new-folder"):
        os.chmod(folder, 0o750)
        os.utime(folder, ns=(OLDER, OLD))
    empty_folder(destination)

    _, result = await transfer(ferry, source, destination, Options={"OverwriteMode": "NEVER"})

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    for folder in ("new-folder", "new-folder/inner"):
        st = os.stat(destination / folder)
        assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o750, OLD)
    assert result["FilesSkipped"] == 1  # the destination's root, which NEVER leaves as it is


async def test_overwrite_never_does_not_link_new_names_to_content_it_kept(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "a-first", "the source's content")
    os.link(source / "a-first", source / "b-second")
    write(destination / "a-first", "content the destination keeps")

    _, result = await transfer(ferry, source, destination, Options={"OverwriteMode": "NEVER"})

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert (destination / "a-first").read_text() == "content the destination keeps"
    assert (destination / "b-second").read_text() == "the source's content"


async def test_transfer_mode_all_never_writes_through_a_link_at_the_destination(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination, outside = workdir / "source", workdir / "destination", workdir / "out"
    write(source / "a" / "x.txt", "x")
    empty_folder(destination)
    outside.mkdir()
    os.symlink(outside, destination / "a")

    _, result = await transfer(
        ferry, source, destination, Options={"TransferMode": "ALL", "VerifyMode": "NONE"}
    )

    assert result["Status"] == "ERROR"
    assert "/a/x.txt (write: a symbolic link is in the way" in result["Result"]["ErrorDetail"]
    assert list(outside.iterdir()) == []
