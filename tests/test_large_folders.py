"""Folders too large to hold at once are listed in slices (FERRY_LIST_SLICE_ENTRIES children per
side at a time; 10,000 by default, a handful here): the plan must be the one a whole listing
gives, whatever names fall at a slice's edge, on local folders and on a flat bucket prefix."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import S3Server, Stack
from helpers import create_task, differences, empty_folder, run, write

from starter.client import connect
from starter.operations import Ferry

COUNTERS = (
    "Status",
    "EstimatedFilesToTransfer",
    "EstimatedFilesToDelete",
    "FilesTransferred",
    "FilesDeleted",
    "FilesSkipped",
    "FilesVerified",
    "BytesWritten",
)


def edges(source: Path, destination: Path) -> None:
    """Names that sort around each other's folder form ("a" < "a-b" < "a.b" < "a/" < "a0"),
    kinds that differ between the sides, equal files, and files only the destination has."""
    for name in ("a-b", "a.b", "a0", "a-", "b-", "b0", "c"):
        write(source / name, name * 10)
    write(source / "a" / "inside.txt", "in a")
    write(source / "b" / "inside.txt", "in b")
    for number in range(30):
        write(source / "many" / f"f{number:02d}", os.urandom(100))
    write(destination / "a", "a file where the source has a folder")
    write(destination / "c" / "old.txt", "a folder where the source has a file")
    write(destination / "zz-gone", "only at the destination")
    write(destination / "a0", "different")
    (destination / "many").mkdir()
    for number in range(0, 30, 3):  # a third of them equal already
        shutil.copy2(source / "many" / f"f{number:02d}", destination / "many" / f"f{number:02d}")
    write(destination / "many" / "f99-gone", "only at the destination")


def counters(result: dict[str, Any]) -> dict[str, Any]:
    return {name: result[name] for name in COUNTERS}


async def test_slices_plan_what_a_whole_listing_plans(
    ferry: Ferry, own_stack: Callable[..., Stack], workdir: Path
) -> None:
    stack = own_stack(FERRY_LIST_SLICE_ENTRIES="3")
    sliced = Ferry(await connect(stack.address))
    results = {}
    for name, client in (("whole", ferry), ("sliced", sliced)):
        source, destination = workdir / name / "source", workdir / name / "destination"
        empty_folder(destination)
        edges(source, destination)
        options = {"PreserveDeletedFiles": "REMOVE", "VerifyMode": "POINT_IN_TIME_CONSISTENT"}
        task = await create_task(client, source, destination, Options=options)
        results[name] = await run(client, task)
        assert results[name]["Status"] == "SUCCESS", results[name]["Result"]
        assert differences(source, destination) == []
        again = await run(client, task)
        assert again["FilesTransferred"] == 0

    assert counters(results["sliced"]) == counters(results["whole"])
    # zz-gone, many/f99-gone, the file a, the folder c and its old.txt
    assert results["sliced"]["FilesDeleted"] == 5
    log = stack.log_path(0).read_text()
    assert "/many has more than 3 children: listed in slices" in log


async def test_a_flat_prefix_is_listed_in_slices_both_ways(
    own_stack: Callable[..., Stack], moto_s3: S3Server, workdir: Path
) -> None:
    ferry = Ferry(await connect(own_stack(FERRY_LIST_SLICE_ENTRIES="7").address))
    source = workdir / "source"
    for number in range(200):
        write(source / f"object-{number:04d}.bin", os.urandom(64))
    write(source / "object-0100" / "below.txt", "a folder among the objects")
    bucket = moto_s3.bucket("flat")
    s3 = (
        await ferry.create_location_s3(
            {
                "S3BucketArn": f"arn:aws:s3:::{bucket}",
                "Subdirectory": "/flat",
                "EndpointUrl": moto_s3.endpoint,
            }
        )
    )["LocationArn"]
    local = (await ferry.create_location_local({"Path": str(source)}))["LocationArn"]
    up = await ferry.create_task({"SourceLocationArn": local, "DestinationLocationArn": s3})
    first = await run(ferry, up["TaskArn"])
    assert first["Status"] == "SUCCESS", first["Result"]
    assert first["FilesTransferred"] == 203  # 201 files, a folder, the root (markers, both)
    again = await run(ferry, up["TaskArn"])
    assert again["FilesTransferred"] == 0

    back = empty_folder(workdir / "back")
    local_back = (await ferry.create_location_local({"Path": str(back)}))["LocationArn"]
    down = await ferry.create_task({"SourceLocationArn": s3, "DestinationLocationArn": local_back})
    result = await run(ferry, down["TaskArn"])
    assert result["Status"] == "SUCCESS", result["Result"]
    assert differences(source, back) == []

