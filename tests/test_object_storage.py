"""S3 and self-managed object storage locations, against real S3 servers on 127.0.0.1: `rclone
serve s3` (real files, SigV4 checked) and moto (checksums, multipart details, STS)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY, S3Server, Stack
from helpers import differences, empty_folder, run, write

from models.arn import execution_id
from models.errors import InvalidRequestException
from starter.operations import Ferry

OLD = 1_500_000_000_123_456_789  # a file time with nanoseconds, 2017
OLDER = 1_400_000_000_987_654_321


async def local(ferry: Ferry, path: Path) -> str:
    return (await ferry.create_location_local({"Path": str(path)}))["LocationArn"]


def markers(server: S3Server) -> str:
    """rclone keeps objects as files: "a/" would be a file named a, so no folder markers."""
    return "DISABLED" if server.root is not None else "ENABLED"


async def s3(ferry: Ferry, server: S3Server, bucket: str, subdirectory: str = "") -> str:
    request = {
        "S3BucketArn": f"arn:aws:s3:::{bucket}",
        "Subdirectory": subdirectory,
        "EndpointUrl": server.endpoint,
        "FolderMarkers": markers(server),
    }
    return (await ferry.create_location_s3(request))["LocationArn"]


async def object_storage(
    ferry: Ferry, server: S3Server, bucket: str, secret: str = S3_SECRET_KEY, **more: Any
) -> str:
    request = {
        "ServerHostname": "127.0.0.1",
        "ServerPort": server.port,
        "ServerProtocol": "HTTP",
        "BucketName": bucket,
        "AccessKey": S3_ACCESS_KEY,
        "SecretKey": secret,
        "FolderMarkers": markers(server),
        **more,
    }
    return (await ferry.create_location_object_storage(request))["LocationArn"]


async def task(ferry: Ferry, source: str, destination: str, **options: Any) -> str:
    request: dict[str, Any] = {"SourceLocationArn": source, "DestinationLocationArn": destination}
    if options:
        request["Options"] = options
    return (await ferry.create_task(request))["TaskArn"]


def rich_tree(root: Path, *, empty_folder: bool = True) -> None:
    write(root / "top.txt", "top", 0o640)
    write(root / "a" / "b" / "deep.bin", os.urandom(3000), 0o600)
    write(root / "a" / "empty.txt", "")
    folders = [root / "a" / "b", root / "a", root]
    if empty_folder:
        (root / "a" / "nothing-inside").mkdir()
        folders.insert(0, root / "a" / "nothing-inside")
    os.symlink("b/deep.bin", root / "a" / "link")
    os.chown(root / "top.txt", 1234, 2345)
    os.chmod(root / "a", 0o750)
    for path in [root / "top.txt", root / "a" / "b" / "deep.bin", root / "a" / "empty.txt"]:
        os.utime(path, ns=(OLDER, OLD))
    os.utime(root / "a" / "link", ns=(OLDER, OLD), follow_symlinks=False)
    for folder in folders:
        os.utime(folder, ns=(OLDER, OLD))


async def test_local_to_s3_and_back_keeps_bytes_and_posix_metadata(
    ferry: Ferry, moto_s3: S3Server, workdir: Path
) -> None:
    source, back = workdir / "source", empty_folder(workdir / "back")
    rich_tree(source)
    bucket = moto_s3.bucket("round-trip")
    there = await s3(ferry, moto_s3, bucket, "/under/prefix")

    up = await run(ferry, await task(ferry, await local(ferry, source), there))
    down = await run(ferry, await task(ferry, there, await local(ferry, back)))

    assert up["Status"] == "SUCCESS", up["Result"]
    assert down["Status"] == "SUCCESS", down["Result"]
    assert differences(source, back, atime=True) == []
    # The objects, as DataSync writes them: folders as empty "name/" objects, metadata in
    # user metadata under DataSync's keys.
    client = moto_s3.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [
        "under/prefix/",
        "under/prefix/a/",
        "under/prefix/a/b/",
        "under/prefix/a/b/deep.bin",
        "under/prefix/a/empty.txt",
        "under/prefix/a/link",
        "under/prefix/a/nothing-inside/",
        "under/prefix/top.txt",
    ]
    head = client.head_object(Bucket=bucket, Key="under/prefix/top.txt")
    metadata = {key.lower(): value for key, value in head["Metadata"].items()}
    assert metadata["file-mtime"] == f"{OLD}ns"
    assert metadata["file-owner"] == "1234" and metadata["file-group"] == "2345"
    assert metadata["file-permissions"] == "0100640"
    link = client.get_object(Bucket=bucket, Key="under/prefix/a/link")
    assert link["Body"].read() == b"b/deep.bin"


async def test_a_second_run_over_s3_transfers_nothing(
    ferry: Ferry, rclone_s3: S3Server, workdir: Path
) -> None:
    source = workdir / "source"
    rich_tree(source, empty_folder=False)  # a folder is a prefix of objects here
    there = await s3(ferry, rclone_s3, rclone_s3.bucket("again"))
    arn = await task(ferry, await local(ferry, source), there)

    first, second = await run(ferry, arn), await run(ferry, arn)
    write(source / "a" / "empty.txt", "now with content")
    third = await run(ferry, arn)

    assert first["Status"] == second["Status"] == third["Status"] == "SUCCESS"
    # 3 files and a link, and 2 folders (only as prefixes: no metadata is written for them).
    assert first["FilesTransferred"] == 6
    assert second["FilesTransferred"] == 0 and second["EstimatedFilesToTransfer"] == 0
    assert third["FilesTransferred"] >= 1 and third["BytesWritten"] == len("now with content")


async def test_object_storage_secret_is_sealed_checked_and_never_shown(
    ferry: Ferry, stack: Stack, rclone_s3: S3Server, workdir: Path
) -> None:
    bucket = rclone_s3.bucket("secret")
    arn = await object_storage(ferry, rclone_s3, bucket)
    described = await ferry.describe_location_object_storage({"LocationArn": arn})

    with pytest.raises(InvalidRequestException, match="SignatureDoesNotMatch"):
        await object_storage(ferry, rclone_s3, bucket, secret="not-the-secret")

    assert described["AccessKey"] == S3_ACCESS_KEY
    assert described["LocationUri"] == f"object-storage://127.0.0.1/{bucket}/"
    assert "SecretKey" not in described
    assert S3_SECRET_KEY not in str(described)
    # The registry's history holds the location as Ferry sent it: the secret sealed.
    history = await ferry.client.get_workflow_handle("ferry-registry").fetch_history()
    payloads = decoded_payloads(json.loads(history.to_json()))
    assert arn in payloads
    assert S3_SECRET_KEY not in payloads and S3_SECRET_KEY not in history.to_json()
    assert "ferry-sealed:v1:" in payloads

    source = workdir / "source"
    rich_tree(source, empty_folder=False)
    result = await run(ferry, await task(ferry, await local(ferry, source), arn))
    assert result["Status"] == "SUCCESS", result["Result"]
    execution = ferry.client.get_workflow_handle(execution_id(result["TaskExecutionArn"]))
    payloads = decoded_payloads(json.loads((await execution.fetch_history()).to_json()))
    assert arn in payloads and S3_SECRET_KEY not in payloads
    for log in stack.directory.glob("*.log"):
        assert S3_SECRET_KEY not in log.read_text(errors="replace"), log


def decoded_payloads(document: Any) -> str:
    """The data of every payload in a history (JSON shows it in base64), as text."""
    if isinstance(document, list):
        return "\n".join(decoded_payloads(item) for item in document)
    if not isinstance(document, dict):
        return ""
    found = [decoded_payloads(value) for value in document.values()]
    if "metadata" in document and isinstance(document.get("data"), str):
        found.append(base64.b64decode(document["data"]).decode(errors="replace"))
    return "\n".join(found)
