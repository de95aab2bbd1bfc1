"""What a destination cannot hold, as its location type declares it: skipped by PREPARING with
one line per path (counted, never a verification difference), and options that cannot act on a
pair of locations refused when the task is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import S3Server, Stack
from helpers import empty_folder, logged, run, write
from smb_server import SmbServer
from test_file_servers import smb
from test_object_storage import local, object_storage, task
from test_task_reports import report_files, report_location

from activities.storage.base import TEMP_NAME
from api import Ferry
from models.errors import InvalidRequestException


async def test_names_an_smb_share_refuses_are_skipped_and_said(
    stack: Stack, ferry: Ferry, smb_server: SmbServer, workdir: Path
) -> None:
    source = workdir / "source"
    write(source / "fine.txt", "kept")
    write(source / "a:b.txt", "Windows has no ':' in a name")
    write(source / "what?" / "inside.txt", "in a folder SMB cannot name")
    inside = f"caps-{workdir.name}"
    (Path(smb_server.share_dir) / inside).mkdir()
    destination = await smb(ferry, smb_server, inside=inside)
    reports_arn, reports = await report_location(ferry, workdir)
    arn = (
        await ferry.create_task(
            {
                "SourceLocationArn": await local(ferry, source),
                "DestinationLocationArn": destination,
                "Options": {"LogLevel": "TRANSFER"},
                "TaskReportConfig": {
                    "Destination": {"Location": {"LocationArn": reports_arn}},
                    "OutputType": "STANDARD",
                    "ReportLevel": "SUCCESSES_AND_ERRORS",
                },
            }
        )
    )["TaskArn"]

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["FilesSkipped"] == 3  # a:b.txt, what? and what?/inside.txt
    assert sorted(p.name for p in (Path(smb_server.share_dir) / inside).iterdir()) == ["fine.txt"]
    skipped = {
        line["Path"]: line["Reason"]
        for line in logged(stack.directory / "staging", result["TaskExecutionArn"])
        if line["Event"] == "SKIPPED"
    }
    into = "the destination (an SMB location)"
    assert skipped == {
        "/a:b.txt": f"{into} cannot hold a name with ':'",
        "/what?": f"{into} cannot hold a name with '?'",
        "/what?/inside.txt": f"it lies in /what?, which {into} cannot hold",
    }
    # And in the task report: a row per path, with the same reason.
    found = report_files(reports, arn, result)
    assert found["summary"]["FilesSkipped"] == 3
    assert sorted(
        (row["RelativePath"], row["Status"], row["Reason"]) for row in found["skipped"]
    ) == sorted((path, "SUCCESS", reason) for path, reason in skipped.items())


async def test_without_folder_markers_an_empty_folder_is_skipped_not_a_difference(
    stack: Stack, ferry: Ferry, rclone_s3: S3Server, workdir: Path
) -> None:
    """`rclone serve s3` keeps objects as files: with FolderMarkers DISABLED a folder is only
    the prefix of what is in it, so an empty one cannot be kept. Once the execution ended in
    ERROR at verification ("added"); now it is skipped and said."""
    source = workdir / "source"
    write(source / "a" / "file.txt", "in a folder")
    (source / "empty").mkdir()
    bucket = rclone_s3.bucket("markers")
    destination = await object_storage(ferry, rclone_s3, bucket)  # FolderMarkers DISABLED
    arn = await task(ferry, await local(ferry, source), destination, LogLevel="TRANSFER")

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["FilesSkipped"] == 1
    assert (rclone_s3.root / bucket / "a" / "file.txt").read_text() == "in a folder"
    assert not (rclone_s3.root / bucket / "empty").exists()
    skipped = [
        (line["Path"], line["Reason"])
        for line in logged(stack.directory / "staging", result["TaskExecutionArn"])
        if line["Event"] == "SKIPPED"
    ]
    assert skipped == [
        ("/empty", "the destination (an object storage location) cannot hold an empty folder")
    ]
    again = await run(ferry, arn)  # and the next run has nothing else to do
    assert (again["Status"], again["FilesTransferred"], again["FilesSkipped"]) == (
        "SUCCESS",
        0,
        1,
    )


async def test_options_a_pair_of_locations_cannot_act_on_are_refused(
    ferry: Ferry, moto_s3: S3Server, workdir: Path
) -> None:
    source = await local(ferry, empty_folder(workdir / "source"))
    bucket = await object_storage(ferry, moto_s3, moto_s3.bucket("options"))
    folder = await local(ferry, empty_folder(workdir / "folder"))

    with pytest.raises(InvalidRequestException) as devices:
        await task(ferry, source, bucket, PreserveDevices="PRESERVE")
    with pytest.raises(InvalidRequestException) as sacl:
        await task(ferry, source, folder, SecurityDescriptorCopyFlags="OWNER_DACL_SACL")
    made = await task(ferry, source, bucket)
    with pytest.raises(InvalidRequestException) as override:
        await ferry.start_task_execution(
            {"TaskArn": made, "OverrideOptions": {"PreserveDevices": "PRESERVE"}}
        )

    assert str(devices.value) == (
        "Options.PreserveDevices=PRESERVE: the destination (an object storage location) cannot "
        "hold devices or named pipes; set PreserveDevices=NONE."
    )
    assert "security descriptors are copied only between SMB locations" in str(sacl.value)
    assert str(override.value).startswith("OverrideOptions.PreserveDevices=PRESERVE:")
    assert (await ferry.list_task_executions({"TaskArn": made}))["TaskExecutions"] == []


async def test_a_server_that_cannot_keep_folder_markers_is_found_at_launching(
    stack: Stack, ferry: Ferry, rclone_s3: S3Server, workdir: Path
) -> None:
    """Once `InternalError: Internal Error` for every folder: with FolderMarkers ENABLED (the
    default) `rclone serve s3` cannot keep "a/" beside "a/file.txt". LAUNCHING tries it under a
    temporary name and the execution goes on with folders as prefixes, saying so."""
    source = workdir / "source"
    write(source / "a" / "file.txt", "in a folder")
    (source / "empty").mkdir()
    bucket = rclone_s3.bucket("probed")
    destination = await object_storage(ferry, rclone_s3, bucket, FolderMarkers="ENABLED")
    arn = await task(ferry, await local(ferry, source), destination)

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert (rclone_s3.root / bucket / "a" / "file.txt").read_text() == "in a folder"
    assert result["FilesSkipped"] == 1  # the empty folder
    notices = [
        line["Message"]
        for line in logged(stack.directory / "staging", result["TaskExecutionArn"])
        if line["Event"] == "NOTICE"
    ]
    assert len(notices) == 1
    assert "cannot keep a folder marker beside what is in the folder" in notices[0]
    # Of the probe, rclone keeps the folder it emptied, which it shows as an empty object;
    # named as Ferry's temporary files are, Ferry's listings pass over it.
    listed = rclone_s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    left = [(item["Key"], item["Size"]) for item in listed if item["Key"] != "a/file.txt"]
    assert len(left) == 1 and TEMP_NAME.fullmatch(left[0][0]) and left[0][1] == 0


# Each option that cannot act on a destination, as its capabilities say: (the destination, the
# option, what the refusal says). The memory type of toy_storage.py keeps no owners nor modes.
REFUSED = {
    "owner names where owners are numbers": (
        "local",
        {"Gid": "NAME"},
        "Gid=NAME: the destination (a local location) keeps owners as numbers only; "
        "set Gid=INT_VALUE.",
    ),
    "numbers and names where owners are numbers": (
        "local",
        {"Uid": "BOTH"},
        "Uid=BOTH: the destination (a local location) keeps owners as numbers only; "
        "set Uid=INT_VALUE.",
    ),
    "owner names where no owners are kept": (
        "memory",
        {"Uid": "NAME"},
        "Uid=NAME: the destination (a memory location) keeps no owners; set Uid=NONE.",
    ),
    "a full verification of archived objects": (
        "archive",
        {"VerifyMode": "POINT_IN_TIME_CONSISTENT"},
        "VerifyMode=POINT_IN_TIME_CONSISTENT: the destination (an S3 location) keeps its "
        "objects archived (they are restored before they can be read); set "
        "VerifyMode=ONLY_FILES_TRANSFERRED or NONE.",
    ),
    "deletions beside a manifest": (
        "manifest",
        {"PreserveDeletedFiles": "REMOVE"},
        "PreserveDeletedFiles=REMOVE: with a manifest only the files it lists are looked at, "
        "so nothing at the destination is found missing from the source; set "
        "PreserveDeletedFiles=PRESERVE, or leave ManifestConfig out.",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_an_option_that_cannot_act_is_refused_at_create_update_and_start(
    ferry: Ferry, moto_s3: S3Server, workdir: Path, case: str
) -> None:
    where, option, reason = REFUSED[case]
    source = await local(ferry, empty_folder(workdir / "source"))
    extra: dict[str, Any] = {}
    if where == "memory":
        destination = (await ferry.create_location_memory({"Name": workdir.name}))["LocationArn"]  # type: ignore[attr-defined]
    elif where == "object":
        destination = await object_storage(ferry, moto_s3, moto_s3.bucket("tags"))
    elif where == "archive":
        request = {
            "S3BucketArn": f"arn:aws:s3:::{moto_s3.bucket('archive')}",
            "S3StorageClass": "DEEP_ARCHIVE",
            "EndpointUrl": moto_s3.endpoint,
        }
        destination = (await ferry.create_location_s3(request))["LocationArn"]
    else:
        destination = await local(ferry, empty_folder(workdir / "destination"))
    if where == "manifest":
        write(workdir / "lists" / "manifest.csv", "a.txt\n")
        lists = await local(ferry, workdir / "lists")
        extra["ManifestConfig"] = {
            "Source": {"Location": {"LocationArn": lists, "ManifestObjectPath": "manifest.csv"}}
        }
    pair = {"SourceLocationArn": source, "DestinationLocationArn": destination, **extra}
    tasks = len((await ferry.list_tasks({}))["Tasks"])

    with pytest.raises(InvalidRequestException) as created:
        await ferry.create_task({**pair, "Options": option})
    assert str(created.value) == f"Options.{reason}"
    assert len((await ferry.list_tasks({}))["Tasks"]) == tasks  # nothing made

    # A task without it (where a default cannot act either, what can), then asked for it.
    fine = {"VerifyMode": "ONLY_FILES_TRANSFERRED"} if where == "archive" else {}
    if where == "archive":  # DataSync refuses its own default there
        with pytest.raises(InvalidRequestException, match="VerifyMode=POINT_IN_TIME"):
            await ferry.create_task(pair)
    made = (await ferry.create_task({**pair, "Options": fine}))["TaskArn"]
    before = await ferry.describe_task({"TaskArn": made})
    with pytest.raises(InvalidRequestException) as updated:
        await ferry.update_task({"TaskArn": made, "Options": option})
    with pytest.raises(InvalidRequestException) as started:
        await ferry.start_task_execution({"TaskArn": made, "OverrideOptions": option})

    assert str(updated.value) == f"Options.{reason}"
    assert str(started.value) == f"OverrideOptions.{reason}"
    assert await ferry.describe_task({"TaskArn": made}) == before  # nothing changed
    assert (await ferry.list_task_executions({"TaskArn": made}))["TaskExecutions"] == []


async def test_defaults_sent_unasked_keep_what_the_destination_can_hold(
    ferry: Ferry, workdir: Path
) -> None:
    """Terraform's provider sends every option's default: DataSync takes them, whatever the
    destination, and keeps what it can hold; so does Ferry (owners, modes, tags and security
    descriptors to a memory location, which keeps none of them)."""
    source = workdir / "source"
    write(source / "kept.txt", "kept")
    destination = (await ferry.create_location_memory({"Name": workdir.name}))["LocationArn"]  # type: ignore[attr-defined]
    defaults = {
        "Uid": "INT_VALUE",
        "Gid": "INT_VALUE",
        "PosixPermissions": "PRESERVE",
        "ObjectTags": "PRESERVE",
        "SecurityDescriptorCopyFlags": "OWNER_DACL",
    }
    made = await task(ferry, await local(ferry, source), destination, **defaults)

    described = await ferry.describe_task({"TaskArn": made})

    assert {name: described["Options"][name] for name in defaults} == defaults
