"""The staging store: one contract, kept alike by its two back ends (a directory; a bucket, on
`rclone serve s3` and on moto), executions whose workers share nothing but Temporal and a
bucket, what they ask of it, and an agent given another store than the rest."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import S3Server, Stack, run_cli
from helpers import (
    CountingProxy,
    activate,
    create_task,
    differences,
    empty_folder,
    random_files,
    start,
    until,
    wait,
    write,
)

from activities.staging import StagingMissing, StagingStore, check_url, open_staging
from api import Ferry
from api.client import connect
from models.arn import execution_id

EXEC = "exec-0123456789abcdef0"
ARN = f"arn:aws:datasync:xx-ferry-1:000000000000:task/task-0123456789abcdef0/execution/{EXEC}"


@pytest.fixture(params=["directory", "rclone", "moto"])
def store(
    request: pytest.FixtureRequest, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StagingStore]:
    if request.param == "directory":
        yield open_staging(str(workdir / "staging"))
        return
    server: S3Server = request.getfixturevalue(f"{request.param}_s3")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.endpoint)
    yield open_staging(f"s3://{server.bucket('staging')}/ferry/staging")


def test_a_batch_appears_whole_and_batches_list_in_order(store: StagingStore) -> None:
    writer = store.batches(EXEC, "files")
    writer.max_rows = 2
    rows = [["copy", 0, f"dir/name {n} é\n", n] for n in range(5)]
    for row in rows[:4]:
        writer.add(row)
    writer.add(rows[4])
    # Two batches are sealed; the third is being written and cannot be seen yet.
    assert store.batch_keys(EXEC, "files") == [
        f"{EXEC}/files-000000.jsonl",
        f"{EXEC}/files-000001.jsonl",
    ]
    assert writer.close() == 3

    keys = store.batch_keys(EXEC, "files")
    assert keys == [f"{EXEC}/files-{n:06d}.jsonl" for n in range(3)]
    assert [row for key in keys for row in store.rows(key, sealed=True)] == rows
    assert store.batch_keys(EXEC, "links") == []


def test_a_missing_or_short_batch_is_an_error_not_an_empty_batch(store: StagingStore) -> None:
    missing = f"{EXEC}/files-000009.jsonl"
    with pytest.raises(StagingMissing) as refused:
        list(store.rows(missing, written_to="s3://elsewhere/ferry"))
    assert str(refused.value) == (
        f"The batch of the plan {missing} is not in the staging store {store.url} (it was "
        "written to s3://elsewhere/ferry): is every worker and agent given the same "
        "--staging-url / FERRY_STAGING_URL?"
    )

    writer = store.batches(EXEC, "files")
    for n in range(3):
        writer.add([n])
    writer.close()
    key = store.batch_key(EXEC, "files", 0)
    whole = b"".join(line.encode() for line in store.backend.lines(key))
    assert whole.endswith(b'{"@rows":3}\n')
    store.backend.put(key, whole.replace(b"[1]\n", b""))  # a row lost
    with pytest.raises(StagingMissing, match=r"is not whole: 2 rows read, 3 written"):
        list(store.rows(key))
    store.backend.put(key, b"[0]\n[1]\n")  # its count lost
    with pytest.raises(StagingMissing, match=r"is not whole: 2 rows read, no row count"):
        list(store.rows(key, sealed=True))
    assert list(store.rows(key)) == [[0], [1]]  # as a Ferry that wrote no counts left it


def test_each_view_counts_what_it_asks_of_the_store(store: StagingStore) -> None:
    view = store.counted()
    writer = view.batches(EXEC, "files")
    writer.add(["a" * 100])
    writer.close()
    assert view.traffic.requests == 1
    written = view.traffic.bytes_written
    assert written == len(b"".join(line.encode() for line in store.backend.lines(
        view.batch_key(EXEC, "files", 0)
    )))  # fmt: skip
    assert list(view.rows(view.batch_key(EXEC, "files", 0))) == [["a" * 100]]
    assert view.traffic.requests == 2 and view.traffic.bytes_read == written
    view.remove(EXEC)
    assert view.traffic.requests >= 3
    other = store.counted()  # another activity's: counted apart
    assert other.traffic.requests == 0


def test_a_result_log_keeps_what_checkpoints_saved_across_attempts(store: StagingStore) -> None:
    first = store.results(EXEC, "files", 3)
    first.append(["f", "a"])
    saved = first.save()  # a checkpoint
    first.append(["f", "b"])  # done after it, then the attempt died: not saved

    second = store.results(EXEC, "files", 3, saved)  # the retry, on any host
    assert store.result_keys(EXEC, "") == []  # parts are not results
    second.append(["f", "b"])
    second.save()
    second.append(["f", "c"])
    second.publish()

    key = store.result_key(EXEC, "files", 3)
    assert store.result_keys(EXEC, "files") == [key]
    assert list(store.rows(key)) == [["f", "a"], ["f", "b"], ["f", "c"]]
    # The parts the log was made of are gone; the one the dead attempt never named stays until
    # the execution's prefix is removed.
    assert [k for k in store.backend.keys(f"{EXEC}/results/") if ".parts/" in k] == []


def test_clear_drops_a_steps_batches_from_a_point_with_results_and_checkpoints(
    store: StagingStore,
) -> None:
    writer = store.batches(EXEC, "files")
    writer.max_rows = 1
    for n in range(4):
        writer.add([n])
        store.results(EXEC, "files", n).publish()
        store.backend.put(store.checkpoint_key(EXEC, "files", n, "TRANSFERRING"), b"{}")
    writer.close()
    store.batches(EXEC, "deletes").add(["other step"])

    store.clear(EXEC, "files", 2)

    assert store.batch_keys(EXEC, "files") == [
        f"{EXEC}/files-000000.jsonl",
        f"{EXEC}/files-000001.jsonl",
    ]
    assert store.result_keys(EXEC, "files") == [
        store.result_key(EXEC, "files", 0),
        store.result_key(EXEC, "files", 1),
    ]
    assert store.backend.keys(f"{EXEC}/checkpoints/") == [
        store.checkpoint_key(EXEC, "files", n, "TRANSFERRING") for n in (0, 1)
    ]


def test_an_executions_objects_go_with_it_and_its_log_stays(store: StagingStore) -> None:
    log = store.log(ARN)
    log.append('{"Path": "/a"}')
    log.save()
    log.append('{"Path": "/b"}')
    log.append('{"Path": "/c"}')
    log.save()
    store.batches(EXEC, "files").close()
    writer = store.batches(EXEC, "files")
    writer.add(["x"])
    writer.close()
    store.results(EXEC, "files", 0).publish()

    store.remove(EXEC)

    assert store.backend.keys(f"{EXEC}/") == []
    assert list(store.log_lines(ARN)) == [
        '{"Path": "/a"}\n',
        '{"Path": "/b"}\n',
        '{"Path": "/c"}\n',
    ]


def test_staging_urls_are_checked() -> None:
    assert check_url("s3://bucket/some/prefix/") == "s3://bucket/some/prefix"
    assert check_url("relative/dir") == os.path.abspath("relative/dir")
    with pytest.raises(ValueError, match="name a bucket"):
        check_url("s3:///prefix")
    with pytest.raises(ValueError, match="s3://BUCKET/PREFIX or a directory"):
        check_url("gs://bucket/prefix")


async def test_an_execution_with_its_staging_store_in_a_bucket(
    own_stack: Callable[..., Stack], rclone_s3: S3Server, workdir: Path
) -> None:
    url = f"s3://{rclone_s3.bucket('staging')}/ferry"
    # The workers reach the bucket through a proxy that counts what reaches the server.
    proxy = CountingProxy(rclone_s3.port).start()
    stack = own_stack(
        2, FERRY_STAGING_URL=url, AWS_ENDPOINT_URL_S3=proxy.endpoint, FERRY_BATCH_FILES="4"
    )
    ferry = Ferry(await connect(stack.address))
    source, destination, reports = workdir / "source", workdir / "destination", workdir / "reports"
    names = random_files(source, 24, 64 * 1024)
    write(source / "sub" / "deep" / "file", b"deep")
    empty_folder(destination)
    empty_folder(reports)
    report_arn = (await ferry.create_location_local({"Path": str(reports)}))["LocationArn"]
    task = await create_task(
        ferry,
        source,
        destination,
        Options={
            "VerifyMode": "ONLY_FILES_TRANSFERRED",
            "LogLevel": "TRANSFER",
            "BytesPerSecond": 512 * 1024,  # about three seconds of TRANSFERRING
        },
        TaskReportConfig={
            "Destination": {"Location": {"LocationArn": report_arn}},
            "OutputType": "STANDARD",
            "ReportLevel": "SUCCESSES_AND_ERRORS",
        },
    )
    before = proxy.counts()
    arn = await start(ferry, task)
    prefix = url.removeprefix("s3://").partition("/")[2]
    bucket = url.removeprefix("s3://").partition("/")[0]
    client = rclone_s3.client()

    def staged() -> list[str]:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{execution_id(arn)}/")
        return [item["Key"] for item in listed.get("Contents", [])]

    seen = await until(staged, timeout=60, every=0.05)
    result = await wait(ferry, arn)
    requests, sent, received = (
        now - then for now, then in zip(proxy.counts(), before, strict=True)
    )
    proxy.shutdown()

    assert result["Status"] == "SUCCESS", result["Result"]
    # What the execution asked of the staging store, as Ferry counts it, is what reached the
    # server: every request, and the bytes of their bodies each way (but for the server's
    # short answers to a PUT, a deletion, or a GET of a checkpoint that is not there).
    traffic = result["StagingTraffic"]
    assert traffic["Requests"] == requests, (traffic, requests)
    assert traffic["BytesWritten"] == sent, (traffic, sent)
    assert 0.8 * received <= traffic["BytesRead"] <= received, (traffic, received)
    # Each of the 8 batches of files is read, and its checkpoint and result log written.
    assert traffic["Requests"] >= 3 * 8
    log = "\n".join(stack.log_path(n).read_text() for n in range(2))
    assert f"{arn}: SUCCESS; staging store: {traffic['Requests']} requests" in log
    assert differences(source, destination) == []
    assert result["FilesTransferred"] == len(names) + 4  # and sub, sub/deep and the root
    assert result["FilesVerified"] == result["FilesTransferred"]
    assert any(key.endswith(".jsonl") for key in seen)  # the plan was in the bucket
    assert staged() == []  # and went with the execution
    # Nothing was staged on the workers' disks.
    assert not (stack.directory / "staging").exists()
    # The report was made from the batches' result logs in the bucket: every path is in it.
    listed = reports.rglob("*.files-transferred-v1-*.json")
    transferred = [row for found in listed for row in json.loads(found.read_text())["Transferred"]]
    assert sorted(
        row["RelativePath"] for row in transferred if row["RelativePath"] != "/"
    ) == sorted(["/sub", "/sub/deep", "/sub/deep/file", *(f"/{name}" for name in names)])
    # The log lines stay in the bucket for `ferry logs`.
    logs = run_cli(
        stack,
        "logs", "--task-execution-arn", arn, "--staging-url", url,
        check=True, AWS_ENDPOINT_URL_S3=rclone_s3.endpoint,
    ).stdout.splitlines()  # fmt: skip
    logged = {json.loads(line)["Path"] for line in logs if '"TRANSFERRED"' in line}
    assert {f"/{name}" for name in names} <= logged


async def test_an_agent_given_another_staging_store_fails_the_execution_saying_so(
    own_stack: Callable[..., Stack], rclone_s3: S3Server, workdir: Path
) -> None:
    url = f"s3://{rclone_s3.bucket('staging')}/ferry"
    bucket = {"FERRY_STAGING_URL": url, "AWS_ENDPOINT_URL_S3": rclone_s3.endpoint}
    stack = own_stack(1, **bucket)
    ferry = Ferry(await connect(stack.address))
    small = {"FERRY_BATCH_FILES": "2"}
    right, right_arn = await activate(stack, ferry, workdir / "right", "right", **bucket, **small)
    # Started without --staging-url: its store is the folder `staging` of its data directory.
    own = workdir / "own-data"
    wrong, wrong_arn = await activate(
        stack, ferry, workdir / "wrong", "wrong", FERRY_DATA_DIR=str(own), **small
    )
    stack.stop_worker(wrong)  # until the plan is in the bucket
    source, destination = workdir / "source", workdir / "destination"
    random_files(source, 24, 64 * 1024)
    empty_folder(destination)
    agents = [right_arn, wrong_arn]
    location = await ferry.create_location_local({"Path": str(source), "AgentArns": agents})
    target = await ferry.create_location_local({"Path": str(destination)})
    task = await ferry.create_task(
        {
            "SourceLocationArn": location["LocationArn"],
            "DestinationLocationArn": target["LocationArn"],
            "Options": {"BytesPerSecond": 256 * 1024},  # about six seconds of TRANSFERRING
        }
    )
    arn = await start(ferry, task["TaskArn"])

    async def transferring() -> bool:
        described = await ferry.describe_task_execution({"TaskExecutionArn": arn})
        return described["Status"] == "TRANSFERRING"

    await until(transferring, timeout=60)
    stack.start_agent(workdir / "wrong", FERRY_DATA_DIR=str(own), **small)
    log = (workdir / "wrong").with_suffix(".log")
    await until(lambda: "polling task queue 'ferry-loc-" in log.read_text(), timeout=60)
    stack.stop_worker(right, signal.SIGKILL)  # what it was doing goes to the other agent
    result = await wait(ferry, arn)

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "StagingUnavailable"
    detail = result["Result"]["ErrorDetail"]
    assert f"is not in the staging store {own / 'staging'} (it was written to {url})" in detail
    assert "is every worker and agent given the same --staging-url / FERRY_STAGING_URL?" in detail
    assert len(list(destination.iterdir())) < 24  # the files it could not read were not copied


async def test_a_worker_that_cannot_reach_its_staging_bucket_says_so(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    stack = own_stack(workers=0)
    process = stack.start_worker(
        FERRY_STAGING_URL="s3://staging/ferry",
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
    )
    await asyncio.to_thread(process.wait, 60)
    assert process.returncode != 0
    log = stack.log_path(0).read_text()
    assert "staging store s3://staging/ferry: no AWS credentials found" in log
