"""Agents at another site, on separate hosts (network namespaces): they share nothing with the
rest but Temporal and the staging bucket.

    hub     Temporal's dev server, the staging bucket (`rclone serve s3`), a Ferry worker
    nas     samba, with the source share: only the agents use it
    a, b    an agent each, next to the NAS
    cloud   the destination, an S3-compatible server (`rclone serve s3`)

Every process (the servers too) has a HOME, a TMPDIR and a data directory of its own, checked as
it starts against every other's (tests/sites.py). The tests themselves play the operator, from
this machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from conftest import FERRY, S3_ACCESS_KEY, S3_SECRET_KEY, rclone_s3_command
from helpers import identity, transfer_batches, until, wait, wait_for_port
from sites import Host, Popen, Sites, kill, sites_or_skip
from smb_server import SmbServer, start_smb_server
from temporalio.api.enums.v1 import PendingActivityState

from api import Ferry
from api.client import connect
from models.arn import execution_id
from starter.dev import DevServer

S3_PORT = 9000  # each host has ports of its own
TEMPORAL_PORT = 7233
STAGING_BUCKET = "staging"
BATCH_FILES = "200"
# How long the hub's worker lets an execution wait for an agent (600 s by default).
AGENT_WAIT_SECONDS = "120"


@dataclass
class Site:
    sites: Sites
    hub: Host
    nas: Host
    cloud: Host
    a: Host
    b: Host
    temporal: DevServer
    smb: SmbServer
    ferry: Ferry
    servers: dict[str, Popen] = field(default_factory=dict)
    agents: dict[str, tuple[Popen, str]] = field(default_factory=dict)  # host -> (process, ARN)

    @property
    def staging_url(self) -> str:
        return f"s3://{STAGING_BUCKET}/ferry"

    def env(self, **extra: str) -> dict[str, str]:
        """What a Ferry process is given: Temporal, the staging bucket and the key."""
        return {
            "TEMPORAL_ADDRESS": self.temporal.address,
            "FERRY_STAGING_URL": self.staging_url,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://{self.hub.address}:{S3_PORT}",
            "AWS_EC2_METADATA_DISABLED": "true",
            "FERRY_SECRET_KEY": os.environ["FERRY_SECRET_KEY"],
            "FERRY_BATCH_FILES": BATCH_FILES,
            **extra,
        }

    @staticmethod
    def state(host: Host) -> Path:
        """The state directory of the agent on `host`."""
        return host.directory / "agent" / "state"

    def start_agent(self, host: Host, **extra: str) -> Popen:
        state = self.state(host)
        command = [FERRY, "worker", "--agent", "--state-dir", str(state), "--processes", "2"]
        return host.start(command, "agent", state, **self.env(**extra))

    def bucket(self, host: Host) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=f"http://{host.address}:{S3_PORT}",
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )

    def start_temporal(self) -> None:
        self.servers["temporal"] = process = self.hub.start(
            self.temporal.command(), "temporal", log=self.temporal.log_path
        )
        self.temporal.wait_ready(process)


def serve_s3(host: Host, name: str) -> Popen:
    """`rclone serve s3` on `host` as process `name`, its buckets in its data directory."""
    command = rclone_s3_command(host.data(name), host.address, S3_PORT)
    process = host.start(command, name)
    wait_for_port(S3_PORT, process, f"rclone serve s3 on {host.name}", 10, host.address)
    return process


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    yield from sites_or_skip()


@pytest.fixture(scope="module")
async def site(sites: Sites) -> AsyncIterator[Site]:
    hub, nas, cloud = sites.host("hub"), sites.host("nas"), sites.host("cloud")
    a, b = sites.host("a"), sites.host("b")
    temporal = DevServer(
        hub.data("temporal"), TEMPORAL_PORT, ui=False, host=hub.address, listen="0.0.0.0"
    )
    smb = start_smb_server(
        ("data",),
        address=nas.address,
        wrapper=tuple(nas.wrapper),
        directory=str(nas.data("smbd")),
        env=nas.env("smbd"),
    )
    site = Site(sites, hub, nas, cloud, a, b, temporal, smb, ferry=None)  # type: ignore[arg-type]
    try:
        site.start_temporal()
        site.servers["staging"] = serve_s3(hub, "staging")
        site.bucket(hub).create_bucket(Bucket=STAGING_BUCKET)
        site.servers["cloud"] = serve_s3(cloud, "s3")
        hub.start(
            [FERRY, "worker"], "worker", **site.env(FERRY_AGENT_WAIT_SECONDS=AGENT_WAIT_SECONDS)
        )
        site.ferry = Ferry(await connect(temporal.address, patience=30))
        for label, host in (("a", a), ("b", b)):
            process = site.start_agent(host)
            key_file = site.state(host) / "activation-key"
            await until(key_file.exists, timeout=60)
            created = await site.ferry.create_agent(
                {"ActivationKey": key_file.read_text().strip(), "AgentName": f"agent-{label}"}
            )
            site.agents[label] = (process, created["AgentArn"])
        for _, arn in site.agents.values():
            await until(lambda arn=arn: online(site, arn), timeout=60)
        yield site
    finally:
        smb.stop()
        sites.close()


async def online(site: Site, agent_arn: str, wanted: str = "ONLINE") -> bool:
    return (await site.ferry.describe_agent({"AgentArn": agent_arn}))["Status"] == wanted


async def transfer(
    site: Site,
    name: str,
    files: int,
    size: int,
    agents: list[str] | None = None,
    destination_agents: bool = True,
    **options: Any,
) -> tuple[str, Path, Path]:
    """`files` files of `size` bytes in a new folder of the NAS's share, and a task that copies
    them through the agents (`agents`, else both) to a new bucket in the cloud, which names the
    same agents unless not `destination_agents`; (task ARN, source folder, bucket folder on the
    cloud's disk)."""
    folder = Path(site.smb.share_dir) / name
    for number in range(files):
        # Flat: a folder without markers keeps no metadata there (FolderMarkers DISABLED).
        path = folder / f"f{number:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    site.bucket(site.cloud).create_bucket(Bucket=name)  # rclone caches its folder listings
    bucket = site.cloud.data("s3") / name
    agents = agents or [arn for _, arn in site.agents.values()]
    source = await site.ferry.create_location_smb(
        {
            "ServerHostname": site.nas.address,
            "ServerPort": site.smb.port,
            "Subdirectory": f"/data/{name}",
            "User": site.smb.user,
            "Password": site.smb.password,
            "AgentArns": agents,
        }
    )
    destination = await site.ferry.create_location_object_storage(
        {
            "ServerHostname": site.cloud.address,
            "ServerPort": S3_PORT,
            "ServerProtocol": "HTTP",
            "BucketName": name,
            "AccessKey": S3_ACCESS_KEY,
            "SecretKey": S3_SECRET_KEY,
            "FolderMarkers": "DISABLED",  # rclone keeps objects as files: a folder is a prefix
            **({"AgentArns": agents} if destination_agents else {}),
        }
    )
    task = await site.ferry.create_task(
        {
            "SourceLocationArn": source["LocationArn"],
            "DestinationLocationArn": destination["LocationArn"],
            "Options": {"VerifyMode": "ONLY_FILES_TRANSFERRED", **options},
        }
    )
    return task["TaskArn"], folder, bucket


def contents(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def inodes(root: Path) -> dict[str, tuple[int, int]]:
    """Each file of a bucket on the cloud's disk, as it was last written: a write replaces its
    inode, and changes its ctime."""
    return {
        str(path.relative_to(root)): (path.stat().st_ino, path.stat().st_ctime_ns)
        for path in root.rglob("*.bin")
    }


async def transferring(site: Site, arn: str, bucket: Path, files: int) -> None:
    """Until the execution is TRANSFERRING with `files` files whole at the destination."""

    async def far_enough() -> bool:
        status = (await site.ferry.describe_task_execution({"TaskExecutionArn": arn}))["Status"]
        return status == "TRANSFERRING" and len(inodes(bucket)) >= files

    await until(far_enough, timeout=120, every=0.2)


def staged(site: Site, arn: str) -> list[str]:
    """The execution's objects in the staging bucket (its plan, results, checkpoints)."""
    listed = site.bucket(site.hub).list_objects_v2(
        Bucket=STAGING_BUCKET, Prefix=f"ferry/{execution_id(arn)}/"
    )
    return [item["Key"] for item in listed.get("Contents", [])]


async def test_agents_at_a_site_copy_5000_files_sharing_only_temporal_and_a_bucket(
    site: Site,
) -> None:
    task, source, bucket = await transfer(site, "five-thousand", 5000, 1024)

    arn = (await site.ferry.start_task_execution({"TaskArn": task}))["TaskExecutionArn"]
    seen = await until(lambda: staged(site, arn), timeout=120, every=0.2)
    result = await wait(site.ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert contents(bucket) == contents(source)
    assert result["FilesVerified"] == result["FilesTransferred"]
    assert any(key.endswith(".jsonl") for key in seen)  # the plan was staged in the bucket
    assert staged(site, arn) == []  # and removed at the end
    ran = {batch.identity for batch in await transfer_batches(site.ferry, arn)}
    assert {identity(process) for process, _ in site.agents.values()} <= ran
    # Every process was given directories of its own, checked as it started.
    assert {
        "temporal@hub", "staging@hub", "worker@hub", "smbd@nas", "s3@cloud", "agent@a", "agent@b"
    } <= set(site.sites.directories.given)  # fmt: skip


async def running_on(site: Site, arn: str, worker: str) -> bool:
    """Whether a batch of the execution is running on `worker` now."""
    described = await site.ferry.client.get_workflow_handle(execution_id(arn)).describe()
    return any(
        pending.last_worker_identity == worker
        and pending.activity_type.name == "TransferBatch"
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in described.raw_description.pending_activities
    )


async def test_an_agent_cut_off_mid_transfer_leaves_its_batches_to_the_other(site: Site) -> None:
    task, source, bucket = await transfer(
        site, "partition", 1200, 16 * 1024, BytesPerSecond=640 * 1024
    )  # about 30 seconds of TRANSFERRING
    a_process, a_arn = site.agents["a"]
    arn = (await site.ferry.start_task_execution({"TaskArn": task}))["TaskExecutionArn"]
    await transferring(site, arn, bucket, 200)
    await until(lambda: running_on(site, arn, identity(a_process)), timeout=120, every=0.2)
    log = site.a.log("agent")
    logged = len(log.read_bytes())

    site.a.cut()
    cut_at = datetime.now(UTC)
    finished = inodes(bucket)  # whole when a was cut off
    try:
        # Its batch stops once its heartbeats have not reached Temporal for a while: before
        # Temporal gives the batch to b, and for good.
        await until(lambda: b"stopped; nothing more was written" in log.read_bytes()[logged:])
        result = await wait(site.ferry, arn)
        went_offline = await until(lambda: online(site, a_arn, "OFFLINE"), timeout=150, every=5)
        written = inodes(bucket)
        # Bytes a's connections to the cloud still held would arrive once the link is up, even
        # from a process that is gone; a's own requests are another matter, looked for below.
        await until(lambda: site.a.unsent(site.cloud.address) == 0, timeout=240, every=2)
    finally:
        site.a.heal()
    await until(lambda: online(site, a_arn), timeout=90, every=2)

    assert went_offline
    assert result["Status"] == "SUCCESS", result["Result"]
    assert contents(bucket) == contents(source)
    assert result["FilesTransferred"] == 1200  # a bucket's root keeps no metadata
    now = inodes(bucket)
    # No file that was whole when a was cut off was written again, and nothing a did once it
    # could reach the cloud and the staging bucket again landed there.
    assert [name for name, inode in finished.items() if now[name] != inode] == []
    assert now == written
    assert staged(site, arn) == []
    batches = await transfer_batches(site.ferry, arn)
    retried = [batch for batch in batches if batch.attempt > 1]
    assert retried and all(batch.identity != identity(a_process) for batch in retried)
    assert any("eartbeat" in (batch.last_failure or "") for batch in retried)
    # Its batches ran again on b within two minutes (10 s of missed heartbeats, then a retry).
    late = [(batch, batch.started - cut_at) for batch in retried]
    assert all(after.total_seconds() <= 120 for _, after in late), late


async def test_both_agents_killed_then_one_restarted_from_its_state_resumes(site: Site) -> None:
    task, source, bucket = await transfer(
        site, "restart", 1200, 16 * 1024, BytesPerSecond=640 * 1024
    )
    arn = (await site.ferry.start_task_execution({"TaskArn": task}))["TaskExecutionArn"]
    await transferring(site, arn, bucket, 200)

    for name in ("a", "b"):
        kill(site.agents[name][0])
    finished = inodes(bucket)
    b_arn = site.agents["b"][1]
    site.agents["b"] = (site.start_agent(site.b), b_arn)  # b's host, b's state directory
    result = await wait(site.ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert contents(bucket) == contents(source)
    assert result["FilesTransferred"] == 1200
    now = inodes(bucket)
    assert [name for name, inode in finished.items() if now[name] != inode] == []
    ran = {batch.identity for batch in await transfer_batches(site.ferry, arn)}
    assert identity(site.agents["b"][0]) in ran
    a_arn = site.agents["a"][1]
    site.agents["a"] = (site.start_agent(site.a), a_arn)
    await until(lambda: online(site, a_arn), timeout=60)


async def test_temporal_killed_mid_transfer_and_started_again_on_its_database(
    site: Site,
) -> None:
    task, source, bucket = await transfer(
        site, "temporal", 1200, 16 * 1024, BytesPerSecond=640 * 1024
    )
    arn = (await site.ferry.start_task_execution({"TaskArn": task}))["TaskExecutionArn"]
    await transferring(site, arn, bucket, 200)

    kill(site.servers["temporal"])
    finished = inodes(bucket)
    await asyncio.sleep(3)
    site.start_temporal()
    site.ferry = Ferry(await connect(site.temporal.address, patience=30))
    result = await wait(site.ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert contents(bucket) == contents(source)
    assert result["FilesTransferred"] == 1200
    assert result["BytesWritten"] == 1200 * 16 * 1024
    now = inodes(bucket)
    assert [name for name, inode in finished.items() if now[name] != inode] == []


async def test_an_agent_added_to_the_location_mid_transfer_takes_batches(site: Site) -> None:
    (a_process, a_arn), (b_process, b_arn) = site.agents["a"], site.agents["b"]
    # Thirty batches, eight at once: more than agent a takes (as many as its pool runs, and
    # one). The destination names no agent: whichever agent runs a batch writes it.
    task, source, bucket = await transfer(site, "joined", 6000, 1024, [a_arn], False)
    location = (await site.ferry.describe_task({"TaskArn": task}))["SourceLocationArn"]
    arn = (await site.ferry.start_task_execution({"TaskArn": task}))["TaskExecutionArn"]
    await transferring(site, arn, bucket, 200)
    ran_before = {batch.identity for batch in await transfer_batches(site.ferry, arn)}

    await site.ferry.update_location_smb({"LocationArn": location, "AgentArns": [a_arn, b_arn]})
    result = await wait(site.ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert contents(bucket) == contents(source)
    assert identity(b_process) not in ran_before
    ran = {batch.identity for batch in await transfer_batches(site.ferry, arn)}
    assert {identity(a_process), identity(b_process)} <= ran


async def test_an_agent_without_the_secret_key_fails_the_execution_naming_it(
    site: Site,
) -> None:
    c = site.sites.host("c")
    process = site.start_agent(c)
    key_file = site.state(c) / "activation-key"
    await until(key_file.exists, timeout=60)
    c_arn = (
        await site.ferry.create_agent(
            {"ActivationKey": key_file.read_text().strip(), "AgentName": "agent-c"}
        )
    )["AgentArn"]
    await until(lambda: online(site, c_arn), timeout=60)
    share = Path(site.smb.share_dir) / "keyless"
    (share / "a.txt").parent.mkdir(parents=True)
    (share / "a.txt").write_text("a")
    source = await site.ferry.create_location_smb(
        {
            "ServerHostname": site.nas.address,
            "ServerPort": site.smb.port,
            "Subdirectory": "/data/keyless",
            "User": site.smb.user,
            "Password": site.smb.password,
            "AgentArns": [c_arn],
        }
    )
    site.bucket(site.cloud).create_bucket(Bucket="keyless")
    destination = await site.ferry.create_location_object_storage(
        {
            "ServerHostname": site.cloud.address,
            "ServerPort": S3_PORT,
            "ServerProtocol": "HTTP",
            "BucketName": "keyless",
            "AccessKey": S3_ACCESS_KEY,
            "SecretKey": S3_SECRET_KEY,
            "AgentArns": [c_arn],
        }
    )
    task = (
        await site.ferry.create_task(
            {
                "SourceLocationArn": source["LocationArn"],
                "DestinationLocationArn": destination["LocationArn"],
            }
        )
    )["TaskArn"]
    # The agent is started again without the key the password was sealed with.
    kill(process, signal.SIGTERM)
    site.start_agent(c, FERRY_SECRET_KEY="")
    await until(lambda: online(site, c_arn), timeout=60)

    arn = (await site.ferry.start_task_execution({"TaskArn": task}))["TaskExecutionArn"]
    result = await wait(site.ferry, arn)

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "LocationUnavailable"
    detail = result["Result"]["ErrorDetail"]
    assert f"No secret key to open the secret of location {source['LocationArn']}" in detail
    assert "FERRY_SECRET_KEY" in detail and "Traceback" not in detail
