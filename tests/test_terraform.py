"""Terraform's AWS provider, unchanged, drives Ferry through its DataSync endpoint: an agent
activated by its address, NFS, SMB, object storage, S3 and HDFS locations, and tasks with
options, filters, schedules and tags (tests/terraform/main.tf). After `apply`, `plan` finds
nothing to change (what Ferry describes is what was set, field by field); a task imports; options
and a schedule change in place; an execution started through the endpoint succeeds; `destroy`
leaves nothing.

The file servers run on a host of their own (a network namespace) so that they can listen on
NFS's and SMB's own ports, which Terraform's resources cannot change."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY, S3Server, Stack, start_endpoint
from helpers import free_port, until, wait_for_port
from nfs_server import NfsServer, ganesha_every_version
from sites import sites_or_skip
from smb_server import SmbServer, start_smb_server
from system_packages import terraform_mirror
from webhdfs_server import HdfsCluster

CONFIGURATION = Path(__file__).parent / "terraform" / "main.tf"


@pytest.fixture(scope="module")
def filer() -> Iterator[tuple[str, NfsServer, SmbServer]]:
    """A file server host: nfs-ganesha on 2049 and samba on 445."""
    for sites in sites_or_skip():
        host = sites.host("filer")
        with ganesha_every_version(host) as nfs:
            smb = start_smb_server(("share",), host.address, tuple(host.wrapper), port=445)
            try:
                yield host.address, nfs, smb
            finally:
                smb.stop()


class Terraform:
    """`terraform` in a folder of its own, with providers from the machine's local mirror."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        shutil.copy(CONFIGURATION, folder / "main.tf")
        rc = folder / "terraformrc"
        rc.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{ path = "{terraform_mirror()}" }}\n'
            '  direct { exclude = ["registry.terraform.io/*/*"] }\n'
            "}\n"
        )
        self.env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }
        self.run("init", "-input=false")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["terraform", *args, "-no-color"],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"terraform {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result

    def variables(self, **values: Any) -> None:
        path = self.folder / "terraform.tfvars.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**known, **values}))

    def apply(self) -> None:
        self.run("apply", "-auto-approve", "-input=false")

    def changes(self) -> str:
        """What `plan` would change; empty when it finds nothing (exit code 0)."""
        plan = self.run("plan", "-detailed-exitcode", "-input=false", check=False)
        assert plan.returncode in (0, 2), plan.stderr
        return plan.stdout if plan.returncode == 2 else ""

    def outputs(self) -> dict[str, Any]:
        shown = json.loads(self.run("output", "-json").stdout)
        return {name: value["value"] for name, value in shown.items()}


async def test_terraform_applies_plans_nothing_imports_updates_and_destroys(
    own_stack: Callable[..., Stack],
    filer: tuple[str, NfsServer, SmbServer],
    rclone_s3: S3Server,
    moto_s3: S3Server,
    workdir: Path,
) -> None:
    address, nfs, smb = filer
    # The ordinary workers reach S3 (moto, and its STS for the bucket access role).
    stack = own_stack(AWS_ENDPOINT_URL_S3=moto_s3.endpoint, AWS_ENDPOINT_URL_STS=moto_s3.endpoint)
    endpoint, _ = start_endpoint(stack)
    activation = free_port()
    agent = stack.start_agent(
        workdir / "agent", "--activation-port", str(activation), "--activation-host", "127.0.0.1"
    )
    wait_for_port(activation, agent, "the agent's activation port", timeout=30)
    os.makedirs(os.path.join(nfs.export_dir, "projects", "src"))
    Path(nfs.export_dir, "projects", "src", "main.c").write_text("int main() { return 0; }\n")
    Path(nfs.export_dir, "projects", "old.bak").write_text("excluded")
    os.makedirs(os.path.join(smb.share_dir, "inbox"))
    with HdfsCluster(workdir / "hdfs") as cluster:
        cluster.mkdir("/lake", "hdfs", "supergroup")
        terraform = Terraform(workdir)
        terraform.variables(
            endpoint=endpoint.url,
            region=endpoint.region,
            access_key=endpoint.access_key,
            secret_key=endpoint.secret_key,
            agent_address=f"127.0.0.1:{activation}",
            filer=address,
            smb_user=smb.user,
            smb_password=smb.password,
            object_storage={
                "host": "127.0.0.1",
                "port": rclone_s3.port,
                "bucket": rclone_s3.bucket("archive"),
                "key": S3_ACCESS_KEY,
                "secret": S3_SECRET_KEY,
            },
            s3_bucket=moto_s3.bucket("backup"),
            namenode={"host": "127.0.0.1", "port": cluster.namenode_ports[0]},
            verify_mode="POINT_IN_TIME_CONSISTENT",
            schedule="rate(12 hours)",
        )

        terraform.apply()
        made = terraform.outputs()
        datasync = endpoint.client()

        assert terraform.changes() == ""
        described = datasync.describe_location_hdfs(LocationArn=made["locations"]["hdfs"])
        assert (described["BlockSize"], described["ReplicationFactor"]) == (67108864, 2)
        assert described["AgentArns"] == [made["agent"]]
        assert datasync.describe_agent(AgentArn=made["agent"])["Name"] == "filer-site"
        nightly = datasync.describe_task(TaskArn=made["tasks"]["nightly"])
        assert nightly["Status"] == "AVAILABLE"
        assert nightly["Excludes"] == [{"FilterType": "SIMPLE_PATTERN", "Value": "/tmp|*.bak"}]
        assert nightly["Schedule"]["ScheduleExpression"] == "rate(12 hours)"
        tags = datasync.list_tags_for_resource(ResourceArn=made["tasks"]["nightly"])["Tags"]
        assert sorted((t["Key"], t["Value"]) for t in tags) == [("cost", "lab"), ("team", "data")]

        # An execution of a task Terraform made, started and followed through the endpoint.
        started = datasync.start_task_execution(TaskArn=made["tasks"]["nightly"])
        execution = started["TaskExecutionArn"]

        def ended() -> dict[str, Any] | None:
            state = datasync.describe_task_execution(TaskExecutionArn=execution)
            return state if state["Status"] in ("SUCCESS", "ERROR") else None

        result = await until(ended, timeout=180, every=1)
        assert result["Status"] == "SUCCESS", result.get("Result")
        inbox = Path(smb.share_dir, "inbox")
        assert (inbox / "src" / "main.c").read_text() == "int main() { return 0; }\n"
        assert not (inbox / "old.bak").exists()

        # Forgotten and imported again by its ARN: nothing to change.
        terraform.run("state", "rm", "aws_datasync_task.nightly")
        terraform.run("import", "aws_datasync_task.nightly", made["tasks"]["nightly"])
        assert terraform.changes() == ""

        # Options and the schedule changed in place.
        terraform.variables(
            verify_mode="ONLY_FILES_TRANSFERRED", schedule="cron(0 2 ? * MON-FRI *)"
        )
        planned = terraform.changes()
        assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned
        terraform.apply()
        nightly = datasync.describe_task(TaskArn=made["tasks"]["nightly"])
        assert nightly["TaskArn"] == made["tasks"]["nightly"]
        assert nightly["Options"]["VerifyMode"] == "ONLY_FILES_TRANSFERRED"
        assert nightly["Schedule"]["ScheduleExpression"] == "cron(0 2 ? * MON-FRI *)"
        assert terraform.changes() == ""

        terraform.run("destroy", "-auto-approve", "-input=false")

    assert datasync.list_tasks()["Tasks"] == []
    assert datasync.list_locations()["Locations"] == []
    assert datasync.list_agents()["Agents"] == []
