"""Ferry's throughput with one worker and with two, local to local, on the same data in one run.

    .venv/bin/python bench/workers.py [--dir /tmp/ferry-bench] [--repeats 3] [--quick]
                                      [--only small|large]

Data sets (made once, kept in --dir, shared with bench/local.py; --quick makes smaller ones
beside them):
  small   50,000 files of 1-16 KiB in 500 folders
  large   8 files of 256 MiB

One worker is `ferry dev`'s own (bench/local.py's stack: the Temporal dev server and a worker
with its default process pool). Two workers: a `ferry worker` with the same default pool is
started beside it on the same data directory (so the same staging store) before the run, and
stopped with SIGTERM after it. Every run is an initial copy (VerifyMode NONE) into an emptied
folder, after a `sync`, timed from StartTaskExecution to the end as a connected client sees it.
The two set-ups alternate which goes first in each repeat; figures are medians, the ratio the
median of the per-repeat ratios.

CPU is counted per class of process over each run (user + system time, in cores: seconds of CPU
per second of run): the worker processes themselves (workflow, activities' threads, Temporal's
SDK), their pool processes (listing and batches), the Temporal server, and this script (the
client following the execution); "machine" is the share of all cores busy, whoever used them,
and "steal" the share the hypervisor gave to other guests (where the kernel counts it).
For the runs with two workers, the batches each worker ran (from the execution's history) say
how the work was shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from local import FERRY, FerryStack, empty, save, small_and_large
from s3 import Cpu, ratio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import transfer_batches

CLASSES = ("workers", "pools", "server", "client")


class Usage:
    """CPU seconds used so far by every process of the stack, by pid, with its class."""

    def __init__(self, workers: list[int]) -> None:
        self.seconds: dict[int, tuple[str, float]] = {}
        for pid in workers:
            try:
                worker = psutil.Process(pid)
                self._add(worker, "workers")
                for child in worker.children(recursive=True):
                    self._add(child, "server" if "temporal" in child.name() else "pools")
            except psutil.Error:
                continue
        self._add(psutil.Process(), "client")
        self.busy = Cpu.now(os.getpid()).busy
        self.steal = getattr(psutil.cpu_times(), "steal", 0.0)  # the hypervisor's, for others

    def _add(self, process: psutil.Process, kind: str) -> None:
        try:
            times = process.cpu_times()
        except psutil.Error:  # ended meanwhile
            return
        self.seconds[process.pid] = (kind, times.user + times.system)

    def since(self, before: Usage, elapsed: float) -> dict[str, float]:
        """Cores used by each class between `before` and now (a process started meanwhile counts
        from zero), and the machine's share busy."""
        used = dict.fromkeys(CLASSES, 0.0)
        for pid, (kind, seconds) in self.seconds.items():
            used[kind] += seconds - before.seconds.get(pid, (kind, 0.0))[1]
        shares = {kind: seconds / elapsed for kind, seconds in used.items()}
        capacity = elapsed * (os.cpu_count() or 1)
        shares["machine"] = (self.busy - before.busy) / capacity
        shares["steal"] = (self.steal - before.steal) / capacity
        return shares


class SecondWorker:
    """`ferry worker` beside `ferry dev`, on its server and data directory."""

    def __init__(self, stack: FerryStack, data: Path) -> None:
        self.log = data / "second-worker.log"
        self.log.write_text("")
        env = {**stack.env, "FERRY_DATA_DIR": str(data)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [FERRY, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while "worker polling task queue" not in self.log.read_text():  # its pool is warm
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the second worker did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        if self.process.wait(timeout=60) != 0:
            raise SystemExit(f"the second worker failed:\n{self.log.read_text()[-3000:]}")


async def one_run(
    stack: FerryStack, data: Path, task: str, destination: Path, workers: int
) -> dict[str, Any]:
    empty(destination)  # and sync
    load = os.getloadavg()[0]  # another job on the machine shows here
    second = SecondWorker(stack, data) if workers == 2 else None
    pids = [stack.process.pid] + ([second.process.pid] if second else [])
    try:
        before = Usage(pids)
        elapsed, result = await stack.run(task)
        cpu = Usage(pids).since(before, elapsed)
    finally:
        if second is not None:
            second.stop()
    names = {f"{pid}@{socket.gethostname()}": f"worker {n + 1}" for n, pid in enumerate(pids)}
    batches = await transfer_batches(stack.ferry, result["TaskExecutionArn"])
    shared = Counter(names.get(batch.identity, batch.identity) for batch in batches)
    return {
        "seconds": elapsed,
        "load": load,
        "bytes": result["BytesWritten"],
        "cpu": cpu,
        "batches": dict(sorted(shared.items())),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    print("making data ...", file=sys.stderr)
    small, large = small_and_large(base, args.quick)
    data = base / "ferry-workers"
    subprocess.run(["rm", "-rf", str(data)], check=True)  # a fresh embedded stack every run
    data.mkdir()
    stack = FerryStack(data)
    await stack.connect()
    results: dict[str, Any] = {"repeats": args.repeats, "cores": os.cpu_count()}
    try:
        for name, source in (("small", small), ("large", large)):
            if args.only not in (None, name):
                continue
            destination = base / f"{name}-ferry-workers"
            empty(destination)
            task = await stack.task(source, destination, "NONE")
            files = sum(1 for path in source.rglob("*") if path.is_file())
            runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            order = [1, 2]
            for repeat in range(args.repeats):
                for workers in order:
                    run = await one_run(stack, data, task, destination, workers)
                    runs[workers].append(run)
                    print(
                        f"{name} repeat {repeat + 1}, {workers} worker(s): "
                        f"{run['seconds']:.2f} s (load {run['load']:.1f}, "
                        f"steal {run['cpu']['steal']:.0%}), "
                        f"batches {run['batches']}",
                        file=sys.stderr,
                    )
                order.reverse()  # alternate who goes first
            results[name] = {"files": files, "runs": runs}
            subprocess.run(["rm", "-rf", str(destination)], check=True)
    finally:
        stack.stop()
    return results


def print_report(results: dict[str, Any]) -> None:
    repeats = results["repeats"]
    print(f"\n{results['cores']} cores; medians of {repeats} repeat{'s' if repeats > 1 else ''}")
    for name in ("small", "large"):
        if name not in results:
            continue
        files, runs = results[name]["files"], results[name]["runs"]
        size = runs[1][0]["bytes"]
        print(f"\n{name}: {files} files, {size / 2**20:.0f} MiB, initial copy")
        header = "  ".join(f"{kind:>7}" for kind in (*CLASSES, "machine", "steal"))
        print(f"  {'':<10}{'seconds':>8} {'files/s':>9} {'MiB/s':>8}   cores: {header}")
        seconds = {}
        for workers in (1, 2):
            done = runs[workers]
            seconds[workers] = [run["seconds"] for run in done]
            median = statistics.median(seconds[workers])
            cpu = {
                kind: statistics.median([run["cpu"][kind] for run in done])
                for kind in (*CLASSES, "machine", "steal")
            }
            shares = "  ".join(
                f"{cpu[kind]:>7.0%}" if kind in ("machine", "steal") else f"{cpu[kind]:>7.2f}"
                for kind in (*CLASSES, "machine", "steal")
            )
            print(
                f"  {workers} worker{'s' if workers > 1 else ' '}  {median:8.2f} "
                f"{files / median:9.0f} {size / median / 2**20:8.1f}          {shares}"
            )
        print(f"  2 workers / 1 worker: {ratio(seconds[1], seconds[2]):.2f}x the throughput")
        shared = [run["batches"] for run in runs[2]]
        print(f"  batches per worker with two: {'; '.join(map(str, shared))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/ferry-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, to try the script")
    parser.add_argument("--only", choices=("small", "large"))
    args = parser.parse_args()
    results = asyncio.run(measure(args))
    save(results, "workers")  # before any print
    print_report(results)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
    sys.stdout.flush()
    os._exit(0)  # see starter/cli.py: the Temporal client's threads and interpreter teardown
