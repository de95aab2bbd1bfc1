"""HDFS locations end to end, against the WebHDFS stand-in (tests/webhdfs_server.py): the only
part of the tests that is not a real server, because no HDFS can be installed here."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hdfs
import pytest
import xxhash
from conftest import S3Server, Stack, run_cli
from helpers import (
    digest,
    empty_folder,
    free_port,
    launch_failure,
    local,
    logged,
    run,
    task,
    write,
)
from webhdfs_server import HdfsCluster

from api import Ferry
from models.errors import InvalidRequestException

OLD = 1_500_000_000_123_456_789  # a file time with nanoseconds, 2017
OLD_MS = OLD // 1_000_000
MIB = 1 << 20


@pytest.fixture
def cluster(workdir: Path) -> Iterator[HdfsCluster]:
    with HdfsCluster(workdir / "hdfs", namenodes=2, groups={"alice": ("staff",)}) as cluster:
        cluster.mkdir("/user/alice", "alice", "staff")
        yield cluster


def client(cluster: HdfsCluster, user: str = "hdfs", namenode: int = 0) -> hdfs.InsecureClient:
    """What a user of the cluster would look with."""
    return hdfs.InsecureClient(f"http://127.0.0.1:{cluster.namenode_ports[namenode]}", user=user)


def namenodes(cluster: HdfsCluster) -> list[dict[str, Any]]:
    return [{"Hostname": "127.0.0.1", "Port": port} for port in cluster.namenode_ports]


async def hdfs_location(
    ferry: Ferry, cluster: HdfsCluster, subdirectory: str, user: str = "alice", **more: Any
) -> str:
    request = {
        "NameNodes": namenodes(cluster),
        "Subdirectory": subdirectory,
        "AuthenticationType": "SIMPLE",
        "SimpleUser": user,
        "BlockSize": 64 * MIB,
        "ReplicationFactor": 2,
        **more,
    }
    return (await ferry.create_location_hdfs(request))["LocationArn"]


def hdfs_tree(cluster: HdfsCluster, root: str) -> None:
    """Files of two owners, with modes and times, and a large one."""
    cluster.mkdir(root, "alice", "staff", 0o750)
    cluster.mkdir(f"{root}/logs", "bob", "staff", 0o1777)
    cluster.put(f"{root}/readme.txt", b"hello hdfs", "alice", "staff", 0o640, mtime_ms=OLD_MS)
    cluster.put(f"{root}/logs/app.log", b"x" * 1000, "bob", "staff", 0o600, mtime_ms=OLD_MS)
    cluster.put(f"{root}/logs/big.bin", os.urandom(5 * MIB), "bob", "staff", mtime_ms=OLD_MS)


async def test_local_to_hdfs_keeps_bytes_modes_times_and_the_location_block_settings(
    stack: Stack, ferry: Ferry, cluster: HdfsCluster, workdir: Path
) -> None:
    source = workdir / "source"
    write(source / "top.txt", "top", 0o640)
    write(source / "sub" / "data.bin", os.urandom(3 * MIB + 5), 0o600)
    write(source / "sub" / "setuid", "x", 0o4755)
    os.chmod(source / "sub", 0o750)
    for path in (source / "top.txt", source / "sub" / "data.bin", source / "sub" / "setuid"):
        os.utime(path, ns=(OLD, OLD))
    os.symlink("top.txt", source / "link")
    arn = await task(
        ferry,
        await local(ferry, source),
        await hdfs_location(ferry, cluster, "/user/alice"),
        LogLevel="TRANSFER",
    )

    result = await run(ferry, arn)

    # HDFS keeps no symbolic link: skipped by PREPARING, and said so; the rest transferred.
    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["FilesSkipped"] == 1
    with pytest.raises(FileNotFoundError):
        cluster.status("/user/alice/link")
    lines = logged(stack.directory / "staging", result["TaskExecutionArn"])
    skipped = [line for line in lines if line["Event"] == "SKIPPED"]
    assert [(line["Path"], line["Reason"]) for line in skipped] == [
        ("/link", "the destination (an HDFS location) cannot hold symbolic links")
    ]
    assert cluster.read("/user/alice/top.txt") == b"top"
    assert cluster.read("/user/alice/sub/data.bin") == (source / "sub" / "data.bin").read_bytes()
    data = cluster.status("/user/alice/sub/data.bin")
    assert (data["permission"], data["modificationTime"]) == ("600", OLD // 1_000_000)
    assert (data["blockSize"], data["replication"]) == (64 * MIB, 2)
    assert (data["owner"], data["group"]) == ("alice", "staff")  # the writer; uids have no name
    assert cluster.status("/user/alice/sub")["permission"] == "750"
    assert cluster.status("/user/alice/sub/setuid")["permission"] == "755"  # HDFS has no setuid

    # Without the link (the root's times put back), nothing is left to do.
    root = os.stat(source)
    os.remove(source / "link")
    os.utime(source, ns=(root.st_atime_ns, root.st_mtime_ns))
    again = await run(ferry, arn)
    assert again["Status"] == "SUCCESS", again["Result"].get("ErrorDetail")
    assert again["FilesTransferred"] == 0  # ms times, and setuid, are taken as kept


async def test_a_hard_link_to_hdfs_is_a_copy_through_the_limit_and_the_checksum(
    ferry: Ferry, cluster: HdfsCluster, workdir: Path
) -> None:
    source = workdir / "source"
    write(source / "first.bin", os.urandom(MIB))
    os.link(source / "first.bin", source / "second.bin")
    cluster.mkdir("/user/alice/linked", "alice", "staff")
    arn = await task(
        ferry,
        await local(ferry, source),
        await hdfs_location(ferry, cluster, "/user/alice/linked"),
        BytesPerSecond=4 * MIB,
        VerifyMode="ONLY_FILES_TRANSFERRED",
    )

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    data = (source / "first.bin").read_bytes()
    for name in ("first.bin", "second.bin"):
        assert cluster.read(f"/user/alice/linked/{name}") == data
    # HDFS has no hard links: the second name was read and written like any file, its bytes
    # counted, limited and checksummed with the first's.
    assert result["BytesWritten"] == 2 * MIB
    # Both names (and the root, unless its time is that of the folder made just now, to the ms).
    assert result["FilesVerified"] == result["FilesTransferred"] >= 2


async def test_hdfs_to_local_maps_owners_to_the_default_ids(
    ferry: Ferry, cluster: HdfsCluster, workdir: Path
) -> None:
    hdfs_tree(cluster, "/user/alice/export")
    destination = empty_folder(workdir / "destination")
    source = await hdfs_location(ferry, cluster, "/user/alice/export", user="hdfs")
    arn = await task(ferry, source, await local(ferry, destination))

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert (destination / "readme.txt").read_bytes() == b"hello hdfs"
    big = destination / "logs" / "big.bin"
    assert digest(big) == xxhash.xxh3_128_hexdigest(cluster.read("/user/alice/export/logs/big.bin"))
    readme = os.stat(destination / "readme.txt")
    assert (readme.st_uid, readme.st_gid) == (65534, 65534)  # DataSync's defaults for names
    assert readme.st_mode & 0o7777 == 0o640
    assert readme.st_mtime_ns == OLD_MS * 1_000_000
    assert os.stat(destination / "logs").st_mode & 0o7777 == 0o1777
    assert result["FilesTransferred"] == 5  # 3 files, 2 folders (the root among them)
    again = await run(ferry, arn)
    assert again["Status"] == "SUCCESS"
    assert again["FilesTransferred"] == 0


async def test_hdfs_to_object_storage_and_back_keeps_owner_and_group_names(
    ferry: Ferry, cluster: HdfsCluster, moto_s3: S3Server
) -> None:
    hdfs_tree(cluster, "/user/alice/export")
    bucket = moto_s3.bucket("from-hdfs")
    s3_arn = (
        await ferry.create_location_s3(
            {"S3BucketArn": f"arn:aws:s3:::{bucket}", "EndpointUrl": moto_s3.endpoint}
        )
    )["LocationArn"]
    source = await hdfs_location(ferry, cluster, "/user/alice/export", user="hdfs")

    up = await run(ferry, await task(ferry, source, s3_arn))

    assert up["Status"] == "SUCCESS", up["Result"].get("ErrorDetail")
    head = moto_s3.client().head_object(Bucket=bucket, Key="logs/app.log")
    assert head["Metadata"]["file-owner"] == "bob"
    assert head["Metadata"]["file-group"] == "staff"
    assert head["Metadata"]["file-permissions"] == "0100600"
    assert head["Metadata"]["file-mtime"] == f"{OLD_MS * 1_000_000}ns"

    # Back into HDFS as its superuser, who may give files to their owners.
    cluster.mkdir("/restore", "hdfs", "supergroup")
    back_arn = await task(ferry, s3_arn, await hdfs_location(ferry, cluster, "/restore", "hdfs"))
    back = await run(ferry, back_arn)

    assert back["Status"] == "SUCCESS", back["Result"].get("ErrorDetail")
    for name in ("readme.txt", "logs", "logs/app.log", "logs/big.bin"):
        before, after = (
            cluster.status(f"/user/alice/export/{name}"),
            cluster.status(f"/restore/{name}"),
        )
        fields = ("owner", "group", "permission", "length", "modificationTime")
        assert {f: after[f] for f in fields} == {f: before[f] for f in fields}, name
    assert cluster.read("/restore/logs/big.bin") == cluster.read("/user/alice/export/logs/big.bin")
    again = await run(ferry, back_arn)
    assert again["Status"] == "SUCCESS"
    assert again["FilesTransferred"] == 0


async def test_an_execution_goes_on_through_a_namenode_failover(
    ferry: Ferry, cluster: HdfsCluster, workdir: Path
) -> None:
    hdfs_tree(cluster, "/user/alice/export")
    destination = empty_folder(workdir / "destination")
    cluster.set_standby(0, True)  # the first NameNode listed is the standby
    arn = await task(
        ferry,
        await hdfs_location(ferry, cluster, "/user/alice/export", user="hdfs"),
        await local(ferry, destination),
    )

    first = await run(ferry, arn)

    assert first["Status"] == "SUCCESS", first["Result"].get("ErrorDetail")
    assert any(request[0] == 0 for request in cluster.requests)  # met the standby
    assert (destination / "readme.txt").read_bytes() == b"hello hdfs"

    # A failover: the active one goes away and the other takes over.
    cluster.set_standby(0, False)
    cluster.stop_namenode(1)
    client(cluster).write("/user/alice/export/new.txt", b"after the failover")
    second = await run(ferry, arn)
    assert second["Status"] == "SUCCESS", second["Result"].get("ErrorDetail")
    assert (destination / "new.txt").read_bytes() == b"after the failover"


async def test_hdfs_failures_end_in_launching_with_the_reason(
    ferry: Ferry, cluster: HdfsCluster, workdir: Path
) -> None:
    cluster.mkdir("/user/alice/gone", "alice", "staff")
    cluster.mkdir("/user/alice/closed", "alice", "staff")
    missing = await hdfs_location(ferry, cluster, "/user/alice/gone")
    denied = await hdfs_location(ferry, cluster, "/user/alice/closed")
    unreachable = await hdfs_location(ferry, cluster, "/user/alice")
    su = client(cluster)
    su.delete("/user/alice/gone")
    su.set_owner("/user/alice/closed", owner="hdfs")
    su.set_permission("/user/alice/closed", "700")

    gone = (await launch_failure(ferry, missing, workdir))["Result"]["ErrorDetail"]
    assert "/user/alice/gone does not exist" in gone and "Subdirectory" in gone
    closed = (await launch_failure(ferry, denied, workdir))["Result"]["ErrorDetail"]
    assert "user 'alice' may not list /user/alice/closed" in closed
    assert "Permission denied" in closed

    # An HDFS destination the user may list but not write to.
    su.set_permission("/user/alice/closed", "755")
    source = empty_folder(workdir / "source")
    write(source / "f.txt", "f")
    readonly = await run(ferry, await task(ferry, await local(ferry, source), denied))
    assert readonly["Status"] == "ERROR"
    assert readonly["Result"]["PrepareStatus"] == "PENDING"
    assert "may not write to /user/alice/closed" in readonly["Result"]["ErrorDetail"]

    cluster.stop()
    stopped = (await launch_failure(ferry, unreachable, workdir))["Result"]["ErrorDetail"]
    for port in cluster.namenode_ports:
        assert f"127.0.0.1:{port}" in stopped


async def test_hdfs_locations_are_described_updated_and_bad_input_refused(
    ferry: Ferry, cluster: HdfsCluster, stack: Stack
) -> None:
    arn = await hdfs_location(
        ferry, cluster, "/user/alice", KmsKeyProviderUri="kms://http@kms1;kms2:9600/kms"
    )
    described = await ferry.describe_location_hdfs({"LocationArn": arn})
    first = cluster.namenode_ports[0]
    assert described["LocationUri"] == f"hdfs://127.0.0.1:{first}/user/alice/"
    assert described["NameNodes"] == namenodes(cluster)
    assert (described["BlockSize"], described["ReplicationFactor"]) == (64 * MIB, 2)
    assert described["QopConfiguration"] == {
        "RpcProtection": "PRIVACY",
        "DataTransferProtection": "PRIVACY",
    }  # DataSync's default
    assert described["SimpleUser"] == "alice"
    assert described["KmsKeyProviderUri"] == "kms://http@kms1;kms2:9600/kms"

    await ferry.update_location_hdfs(
        {
            "LocationArn": arn,
            "ReplicationFactor": 1,
            "QopConfiguration": {"RpcProtection": "INTEGRITY"},  # the other follows
        }
    )
    described = await ferry.describe_location_hdfs({"LocationArn": arn})
    assert described["ReplicationFactor"] == 1
    assert described["QopConfiguration"] == {
        "RpcProtection": "INTEGRITY",
        "DataTransferProtection": "INTEGRITY",
    }

    before = (await ferry.list_locations({}))["Locations"]
    keytab = base64.b64encode(b"keytab").decode()
    base = {"NameNodes": namenodes(cluster), "AuthenticationType": "SIMPLE", "SimpleUser": "a"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"BlockSize": 1_048_577}, "BlockSize"),
        ({"BlockSize": 512}, "BlockSize"),
        ({"ReplicationFactor": 0}, "ReplicationFactor"),
        ({"NameNodes": []}, "NameNodes"),
        ({"NameNodes": [{"Hostname": "bad host", "Port": 9870}]}, "Hostname"),
        ({"SimpleUser": None}, "AuthenticationType SIMPLE requires SimpleUser"),
        ({"SimpleUser": "-dash"}, "SimpleUser"),
        ({"KmsKeyProviderUri": "http://kms:9600/kms"}, "KmsKeyProviderUri"),
        ({"QopConfiguration": {"RpcProtection": "SECRET"}}, "RpcProtection"),
        (
            {
                "AuthenticationType": "KERBEROS",
                "KerberosPrincipal": "f@X",
                "KerberosKeytab": keytab,
            },
            "AuthenticationType KERBEROS requires KerberosPrincipal, KerberosKeytab and "
            "KerberosKrb5Conf: give KerberosKrb5Conf.",
        ),
        ({"Subdirectory": "/user/alice/missing"}, "does not exist"),
        (
            {"NameNodes": [{"Hostname": "127.0.0.1", "Port": free_port()}]},
            "cannot reach a NameNode",
        ),
    ]
    for change, expected in cases:
        request = {key: value for key, value in {**base, **change}.items() if value is not None}
        with pytest.raises(InvalidRequestException) as refused:
            await ferry.create_location_hdfs(request)
        assert expected in refused.value.message, (change, refused.value.message)
    assert (await ferry.list_locations({}))["Locations"] == before

    # The command line, as a user would type it.
    created = run_cli(
        stack,
        "create-location-hdfs",
        "--name-nodes",
        *(f"Hostname=127.0.0.1,Port={port}" for port in cluster.namenode_ports),
        "--subdirectory",
        "/user/alice",
        "--authentication-type",
        "SIMPLE",
        "--simple-user",
        "alice",
        check=True,
    )
    assert "LocationArn" in created.stdout


async def test_hdfs_to_hdfs_keeps_owners_groups_modes_and_times(
    ferry: Ferry, cluster: HdfsCluster
) -> None:
    hdfs_tree(cluster, "/user/alice/export")
    cluster.mkdir("/copy", "hdfs", "supergroup")
    arn = await task(
        ferry,
        await hdfs_location(ferry, cluster, "/user/alice/export", user="hdfs"),
        await hdfs_location(ferry, cluster, "/copy", user="hdfs", ReplicationFactor=1),
    )

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    fields = ("type", "owner", "group", "permission", "length", "modificationTime")
    for name in ("readme.txt", "logs", "logs/app.log", "logs/big.bin"):
        before, after = (
            cluster.status(f"/user/alice/export/{name}"),
            cluster.status(f"/copy/{name}"),
        )
        assert {f: after[f] for f in fields} == {f: before[f] for f in fields}, name
    assert cluster.status("/copy/logs/big.bin")["replication"] == 1
    # An owner changed on the source alone is found and set again.
    client(cluster).set_owner("/user/alice/export/readme.txt", owner="bob")
    again = await run(ferry, arn)
    assert again["Status"] == "SUCCESS", again["Result"].get("ErrorDetail")
    assert again["FilesTransferred"] == 1
    assert cluster.status("/copy/readme.txt")["owner"] == "bob"
