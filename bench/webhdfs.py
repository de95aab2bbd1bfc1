"""Ferry to and from HDFS against HdfsCLI's own parallel upload and download, on the same data and
the same WebHDFS server in one run.

    .venv/bin/python bench/webhdfs.py [--dir /tmp/ferry-bench] [--repeats 1] [--quick]

No HDFS can run here: the server is the tests' WebHDFS stand-in (tests/webhdfs_server.py), a
Python process of its own, so the absolute figures are the stand-in's and the ratios are what
this measures. The peer is HdfsCLI (the `hdfs` package Ferry's adapter is built on), its
`upload` and `download` with 16 threads (Ferry's two batch processes have 8 files in flight
each), run in a process of their own. HdfsCLI keeps no metadata; Ferry also sets each file's
times and permissions (VerifyMode NONE for both).

Data sets (shared with bench/local.py; --quick makes smaller ones beside them):
  small   50,000 files of 1-16 KiB in 500 folders
  large   8 files of 256 MiB
Each is uploaded (local -> HDFS) by each tool into a folder of its own, then downloaded
(HDFS -> local) from Ferry's copy into a new local folder. The stand-in's CPU is reported: it is
the ceiling of both tools here.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local import FerryStack, small_and_large
from s3 import Cpu, ratio

TESTS = Path(__file__).resolve().parent.parent / "tests"
THREADS = 16
USER = "hdfs"  # the stand-in's superuser: no permission stands in the way of either tool

# The stand-in in a process of its own, so that neither tool shares its interpreter.
SERVER = f"""
import sys, time
sys.path.insert(0, {str(TESTS)!r})
from webhdfs_server import HdfsCluster
cluster = HdfsCluster(__import__("pathlib").Path(sys.argv[1])).start()
print(cluster.namenode_ports[0], flush=True)
while True:
    time.sleep(3600)
"""
HDFSCLI = """
import sys, hdfs
client = hdfs.InsecureClient(sys.argv[1], user=sys.argv[2])
if sys.argv[3] == "upload":
    client.upload(sys.argv[4], sys.argv[5], n_threads=int(sys.argv[6]))
else:
    client.download(sys.argv[4], sys.argv[5], n_threads=int(sys.argv[6]))
"""


def counted(folder: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(root, name)).st_size
    return files, size


class Bench:
    def __init__(self, stack: FerryStack, base: Path) -> None:
        self.stack = stack
        self.base = base
        storage = base / "hdfs-standin"
        subprocess.run(["rm", "-rf", str(storage)], check=True)
        self.server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(storage)], stdout=subprocess.PIPE, text=True
        )
        assert self.server.stdout is not None
        self.port = int(self.server.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=30)

    async def hdfs(self, folder: str) -> str:
        request = {
            "NameNodes": [{"Hostname": "127.0.0.1", "Port": self.port}],
            "Subdirectory": folder,
            "AuthenticationType": "SIMPLE",
            "SimpleUser": USER,
        }
        return (await self.stack.ferry.create_location_hdfs(request))["LocationArn"]

    async def ferry(self, source: str, destination: str) -> tuple[float, int]:
        ferry = self.stack.ferry
        created = await ferry.create_task(
            {
                "SourceLocationArn": source,
                "DestinationLocationArn": destination,
                "Options": {"VerifyMode": "NONE"},
            }
        )
        elapsed, result = await self.stack.run(created["TaskArn"])
        return elapsed, result["FilesTransferred"]

    def hdfscli(self, direction: str, remote: str, local: Path) -> float:
        command = [sys.executable, "-c", HDFSCLI, self.url, USER, direction, remote, str(local)]
        start = time.perf_counter()
        subprocess.run([*command, str(THREADS)], check=True)
        return time.perf_counter() - start

    def mkdir(self, folder: str) -> None:
        import hdfs

        hdfs.InsecureClient(self.url, user=USER).makedirs(folder)

    async def compare(self, name: str, source: Path, repeat: int) -> dict[str, Any]:
        local = await self.local(source)
        measured: dict[str, Any] = {}
        # Upload: each tool into its own new HDFS folder.
        ferry_up = f"/bench/{name}-ferry-{repeat}"
        self.mkdir(ferry_up)
        destination = await self.hdfs(ferry_up)
        measured["upload ferry"] = await self.timed(
            functools.partial(self.ferry, local, destination)
        )
        theirs = f"/bench/{name}-hdfscli-{repeat}"
        measured["upload hdfscli"] = await self.timed(
            functools.partial(self.hdfscli, "upload", theirs, source)
        )
        # Download: Ferry's copy, into new local folders.
        for tool in ("ferry", "hdfscli"):
            target = self.base / f"hdfs-down-{name}-{tool}-{repeat}"
            subprocess.run(["rm", "-rf", str(target)], check=True)
            if tool == "ferry":
                target.mkdir()
                pair = (await self.hdfs(ferry_up), await self.local(target))
                run: Callable[[], Any] = functools.partial(self.ferry, *pair)
            else:
                run = functools.partial(self.hdfscli, "download", ferry_up, target)
            measured[f"download {tool}"] = await self.timed(run)
            files = counted(target)
            if files != counted(source):
                raise SystemExit(f"{tool} downloaded {files}, expected {counted(source)}")
            subprocess.run(["rm", "-rf", str(target)], check=True)
        return measured

    async def local(self, path: Path) -> str:
        return (await self.stack.ferry.create_location_local({"Path": str(path)}))["LocationArn"]

    async def timed(self, run: Callable[[], Any]) -> dict[str, float]:
        subprocess.run(["sync"], check=True)
        before = Cpu.now(self.server.pid)
        outcome = run()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        elapsed = outcome[0] if isinstance(outcome, tuple) else outcome
        cpu = Cpu.now(self.server.pid) - before
        print(f"  {elapsed:8.2f} s, {cpu.describe(elapsed)}", file=sys.stderr)
        return {"seconds": elapsed, **cpu.shares(elapsed)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/ferry-bench")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small data, to try the script")
    parser.add_argument("--only", choices=("small", "large"), help="one data set only")
    args = parser.parse_args()
    base = Path(args.dir)
    small, large = small_and_large(base, args.quick)
    state = base / "ferry-hdfs"
    subprocess.run(["rm", "-rf", str(state)], check=True)
    state.mkdir(parents=True)
    stack = FerryStack(state)
    bench: Bench | None = None
    results: dict[str, Any] = {"repeats": args.repeats, "threads": THREADS, "quick": args.quick}
    try:
        await stack.connect()
        bench = Bench(stack, base)
        for name, source in (("small", small), ("large", large)):
            if args.only in (None, name):
                files, size = counted(source)
                runs = [await bench.compare(name, source, r) for r in range(args.repeats)]
                results[name] = {"files": files, "bytes": size, "runs": runs}
    finally:
        if bench is not None:
            bench.stop()
        stack.stop()
    results["worker_peak_rss"] = stack.peak_rss
    out = Path(__file__).parent / "results" / f"hdfs-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    for name in ("small", "large"):
        if name not in results:
            continue
        data = results[name]
        print(f"\n{name} ({data['files']} files, {data['bytes'] / 2**20:.0f} MiB), stand-in server")
        for direction in ("upload", "download"):
            ours = [run[f"{direction} ferry"]["seconds"] for run in data["runs"]]
            theirs = [run[f"{direction} hdfscli"]["seconds"] for run in data["runs"]]
            server = [run[f"{direction} ferry"]["server"] for run in data["runs"]]
            print(
                f"  {direction:<9} ferry {min(ours):8.2f} s  hdfscli {min(theirs):8.2f} s  "
                f"{ratio(theirs, ours):5.2f}x hdfscli  (stand-in {max(server):.2f} cores)"
            )
    print(f"worker peak RSS {stack.peak_rss / 2**20:.0f} MiB; saved in {out}")


if __name__ == "__main__":
    asyncio.run(main())
