"""VERIFYING: each VerifyMode, and what it catches when the source moves under a transfer.

The transfers here are slowed by a bandwidth limit so that the test can change the source while
TRANSFERRING runs: small files (named a-...) are copied first, then a large one (z-big) takes a
few seconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from helpers import create_task, differences, empty_folder, run, start, until, wait, write

from api import Ferry

SLOW = {"BytesPerSecond": 1 << 20}


def slow_tree(source: Path, big: int = 4 << 20) -> None:
    for name in ("a-1.txt", "a-2.txt", "a-3.txt"):
        write(source / name, name * 100)
    write(source / "z-big.bin", os.urandom(big))


async def slow_task(
    ferry: Ferry, workdir: Path, big: int = 4 << 20, **options: Any
) -> tuple[Path, Path, str]:
    """A task at 1 MiB/s from a slow tree (workdir/source) to an empty folder
    (workdir/destination)."""
    source, destination = workdir / "source", workdir / "destination"
    slow_tree(source, big)
    empty_folder(destination)
    task = await create_task(ferry, source, destination, Options={**SLOW, **options})
    return source, destination, task


def copying_big(destination: Path) -> bool:
    """z-big.bin is being written (under its temporary name): the small files, copied first,
    are in place (a temporary name alone may still be one of theirs)."""
    names = {p.name for p in destination.iterdir()}
    small = {"a-1.txt", "a-2.txt", "a-3.txt"} <= names
    return small and any(name.startswith(".ferry-") for name in names)


async def test_point_in_time_consistent_catches_a_file_changed_while_copied(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination, task = await slow_task(ferry, workdir)
    big = source / "z-big.bin"
    times = os.stat(big)

    arn = await start(ferry, task)
    await until(lambda: copying_big(destination))
    with open(big, "r+b") as file:  # rewrite bytes already copied, keep size and mtime
        file.write(b"changed!" * 1000)
    os.utime(big, ns=(times.st_atime_ns, times.st_mtime_ns))
    result = await wait(ferry, arn)

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "VerificationFailed"
    assert result["Result"]["VerifyStatus"] == "ERROR"
    assert result["Result"]["TransferStatus"] == "SUCCESS"
    detail = result["Result"]["ErrorDetail"]
    assert "/z-big.bin (checksum: content differs" in detail


async def test_only_files_transferred_catches_a_file_changed_while_copied(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination, task = await slow_task(ferry, workdir, VerifyMode="ONLY_FILES_TRANSFERRED")
    big = source / "z-big.bin"
    times = os.stat(big)

    arn = await start(ferry, task)
    await until(lambda: copying_big(destination))
    with open(big, "r+b") as file:
        file.write(b"changed!" * 1000)
    os.utime(big, ns=(times.st_atime_ns, times.st_mtime_ns))  # even with its mtime put back
    result = await wait(ferry, arn)

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "VerificationFailed"
    detail = result["Result"]["ErrorDetail"]
    assert "/z-big.bin (checksum: the source changed while it was being copied)" in detail


async def test_point_in_time_consistent_reports_metadata_added_and_removed(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination, task = await slow_task(ferry, workdir, PreserveDeletedFiles="REMOVE")

    arn = await start(ferry, task)
    await until(lambda: copying_big(destination))
    os.chmod(source / "a-1.txt", 0o600)  # already copied with its old mode
    os.unlink(source / "a-2.txt")  # already copied
    write(source / "b-new.txt", "appeared after PREPARING")
    result = await wait(ferry, arn)

    assert result["Status"] == "ERROR"
    detail = result["Result"]["ErrorDetail"]
    # ... and the source root, whose mtime moved with those changes.
    assert "verification found 4 difference(s)" in detail
    assert "/ (metadata: mtime " in detail
    assert "/a-1.txt (metadata: mode 0644 instead of 0600)" in detail
    assert "/a-2.txt (removed: at the destination but not in the source)" in detail
    assert "/b-new.txt (added: in the source but not at the destination)" in detail
    # The next execution brings the destination in line again.
    again = await run(ferry, task)
    assert again["Status"] == "SUCCESS", again["Result"].get("ErrorDetail")
    assert differences(source, destination) == []


async def test_verify_mode_none_skips_verifying(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    slow_tree(source, big=1000)
    empty_folder(destination)
    task = await create_task(ferry, source, destination, Options={"VerifyMode": "NONE"})

    result = await run(ferry, task)

    assert result["Status"] == "SUCCESS"
    assert result["FilesVerified"] == 0
    assert result["Result"]["VerifyStatus"] == "PENDING"
    assert result["Result"]["VerifyDuration"] == 0
    assert differences(source, destination) == []


async def test_only_files_transferred_verifies_what_was_written(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    slow_tree(source, big=1000)
    empty_folder(destination)
    options = {"VerifyMode": "ONLY_FILES_TRANSFERRED"}
    task = await create_task(ferry, source, destination, Options=options)

    first = await run(ferry, task)
    write(source / "a-1.txt", "changed")
    second = await run(ferry, task)

    assert first["Status"] == second["Status"] == "SUCCESS"
    assert first["FilesVerified"] == first["FilesTransferred"] == 5  # 4 files and the root
    assert second["FilesVerified"] == second["FilesTransferred"] == 1  # a-1.txt
