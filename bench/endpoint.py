"""The DataSync endpoint under load: concurrent boto3 clients, unmodified, making mixed requests
against `ferry dev`'s endpoint (started here on free ports), with an object storage server
(`rclone serve s3`) for the locations they make.

    .venv/bin/python bench/endpoint.py [--dir /tmp/ferry-bench] [--clients 50] [--requests 5000]
                                       [--quick]

Each client repeats a round of ten requests: CreateLocationObjectStorage (checked against the
server, as every create is), DescribeLocationObjectStorage, UpdateLocationObjectStorage,
CreateTask, DescribeTask, UpdateTask, TagResource, ListTasks, then either ListTagsForResource
and ListLocations (the round keeps what it made) or DeleteTask and DeleteLocation (every other
round). Every create carries a name of its round, in the location's subdirectory and the task's
Name. Clients never retry: each request is sent once, and a failure is counted, not hidden.

Afterwards the stack is listed: each round must have left exactly the location and task its
answers say (one of each for a round that kept them, none for one that deleted them; nothing
for a create that failed, its resource for a delete that failed); answers must all have come,
one per request, with request ids all different. The figures are p50 and p99 latency per
operation and overall, as the client saw it, the throughput, and what each error said.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from local import FERRY, FerryStack, save
from s3 import Server

ROUND = 10  # requests a round makes
ROUND_NAME = re.compile(r"round-\d{5}")


class Client:
    """One boto3 `datasync` client, unmodified, on a connection of its own, never retrying; and
    what each of its requests took."""

    def __init__(self, url: str, key: dict[str, str], region: str) -> None:
        import boto3
        import botocore.config

        self.datasync = boto3.client(
            "datasync",
            endpoint_url=url,
            region_name=region,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            config=botocore.config.Config(
                retries={"total_max_attempts": 1},
                max_pool_connections=1,
                read_timeout=300,
            ),
        )
        self.timings: list[tuple[str, float, str]] = []  # operation, seconds, "" or error code
        self.request_ids: list[str] = []
        self.failures: list[str] = []  # what each error said

    def call(self, operation: str, **request: Any) -> dict[str, Any]:
        import botocore.exceptions

        method = getattr(self.datasync, operation)
        start = time.perf_counter()
        try:
            answer = method(**request)
            error = ""
        except botocore.exceptions.ClientError as failure:
            answer = dict(failure.response)
            error = str(failure.response["Error"]["Code"])
            self.failures.append(f"{error}: {failure.response['Error'].get('Message', '')}")
        except botocore.exceptions.BotoCoreError as failure:  # no answer at all
            answer, error = {}, type(failure).__name__
        self.timings.append((operation, time.perf_counter() - start, error))
        if request_id := answer.get("ResponseMetadata", {}).get("RequestId"):
            self.request_ids.append(request_id)
        return dict(answer)

    def succeeded(self) -> bool:
        """Whether the last request was answered with success."""
        return not self.timings[-1][2]


def one_round(
    client: Client, number: int, server: Server, bucket: str, destination: str
) -> tuple[int, int]:
    """The locations and tasks the round's answers say it leaves (0 or 1 of each)."""
    name = f"round-{number:05d}"
    made = client.call(
        "create_location_object_storage",
        Subdirectory=f"/{name}/",
        Tags=[{"Key": "round", "Value": name}],
        **server.location(bucket),
    )
    arn = made.get("LocationArn", "")
    location = int(client.succeeded())
    client.call("describe_location_object_storage", LocationArn=arn)
    client.call("update_location_object_storage", LocationArn=arn, Subdirectory=f"/{name}/moved/")
    task = client.call(
        "create_task", SourceLocationArn=arn, DestinationLocationArn=destination, Name=name
    ).get("TaskArn", "")
    tasks = int(client.succeeded())
    client.call("describe_task", TaskArn=task)
    client.call("update_task", TaskArn=task, Options={"VerifyMode": "ONLY_FILES_TRANSFERRED"})
    client.call("tag_resource", ResourceArn=task, Tags=[{"Key": "round", "Value": name}])
    client.call("list_tasks", MaxResults=10)
    if number % 2:
        client.call("delete_task", TaskArn=task)
        tasks -= int(tasks and client.succeeded())
        client.call("delete_location", LocationArn=arn)
        location -= int(location and client.succeeded())
    else:
        client.call("list_tags_for_resource", ResourceArn=task)
        client.call("list_locations", MaxResults=10)
    return location, tasks


def every(datasync: Any, operation: str, field: str) -> list[dict[str, Any]]:
    found = []
    for page in datasync.get_paginator(operation).paginate():
        found += page[field]
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from models.arn import DEFAULT_REGION

    base = Path(args.dir)
    data = base / "endpoint"
    shutil.rmtree(data, ignore_errors=True)  # a fresh embedded stack every run
    data.mkdir(parents=True)
    (data / "destination").mkdir()
    server = Server(data / "s3")
    bucket = server.bucket("endpoint")
    stack = FerryStack(data)
    try:
        destination = asyncio.run(_prepare(stack, data / "destination"))
        key = json.loads(
            subprocess.run(
                [FERRY, "create-access-key", "--user-name", "bench"],
                env=stack.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["AccessKey"]
        _wait_for(stack.api_url)
        region = os.environ.get("FERRY_REGION", DEFAULT_REGION)
        clients = [Client(stack.api_url, key, region) for _ in range(args.clients)]
        rounds = args.requests // ROUND
        numbers = iter(range(rounds))
        lock = threading.Lock()
        left: dict[str, tuple[int, int]] = {}  # what each round's answers say it left

        def work(client: Client) -> None:
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return
                left[f"round-{number:05d}"] = one_round(client, number, server, bucket, destination)

        print(f"{args.clients} clients, {rounds * ROUND} requests ...", file=sys.stderr)
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(work, clients))
        elapsed = time.perf_counter() - start
        checks = check(clients[0].datasync, left, clients)
    finally:
        stack.stop()
        server.stop()
    timings = [timing for client in clients for timing in client.timings]
    by_operation: dict[str, list[float]] = collections.defaultdict(list)
    for operation, seconds, _ in timings:
        by_operation[operation].append(seconds)
    errors = collections.Counter(f"{op}: {error}" for op, _, error in timings if error)
    said = collections.Counter(
        re.sub(r"arn:\S+|[0-9a-f-]{36}", "…", failure)  # one line per kind of failure
        for client in clients
        for failure in client.failures
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "clients": args.clients,
        "requests": len(timings),
        "seconds": elapsed,
        "per_second": len(timings) / elapsed,
        "latency": {
            operation: {
                "count": len(values),
                "p50": percentile(values, 0.5),
                "p99": percentile(values, 0.99),
            }
            for operation, values in sorted(by_operation.items())
        },
        "overall": {
            "p50": percentile([t for _, t, _ in timings], 0.5),
            "p99": percentile([t for _, t, _ in timings], 0.99),
        },
        "errors": dict(errors),
        "failures": dict(said.most_common()),
        "checks": checks,
    }


async def _prepare(stack: FerryStack, path: Path) -> str:
    """Connected to the stack: the destination every task shares, a local folder."""
    await stack.connect()
    created = await stack.ferry.create_location_local({"Path": str(path)})
    return str(created["LocationArn"])


def _wait_for(url: str) -> None:
    import socket

    host, port = url.rpartition("/")[2].split(":")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"ferry dev's endpoint did not open {url}")


def check(datasync: Any, left: dict[str, tuple[int, int]], clients: list[Client]) -> dict[str, Any]:
    """No request lost or answered twice: one answer per request, request ids all different,
    and for every round the locations and tasks its answers say it left, no more, no fewer (a
    create that failed made nothing; a delete that failed left its resource)."""
    sent = sum(len(client.timings) for client in clients)
    ids = [request_id for client in clients for request_id in client.request_ids]
    tasks = collections.Counter(task.get("Name") for task in every(datasync, "list_tasks", "Tasks"))
    named = (
        ROUND_NAME.search(e["LocationUri"]) for e in every(datasync, "list_locations", "Locations")
    )
    locations = collections.Counter(match.group() for match in named if match)
    wrong = [
        f"{name}: {locations[name]} location(s) and {tasks[name]} task(s), answers said {wanted}"
        for name, wanted in sorted(left.items())
        if (locations[name], tasks[name]) != wanted
    ]
    return {
        "sent": sent,
        "answered": len(ids),
        "distinct_request_ids": len(set(ids)),
        "rounds_wrong": wrong,
        "ok": sent == len(ids) == len(set(ids)) and not wrong,
    }


def machine() -> str:
    import psutil

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, {platform.platform()}"


def print_report(results: dict[str, Any]) -> None:
    print(f"\n{results['date']}, {results['machine']}")
    print(
        f"{results['clients']} clients, {results['requests']} requests in "
        f"{results['seconds']:.1f} s ({results['per_second']:.0f} requests/s)"
    )
    print(f"\n  {'operation':<34}{'count':>6}{'p50 ms':>9}{'p99 ms':>9}")
    for operation, figures in results["latency"].items():
        print(
            f"  {operation:<34}{figures['count']:>6}{figures['p50'] * 1000:>9.0f}"
            f"{figures['p99'] * 1000:>9.0f}"
        )
    overall = results["overall"]
    print(
        f"  {'all':<34}{results['requests']:>6}{overall['p50'] * 1000:>9.0f}"
        f"{overall['p99'] * 1000:>9.0f}"
    )
    print(f"\nerrors: {results['errors'] or 'none'}")
    for failure, count in results["failures"].items():
        print(f"  {count:5d} x {failure[:300]}")
    checks = results["checks"]
    print(
        f"sent {checks['sent']}, answered {checks['answered']}, distinct request ids "
        f"{checks['distinct_request_ids']}; rounds with the wrong resources: "
        f"{len(checks['rounds_wrong'])} {checks['rounds_wrong'][:5]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/ferry-bench")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="10 clients, 500 requests")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.requests = 10, 500
    results = measure(args)
    save(results, "endpoint")  # before any print
    print_report(results)
    if not results["checks"]["ok"]:
        raise SystemExit("requests were lost or answered twice (see above)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
    sys.stdout.flush()
    os._exit(0)  # see starter/cli.py: the Temporal client's threads and interpreter teardown
