"""Ferry against `aws s3 sync`, `rclone sync` and `s5cmd sync`, from a local folder to an S3
server over loopback (`rclone serve s3`), on the same data and server in one run.

    .venv/bin/python bench/s3.py [--dir /tmp/ferry-bench] [--repeats 3] [--quick]

Data sets (made once, kept in --dir, shared with bench/local.py):
  small   50,000 files of 1-16 KiB in 500 folders: initial copy, then a no-op re-run
  large   8 files of 256 MiB: initial copy

Every tool writes to a bucket of its own, new for every repeat. Ferry writes through an object
storage location (FolderMarkers DISABLED: rclone keeps objects as files) once with VerifyMode
NONE (what the others do) and once with its default verification. On these machines the S3
server takes much of the CPU: compare only the figures of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local import RCLONE, SCRIPTS, FerryStack, free_port, make_large, make_small

ACCESS_KEY, SECRET_KEY = "ferry-bench-key", "ferry-bench-secret"
TOOLS = ("aws", "rclone", "s5cmd", "ferry", "ferry-verify")


class Server:
    """`rclone serve s3` over a folder, and the commands of the other tools against it."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        self.process = subprocess.Popen(
            [
                RCLONE, "serve", "s3", "--addr", f"127.0.0.1:{self.port}", "--config",
                "/dev/null", "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", str(root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)

    def bucket(self, name: str) -> str:
        """Made through the server: rclone does not see folders made behind its back at once."""
        import boto3
        import botocore.config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=name)
        return name

    def location(self, bucket: str) -> dict[str, Any]:
        """An object storage location's fields for `bucket` of this server."""
        return {
            "ServerHostname": "127.0.0.1",
            "ServerPort": self.port,
            "ServerProtocol": "HTTP",
            "BucketName": bucket,
            "AccessKey": ACCESS_KEY,
            "SecretKey": SECRET_KEY,
        }

    def command(self, tool: str, source: Path, bucket: str) -> list[str]:
        if tool == "aws":
            return [
                os.path.join(SCRIPTS, "aws"), "s3", "sync", "--only-show-errors",
                "--endpoint-url", self.endpoint, str(source), f"s3://{bucket}/",
            ]  # fmt: skip
        if tool == "rclone":
            remote = (
                f":s3,provider=Other,endpoint='{self.endpoint}',"
                f"access_key_id={ACCESS_KEY},secret_access_key={SECRET_KEY}:{bucket}"
            )
            return [
                RCLONE,
                "sync",
                "--config",
                "/dev/null",
                "--transfers",
                "16",
                str(source),
                remote,
            ]
        return [
            os.path.join(SCRIPTS, "s5cmd"), "--log", "error", "--endpoint-url", self.endpoint,
            "sync", f"{source}/", f"s3://{bucket}/",
        ]  # fmt: skip

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def ferry_task(
    stack: FerryStack, server: Server, source: Path, bucket: str, verify: str
) -> str:
    ferry = stack.ferry
    source_arn = (await ferry.create_location_local({"Path": str(source)}))["LocationArn"]
    destination = await ferry.create_location_object_storage(
        {**server.location(bucket), "FolderMarkers": "DISABLED"}
    )
    created = await ferry.create_task(
        {
            "SourceLocationArn": source_arn,
            "DestinationLocationArn": destination["LocationArn"],
            "Options": {"VerifyMode": verify},
        }
    )
    return created["TaskArn"]


async def compare(
    stack: FerryStack, server: Server, name: str, source: Path, repeats: int, tools: list[str]
) -> dict[str, Any]:
    times: dict[str, dict[str, list[float]]] = {"initial": {}, "noop": {}}
    loads: dict[str, dict[str, list[dict[str, float]]]] = {"initial": {}, "noop": {}}
    order = list(tools)
    for repeat in range(repeats):
        order = order[1:] + order[:1]  # alternate who goes first
        runs: dict[str, Callable[[], Any]] = {}
        for tool in order:
            bucket = server.bucket(f"{name}-{tool}-{repeat}")
            if tool.startswith("ferry"):
                verify = "NONE" if tool == "ferry" else "POINT_IN_TIME_CONSISTENT"
                task = await ferry_task(stack, server, source, bucket, verify)
                runs[tool] = lambda task=task: stack.run(task)
            else:
                command = server.command(tool, source, bucket)
                runs[tool] = lambda command=command: timed(command, server.env)
        for scenario in ("initial", "noop") if name == "small" else ("initial",):
            for tool in order:
                subprocess.run(["sync"], check=True)
                stack_pid = stack.process.pid if tool.startswith("ferry") else None
                before = Cpu.now(server.process.pid, stack_pid)
                outcome = runs[tool]()
                elapsed = (await outcome)[0] if asyncio.iscoroutine(outcome) else outcome
                cpu = Cpu.now(server.process.pid, stack_pid) - before
                times[scenario].setdefault(tool, []).append(elapsed)
                loads[scenario].setdefault(tool, []).append(cpu.shares(elapsed))
                print(
                    f"{name} {scenario} {tool}: {elapsed:.2f} s, {cpu.describe(elapsed)}",
                    file=sys.stderr,
                )
    files = sum(1 for p in source.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    return {
        "files": files,
        "bytes": size,
        **{k: v for k, v in times.items() if v},
        "cpu": {k: v for k, v in loads.items() if v},
    }


class Cpu:
    """CPU time of the whole machine, of the S3 server (a process and its descendants), of
    Ferry's worker (`ferry dev` and its pool) and of its Temporal server, and of the other
    tools (this process's children that ended): whether a run was bound by the two cores, and
    who took them."""

    def __init__(
        self,
        busy: float,
        server: float,
        worker: float = 0.0,
        temporal: float = 0.0,
        tool: float = 0.0,
    ) -> None:
        self.busy = busy
        self.server = server
        self.worker = worker
        self.temporal = temporal
        self.tool = tool

    @classmethod
    def now(cls, pid: int, stack: int | None = None) -> Cpu:
        import psutil

        total = psutil.cpu_times()
        busy = sum(total) - total.idle - getattr(total, "iowait", 0.0)
        server = _tree_cpu(psutil.Process(pid))
        worker = temporal = 0.0
        if stack is not None:
            root = psutil.Process(stack)
            temporal = sum(
                _tree_cpu(child) for child in root.children() if "temporal" in child.name()
            )
            worker = _tree_cpu(root) - temporal
        ended = resource.getrusage(resource.RUSAGE_CHILDREN)  # not the server nor the stack
        return cls(busy, server, worker, temporal, ended.ru_utime + ended.ru_stime)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            self.busy - other.busy,
            self.server - other.server,
            self.worker - other.worker,
            self.temporal - other.temporal,
            self.tool - other.tool,
        )

    def shares(self, elapsed: float) -> dict[str, float]:
        cores = os.cpu_count() or 1
        return {
            "machine": self.busy / (elapsed * cores),
            "server": self.server / elapsed,
            "worker_seconds": self.worker,
            "temporal_seconds": self.temporal,
            "tool_seconds": self.tool,
        }

    def describe(self, elapsed: float) -> str:
        share = self.shares(elapsed)
        ferry = (
            f", Ferry's worker {self.worker:.1f} s, Temporal {self.temporal:.1f} s"
            if self.worker or self.temporal
            else f", the tool {self.tool:.1f} s"
        )
        return (
            f"machine {share['machine']:.0%} busy, server {self.server:.1f} s CPU "
            f"({share['server']:.2f} cores){ferry}"
        )


def _tree_cpu(root: Any) -> float:
    """User and system CPU of a process and its descendants, with the children it has waited
    for (smbd's ended connections)."""
    import psutil

    used = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            own = process.cpu_times()
        except psutil.Error:  # ended meanwhile: counted by its parent from now on
            continue
        used += own.user + own.system + own.children_user + own.children_system
    return used


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def ratio(theirs: list[float], ours: list[float]) -> float:
    """How many times faster `ours` ran: within each repeat, then the median."""
    return statistics.median([t / o for t, o in zip(theirs, ours, strict=False)])


def print_report(results: dict[str, Any]) -> None:
    for name in ("small", "large"):
        data = results.get(name, {})
        for scenario in ("initial", "noop"):
            runs = data.get(scenario)
            if not runs:
                continue
            print(
                f"\n{name} ({data['files']} files, {data['bytes'] / 2**20:.0f} MiB) to S3: "
                f"{scenario}  (speed as a multiple of each tool's, median of per-repeat ratios)"
            )
            for tool, seconds in runs.items():
                ratios = "  ".join(
                    f"{ratio(runs[other], seconds):5.2f}x {other}"
                    for other in ("aws", "rclone", "s5cmd")
                    if other in runs
                )
                load = data.get("cpu", {}).get(scenario, {}).get(tool, [])
                busy = statistics.median(share["machine"] for share in load) if load else 0
                server = statistics.median(share["server"] for share in load) if load else 0
                print(
                    f"  {tool:<13}{statistics.median(seconds):8.2f} s  {ratios}  "
                    f"machine {busy:4.0%} busy, server {server:.2f} cores"
                )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/ferry-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, to try the script")
    parser.add_argument(
        "--small-files", type=int, default=50_000, help="the small data set's size (50,000)"
    )
    parser.add_argument("--only", choices=("small", "large"), help="one data set only")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help=f"comma-separated, of {', '.join(TOOLS)}"
    )
    args = parser.parse_args()
    tools = [tool for tool in args.tools.split(",") if tool]
    if unknown := set(tools) - set(TOOLS):
        parser.error(f"--tools: no such tool {', '.join(sorted(unknown))}")
    base = Path(args.dir)
    # Smaller sets beside the full ones, never in their place (each is made once, then kept).
    files = 5000 if args.quick else args.small_files
    small = base / ("small" if files == 50_000 else f"small-{files}")
    large = base / ("large-2x16MiB" if args.quick else "large")
    make_small(small, files // 100, 100, 1024, 16384)
    make_large(large, *((2, 16 << 20) if args.quick else (8, 256 << 20)))
    root = base / "s3-root"
    subprocess.run(["rm", "-rf", str(root), str(base / "ferry-s3")], check=True)
    (base / "ferry-s3").mkdir(parents=True)
    from api.secrets import use_key_file

    # The stack's key: this process seals, its worker opens.
    use_key_file(base / "ferry-s3", make=True)
    server = Server(root)
    stack = FerryStack(base / "ferry-s3")
    await stack.connect()
    results: dict[str, Any] = {"repeats": args.repeats}
    try:
        for name, source in (("small", small), ("large", large)):
            if args.only in (None, name):
                results[name] = await compare(stack, server, name, source, args.repeats, tools)
    finally:
        stack.stop()
        server.stop()
        subprocess.run(["rm", "-rf", str(root)], check=True)
    out = Path(__file__).parent / "results" / f"s3-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_report(results)
    print(f"\nsaved in {out}")


if __name__ == "__main__":
    asyncio.run(main())
