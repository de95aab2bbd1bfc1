"""What a staging bucket costs: Ferry between two local folders with its staging store in a
directory and in an S3 bucket (`rclone serve s3` on 127.0.0.1), on the same data in one run.

    .venv/bin/python bench/staging.py [--dir /tmp/ferry-bench] [--repeats 3] [--quick]

Data: the 50,000 files of 1-16 KiB of bench/local.py (--quick: 500). Two embedded stacks run
side by side, one per staging store; every repeat copies into a fresh destination with each,
in turn, with VerifyMode NONE and ONLY_FILES_TRANSFERRED (which reads the result logs back).
Then one more run of the bucket stack goes through a counting proxy, not timed, for the
staging traffic: requests and bytes per 1,000 files.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from local import RCLONE, FerryStack, empty, free_port, make_small

KEY, SECRET = "bench-key", "bench-secret"


class CountingProxy(http.server.ThreadingHTTPServer):
    """Passes S3 requests on to `target` unchanged (SigV4 signs the Host header, which is kept)
    and counts them with the bytes of their bodies each way."""

    daemon_threads = True

    def __init__(self, target: int) -> None:
        self.requests = self.sent = self.received = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                upstream = http.client.HTTPConnection("127.0.0.1", target)
                upstream.request(self.command, self.path, body, dict(self.headers))
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()
                with proxy.lock:
                    proxy.requests += 1
                    proxy.sent += len(body)
                    proxy.received += len(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


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
) -> tuple[float, int]:
    """One execution into an empty `destination`: (seconds, files transferred)."""
    empty(destination)
    elapsed, result = await stack.run(await stack.task(source, destination, verify))
    return elapsed, result["FilesTransferred"]


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
    proxy = CountingProxy(port)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    stacks = {
        "directory": stack(work / "directory", str(work / "directory" / "staging")),
        "bucket": stack(work / "bucket", "s3://staging/timed", f"http://127.0.0.1:{port}"),
        "counted": stack(
            work / "counted", "s3://staging/counted", f"http://127.0.0.1:{proxy.server_port}"
        ),
    }
    times: dict[str, list[float]] = {}
    files = 0
    try:
        for running in stacks.values():
            await running.connect()
        for repeat in range(args.repeats):
            for verify in ("NONE", "ONLY_FILES_TRANSFERRED"):
                for name in ("directory", "bucket") if repeat % 2 == 0 else ("bucket", "directory"):
                    seconds, files = await copy(stacks[name], source, work / "destination", verify)
                    times.setdefault(f"{name} {verify}", []).append(seconds)
                    print(f"  {name} {verify}: {seconds:.2f} s", file=sys.stderr)
        traffic = {}
        for verify in ("NONE", "ONLY_FILES_TRANSFERRED"):
            before = (proxy.requests, proxy.sent, proxy.received)
            await copy(stacks["counted"], source, work / "destination", verify)
            requests, sent, received = (
                now - then
                for now, then in zip(
                    (proxy.requests, proxy.sent, proxy.received), before, strict=True
                )
            )
            traffic[verify] = {
                "requests_per_1000_files": round(requests * 1000 / files, 1),
                "bytes_up_per_1000_files": round(sent * 1000 / files),
                "bytes_down_per_1000_files": round(received * 1000 / files),
            }
    finally:
        for running in stacks.values():
            running.stop()
        proxy.shutdown()
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
        "staging_traffic": traffic,
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


if __name__ == "__main__":
    main()
