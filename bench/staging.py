"""What a staging bucket costs: Ferry between two local folders with its staging store in a
directory and in an S3 bucket (`rclone serve s3` on 127.0.0.1), on the same data in one run.

    .venv/bin/python bench/staging.py [--dir /tmp/ferry-bench] [--repeats 3] [--quick]

Data: the 50,000 files of 1-16 KiB of bench/local.py (--quick: 500). Two embedded stacks run
side by side, one per staging store; every repeat copies into a fresh destination with each,
in turn, with VerifyMode NONE and ONLY_FILES_TRANSFERRED (which reads the result logs back).
The staging traffic is what Ferry itself counts for each execution (DescribeTaskExecution's
StagingTraffic): requests and bytes per 1,000 files, medians of the bucket's runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from local import RCLONE, FerryStack, empty, free_port, make_small

KEY, SECRET = "bench-key", "bench-secret"


def stack(data: Path, staging: str, endpoint: str | None = None) -> FerryStack:
    """An embedded stack with its staging store at `staging` (a bucket of `endpoint`)."""
    data.mkdir(parents=True, exist_ok=True)
    env = {"FERRY_STAGING_URL": staging}
    if endpoint:
        env.update(
            AWS_ACCESS_KEY_ID=KEY,
            AWS_SECRET_ACCESS_KEY=SECRET,
            AWS_REGION="us-east-1",
            AWS_ENDPOINT_URL_S3=endpoint,
        )
    return FerryStack(data, **env)


async def copy(
    stack: FerryStack, source: Path, destination: Path, verify: str
) -> tuple[float, dict[str, Any]]:
    """One execution into an empty `destination`: (seconds, its final description)."""
    empty(destination)
    return await stack.run(await stack.task(source, destination, verify))


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(args.dir)
    source = base / ("small-500" if args.quick else "small")
    print("making data ...", file=sys.stderr)
    make_small(source, 5 if args.quick else 500, 100, 1024, 16384)
    work = base / "staging-bench"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    port = free_port()
    (work / "buckets" / "staging").mkdir(parents=True)
    rclone = subprocess.Popen(
        [
            RCLONE, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--config", "/dev/null",
            "--auth-key", f"{KEY},{SECRET}", str(work / "buckets"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "rclone.log", "ab"),  # noqa: SIM115
    )  # fmt: skip
    stacks: dict[str, FerryStack] = {}
    times: dict[str, list[float]] = {}
    traffic: dict[str, list[dict[str, float]]] = {}
    files = 0
    try:
        # One after the other: a stack's Temporal takes ports beside the one it was given.
        for name, staging, endpoint in (
            ("directory", str(work / "directory" / "staging"), None),
            ("bucket", "s3://staging/timed", f"http://127.0.0.1:{port}"),
        ):
            stacks[name] = stack(work / name, staging, endpoint)
            await stacks[name].connect()
        for repeat in range(args.repeats):
            for verify in ("NONE", "ONLY_FILES_TRANSFERRED"):
                for name in ("directory", "bucket") if repeat % 2 == 0 else ("bucket", "directory"):
                    seconds, result = await copy(stacks[name], source, work / "destination", verify)
                    files = result["FilesTransferred"]
                    times.setdefault(f"{name} {verify}", []).append(seconds)
                    print(f"  {name} {verify}: {seconds:.2f} s", file=sys.stderr)
                    if name == "bucket":
                        staged = result["StagingTraffic"]
                        traffic.setdefault(verify, []).append(
                            {
                                "requests_per_1000_files": staged["Requests"] * 1000 / files,
                                "bytes_written_per_1000_files": staged["BytesWritten"]
                                * 1000
                                / files,
                                "bytes_read_per_1000_files": staged["BytesRead"] * 1000 / files,
                            }
                        )
    finally:
        for running in stacks.values():
            running.stop()
        rclone.terminate()
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "files": files,
        "repeats": args.repeats,
        "seconds": medians,
        "bucket_over_directory": {
            verify: round(medians[f"bucket {verify}"] / medians[f"directory {verify}"], 3)
            for verify in ("NONE", "ONLY_FILES_TRANSFERRED")
        },
        "staging_traffic": {
            verify: {
                name: round(statistics.median(run[name] for run in runs), 1) for name in runs[0]
            }
            for verify, runs in traffic.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp/ferry-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="500 files, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    results = asyncio.run(measure(args))
    print(json.dumps(results, indent=2))
    files = results["files"]
    print(f"\n{files} files, medians of {results['repeats']}:", file=sys.stderr)
    for verify, ratio in results["bucket_over_directory"].items():
        directory = results["seconds"][f"directory {verify}"]
        bucket = results["seconds"][f"bucket {verify}"]
        print(
            f"  VerifyMode {verify}: directory {directory:.2f} s ({files / directory:.0f} files/s),"
            f" bucket {bucket:.2f} s ({files / bucket:.0f} files/s): bucket time x{ratio}",
            file=sys.stderr,
        )
        staged = results["staging_traffic"][verify]
        print(
            f"    staging per 1,000 files: {staged['requests_per_1000_files']} requests, "
            f"{staged['bytes_written_per_1000_files'] / 1024:.0f} KiB written, "
            f"{staged['bytes_read_per_1000_files'] / 1024:.0f} KiB read",
            file=sys.stderr,
        )
    print(
        "  (the issue's target: the bucket costs at most 15% of throughput, a time ratio of "
        "at most x1.176)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
