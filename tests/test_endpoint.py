"""DataSync's API on the wire: boto3's own `datasync` client, unmodified, against `ferry api`
(a process of its own, on the session's stack), signing with a Ferry access key. Ferry's
extensions go as signed requests of the same JSON (botocore refuses fields its model lacks);
storage a location is checked against is the session's real servers. Then the refusals, the
limits a client meets, HTTPS, and an agent's activation port."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sysconfig
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
import botocore.session
import pytest
import urllib3
from conftest import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    Endpoint,
    S3Server,
    Stack,
    run_cli,
    start_endpoint,
)
from helpers import empty_folder, free_port, self_signed, until, wait_for_port, write
from nfs_server import NfsServer
from smb_server import SmbServer
from webhdfs_server import HdfsCluster

from api import Ferry
from api.client import connect
from api.requests import SHAPES
from models.agents import ACTIVATION_KEY_SECONDS, new_activation_key
from starter.endpoint import Limits, serve_endpoint

DATASYNC = botocore.session.get_session().get_service_model("datasync")
ClientError = botocore.exceptions.ClientError
ACCOUNT = "111122223333"  # an AWS account the ARNs of EFS, FSx, subnets and roles name
MiB = 1 << 20


def raw(
    endpoint: Endpoint,
    target: str,
    body: bytes | dict[str, Any] = b"{}",
    *,
    access_key: str | None = None,
    secret: str | None = None,
    region: str | None = None,
    service: str = "datasync",
    signed: bool = True,
) -> urllib3.BaseHTTPResponse:
    """A request as a client builds it by hand, signed with botocore's SigV4 (or not)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = botocore.awsrequest.AWSRequest(
        "POST",
        endpoint.url + "/",
        data=data,
        headers={
            "X-Amz-Target": f"FmrsService.{target}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    if signed:
        credentials = botocore.credentials.Credentials(
            access_key or endpoint.access_key, secret or endpoint.secret_key
        )
        botocore.auth.SigV4Auth(credentials, service, region or endpoint.region).add_auth(request)
    prepared = request.prepare()
    return urllib3.request(
        "POST", prepared.url, body=prepared.body, headers=dict(prepared.headers), retries=False
    )


def made(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    """The answer of a raw request that must succeed."""
    assert response.status == 200, response.data.decode()
    return dict(response.json())


def created(endpoint: Endpoint, operation: str, fields: dict[str, Any]) -> str:
    """The ARN of a location made by a raw request that must succeed."""
    return str(made(raw(endpoint, operation, fields))["LocationArn"])


def error_of(response: urllib3.BaseHTTPResponse) -> tuple[int, str, str]:
    body = response.json()
    return response.status, body["__type"], body["message"]


def every(datasync: Any, operation: str, field: str, key: str, **request: Any) -> list[str]:
    """Every entry's `key` on every page of a List* operation, through boto3's paginator."""
    found = []
    for page in datasync.get_paginator(operation).paginate(**request):
        found += [entry[key] for entry in page[field]]
    return found


def refused(call: Callable[..., Any], **request: Any) -> dict[str, Any]:
    """The error response of a boto3 call that must fail."""
    with pytest.raises(ClientError) as error:
        call(**request)
    return dict(error.value.response)


def as_sent(described: dict[str, Any], sent: dict[str, Any], *but: str) -> bool:
    """Whether a Describe* shows every field of a request as sent, but those named (shown in
    another form: a subdirectory in LocationUri)."""
    fields = [name for name in sent if name not in but]
    return {name: described.get(name) for name in fields} == {name: sent[name] for name in fields}


def security_groups(region: str) -> list[str]:
    return [f"arn:aws:ec2:{region}:{ACCOUNT}:security-group/sg-0a1b2c3d"]


@pytest.fixture(scope="module")
def datasync(endpoint: Endpoint) -> Any:
    return endpoint.client()


@pytest.fixture
def loose(endpoint: Endpoint) -> Any:
    """A client that sends what it is given, unchecked, as a script with a bug would."""
    return endpoint.client(parameter_validation=False)


@pytest.fixture(scope="module")
async def agent(stack: Stack, datasync: Any) -> str:
    """An agent process on the session's stack, activated through the endpoint: the locations
    below name it (a location is checked from its first agent, which must answer)."""
    state = Path(tempfile.mkdtemp(prefix="ferry-endpoint-", dir="/tmp")) / "agent"
    stack.start_agent(state)
    key_file = state / "activation-key"
    await until(key_file.exists, timeout=30)
    created = datasync.create_agent(ActivationKey=key_file.read_text().strip(), AgentName="nearby")
    arn = str(created["AgentArn"])
    await until(lambda: datasync.describe_agent(AgentArn=arn)["Status"] == "ONLINE", timeout=60)
    return arn


async def offline_agent(datasync: Any, ferry: Ferry, name: str, **tags: str) -> str:
    """An agent activated through the endpoint with a key registered as an agent process
    registers its own; no process serves it (OFFLINE)."""
    activation = await ferry.register_activation(new_activation_key(), ACTIVATION_KEY_SECONDS)
    created = datasync.create_agent(
        ActivationKey=activation.ActivationKey,
        AgentName=name,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    return str(created["AgentArn"])


async def local_locations(ferry: Ferry, workdir: Path, *names: str) -> list[str]:
    return [
        (await ferry.create_location_local({"Path": str(empty_folder(workdir / name))}))[
            "LocationArn"
        ]
        for name in names
    ]


# --- what the endpoint serves ---------------------------------------------------------------


def test_every_operation_ferry_has_answers_through_the_endpoint(loose: Any) -> None:
    served = sorted(set(DATASYNC.operation_names) & set(SHAPES))
    assert len(served) >= 40
    answers = {}
    for name in served:
        operation = getattr(loose, botocore.xform_name(name))
        try:
            operation()
            answers[name] = ("OK", None)
        except ClientError as error:
            answers[name] = (error.response["Error"]["Code"], error.response.get("errorCode"))
    # Lists answer an empty request; every other operation names the field it lacks.
    assert {n for n, (a, _) in answers.items() if a == "OK"} == {
        "ListAgents",
        "ListLocations",
        "ListTasks",
        "ListTaskExecutions",
    }
    assert {a for a in answers.values() if a[0] != "OK"} == {
        ("InvalidRequestException", "InvalidParameter")
    }


# Read from the installed model: what DataSync has and Ferry does not (Azure Blob, FSx for ONTAP).
UNSUPPORTED = sorted(set(DATASYNC.operation_names) - set(SHAPES))


@pytest.mark.parametrize("operation", UNSUPPORTED)
def test_what_ferry_does_not_have_is_refused_as_not_supported(loose: Any, operation: str) -> None:
    answer = refused(getattr(loose, botocore.xform_name(operation)))
    assert answer["Error"]["Code"] == "InvalidRequestException"
    assert answer["errorCode"] == "InvalidParameter"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"{operation} is not supported by Ferry" in answer["Error"]["Message"]


def test_an_unknown_operation_is_refused(endpoint: Endpoint) -> None:
    status, kind, message = error_of(raw(endpoint, "MakeCoffee"))
    assert (status, kind) == (400, "com.amazon.coral.service#UnknownOperationException")
    assert "FmrsService.MakeCoffee" in message


def test_a_bad_request_carries_datasyncs_error_code(datasync: Any) -> None:
    missing = f"arn:aws:datasync:{datasync.meta.region_name}:{ACCOUNT}:task/task-{'0' * 17}"
    answer = refused(datasync.describe_task, TaskArn=missing)
    assert answer["Error"]["Code"] == "InvalidRequestException"
    assert answer["errorCode"] == "InvalidParameter"
    assert "not found" in answer["Error"]["Message"]
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_a_failure_of_ferrys_own_is_an_internal_exception(
    endpoint: Endpoint, own_stack: Callable[..., Stack]
) -> None:
    # An endpoint whose Temporal stopped answering: no fault of the request.
    stack = own_stack(workers=0)
    down = Ferry(await connect(stack.address))
    stack.server.stop()
    served = await serve_endpoint(down, "127.0.0.1", 0)
    try:
        mine = Endpoint(served.url, endpoint.access_key, endpoint.secret_key)
        client = mine.client(retries={"max_attempts": 1})
        answer = await asyncio.to_thread(refused, client.list_tasks)
    finally:
        await served.stop()
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert answer["Error"]["Code"] == "InternalException"
    assert answer["errorCode"] == "InternalError"
    assert "did not answer" in answer["Error"]["Message"]


# --- locations, each type round-tripped ---------------------------------------------------------


def test_an_object_storage_location_round_trips(
    endpoint: Endpoint, datasync: Any, agent: str, rclone_s3: S3Server
) -> None:
    bucket = rclone_s3.bucket("endpoint")
    (rclone_s3.root / bucket / "moved").mkdir(parents=True)  # type: ignore[operator]
    arn = datasync.create_location_object_storage(
        ServerHostname="127.0.0.1",
        ServerPort=rclone_s3.port,
        ServerProtocol="HTTP",
        BucketName=bucket,
        Subdirectory="/in/here/",
        AccessKey=S3_ACCESS_KEY,
        SecretKey=S3_SECRET_KEY,
        AgentArns=[agent],
        Tags=[{"Key": "team", "Value": "data"}],
    )["LocationArn"]

    described = datasync.describe_location_object_storage(LocationArn=arn)
    assert described["LocationUri"] == f"object-storage://127.0.0.1/{bucket}/in/here/"
    assert (described["ServerPort"], described["ServerProtocol"]) == (rclone_s3.port, "HTTP")
    assert (described["AccessKey"], described["AgentArns"]) == (S3_ACCESS_KEY, [agent])
    assert "SecretKey" not in described
    assert isinstance(described["CreationTime"], datetime)  # epoch seconds, parsed by botocore
    assert datasync.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "data"}
    ]

    datasync.update_location_object_storage(
        LocationArn=arn,
        ServerHostname="localhost",
        ServerPort=rclone_s3.port,
        ServerProtocol="HTTP",
        Subdirectory="/moved/",
        AccessKey=S3_ACCESS_KEY,
        SecretKey=S3_SECRET_KEY,
        AgentArns=[agent],
    )
    described = datasync.describe_location_object_storage(LocationArn=arn)
    assert described["LocationUri"] == f"object-storage://localhost/{bucket}/moved/"
    assert (described["ServerPort"], described["AgentArns"]) == (rclone_s3.port, [agent])
    # Beyond DataSync, in the same JSON: folders as key prefixes only.
    made(
        raw(
            endpoint,
            "UpdateLocationObjectStorage",
            {"LocationArn": arn, "FolderMarkers": "DISABLED"},
        )
    )
    assert (
        made(raw(endpoint, "DescribeLocationObjectStorage", {"LocationArn": arn}))["FolderMarkers"]
        == "DISABLED"
    )

    datasync.delete_location(LocationArn=arn)
    gone = refused(datasync.describe_location_object_storage, LocationArn=arn)
    assert "not found" in gone["Error"]["Message"]


def test_an_nfs_location_round_trips(
    endpoint: Endpoint, datasync: Any, agent: str, nfs_server: NfsServer
) -> None:
    name = f"endpoint-{uuid.uuid4().hex[:8]}"
    for folder in ("first", "second"):
        os.makedirs(os.path.join(nfs_server.export_dir, name, folder))
    root = f"{nfs_server.pseudo_path}/{name}"
    # On a port of its own: ServerPort is beyond DataSync, in the same JSON.
    arn = created(
        endpoint,
        "CreateLocationNfs",
        {
            "ServerHostname": "127.0.0.1",
            "ServerPort": nfs_server.port,
            "Subdirectory": f"{root}/first",
            "OnPremConfig": {"AgentArns": [agent]},
            "MountOptions": {"Version": "NFS4_0"},
            "Tags": [{"Key": "kind", "Value": "nfs"}],
        },
    )
    described = datasync.describe_location_nfs(LocationArn=arn)
    assert described["LocationUri"] == f"nfs://127.0.0.1{root}/first/"
    assert described["MountOptions"] == {"Version": "NFS4_0"}

    datasync.update_location_nfs(
        LocationArn=arn,
        ServerHostname="127.0.0.1",
        Subdirectory=f"{root}/second/",
        OnPremConfig={"AgentArns": [agent]},
        MountOptions={"Version": "NFS4_1"},
    )
    described = datasync.describe_location_nfs(LocationArn=arn)
    assert described["LocationUri"] == f"nfs://127.0.0.1{root}/second/"
    assert described["OnPremConfig"] == {"AgentArns": [agent]}
    assert described["MountOptions"] == {"Version": "NFS4_1"}
    shown = made(raw(endpoint, "DescribeLocationNfs", {"LocationArn": arn}))
    assert shown["ServerPort"] == nfs_server.port
    assert datasync.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "kind", "Value": "nfs"}
    ]


def test_an_smb_location_round_trips(
    endpoint: Endpoint, datasync: Any, agent: str, smb_server: SmbServer
) -> None:
    name = f"endpoint-{uuid.uuid4().hex[:8]}"
    for folder in ("first", "second"):
        os.makedirs(os.path.join(smb_server.share_dir, name, folder))
    arn = created(
        endpoint,
        "CreateLocationSmb",
        {
            "ServerHostname": "127.0.0.1",
            "ServerPort": smb_server.port,  # beyond DataSync
            "Subdirectory": smb_server.subdirectory(inside=f"{name}/first"),
            "User": smb_server.user,
            "Password": smb_server.password,
            "AgentArns": [agent],
            "MountOptions": {"Version": "SMB3"},
        },
    )

    datasync.update_location_smb(
        LocationArn=arn,
        ServerHostname="127.0.0.1",
        Subdirectory=smb_server.subdirectory(inside=f"{name}/second"),
        User=smb_server.user,
        Password=smb_server.password,
        AuthenticationType="NTLM",
        AgentArns=[agent],
        MountOptions={"Version": "SMB2"},
    )
    described = datasync.describe_location_smb(LocationArn=arn)
    assert described["LocationUri"] == f"smb://127.0.0.1/{smb_server.share}/{name}/second/"
    assert (described["User"], described["AuthenticationType"]) == (smb_server.user, "NTLM")
    assert (described["AgentArns"], described["MountOptions"]) == ([agent], {"Version": "SMB2"})
    assert "Password" not in described
    shown = made(raw(endpoint, "DescribeLocationSmb", {"LocationArn": arn}))
    assert shown["ServerPort"] == smb_server.port


def test_an_hdfs_location_round_trips(datasync: Any, agent: str, workdir: Path) -> None:
    with HdfsCluster(workdir / "hdfs", namenodes=2) as cluster:
        cluster.mkdir("/lake/raw", "etl", "supergroup")
        nodes = [{"Hostname": "127.0.0.1", "Port": port} for port in cluster.namenode_ports]
        first = {
            "NameNodes": nodes[:1],
            "Subdirectory": "/lake/",
            "BlockSize": 64 * MiB,
            "ReplicationFactor": 2,
            "KmsKeyProviderUri": "kms://http@kms.example:9600/kms",
            "QopConfiguration": {"RpcProtection": "PRIVACY", "DataTransferProtection": "PRIVACY"},
            "AuthenticationType": "SIMPLE",
            "SimpleUser": "hdfs",
            "AgentArns": [agent],
        }
        arn = datasync.create_location_hdfs(**first)["LocationArn"]
        described = datasync.describe_location_hdfs(LocationArn=arn)
        assert as_sent(described, first, "Subdirectory")
        assert described["LocationUri"] == f"hdfs://127.0.0.1:{nodes[0]['Port']}/lake/"

        second = {
            "NameNodes": nodes,
            "Subdirectory": "/lake/raw/",
            "BlockSize": 256 * MiB,
            "ReplicationFactor": 1,
            "QopConfiguration": {
                "RpcProtection": "AUTHENTICATION",
                "DataTransferProtection": "INTEGRITY",
            },
            "AuthenticationType": "SIMPLE",
            "SimpleUser": "etl",
            "AgentArns": [agent],
        }
        datasync.update_location_hdfs(LocationArn=arn, **second)
        described = datasync.describe_location_hdfs(LocationArn=arn)
    assert as_sent(described, second, "Subdirectory")
    assert described["LocationUri"] == f"hdfs://127.0.0.1:{nodes[0]['Port']}/lake/raw/"
    assert described["KmsKeyProviderUri"] == first["KmsKeyProviderUri"]  # kept


async def test_an_s3_location_round_trips(
    own_stack: Callable[..., Stack], moto_s3: S3Server
) -> None:
    # Workers that reach moto's S3 and, for the bucket access role, its STS.
    stack = own_stack(AWS_ENDPOINT_URL_S3=moto_s3.endpoint, AWS_ENDPOINT_URL_STS=moto_s3.endpoint)
    endpoint, _ = start_endpoint(stack)
    datasync = endpoint.client()
    bucket = moto_s3.bucket("endpoint")
    role = f"arn:aws:iam::{ACCOUNT}:role/ferry-transfers"
    arn = datasync.create_location_s3(
        S3BucketArn=f"arn:aws:s3:::{bucket}",
        Subdirectory="/backup/",
        S3StorageClass="STANDARD_IA",
        S3Config={"BucketAccessRoleArn": role},
        Tags=[{"Key": "kind", "Value": "s3"}],
    )["LocationArn"]
    described = datasync.describe_location_s3(LocationArn=arn)
    assert described["LocationUri"] == f"s3://{bucket}/backup/"
    assert described["S3StorageClass"] == "STANDARD_IA"

    datasync.update_location_s3(
        LocationArn=arn,
        Subdirectory="/archive/2024/",
        S3StorageClass="GLACIER_INSTANT_RETRIEVAL",
        S3Config={"BucketAccessRoleArn": role},
    )
    described = datasync.describe_location_s3(LocationArn=arn)
    assert described["LocationUri"] == f"s3://{bucket}/archive/2024/"
    assert described["S3StorageClass"] == "GLACIER_INSTANT_RETRIEVAL"
    assert described["S3Config"] == {"BucketAccessRoleArn": role}

    # Beyond DataSync, in the same JSON: the S3-compatible service, and folder markers.
    other = created(
        endpoint,
        "CreateLocationS3",
        {
            "S3BucketArn": f"arn:aws:s3:::{bucket}",
            "EndpointUrl": moto_s3.endpoint,
            "FolderMarkers": "DISABLED",
        },
    )
    shown = made(raw(endpoint, "DescribeLocationS3", {"LocationArn": other}))
    assert (shown["EndpointUrl"], shown["FolderMarkers"]) == (moto_s3.endpoint, "DISABLED")
    assert datasync.describe_location_s3(LocationArn=other)["LocationUri"] == f"s3://{bucket}/"


def test_an_efs_location_round_trips(
    endpoint: Endpoint, datasync: Any, nfs_server: NfsServer
) -> None:
    name = f"endpoint-{uuid.uuid4().hex[:8]}"
    os.makedirs(os.path.join(nfs_server.export_dir, name, "inner"))
    region = endpoint.region
    ec2 = {
        "SubnetArn": f"arn:aws:ec2:{region}:{ACCOUNT}:subnet/subnet-0a1b2c3d",
        "SecurityGroupArns": security_groups(region),
    }
    role = f"arn:aws:iam::{ACCOUNT}:role/efs-access"
    # The file system's address and port (beyond DataSync) name the session's NFS server.
    arn = created(
        endpoint,
        "CreateLocationEfs",
        {
            "EfsFilesystemArn": f"arn:aws:elasticfilesystem:{region}:{ACCOUNT}:"
            "file-system/fs-0123456789abcdef0",
            "Subdirectory": f"{nfs_server.pseudo_path}/{name}/",
            "Ec2Config": ec2,
            "FileSystemAccessRoleArn": role,
            "InTransitEncryption": "NONE",
            "ServerHostname": "127.0.0.1",
            "ServerPort": nfs_server.port,
        },
    )
    described = datasync.describe_location_efs(LocationArn=arn)
    host = f"efs://{region}.fs-0123456789abcdef0"
    assert described["LocationUri"] == f"{host}{nfs_server.pseudo_path}/{name}/"
    assert described["Ec2Config"] == ec2
    assert (described["FileSystemAccessRoleArn"], described["InTransitEncryption"]) == (
        role,
        "NONE",
    )
    assert isinstance(described["CreationTime"], datetime)

    datasync.update_location_efs(
        LocationArn=arn,
        Subdirectory=f"{nfs_server.pseudo_path}/{name}/inner",
        FileSystemAccessRoleArn=f"{role}-2",
        InTransitEncryption="NONE",
    )
    described = datasync.describe_location_efs(LocationArn=arn)
    assert described["LocationUri"] == f"{host}{nfs_server.pseudo_path}/{name}/inner/"
    assert described["FileSystemAccessRoleArn"] == f"{role}-2"


def test_fsx_locations_round_trip(
    endpoint: Endpoint,
    datasync: Any,
    nfs_server: NfsServer,
    smb_server: SmbServer,
    workdir: Path,
) -> None:
    name = f"endpoint-{uuid.uuid4().hex[:8]}"
    region = endpoint.region
    groups = security_groups(region)

    def file_system(number: int) -> str:
        return f"arn:aws:fsx:{region}:{ACCOUNT}:file-system/fs-0{number}23456789abcdef"

    # Each on the session's servers, named by ServerHostname and ServerPort (beyond DataSync).
    os.makedirs(os.path.join(nfs_server.fsx_dir, name, "inner"))
    zfs = created(
        endpoint,
        "CreateLocationFsxOpenZfs",
        {
            "FsxFilesystemArn": file_system(1),
            "Protocol": {"NFS": {"MountOptions": {"Version": "NFS4_1"}}},
            "SecurityGroupArns": groups,
            "Subdirectory": f"/fsx/{name}",
            "ServerHostname": "127.0.0.1",
            "ServerPort": nfs_server.port,
        },
    )
    os.makedirs(os.path.join(smb_server.share_dir, name, "inner"))
    windows = created(
        endpoint,
        "CreateLocationFsxWindows",
        {
            "FsxFilesystemArn": file_system(2),
            "SecurityGroupArns": groups,
            "User": smb_server.user,
            "Password": smb_server.password,
            "Subdirectory": f"/{smb_server.share}/{name}",
            "ServerHostname": "127.0.0.1",
            "ServerPort": smb_server.port,
        },
    )
    (workdir / name / "inner").mkdir(parents=True)
    lustre = created(
        endpoint,
        "CreateLocationFsxLustre",
        {
            "FsxFilesystemArn": file_system(3),
            "SecurityGroupArns": groups,
            "Subdirectory": f"/{name}/",
            "MountPath": str(workdir),  # where the worker's host mounts it (beyond DataSync)
        },
    )

    described = datasync.describe_location_fsx_open_zfs(LocationArn=zfs)
    assert described["LocationUri"] == f"fsxz://{region}.fs-0123456789abcdef/fsx/{name}/"
    assert described["Protocol"] == {"NFS": {"MountOptions": {"Version": "NFS4_1"}}}
    assert described["SecurityGroupArns"] == groups
    described = datasync.describe_location_fsx_windows(LocationArn=windows)
    share = f"/{smb_server.share}/{name}/"
    assert described["LocationUri"] == f"fsxw://{region}.fs-0223456789abcdef{share}"
    assert (described["User"], described["SecurityGroupArns"]) == (smb_server.user, groups)
    described = datasync.describe_location_fsx_lustre(LocationArn=lustre)
    assert described["LocationUri"] == f"fsxl://{region}.fs-0323456789abcdef/{name}/"
    assert described["SecurityGroupArns"] == groups

    datasync.update_location_fsx_open_zfs(
        LocationArn=zfs,
        Subdirectory=f"/fsx/{name}/inner",
        Protocol={"NFS": {"MountOptions": {"Version": "NFS4_0"}}},
    )
    datasync.update_location_fsx_windows(
        LocationArn=windows,
        Subdirectory=f"{share}inner",
        User=smb_server.user,
        Password=smb_server.password,
    )
    datasync.update_location_fsx_lustre(LocationArn=lustre, Subdirectory=f"/{name}/inner/")
    described = datasync.describe_location_fsx_open_zfs(LocationArn=zfs)
    assert described["LocationUri"].endswith(f"/fsx/{name}/inner/")
    assert described["Protocol"] == {"NFS": {"MountOptions": {"Version": "NFS4_0"}}}
    described = datasync.describe_location_fsx_windows(LocationArn=windows)
    assert described["LocationUri"].endswith(f"{share}inner/")
    described = datasync.describe_location_fsx_lustre(LocationArn=lustre)
    assert described["LocationUri"].endswith(f"/{name}/inner/")
    assert made(raw(endpoint, "DescribeLocationFsxLustre", {"LocationArn": lustre}))[
        "MountPath"
    ] == str(workdir)


def test_ferrys_own_location_type_is_served_in_the_same_json(
    endpoint: Endpoint, datasync: Any, workdir: Path
) -> None:
    arn = created(
        endpoint,
        "CreateLocationLocal",
        {"Path": str(workdir), "Tags": [{"Key": "kind", "Value": "local"}]},
    )
    shown = made(raw(endpoint, "DescribeLocationLocal", {"LocationArn": arn}))
    assert (shown["Path"], shown["LocationUri"]) == (str(workdir), f"local://{workdir}/")
    mine = {"Name": "LocationUri", "Values": [f"local://{workdir}/"], "Operator": "Equals"}
    assert datasync.list_locations(Filters=[mine])["Locations"] == [
        {"LocationArn": arn, "LocationUri": f"local://{workdir}/"}
    ]
    assert datasync.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "kind", "Value": "local"}
    ]


# --- agents, tasks, executions, tags ----------------------------------------------------------


async def test_agents_are_updated_paged_and_deleted(datasync: Any, ferry: Ferry) -> None:
    mine = [await offline_agent(datasync, ferry, f"site-{n}") for n in range(5)]
    datasync.update_agent(AgentArn=mine[0], Name="renamed")

    described = datasync.describe_agent(AgentArn=mine[0])
    assert (described["Name"], described["Status"]) == ("renamed", "OFFLINE")
    assert isinstance(described["CreationTime"], datetime)
    pages = list(datasync.get_paginator("list_agents").paginate(PaginationConfig={"PageSize": 2}))
    seen = [agent["AgentArn"] for page in pages for agent in page["Agents"]]
    assert len(seen) == len(set(seen)) and set(mine) <= set(seen)
    assert len(pages) >= 3 and all(len(page["Agents"]) <= 2 for page in pages)
    names = {a["AgentArn"]: a.get("Name") for page in pages for a in page["Agents"]}
    assert [names[arn] for arn in mine] == ["renamed", "site-1", "site-2", "site-3", "site-4"]

    datasync.delete_agent(AgentArn=mine[4])
    gone = refused(datasync.describe_agent, AgentArn=mine[4])
    assert "does not exist" in gone["Error"]["Message"]
    assert mine[4] not in every(datasync, "list_agents", "Agents", "AgentArn")


# Every option, as Terraform sends them: DataSync's defaults given explicitly...
DEFAULT_OPTIONS = {
    "VerifyMode": "POINT_IN_TIME_CONSISTENT",
    "OverwriteMode": "ALWAYS",
    "Atime": "BEST_EFFORT",
    "Mtime": "PRESERVE",
    "Uid": "INT_VALUE",
    "Gid": "INT_VALUE",
    "PreserveDeletedFiles": "PRESERVE",
    "PreserveDevices": "NONE",
    "PosixPermissions": "PRESERVE",
    "BytesPerSecond": -1,
    "TaskQueueing": "ENABLED",
    "LogLevel": "OFF",
    "TransferMode": "CHANGED",
    "SecurityDescriptorCopyFlags": "OWNER_DACL",
    "ObjectTags": "PRESERVE",
}
# ... and each changed.
OTHER_OPTIONS = {
    "VerifyMode": "ONLY_FILES_TRANSFERRED",
    "OverwriteMode": "NEVER",
    "Atime": "NONE",
    "Mtime": "NONE",
    "Uid": "NONE",
    "Gid": "NONE",  # NAME is refused: a local destination keeps owners as numbers
    "PreserveDeletedFiles": "REMOVE",
    "PreserveDevices": "PRESERVE",
    "PosixPermissions": "NONE",
    "BytesPerSecond": 1048576,
    "TaskQueueing": "DISABLED",
    "LogLevel": "TRANSFER",
    "TransferMode": "CHANGED",
    "SecurityDescriptorCopyFlags": "NONE",  # OWNER_DACL_SACL: between SMB locations only
    "ObjectTags": "NONE",
}


async def test_describe_task_returns_every_option_exactly_as_set(
    datasync: Any, ferry: Ferry, workdir: Path
) -> None:
    source, destination = await local_locations(ferry, workdir, "source", "destination")
    region = datasync.meta.region_name
    logs = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/ferry/nightly:*"
    first = {
        "Name": "nightly",
        "Options": DEFAULT_OPTIONS,
        "Excludes": [{"FilterType": "SIMPLE_PATTERN", "Value": "/tmp|*.bak"}],
        "Includes": [{"FilterType": "SIMPLE_PATTERN", "Value": "/reports*|/logs"}],
        "Schedule": {"ScheduleExpression": "cron(0 2 ? * MON-FRI *)"},
        "CloudWatchLogGroupArn": logs,
    }
    task = datasync.create_task(
        SourceLocationArn=source, DestinationLocationArn=destination, **first
    )["TaskArn"]
    described = datasync.describe_task(TaskArn=task)
    assert described["Status"] == "AVAILABLE"
    assert as_sent(described, first, "Schedule")
    assert described["Schedule"]["ScheduleExpression"] == "cron(0 2 ? * MON-FRI *)"
    assert (described["SourceLocationArn"], described["DestinationLocationArn"]) == (
        source,
        destination,
    )

    second = {
        "Name": "weekly",
        "Options": OTHER_OPTIONS,
        "Excludes": [{"FilterType": "SIMPLE_PATTERN", "Value": "*.tmp"}],
        "Includes": [],
        "Schedule": {"ScheduleExpression": "rate(12 hours)"},
    }
    datasync.update_task(TaskArn=task, **second)
    described = datasync.describe_task(TaskArn=task)
    assert as_sent(described, second, "Schedule")
    assert described["Schedule"]["ScheduleExpression"] == "rate(12 hours)"
    assert described["CloudWatchLogGroupArn"] == logs  # not given: unchanged

    datasync.delete_task(TaskArn=task)
    assert "not found" in refused(datasync.describe_task, TaskArn=task)["Error"]["Message"]


async def test_tasks_come_in_pages(datasync: Any, ferry: Ferry, workdir: Path) -> None:
    source, destination = await local_locations(ferry, workdir, "source", "destination")
    mine = {
        datasync.create_task(
            SourceLocationArn=source, DestinationLocationArn=destination, Name=f"paged-{n}"
        )["TaskArn"]: f"paged-{n}"
        for n in range(5)
    }
    pages = list(datasync.get_paginator("list_tasks").paginate(PaginationConfig={"PageSize": 2}))
    seen = {task["TaskArn"]: task for page in pages for task in page["Tasks"]}
    assert sum(len(page["Tasks"]) for page in pages) == len(seen)  # none twice
    assert len(pages) >= 3 and all(len(page["Tasks"]) <= 2 for page in pages)
    assert {arn: seen[arn]["Name"] for arn in mine} == mine
    assert {seen[arn]["Status"] for arn in mine} == {"AVAILABLE"}


async def test_tasks_are_filtered_by_location(datasync: Any, ferry: Ferry, workdir: Path) -> None:
    a, b, c = await local_locations(ferry, workdir, "a", "b", "c")
    ab = datasync.create_task(SourceLocationArn=a, DestinationLocationArn=b)["TaskArn"]
    datasync.create_task(SourceLocationArn=c, DestinationLocationArn=a)
    bc = datasync.create_task(SourceLocationArn=b, DestinationLocationArn=c)["TaskArn"]

    by_b = datasync.list_tasks(
        Filters=[{"Name": "LocationId", "Values": [b], "Operator": "Equals"}]
    )

    assert {task["TaskArn"] for task in by_b["Tasks"]} == {ab, bc}


async def finished(datasync: Any, execution: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        described = datasync.describe_task_execution(TaskExecutionArn=execution)
        return described if described["Status"] in ("SUCCESS", "ERROR") else None

    return dict(await until(ended, timeout=180, every=0.5))


async def test_a_task_runs_to_success_through_the_endpoint(
    datasync: Any, ferry: Ferry, workdir: Path
) -> None:
    source, destination = await local_locations(ferry, workdir, "source", "destination")
    write(workdir / "source" / "a" / "file.txt", "through the endpoint")
    task = datasync.create_task(
        SourceLocationArn=source,
        DestinationLocationArn=destination,
        Name="endpoint",
        Options={"VerifyMode": "POINT_IN_TIME_CONSISTENT", "LogLevel": "OFF"},
    )["TaskArn"]
    assert datasync.describe_task(TaskArn=task)["Status"] == "AVAILABLE"

    runs = [datasync.start_task_execution(TaskArn=task)["TaskExecutionArn"]]
    described = await finished(datasync, runs[0])
    runs.append(datasync.start_task_execution(TaskArn=task)["TaskExecutionArn"])
    again = await finished(datasync, runs[1])

    assert described["Status"] == "SUCCESS", described.get("Result")
    assert described["FilesTransferred"] == 3  # the root, a/ and a/file.txt, as DataSync counts
    assert (workdir / "destination" / "a" / "file.txt").read_text() == "through the endpoint"
    assert isinstance(described["StartTime"], datetime)
    assert again["Status"] == "SUCCESS" and again["FilesTransferred"] == 0  # nothing changed
    listed = datasync.list_task_executions(TaskArn=task)["TaskExecutions"]
    assert sorted((e["TaskExecutionArn"], e["Status"]) for e in listed) == sorted(
        (arn, "SUCCESS") for arn in runs
    )
    paged = list(
        datasync.get_paginator("list_task_executions").paginate(
            TaskArn=task, PaginationConfig={"PageSize": 1}
        )
    )
    # Temporal's pages may end with an empty one, which the paginator reads and stops at.
    assert all(len(page["TaskExecutions"]) <= 1 for page in paged)
    listed = [e["TaskExecutionArn"] for page in paged for e in page["TaskExecutions"]]
    assert sorted(listed) == sorted(runs)


async def test_a_running_execution_is_updated_then_cancelled(
    datasync: Any, ferry: Ferry, workdir: Path
) -> None:
    source, destination = await local_locations(ferry, workdir, "source", "destination")
    for number in range(8):
        write(workdir / "source" / f"file-{number}.bin", os.urandom(256 * 1024))
    task = datasync.create_task(
        SourceLocationArn=source,
        DestinationLocationArn=destination,
        Options={"BytesPerSecond": 64 * 1024, "VerifyMode": "NONE"},  # half a minute
    )["TaskArn"]
    execution = datasync.start_task_execution(TaskArn=task)["TaskExecutionArn"]

    def transferring() -> bool:
        status = datasync.describe_task_execution(TaskExecutionArn=execution)["Status"]
        return bool(status == "TRANSFERRING")

    await until(transferring, timeout=120, every=0.2)
    datasync.update_task_execution(
        TaskExecutionArn=execution, Options={"BytesPerSecond": 128 * 1024}
    )
    described = datasync.describe_task_execution(TaskExecutionArn=execution)
    assert described["Options"]["BytesPerSecond"] == 128 * 1024
    other = refused(
        datasync.update_task_execution,
        TaskExecutionArn=execution,
        Options={"VerifyMode": "POINT_IN_TIME_CONSISTENT"},
    )
    assert "changes only Options.BytesPerSecond" in other["Error"]["Message"]

    datasync.cancel_task_execution(TaskExecutionArn=execution)
    ended = await finished(datasync, execution)

    assert ended["Status"] == "ERROR"
    assert ended["Result"]["ErrorCode"] == "Cancelled"
    again = refused(datasync.cancel_task_execution, TaskExecutionArn=execution)
    assert "has already ended" in again["Error"]["Message"]


async def test_tags_on_agents_locations_tasks_and_executions(
    endpoint: Endpoint, datasync: Any, ferry: Ferry, workdir: Path
) -> None:
    given = [{"Key": "team", "Value": "data"}, {"Key": "cost", "Value": "lab"}]
    agent = await offline_agent(datasync, ferry, "tagged", team="data", cost="lab")
    write(workdir / "source" / "a.txt", "a")
    location = created(
        endpoint, "CreateLocationLocal", {"Path": str(workdir / "source"), "Tags": given}
    )
    (destination,) = await local_locations(ferry, workdir, "destination")
    task = datasync.create_task(
        SourceLocationArn=location, DestinationLocationArn=destination, Tags=given
    )["TaskArn"]
    execution = datasync.start_task_execution(TaskArn=task, Tags=given)["TaskExecutionArn"]

    def tags(arn: str) -> list[tuple[str, str]]:
        pages = datasync.get_paginator("list_tags_for_resource").paginate(
            ResourceArn=arn, PaginationConfig={"PageSize": 1}
        )
        return sorted((t["Key"], t["Value"]) for page in pages for t in page["Tags"])

    for arn in (agent, location, task, execution):
        assert tags(arn) == [("cost", "lab"), ("team", "data")], arn
        datasync.tag_resource(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "ops"}])
        datasync.untag_resource(ResourceArn=arn, Keys=["cost"])
        assert tags(arn) == [("owner", "ops"), ("team", "data")], arn
    assert (await finished(datasync, execution))["Status"] == "SUCCESS"
    assert tags(execution) == [("owner", "ops"), ("team", "data")]  # kept once it ended
    gone = execution[:-17] + "0" * 17
    assert (
        "not found"
        in refused(datasync.list_tags_for_resource, ResourceArn=gone)["Error"]["Message"]
    )


def aws(endpoint: Endpoint, *args: str) -> dict[str, Any]:
    """The AWS CLI (`aws datasync ...`), as a cron job or pipeline runs it."""
    command = [os.path.join(sysconfig.get_path("scripts"), "aws"), "datasync", *args]
    result = subprocess.run(
        [*command, "--endpoint-url", endpoint.url, "--region", endpoint.region, "--output", "json"],
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": endpoint.access_key,
            "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


async def test_the_aws_cli_creates_starts_and_follows_a_task(
    endpoint: Endpoint, ferry: Ferry, workdir: Path
) -> None:
    source, destination = await local_locations(ferry, workdir, "source", "destination")
    write(workdir / "source" / "nightly.csv", "a,b\n1,2\n")

    task = aws(
        endpoint,
        "create-task",
        "--source-location-arn", source,
        "--destination-location-arn", destination,
        "--name", "from-cron",
        "--options", "VerifyMode=ONLY_FILES_TRANSFERRED,OverwriteMode=ALWAYS",
    )["TaskArn"]  # fmt: skip
    execution = aws(endpoint, "start-task-execution", "--task-arn", task)["TaskExecutionArn"]

    def ended() -> dict[str, Any] | None:
        state = aws(endpoint, "describe-task-execution", "--task-execution-arn", execution)
        return state if state["Status"] in ("SUCCESS", "ERROR") else None

    state = await until(ended, timeout=120, every=1)
    assert state["Status"] == "SUCCESS", state
    assert state["Options"]["VerifyMode"] == "ONLY_FILES_TRANSFERRED"
    assert (workdir / "destination" / "nightly.csv").read_text() == "a,b\n1,2\n"
    described = aws(endpoint, "describe-task", "--task-arn", task)
    assert (described["Name"], described["Status"]) == ("from-cron", "AVAILABLE")


async def test_pages_are_stable_while_resources_come_and_go(
    datasync: Any, ferry: Ferry, workdir: Path
) -> None:
    made_here = await local_locations(ferry, workdir, *map(str, range(7)))
    mine = {"Name": "LocationUri", "Values": [f"local://{workdir}/"], "Operator": "BeginsWith"}
    seen: list[str] = []
    gone: list[str] = []
    pages = datasync.get_paginator("list_locations").paginate(
        Filters=[mine], PaginationConfig={"PageSize": 3}
    )
    for page in pages:
        seen += [location["LocationArn"] for location in page["Locations"]]
        if not gone:  # between pages: the last one listed goes, and one not listed yet
            gone = [seen[-1], next(arn for arn in made_here if arn not in seen)]
            for arn in gone:
                await ferry.delete_location({"LocationArn": arn})

    # Nothing twice; nothing that was there throughout passed over.
    assert len(seen) == len(set(seen)) == 6
    assert set(seen) == set(made_here) - {gone[1]}
    listed = datasync.list_locations(Filters=[mine])["Locations"]
    assert {x["LocationArn"] for x in listed} == set(made_here) - set(gone)
    bad = refused(datasync.list_locations, NextToken="bm90LWEtdG9rZW4")
    assert "NextToken" in bad["Error"]["Message"]


# --- who may call it ----------------------------------------------------------------------------


def test_a_request_without_a_signature_is_refused(endpoint: Endpoint) -> None:
    status, kind, message = error_of(raw(endpoint, "ListTasks", signed=False))
    assert (status, kind) == (400, "com.amazon.coral.service#MissingAuthenticationTokenException")
    assert message == "Request is missing Authentication Token"


def test_a_wrong_secret_is_refused(endpoint: Endpoint) -> None:
    status, kind, message = error_of(raw(endpoint, "ListTasks", secret="not-the-secret"))
    assert (status, kind) == (400, "com.amazon.coral.service#InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")


def test_a_scope_for_another_region_or_service_is_refused(endpoint: Endpoint) -> None:
    _, kind, message = error_of(raw(endpoint, "ListTasks", region="us-west-2"))
    assert kind.endswith("InvalidSignatureException")
    assert "Credential should be scoped to a valid region, not 'us-west-2'" in message
    _, kind, message = error_of(raw(endpoint, "ListTasks", service="s3"))
    assert kind.endswith("InvalidSignatureException")
    assert "Credential should be scoped to correct service: 'datasync'" in message


def signed_twenty_minutes_ago(monkeypatch: pytest.MonkeyPatch) -> datetime:
    then = datetime.now(UTC) - timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: then.replace(tzinfo=None))
    return then


def test_an_old_request_is_refused(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    then = signed_twenty_minutes_ago(monkeypatch)
    _, kind, message = error_of(raw(endpoint, "ListTasks"))
    assert kind.endswith("InvalidSignatureException")
    assert message.startswith(f"Signature expired: {then:%Y%m%dT%H%M%SZ} is now earlier than")


async def test_an_unknown_or_inactive_key_is_refused(
    endpoint: Endpoint, stack: Stack, ferry: Ferry
) -> None:
    key = (await ferry.create_access_key({"UserName": "short-lived"}))["AccessKey"]
    mine = Endpoint(endpoint.url, key["AccessKeyId"], key["SecretAccessKey"])
    assert mine.client().list_tasks()["ResponseMetadata"]["HTTPStatusCode"] == 200

    run_cli(stack, "update-access-key", "--access-key-id", key["AccessKeyId"], "--status",
            "Inactive", check=True)  # fmt: skip

    def code() -> str | None:
        try:
            mine.client().list_tasks()
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return None

    assert await until(code, timeout=15, every=0.5) == "UnrecognizedClientException"
    listed = json.loads(run_cli(stack, "list-access-keys", check=True).stdout)
    shown = {k["AccessKeyId"]: k for k in listed["AccessKeyMetadata"]}
    assert shown[key["AccessKeyId"]]["Status"] == "Inactive"
    assert "SecretAccessKey" not in shown[key["AccessKeyId"]]
    await ferry.delete_access_key({"AccessKeyId": key["AccessKeyId"]})
    assert key["AccessKeyId"] not in {
        k["AccessKeyId"] for k in (await ferry.list_access_keys({}))["AccessKeyMetadata"]
    }


async def test_a_request_refused_for_its_signature_creates_nothing(
    endpoint: Endpoint,
    datasync: Any,
    ferry: Ferry,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, destination = await local_locations(ferry, workdir, "source", "destination")
    inactive = (await ferry.create_access_key({"UserName": "inactive"}))["AccessKey"]
    await ferry.update_access_key({"AccessKeyId": inactive["AccessKeyId"], "Status": "Inactive"})
    tasks = every(datasync, "list_tasks", "Tasks", "TaskArn")
    locations = every(datasync, "list_locations", "Locations", "LocationArn")
    agents = every(datasync, "list_agents", "Agents", "AgentArn")
    key = (
        await ferry.register_activation(new_activation_key(), ACTIVATION_KEY_SECONDS)
    ).ActivationKey
    refusals: dict[str, tuple[dict[str, Any], str]] = {
        "unsigned": ({"signed": False}, "MissingAuthenticationTokenException"),
        "a wrong secret": ({"secret": "not-the-secret"}, "InvalidSignatureException"),
        "another region": ({"region": "us-west-2"}, "InvalidSignatureException"),
        "another service": ({"service": "s3"}, "InvalidSignatureException"),
        "an unknown key": ({"access_key": "FKIA" + "A" * 16}, "UnrecognizedClientException"),
        "an inactive key": (
            {"access_key": inactive["AccessKeyId"], "secret": inactive["SecretAccessKey"]},
            "UnrecognizedClientException",
        ),
        "too old": ({}, "InvalidSignatureException"),
    }
    creates = {
        "CreateTask": {"SourceLocationArn": source, "DestinationLocationArn": destination},
        "CreateLocationLocal": {"Path": str(workdir / "never")},
        "CreateAgent": {"ActivationKey": key, "AgentName": "never"},
    }
    for why, (how, kind) in refusals.items():
        with monkeypatch.context() as patch:
            if why == "too old":
                signed_twenty_minutes_ago(patch)
            for operation, body in creates.items():
                status, answered, _ = error_of(raw(endpoint, operation, body, **how))
                assert (status, answered) == (400, f"com.amazon.coral.service#{kind}"), why

    assert every(datasync, "list_tasks", "Tasks", "TaskArn") == tasks
    assert every(datasync, "list_locations", "Locations", "LocationArn") == locations
    assert every(datasync, "list_agents", "Agents", "AgentArn") == agents
    # The key is unused: a signed request may still take it.
    assert datasync.create_agent(ActivationKey=key)["AgentArn"] not in agents


def test_every_answer_has_a_request_id(endpoint: Endpoint, datasync: Any) -> None:
    ok = datasync.list_tasks()["ResponseMetadata"]
    unsigned = raw(endpoint, "ListTasks", signed=False)
    assert len(ok["RequestId"]) == 36
    assert len(unsigned.headers["x-amzn-RequestId"]) == 36
    assert ok["RequestId"] != unsigned.headers["x-amzn-RequestId"]


# --- HTTP: keep-alive, bodies, and what a slow or greedy client may hold ---------------------


def test_one_connection_carries_many_requests(endpoint: Endpoint) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(endpoint.url.rpartition(":")[2]), maxsize=1)
    credentials = botocore.credentials.Credentials(endpoint.access_key, endpoint.secret_key)
    answers = []
    for _ in range(5):
        request = botocore.awsrequest.AWSRequest(
            "POST",
            endpoint.url + "/",
            data=b"{}",
            headers={
                "X-Amz-Target": "FmrsService.ListAgents",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        botocore.auth.SigV4Auth(credentials, "datasync", endpoint.region).add_auth(request)
        prepared = request.prepare()
        response = pool.urlopen("POST", "/", body=prepared.body, headers=dict(prepared.headers))
        assert (response.status, response.version) == (200, 11)  # HTTP/1.1
        assert response.headers.get("Connection", "keep-alive").lower() == "keep-alive"
        assert int(response.headers["Content-Length"]) == len(response.data)
        assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
        answers.append(response.json())
    assert pool.num_connections == 1
    assert all("Agents" in answer for answer in answers)


async def test_a_body_that_is_not_json_or_too_large_is_refused_and_nothing_is_made(
    endpoint: Endpoint, datasync: Any, ferry: Ferry, workdir: Path
) -> None:
    source, destination = await local_locations(ferry, workdir, "source", "destination")
    before = every(datasync, "list_tasks", "Tasks", "TaskArn")
    cut = b'{"SourceLocationArn": "' + source.encode() + b'", "DestinationLocationArn": '
    status, kind, message = error_of(raw(endpoint, "CreateTask", cut))
    assert (status, kind) == (400, "com.amazon.coral.service#SerializationException")
    assert "not JSON" in message
    huge = {"SourceLocationArn": source, "DestinationLocationArn": destination}
    huge["Name"] = "x" * (2 * MiB)
    status, kind, message = error_of(raw(endpoint, "CreateTask", huge))
    assert (status, kind) == (413, "SerializationException")
    assert "larger than" in message
    assert every(datasync, "list_tasks", "Tasks", "TaskArn") == before


def test_slow_clients_do_not_hold_the_others(endpoint: Endpoint, datasync: Any) -> None:
    host, port = "127.0.0.1", int(endpoint.url.rpartition(":")[2])
    stalled = []
    try:
        for number in range(100):  # half of them stop in their headers, half in their body
            sock = socket.create_connection((host, port))
            if number % 2:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar")
            else:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            stalled.append(sock)
        assert "Tasks" in datasync.list_tasks()
    finally:
        for sock in stalled:
            sock.close()


async def answer_of(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of one HTTP answer."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
    length = int({k.lower(): v for k, v in fields.items()}["content-length"])
    return int(head.split()[1]), await reader.readexactly(length)


async def test_the_limits_a_client_meets(endpoint: Endpoint, ferry: Ferry) -> None:
    limits = Limits(head_seconds=2, body_seconds=2, connections=8)
    served = await serve_endpoint(ferry, "127.0.0.1", 0, limits=limits)
    mine = Endpoint(served.url, endpoint.access_key, endpoint.secret_key)
    port = int(served.url.rpartition(":")[2])
    held = []
    try:
        # A head that stops halfway: closed, unanswered.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar")
        assert await asyncio.wait_for(reader.read(), 120) == b""
        writer.close()
        # A body that stops halfway: 408.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        status, body = await asyncio.wait_for(answer_of(reader), 120)
        assert (status, json.loads(body)["__type"]) == (408, "RequestTimeoutException")
        writer.close()
        # As many connections as the limit, idle: one more is answered 503 and closed.
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        status, body = await asyncio.wait_for(answer_of(reader), 120)
        assert (status, json.loads(body)["__type"]) == (503, "ServiceUnavailableException")
        assert await reader.read() == b""
        writer.close()
        for _, idle in held:
            idle.close()
        held = []
        # Room again (boto3 retries a 503, should the server not have seen a close yet).
        answered = await asyncio.to_thread(mine.client().list_tasks)
        assert answered["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        for _, idle in held:
            idle.close()
        await served.stop()


def test_ferry_api_serves_https_with_its_certificate(stack: Stack, workdir: Path) -> None:
    cert, key = map(str, self_signed(workdir))
    served, _ = start_endpoint(stack, "--tls-cert", cert, "--tls-key", key, tls_cert=cert)

    assert served.url.startswith("https://")
    assert "Tasks" in served.client().list_tasks()
    untrusting = Endpoint(served.url, served.access_key, served.secret_key)
    with pytest.raises(botocore.exceptions.SSLError):
        untrusting.client(retries={"max_attempts": 1}).list_tasks()
    half = run_cli(stack, "api", "--port", str(free_port()), "--tls-cert", cert)
    assert half.returncode == 254
    assert "--tls-cert and --tls-key go together" in half.stderr


# --- the agent's side of activation -------------------------------------------------------------


async def test_an_agent_hands_out_its_activation_key_over_http(
    stack: Stack, datasync: Any, workdir: Path
) -> None:
    port, state = free_port(), workdir / "agent"
    process = stack.start_agent(
        state, "--activation-port", str(port), "--activation-host", "127.0.0.1"
    )
    wait_for_port(port, process, "the agent's activation port", timeout=30)
    await until((state / "activation-key").exists, timeout=30)
    region = datasync.meta.region_name

    def ask(**query: str) -> urllib3.BaseHTTPResponse:
        address = f"http://127.0.0.1:{port}/?{urllib.parse.urlencode(query)}"
        return urllib3.request("GET", address, redirect=False, retries=False)

    wrong = ask(gatewayType="SYNC", activationRegion="us-east-1")
    assert wrong.status == 400
    assert f"activates in region '{region}'" in wrong.data.decode()
    assert ask(gatewayType="FILE_S3", activationRegion=region).status == 400
    answer = ask(gatewayType="SYNC", activationRegion=region)
    assert answer.status == 302
    fields = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)
    key = (state / "activation-key").read_text().strip()
    assert fields == {"activationKey": [key], "activationRegion": [region]}

    created = datasync.create_agent(ActivationKey=fields["activationKey"][0], AgentName="by-ip")
    arn = created["AgentArn"]
    await until(lambda: datasync.describe_agent(AgentArn=arn)["Status"] == "ONLINE", timeout=60)

    def port_closed() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) != 0

    await until(port_closed, timeout=30)  # activated: no key to hand out
    datasync.delete_agent(AgentArn=arn)
    await until(lambda: process.poll() is not None, timeout=30)
