"""S3 and self-managed object storage locations, against real S3 servers on 127.0.0.1: `rclone
serve s3` (real files, SigV4 checked) and moto (checksums, multipart details, STS)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    S3Server,
    Stack,
    free_port,
    start_rclone_s3,
)
from helpers import (
    CountingProxy,
    differences,
    empty_folder,
    random_files,
    run,
    self_signed,
    start,
    until,
    wait,
    write,
)

from api import Ferry
from api.client import connect
from models.arn import execution_id
from models.errors import InvalidRequestException

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
    assert "ferry-sealed:v2:" in payloads

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


MIB = 1 << 20


def composite_sha256(data: bytes, part: int) -> str:
    """S3's checksum of a multipart object: SHA-256 of the parts' SHA-256s, and their number."""
    digests = [hashlib.sha256(data[i : i + part]).digest() for i in range(0, len(data), part)]
    joined = hashlib.sha256(b"".join(digests)).digest()
    return f"{base64.b64encode(joined).decode()}-{len(digests)}"


async def test_a_large_file_goes_up_in_parts_with_checksums_the_server_confirms(
    ferry: Ferry, moto_s3: S3Server, workdir: Path
) -> None:
    data = os.urandom(40 * MIB + 123)
    write(workdir / "source" / "big.bin", data)
    bucket = moto_s3.bucket("multipart")
    there = await s3(ferry, moto_s3, bucket)

    result = await run(ferry, await task(ferry, await local(ferry, workdir / "source"), there))

    assert result["Status"] == "SUCCESS", result["Result"]
    client = moto_s3.client()
    head = client.head_object(Bucket=bucket, Key="big.bin", ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-6")  # 8 MiB parts
    # (moto leaves out the "-6" that S3 appends)
    assert head["ChecksumSHA256"].split("-")[0] == composite_sha256(data, 8 * MIB).split("-")[0]
    assert client.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def uploading(
    ferry: Ferry, server: S3Server, workdir: Path, size: int, rate: int
) -> tuple[bytes, str, str]:
    """A file of `size` random bytes going up at `rate` bytes a second; (the bytes, the bucket,
    the execution) once its multipart upload has begun."""
    data = os.urandom(size)
    write(workdir / "source" / "big.bin", data)
    bucket = server.bucket("uploading")
    there = await s3(ferry, server, bucket)
    arn = await task(ferry, await local(ferry, workdir / "source"), there, BytesPerSecond=rate)
    execution = await start(ferry, arn)
    client = server.client()
    await until(lambda: client.list_multipart_uploads(Bucket=bucket).get("Uploads"))
    return data, bucket, execution


async def test_a_killed_worker_leaves_no_multipart_upload_behind(
    own_stack: Callable[..., Stack], moto_s3: S3Server, workdir: Path
) -> None:
    stack = own_stack()
    ferry = Ferry(await connect(stack.address))
    # 48 MiB at 4 MiB/s: twelve seconds of uploading parts.
    data, bucket, execution = await uploading(ferry, moto_s3, workdir, 48 * MIB, 4 * MIB)
    client = moto_s3.client()
    stack.stop_worker(stack.workers[0], signal.SIGKILL)
    stack.start_worker()
    result = await wait(ferry, execution)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert client.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_a_cancelled_upload_is_aborted(
    ferry: Ferry, moto_s3: S3Server, workdir: Path
) -> None:
    _, bucket, execution = await uploading(ferry, moto_s3, workdir, 32 * MIB, 2 * MIB)
    client = moto_s3.client()
    await ferry.cancel_task_execution({"TaskExecutionArn": execution})
    result = await wait(ferry, execution)

    assert result["Status"] == "ERROR"
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)


async def test_files_in_flight_resume_exactly_after_a_killed_worker(
    own_stack: Callable[..., Stack], moto_s3: S3Server, workdir: Path
) -> None:
    """A batch uploads several files at once; killed among them, the resumed batch writes
    again only the files after its last checkpoint, and counts every file once."""
    stack = own_stack(FERRY_BATCH_FILES="60")
    ferry = Ferry(await connect(stack.address))
    files = {f"f{number:03d}.bin": os.urandom(32 * 1024) for number in range(120)}
    for name, data in files.items():
        write(workdir / "source" / name, data)
    bucket = moto_s3.bucket("in-flight")
    client = moto_s3.client()
    # 3.75 MiB at 512 KiB/s: seven seconds of uploads, in two batches of 60 files.
    arn = await task(
        ferry,
        await local(ferry, workdir / "source"),
        await s3(ferry, moto_s3, bucket),
        BytesPerSecond=512 * 1024,
    )
    execution = await start(ferry, arn)

    def uploaded() -> dict[str, datetime.datetime]:
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {item["Key"]: item["LastModified"] for item in listed}

    await until(lambda: len(uploaded()) >= 40)
    stack.stop_worker(stack.workers[0], signal.SIGKILL)
    before = uploaded()
    stack.start_worker(FERRY_BATCH_FILES="60")
    result = await wait(ferry, execution)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["BytesWritten"] == len(files) * 32 * 1024
    assert result["FilesTransferred"] == len(files)  # the bucket's root has no marker to write
    for name, data in files.items():
        assert client.get_object(Bucket=bucket, Key=name)["Body"].read() == data
    again = [key for key, stamp in uploaded().items() if key in before and stamp != before[key]]
    # At 512 KiB/s a second of progress is 16 files, and 8 were in flight.
    assert len(again) <= 24, again


async def test_a_bucket_access_role_is_assumed_and_the_storage_class_applied(
    own_stack: Callable[..., Stack], moto_s3: S3Server, workdir: Path
) -> None:
    from moto.sts.models import sts_backends

    # The worker's STS is moto's, found through the AWS SDKs' standard endpoint setting.
    stack = own_stack(AWS_ENDPOINT_URL_STS=moto_s3.endpoint)
    ferry = Ferry(await connect(stack.address))
    role = "arn:aws:iam::111122223333:role/ferry-transfers"
    bucket = moto_s3.bucket("assumed")
    destination = await ferry.create_location_s3(
        {
            "S3BucketArn": f"arn:aws:s3:::{bucket}",
            "S3StorageClass": "STANDARD_IA",
            "S3Config": {"BucketAccessRoleArn": role},
            "EndpointUrl": moto_s3.endpoint,
        }
    )
    write(workdir / "source" / "report.csv", "a,b\n1,2\n")
    arn = await task(ferry, await local(ferry, workdir / "source"), destination["LocationArn"])
    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    sessions = [
        (assumed.role_arn, assumed.session_name)
        for assumed in sts_backends["111122223333"]["aws"].assumed_roles
    ]
    assert (role, "ferry") in sessions
    head = moto_s3.client().head_object(Bucket=bucket, Key="report.csv")
    assert head["StorageClass"] == "STANDARD_IA"


async def test_object_to_object_keeps_content_type_user_metadata_and_tags(
    ferry: Ferry, moto_s3: S3Server
) -> None:
    """Self-managed object storage to S3, with no agent: the ordinary workers run it."""
    client = moto_s3.client()
    source_bucket, destination_bucket = moto_s3.bucket("from"), moto_s3.bucket("to")
    for key in ("report.csv", "data/part-0.csv"):
        client.put_object(
            Bucket=source_bucket,
            Key=key,
            Body=f"{key} contents".encode(),
            ContentType="text/csv",
            CacheControl="max-age=60",
            Metadata={"team": "analytics"},
            Tagging="tier=gold&owner=ana",
        )
    source = await object_storage(ferry, moto_s3, source_bucket)
    destination = await s3(ferry, moto_s3, destination_bucket)
    untagged = await s3(ferry, moto_s3, moto_s3.bucket("untagged"))

    result = await run(ferry, await task(ferry, source, destination))
    without_tags = await run(ferry, await task(ferry, source, untagged, ObjectTags="NONE"))

    assert result["Status"] == without_tags["Status"] == "SUCCESS", result["Result"]
    head = client.head_object(Bucket=destination_bucket, Key="data/part-0.csv")
    assert head["ContentType"] == "text/csv" and head["CacheControl"] == "max-age=60"
    assert head["Metadata"]["team"] == "analytics"
    tags = client.get_object_tagging(Bucket=destination_bucket, Key="data/part-0.csv")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("owner", "ana"), ("tier", "gold")]
    body = client.get_object(Bucket=destination_bucket, Key="report.csv")["Body"].read()
    assert body == b"report.csv contents"
    untagged_bucket = (await ferry.describe_location_s3({"LocationArn": untagged}))["LocationUri"]
    plain = client.get_object_tagging(Bucket=untagged_bucket.split("/")[2], Key="report.csv")
    assert plain["TagSet"] == []


async def test_keys_that_cannot_be_files_are_skipped_and_named(
    ferry: Ferry, moto_s3: S3Server, workdir: Path
) -> None:
    client = moto_s3.client()
    bucket = moto_s3.bucket("odd-keys")
    too_long = "n" * 300 + ".txt"  # a valid key; no file system takes a 304-byte name
    for key in ("fine.txt", "twice//slashed.txt", "dots/../escape.txt", too_long):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    destination = empty_folder(workdir / "destination" / "inside")

    result = await run(
        ferry, await task(ferry, await s3(ferry, moto_s3, bucket), await local(ferry, destination))
    )

    assert result["Status"] == "ERROR"
    detail = result["Result"]["ErrorDetail"]
    assert "twice/" in detail and "dots/.." in detail
    # A name longer than a local folder holds is skipped by PREPARING, counted, not failed.
    assert result["FilesSkipped"] == 1
    assert (destination / "fine.txt").read_bytes() == b"x"
    assert sorted(p.name for p in (workdir / "destination").iterdir()) == ["inside"]
    assert sorted(p.name for p in destination.iterdir()) == ["dots", "fine.txt", "twice"]
    assert not (destination / "escape.txt").exists()


async def test_bad_buckets_endpoints_and_certificates_are_refused_with_the_reason(
    ferry: Ferry, rclone_s3: S3Server, workdir: Path
) -> None:
    with pytest.raises(InvalidRequestException, match="the bucket does not exist"):
        await s3(ferry, rclone_s3, "no-such-bucket")
    unreachable = S3Server(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(InvalidRequestException, match="cannot reach the server"):
        await s3(ferry, unreachable, "anything")

    certificate, key = self_signed(workdir)
    tls = start_rclone_s3(workdir / "tls-root", "--cert", str(certificate), "--key", str(key))
    try:
        (workdir / "tls-root" / "secure").mkdir()
        server = S3Server(f"https://127.0.0.1:{tls.port}", workdir / "tls-root")
        request = {"ServerProtocol": "HTTPS"}
        with pytest.raises(InvalidRequestException, match="TLS certificate is not trusted"):
            await object_storage(ferry, server, "secure", **request)
        trusted = await object_storage(
            ferry, server, "secure", ServerCertificate=certificate.read_text(), **request
        )
        write(workdir / "source" / "over-tls.txt", "sealed and trusted")
        result = await run(
            ferry, await task(ferry, await local(ferry, workdir / "source"), trusted)
        )
    finally:
        tls.stop()
    assert result["Status"] == "SUCCESS", result["Result"]
    assert (workdir / "tls-root" / "secure" / "over-tls.txt").read_text() == "sealed and trusted"


async def test_a_bucket_gone_before_launch_fails_in_launching(
    ferry: Ferry, moto_s3: S3Server, workdir: Path
) -> None:
    bucket = moto_s3.bucket("gone")
    write(workdir / "source" / "a.txt", "a")
    there = await s3(ferry, moto_s3, bucket)
    arn = await task(ferry, await local(ferry, workdir / "source"), there)
    moto_s3.client().delete_bucket(Bucket=bucket)

    result = await run(ferry, arn)

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "LocationUnavailable"
    assert "the bucket does not exist" in result["Result"]["ErrorDetail"]
    assert result["Result"]["PrepareStatus"] == "PENDING"
    assert bucket not in [b["Name"] for b in moto_s3.client().list_buckets()["Buckets"]]


def test_part_sizes_keep_any_file_within_ten_thousand_parts() -> None:
    from activities.storage.objects import MAX_PARTS, part_size

    assert part_size(0) == part_size(80 * MIB) == 8 * MIB
    for size in (80 * MIB + 1, 100 << 30, 5 << 40):  # up to S3's largest object, 5 TiB
        chosen = part_size(size)
        assert chosen % MIB == 0 and -(-size // chosen) <= MAX_PARTS
    assert part_size(5 << 40) == 525 * MIB


async def test_describe_and_update_object_locations(
    ferry: Ferry, moto_s3: S3Server, rclone_s3: S3Server
) -> None:
    bucket = moto_s3.bucket("described")
    arn = await s3(ferry, moto_s3, bucket, "/first")
    await ferry.update_location_s3(
        {"LocationArn": arn, "Subdirectory": "/second", "S3StorageClass": "STANDARD_IA"}
    )
    described = await ferry.describe_location_s3({"LocationArn": arn})
    assert described["LocationUri"] == f"s3://{bucket}/second/"
    assert described["S3StorageClass"] == "STANDARD_IA"
    assert described["EndpointUrl"] == moto_s3.endpoint

    storage = await object_storage(ferry, rclone_s3, rclone_s3.bucket("rotated"))
    with pytest.raises(InvalidRequestException, match="SignatureDoesNotMatch"):
        await ferry.update_location_object_storage({"LocationArn": storage, "SecretKey": "wrong"})
    await ferry.update_location_object_storage(
        {"LocationArn": storage, "SecretKey": S3_SECRET_KEY, "Subdirectory": "/inner"}
    )
    shown = await ferry.describe_location_object_storage({"LocationArn": storage})
    assert shown["LocationUri"].endswith("/inner/") and "SecretKey" not in shown
    with pytest.raises(InvalidRequestException, match="is not an S3 location"):
        await ferry.describe_location_s3({"LocationArn": storage})
    with pytest.raises(InvalidRequestException, match="S3BucketArn"):
        await ferry.create_location_s3({"S3BucketArn": "my-bucket"})


async def test_a_no_op_re_run_lists_and_reads_no_object_one_by_one(
    ferry: Ferry, rclone_s3: S3Server, workdir: Path
) -> None:
    """Requests that reach the server, per file: the first run writes each object once; the
    re-run knows each object's metadata from what the first one wrote (its sync index), so
    that it only lists."""
    source = workdir / "source"
    for folder in range(4):
        random_files(source / f"folder-{folder}", 50, 1024)
    files = 200
    proxy = CountingProxy(rclone_s3.port).start()
    there = await object_storage(
        ferry, rclone_s3, rclone_s3.bucket("counted"), ServerPort=proxy.server_port
    )
    arn = await task(ferry, await local(ferry, source), there, VerifyMode="NONE")

    async def counted() -> tuple[int, dict[str, Any]]:
        before = proxy.counts()[0]
        result = await run(ferry, arn)
        assert result["Status"] == "SUCCESS", result["Result"]
        return proxy.counts()[0] - before, result

    (initial, _), (no_op, result) = await counted(), await counted()
    proxy.shutdown()

    print(f"requests per file: initial {initial / files:.3f}, no-op {no_op / files:.3f}")
    assert result["FilesTransferred"] == 0
    assert initial / files < 1.1  # a PutObject each, and the listings
    assert no_op / files < 0.1  # a listing of each folder, no HeadObject


async def test_objects_changed_behind_ferrys_back_are_found_by_the_re_run(
    ferry: Ferry, stack: Stack, moto_s3: S3Server, workdir: Path
) -> None:
    """The sync index is never trusted over the listing: an object uploaded again with other
    bytes of the same size, and one whose metadata alone was changed (a later LastModified),
    are both put right; so is everything without the index."""
    source = workdir / "source"
    for name in ("content", "metadata", "kept"):
        write(source / "sub" / f"{name}.txt", f"{name} as the source has it", 0o640)
        os.utime(source / "sub" / f"{name}.txt", ns=(OLDER, OLD))
    bucket = moto_s3.bucket("changed")
    arn = await task(ferry, await local(ferry, source), await s3(ferry, moto_s3, bucket))
    first = await run(ferry, arn)
    client = moto_s3.client()
    written = client.head_object(Bucket=bucket, Key="sub/content.txt")
    # moto keeps LastModified to the second: a change must come in a later one to show.
    stamp = written["LastModified"].timestamp()
    await until(lambda: datetime.datetime.now().timestamp() >= stamp + 2, timeout=10)

    # Another upload of the same size, as `aws s3 cp` leaves it: no metadata of Ferry's.
    client.put_object(Bucket=bucket, Key="sub/content.txt", Body=b"CONTENT AS THE SOURCE HAS IT")
    changed = {**client.head_object(Bucket=bucket, Key="sub/metadata.txt")["Metadata"]}
    changed["file-permissions"] = "0100600"
    client.copy_object(
        Bucket=bucket,
        Key="sub/metadata.txt",
        CopySource={"Bucket": bucket, "Key": "sub/metadata.txt"},
        Metadata=changed,
        MetadataDirective="REPLACE",
    )
    second = await run(ferry, arn)

    def held() -> dict[str, tuple[bytes, str]]:
        found = {}
        for name in ("content", "metadata", "kept"):
            answer = client.get_object(Bucket=bucket, Key=f"sub/{name}.txt")
            meta = {key.lower(): value for key, value in answer["Metadata"].items()}
            found[name] = (answer["Body"].read(), meta["file-permissions"])
        return found

    expected = {
        name: (f"{name} as the source has it".encode(), "0100640")
        for name in ("content", "metadata", "kept")
    }
    assert first["Status"] == second["Status"] == "SUCCESS", second["Result"]
    assert second["FilesTransferred"] == 2  # the bytes of one, the metadata of the other
    assert held() == expected

    # Without the index, every object is read again and found as it should be.
    index = stack.directory / "staging" / "index"
    assert any(index.rglob("*.jsonl"))
    subprocess.run(["rm", "-rf", str(index)], check=True)
    client.put_object(
        Bucket=bucket, Key="sub/kept.txt", Body=b"KEPT AS THE SOURCE HAS IT", Metadata={}
    )
    third, fourth = await run(ferry, arn), await run(ferry, arn)
    assert third["Status"] == fourth["Status"] == "SUCCESS", third["Result"]
    assert third["FilesTransferred"] == 1 and fourth["FilesTransferred"] == 0
    assert held() == expected


async def test_an_object_of_another_etag_is_read_again_whatever_its_time(
    ferry: Ferry, stack: Stack, moto_s3: S3Server, workdir: Path
) -> None:
    """Other bytes of the same size uploaded in the second Ferry wrote the object (which a
    LastModified to the second cannot tell apart) are found by their ETag."""
    source = workdir / "source"
    write(source / "file.txt", "as the source has it")
    bucket = moto_s3.bucket("etag")
    arn = await task(ferry, await local(ferry, source), await s3(ferry, moto_s3, bucket))
    first = await run(ferry, arn)
    # As if the upload below came within that second: every row of the index says so.
    pieces = list((stack.directory / "staging" / "index").rglob("*.jsonl"))
    for piece in pieces:
        rows = [json.loads(line) for line in piece.read_text().splitlines()]
        piece.write_text("".join(json.dumps([*r[:3], 1e12, *r[4:]]) + "\n" for r in rows))
    moto_s3.client().put_object(Bucket=bucket, Key="file.txt", Body=b"AS THE SOURCE HAS IT")
    second = await run(ferry, arn)

    body = moto_s3.client().get_object(Bucket=bucket, Key="file.txt")["Body"].read()
    assert pieces and first["Status"] == second["Status"] == "SUCCESS", second["Result"]
    assert second["FilesTransferred"] == 1 and body == b"as the source has it"
