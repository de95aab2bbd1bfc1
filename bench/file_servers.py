"""Ferry from a local folder to an SMB share (samba) and to an NFS export (nfs-ganesha) over
loopback, against the best comparison each has here, on the same data and servers in one run.

    .venv/bin/python bench/file_servers.py [--dir /tmp/ferry-bench] [--repeats 3] [--quick]
        [--count] [--protocol smb|nfs] [--only small|large]

Data sets (made once, kept in --dir, shared with bench/local.py and bench/s3.py; --quick makes
its own, smaller ones beside them):
  small   50,000 files of 1-16 KiB in 500 folders: initial copy, then a no-op re-run
  large   8 files of 256 MiB: initial copy

local -> SMB: Ferry (an SMB location on smbd) against `rclone sync` with rclone's smb backend,
on the same server and share, `--transfers 16` (Ferry's two batch processes have 8 files in
flight each).

local -> NFS: rclone has no NFS client and there is no kernel NFS mount here, so no peer tool
can write over NFS. Ferry (an NFS location on nfs-ganesha, NFSv4.1) is compared with `rsync -a`
and `cp -a` from the source straight into the export's folder on disk: the same disk without
the protocol, a ceiling rather than a peer. `cp -a` has no no-op re-run (it copies again).

Every tool writes into a new folder of its own, removed once counted. Ferry runs once with
VerifyMode NONE (what the others do) and once with POINT_IN_TIME_CONSISTENT ("ferry-verify");
its time runs from StartTaskExecution to the end as a connected client sees it. After every run
the files in the tool's folder are counted on disk: a tool that reports success but copied fewer
ends the benchmark; a Ferry execution that fails is reported as FAILED (with what arrived), the
others go on, and the script exits non-zero at the end. After every run a `sync` is timed apart:
the write-back the tool left (nfs-rs makes every write stable, cp and rsync do not). The
servers' CPU is that of their whole process tree (smbd forks one child per connection);
"others" is the CPU the machine spent outside this script's processes (another job's, the
kernel's write-back, steal): the load averages count this run's own threads. Results are saved
after every data set, so an interrupted run keeps what it measured.

With --count, Ferry and rclone reach the server through bench/wire.py's proxy, which counts the
requests each run sends (SMB2 messages, each compound one, and their commands; NFS RPCs and
their operations) per file: figures no load changes. The proxy is Python in this process, so
the times of such a run are not comparable with those of a run without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local import RCLONE, FerryStack, small_and_large, timed
from s3 import Cpu, ratio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from nfs_server import NfsServer, ganesha
from smb_server import SmbServer, smb_server_running
from wire import WireCounter

TRANSFERS = 16  # rclone's --transfers
TOOLS = {
    "smb": ("rclone", "ferry", "ferry-verify"),
    "nfs": ("rsync", "cp", "ferry", "ferry-verify"),
}
COMPARED = {"smb": ("rclone",), "nfs": ("rsync", "cp")}
NO_NOOP = {"cp"}  # `cp -a` copies everything again: it has no no-op


def counted(folder: Path) -> tuple[int, int]:
    """Regular files under `folder` on disk, and their bytes."""
    files = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            st = os.lstat(os.path.join(root, name))
            files += 1
            size += st.st_size
    return files, size


class Target:
    """A server, where each tool's folder lies on disk, and how each tool writes there."""

    def __init__(
        self,
        protocol: str,
        server: SmbServer | NfsServer,
        stack: FerryStack,
        wire: WireCounter | None = None,
    ) -> None:
        """`wire`: a counting proxy in front of the server, which Ferry and rclone then use."""
        self.protocol = protocol
        self.server = server
        self.stack = stack
        self.pid = server.process.pid
        self.wire = wire
        self.port = wire.port if wire is not None else server.port
        if isinstance(server, SmbServer):
            self.root = Path(server.share_dir)
            obscured = subprocess.run(
                [RCLONE, "obscure", server.password], check=True, capture_output=True, text=True
            ).stdout.strip()
            self.remote = (
                f":smb,host=127.0.0.1,port={self.port},user={server.user},pass='{obscured}':"
                f"{server.share}"
            )
        else:
            self.root = Path(server.export_dir)

    async def location(self, folder: str) -> str:
        ferry, server = self.stack.ferry, self.server
        if isinstance(server, SmbServer):
            request: dict[str, Any] = {
                "ServerHostname": "127.0.0.1",
                "ServerPort": self.port,
                "Subdirectory": server.subdirectory(server.share, folder),
                "User": server.user,
                "Password": server.password,
            }
            return (await ferry.create_location_smb(request))["LocationArn"]
        request = {
            "ServerHostname": "127.0.0.1",
            "ServerPort": self.port,
            "Subdirectory": f"{server.pseudo_path}/{folder}",
            "MountOptions": {"Version": server.version},
        }
        return (await ferry.create_location_nfs(request))["LocationArn"]

    async def runner(self, tool: str, source: Path, folder: str) -> Callable[[], Any]:
        """Makes the tool's folder (empty, on disk) and returns what runs the tool into it."""
        destination = self.root / folder
        destination.mkdir()
        if tool.startswith("ferry"):
            ferry = self.stack.ferry
            source_arn = (await ferry.create_location_local({"Path": str(source)}))["LocationArn"]
            created = await ferry.create_task(
                {
                    "SourceLocationArn": source_arn,
                    "DestinationLocationArn": await self.location(folder),
                    "Options": {
                        "VerifyMode": "NONE" if tool == "ferry" else "POINT_IN_TIME_CONSISTENT"
                    },
                }
            )
            task = created["TaskArn"]
            return lambda: self.stack.run(task)
        if tool == "rclone":
            command = [
                RCLONE, "sync", "--config", "/dev/null", "--transfers", str(TRANSFERS),
                str(source), f"{self.remote}/{folder}",
            ]  # fmt: skip
        elif tool == "rsync":
            command = ["rsync", "-a", f"{source}/", f"{destination}/"]
        else:
            command = ["cp", "-a", f"{source}/.", f"{destination}/"]
        return lambda: timed(command)


async def compare(
    target: Target, name: str, source: Path, repeats: int, expected: tuple[int, int]
) -> dict[str, Any]:
    protocol = target.protocol
    scenarios = ("initial", "noop") if name == "small" else ("initial",)
    times: dict[str, dict[str, list[float]]] = {s: {} for s in scenarios}
    loads: dict[str, dict[str, list[dict[str, float]]]] = {s: {} for s in scenarios}
    reported: dict[str, dict[str, list[int]]] = {s: {} for s in scenarios}
    failed: dict[str, dict[str, list[str]]] = {s: {} for s in scenarios}
    writeback: dict[str, dict[str, list[float]]] = {s: {} for s in scenarios}
    requests: dict[str, dict[str, list[dict[str, float]]]] = {s: {} for s in scenarios}
    load_average: list[float] = []
    order = list(TOOLS[protocol])
    for repeat in range(repeats):
        order = order[1:] + order[:1]  # alternate who goes first
        folders = {tool: f"{name}-{tool}-{repeat}" for tool in order}
        runs = {tool: await target.runner(tool, source, folders[tool]) for tool in order}
        broken: set[str] = set()  # failed its initial copy: it has no no-op to measure
        for scenario in scenarios:
            for tool in order:
                if scenario == "noop" and (tool in NO_NOOP or tool in broken):
                    continue
                run = f"{protocol} {name} {scenario} {tool}"
                subprocess.run(["sync"], check=True)
                load_average.append(os.getloadavg()[0])
                before, ours = Cpu.now(target.pid), Cpu.now(os.getpid())
                if target.wire is not None:
                    target.wire.reset()
                try:
                    outcome = runs[tool]()
                    if asyncio.iscoroutine(outcome):
                        elapsed, result = await outcome
                        reported[scenario].setdefault(tool, []).append(result["FilesTransferred"])
                    else:
                        elapsed = outcome
                except SystemExit as failure:  # FerryStack.run: the execution did not succeed
                    files = counted(target.root / folders[tool])[0]
                    detail = f"{failure} ({files} of {expected[0]} files arrived)"
                    print(f"{run}: FAILED: {detail}", file=sys.stderr)
                    failed[scenario].setdefault(tool, []).append(detail)
                    broken.add(tool)
                    continue
                cpu, everything = Cpu.now(target.pid) - before, Cpu.now(os.getpid()) - ours
                times[scenario].setdefault(tool, []).append(elapsed)
                # CPU of the machine outside this script's processes (the servers, Ferry, the
                # tools are all ours): another job's, and the kernel's (write-back, steal).
                others = (everything.busy - everything.server) / elapsed
                loads[scenario].setdefault(tool, []).append(
                    {**cpu.shares(elapsed), "others": others}
                )
                # What the run left for the kernel to write: nfs-rs makes every write stable
                # (COMMIT, an fsync in ganesha); cp, rsync and smbd leave it in the page cache.
                writeback[scenario].setdefault(tool, []).append(timed(["sync"]))
                sent = target.wire.counts() if target.wire is not None else {}
                if sent:  # rsync and cp write the disk, not through the proxy
                    per_file = {name: count / expected[0] for name, count in sent.items()}
                    requests[scenario].setdefault(tool, []).append(per_file)
                    unit = "message" if protocol == "smb" else "rpc"
                    print(f"  {run}: {per_file[unit]:.2f} {unit}s per file", file=sys.stderr)
                print(
                    f"{run}: {elapsed:.2f} s, {cpu.describe(elapsed)}, others {others:.2f} "
                    "cores, then sync "
                    f"{writeback[scenario][tool][-1]:.2f} s",
                    file=sys.stderr,
                )
                check(target.root / folders[tool], expected, run)
        for tool in order:
            subprocess.run(["rm", "-rf", str(target.root / folders[tool])], check=True)
    return {
        "files": expected[0],
        "bytes": expected[1],
        **times,
        "cpu": loads,
        "ferry_files_transferred": reported,
        "failed": failed,
        "writeback": writeback,
        "requests_per_file": requests,
        "load_average_1min": load_average,
    }


def check(folder: Path, expected: tuple[int, int], run: str) -> None:
    files, size = counted(folder)
    if files < expected[0]:
        raise SystemExit(f"{run} copied only {files} of {expected[0]} files into {folder}")
    if (files, size) != expected:
        print(
            f"  warning: {run} left {files} files of {size} bytes in {folder}, expected "
            f"{expected[0]} of {expected[1]}",
            file=sys.stderr,
        )


def print_report(results: dict[str, Any]) -> None:
    titles = {"smb": "local -> SMB (smbd)", "nfs": "local -> NFS (nfs-ganesha)"}
    for protocol in ("smb", "nfs"):
        for name in ("small", "large"):
            data = results.get(protocol, {}).get(name)
            if not data:
                continue
            files, size = data["files"], data["bytes"]
            for scenario in ("initial", "noop"):
                runs, failed = data.get(scenario, {}), data["failed"].get(scenario, {})
                if not runs and not failed:
                    continue
                print(
                    f"\n{name} ({files} files, {size / 2**20:.0f} MiB) {titles[protocol]}: "
                    f"{scenario}  (speed as a multiple of each comparison's, median of "
                    "per-repeat ratios)"
                )
                if protocol == "nfs":
                    print("  (rsync and cp write the export's folder on disk: a ceiling, no peer)")
                for tool, seconds in runs.items():
                    median = statistics.median(seconds)
                    rate = files / median
                    rates = f"{rate:7.{0 if rate >= 100 else 2}f} files/s "
                    rates += f"{size / median / 2**20:7.1f} MiB/s"
                    ratios = "  ".join(
                        f"{speed(runs[other], seconds):5.2f}x {other}"
                        for other in COMPARED[protocol]
                        if other in runs
                    )
                    load = data["cpu"][scenario][tool]
                    busy = statistics.median(share["machine"] for share in load)
                    server = statistics.median(share["server"] for share in load)
                    others = statistics.median(share.get("others", 0.0) for share in load)
                    print(
                        f"  {tool:<13}{median:8.2f} s {rates}  {ratios}  "
                        f"machine {busy:4.0%} busy, server {server:.2f} cores, "
                        f"others {others:.2f} cores"
                    )
                for tool, details in failed.items():
                    print(f"  {tool:<13}FAILED {len(details)} time(s): {details[0]}")
                syncs = ", ".join(
                    f"{tool} {statistics.median(values):.2f} s"
                    for tool, values in data["writeback"].get(scenario, {}).items()
                )
                print(f"  then `sync` (the write-back each left, not in the times): {syncs}")
                for tool, counts in data.get("requests_per_file", {}).get(scenario, {}).items():
                    unit = "message" if protocol == "smb" else "rpc"
                    commands = sorted(counts[-1].items(), key=lambda item: -item[1])
                    detail = ", ".join(f"{name} {n:.2f}" for name, n in commands if name != unit)
                    print(f"  {tool}: {counts[-1][unit]:.2f} {unit}s per file ({detail})")
            averages = data["load_average_1min"]
            print(f"  (1-minute load before the runs: {min(averages):.2f} to {max(averages):.2f})")


def speed(theirs: list[float], ours: list[float]) -> float:
    """As s3.ratio; the ratio of the medians where a failed run left the repeats unpaired."""
    if len(theirs) == len(ours):
        return ratio(theirs, ours)
    return statistics.median(theirs) / statistics.median(ours)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/ferry-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, to try the script")
    parser.add_argument("--only", choices=("small", "large"), help="one data set only")
    parser.add_argument("--protocol", choices=("smb", "nfs"), help="one protocol only")
    parser.add_argument(
        "--count", action="store_true", help="count requests per file through a proxy (see above)"
    )
    args = parser.parse_args()
    base = Path(args.dir)
    small, large = small_and_large(base, args.quick)
    sources = {"small": small, "large": large}
    state = base / "ferry-file-servers"
    subprocess.run(["rm", "-rf", str(state)], check=True)
    state.mkdir(parents=True)
    from api.secrets import use_key_file

    # The stack's key: this process seals the SMB password, its worker opens it.
    use_key_file(state, make=True)
    results: dict[str, Any] = {
        "repeats": args.repeats,
        "quick": args.quick,
        "rclone_transfers": TRANSFERS,
        "counted": args.count,
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    out = Path(__file__).parent / "results" / f"file-servers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    stack = FerryStack(state)
    try:
        await stack.connect()
        for protocol in ("smb", "nfs"):
            if args.protocol not in (None, protocol):
                continue
            # One server at a time: the other does not run meanwhile.
            with contextlib.ExitStack() as held:
                server = smb_server_running() if protocol == "smb" else ganesha()
                running = held.enter_context(server)
                wire = (
                    held.enter_context(WireCounter(running.port, protocol)) if args.count else None
                )
                target = Target(protocol, running, stack, wire)
                results[protocol] = {}
                for name, source in sources.items():
                    if args.only in (None, name):
                        expected = counted(source)
                        results[protocol][name] = await compare(
                            target, name, source, args.repeats, expected
                        )
                        out.write_text(json.dumps(results, indent=2))  # what is done so far
    finally:
        stack.stop()
    results["load_average_at_end"] = os.getloadavg()
    results["worker_peak_rss"] = stack.peak_rss
    out.write_text(json.dumps(results, indent=2))
    print_report(results)
    start, end = results["load_average_at_start"], results["load_average_at_end"]
    print(f"\nload average (1, 5, 15 min) at start {start}, at end {end}")
    print(f"saved in {out}")
    failures = [
        f"{protocol} {name} {scenario} {tool}"
        for protocol in ("smb", "nfs")
        for name, data in results.get(protocol, {}).items()
        for scenario, tools in data["failed"].items()
        for tool in tools
    ]
    if failures:
        raise SystemExit(f"failed runs: {', '.join(failures)}")


if __name__ == "__main__":
    asyncio.run(main())
