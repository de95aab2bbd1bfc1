"""The staging store: one contract, kept alike by its two back ends (a directory; a bucket, on
`rclone serve s3` and on moto), and executions whose workers share nothing but Temporal and a
bucket."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import S3Server, Stack, run_cli
from helpers import create_task, differences, empty_folder, random_files, start, until, wait, write

from activities.staging import StagingStore, check_url, open_staging
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
    assert [row for key in keys for row in store.rows(key)] == rows
    assert list(store.rows(f"{EXEC}/files-000009.jsonl")) == []  # no such batch: no rows
    assert store.batch_keys(EXEC, "links") == []


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


def _bucket_stack(
    own_stack: Callable[..., Stack], server: S3Server, workers: int = 1, **env: str
) -> tuple[Stack, str]:
    url = f"s3://{server.bucket('staging')}/ferry"
    stack = own_stack(workers, FERRY_STAGING_URL=url, AWS_ENDPOINT_URL_S3=server.endpoint, **env)
    return stack, url


async def test_an_execution_with_its_staging_store_in_a_bucket(
    own_stack: Callable[..., Stack], rclone_s3: S3Server, workdir: Path
) -> None:
    stack, url = _bucket_stack(own_stack, rclone_s3, workers=2, FERRY_BATCH_FILES="4")
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
    arn = await start(ferry, task)
    prefix = url.removeprefix("s3://").partition("/")[2]
    bucket = url.removeprefix("s3://").partition("/")[0]
    client = rclone_s3.client()

    def staged() -> list[str]:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{execution_id(arn)}/")
        return [item["Key"] for item in listed.get("Contents", [])]

    seen = await until(staged, timeout=60, every=0.05)
    result = await wait(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
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
