"""The `ferry` CLI, driven as a user drives it: a subprocess per command, JSON out, the AWS CLI's
error lines and exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import Stack, run_cli
from helpers import write

from api import Ferry
from api.requests import SHAPES
from starter.cli import build_parser, kebab, main, request_from
from starter.dev import temporal_cli

MISSING_TASK = "arn:aws:datasync:xx-ferry-1:000000000000:task/task-00000000000000000"


def ok(stack: Stack, *args: str) -> dict[str, Any]:
    result = run_cli(stack, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


def location(stack: Stack, path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    return ok(stack, "create-location-local", "--path", str(path))["LocationArn"]


def test_locations_are_created_described_listed_and_deleted(stack: Stack, workdir: Path) -> None:
    arn = location(stack, workdir / "data")

    described = ok(stack, "describe-location-local", "--location-arn", arn)
    listed = ok(stack, "list-locations")["Locations"]
    ok(stack, "delete-location", "--location-arn", arn)
    gone = run_cli(stack, "describe-location-local", "--location-arn", arn)

    assert arn.startswith("arn:aws:datasync:xx-ferry-1:000000000000:location/loc-")
    assert described["LocationUri"] == f"local://{workdir}/data/"
    assert described["Path"] == str(workdir / "data")
    assert "CreationTime" in described
    assert {"LocationArn": arn, "LocationUri": f"local://{workdir}/data/"} in listed
    assert gone.returncode == 254
    assert f"location {arn} not found" in gone.stderr


async def test_a_list_prints_every_page_unless_a_page_is_asked_for(
    stack: Stack, ferry: Ferry, workdir: Path
) -> None:
    """As the AWS CLI: without --max-results or --next-token, a list follows NextToken past
    the endpoint's page of 100 and prints one list; with them, one page and its token."""
    (workdir / "many").mkdir()
    created = await asyncio.gather(
        *(ferry.create_location_local({"Path": str(workdir / "many")}) for _ in range(101))
    )
    mine = {response["LocationArn"] for response in created}

    every = ok(stack, "list-locations")
    page = ok(stack, "list-locations", "--max-results", "2")

    assert mine <= {entry["LocationArn"] for entry in every["Locations"]}
    assert "NextToken" not in every
    assert len(page["Locations"]) == 2 and page["NextToken"]


def test_tasks_take_shorthand_and_json_and_update_in_place(stack: Stack, workdir: Path) -> None:
    source, destination = location(stack, workdir / "s"), location(stack, workdir / "d")

    task = ok(
        stack,
        "create-task",
        "--source-location-arn", source,
        "--destination-location-arn", destination,
        "--name", "nightly",
        "--options", "VerifyMode=NONE,OverwriteMode=NEVER",
        "--includes", "FilterType=SIMPLE_PATTERN,Value=/a|/b*",
        "--excludes", '[{"FilterType": "SIMPLE_PATTERN", "Value": "*.tmp"}]',
    )["TaskArn"]  # fmt: skip
    ok(
        stack,
        "update-task",
        "--task-arn",
        task,
        "--name",
        "hourly",
        "--options",
        "BytesPerSecond=9",
    )
    described = ok(stack, "describe-task", "--task-arn", task)
    listed = ok(stack, "list-tasks")["Tasks"]
    ok(stack, "delete-task", "--task-arn", task)

    assert described["Name"] == "hourly"
    assert described["Status"] == "AVAILABLE"
    assert described["Options"]["VerifyMode"] == "NONE"  # kept from create-task
    assert described["Options"]["OverwriteMode"] == "NEVER"
    assert described["Options"]["BytesPerSecond"] == 9  # merged in by update-task
    assert described["Options"]["TransferMode"] == "CHANGED"  # DataSync's default
    assert described["Includes"] == [{"FilterType": "SIMPLE_PATTERN", "Value": "/a|/b*"}]
    assert described["Excludes"] == [{"FilterType": "SIMPLE_PATTERN", "Value": "*.tmp"}]
    assert {"TaskArn": task, "Status": "AVAILABLE", "Name": "hourly", "TaskMode": "BASIC"} in listed
    assert task not in json.dumps(ok(stack, "list-tasks"))


def test_start_with_wait_and_find_the_execution_everywhere(stack: Stack, workdir: Path) -> None:
    write(workdir / "s" / "hello.txt", "hello")
    source, destination = location(stack, workdir / "s"), location(stack, workdir / "d")
    task = ok(
        stack,
        "create-task",
        "--source-location-arn", source,
        "--destination-location-arn", destination,
    )["TaskArn"]  # fmt: skip

    final = ok(stack, "start-task-execution", "--task-arn", task, "--wait")
    arn = final["TaskExecutionArn"]
    described = ok(stack, "describe-task-execution", "--task-execution-arn", arn)
    listed = ok(stack, "list-task-executions", "--task-arn", task)["TaskExecutions"]
    workflows = subprocess.run(
        [
            temporal_cli(), "workflow", "list", "--address", stack.address, "--output", "json",
            "--query", f"FerryTaskArn = '{task}' AND FerryExecutionStatus = 'SUCCESS'",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    assert final["Status"] == "SUCCESS"
    assert final["FilesTransferred"] == 2  # hello.txt and the root's metadata
    assert (workdir / "d" / "hello.txt").read_text() == "hello"
    assert described["Status"] == "SUCCESS"
    assert described["StartTime"] == final["StartTime"]
    assert listed == [{"TaskExecutionArn": arn, "Status": "SUCCESS", "TaskMode": "BASIC"}]
    assert arn.rsplit("/", 1)[1] in workflows


def test_wait_exits_non_zero_when_the_execution_fails(stack: Stack, workdir: Path) -> None:
    source, destination = location(stack, workdir / "s"), location(stack, workdir / "d")
    task = ok(
        stack,
        "create-task",
        "--source-location-arn", source,
        "--destination-location-arn", destination,
    )["TaskArn"]  # fmt: skip
    (workdir / "s").rmdir()

    result = run_cli(stack, "start-task-execution", "--task-arn", task, "--wait")

    assert result.returncode == 1
    assert json.loads(result.stdout)["Status"] == "ERROR"


SOURCE = "{source}"  # stands for --source-location-arn S --destination-location-arn D
MISSING_LOCATION = "arn:aws:datasync:xx-ferry-1:000000000000:location/loc-00000000000000000"
BAD_INPUT = [
    (["create-location-local", "--path", "/does/not/exist"], 254, "No such file or directory"),
    (["create-location-local", "--path", "relative/dir"], 254, "must be an absolute path"),
    (["describe-task", "--task-arn", MISSING_TASK], 254, f"task {MISSING_TASK} not found"),
    (["describe-task", "--task-arn", "task-123"], 254, "TaskArn: 'task-123' is not a task ARN"),
    (["create-task", SOURCE, "--options", "VerifyMode=BOGUS"], 254, "Options.VerifyMode:"),
    (
        ["create-task", SOURCE, "--options", "PreserveDeletedFiles=REMOVE,TransferMode=ALL"],
        254,
        "PreserveDeletedFiles=REMOVE can't be used with Options.TransferMode=ALL",
    ),
    (
        ["create-task", SOURCE, "--options", "Atime=BEST_EFFORT,Mtime=NONE"],
        254,
        "Options.Atime=BEST_EFFORT requires Options.Mtime=PRESERVE",
    ),
    (
        ["create-task", SOURCE, "--options", "BytesPerSecond=0"],
        254,
        "Options.BytesPerSecond=0 is not a valid limit",
    ),
    (["create-task", SOURCE, "--options", "Bogus=1"], 254, "Unknown parameter Options.Bogus"),
    (
        ["create-task", SOURCE, "--includes", "FilterType=SIMPLE_PATTERN,Value=*/x"],
        254,
        "Includes[0].Value: include pattern '*/x' has a wildcard before its end",
    ),
    (
        ["create-task", SOURCE, "--excludes", "FilterType=SIMPLE_PATTERN,Value=tmp"],
        254,
        "Excludes[0].Value: pattern 'tmp' must start with '/'",
    ),
    (["create-task", SOURCE, "--options", "VerifyMode"], 252, "Error parsing parameter"),
    (
        ["create-task", "--source-location-arn", MISSING_LOCATION,
         "--destination-location-arn", "{destination}"],
        254,
        f"location {MISSING_LOCATION} not found",
    ),
    (
        ["create-task", "--source-location-arn", "{destination}",
         "--destination-location-arn", "{destination}"],
        254,
        "are the same location",
    ),
    (
        ["start-task-execution", "--task-arn", "{task}",
         "--override-options", "PreserveDeletedFiles=REMOVE,TransferMode=ALL"],
        254,
        "OverrideOptions.PreserveDeletedFiles=REMOVE",
    ),
    (["delete-location", "--location-arn", "{destination}"], 254, "is used by task"),
]  # fmt: skip


@pytest.fixture(scope="module")
def resources(stack: Stack) -> dict[str, str]:
    """Two locations and a task, made through the CLI, that the bad requests refer to."""
    folder = Path(tempfile.mkdtemp(prefix="ferry-cli-", dir="/tmp"))
    source, destination = location(stack, folder / "s"), location(stack, folder / "d")
    task = ok(
        stack,
        "create-task",
        "--source-location-arn", source,
        "--destination-location-arn", destination,
    )["TaskArn"]  # fmt: skip
    return {"source": source, "destination": destination, "task": task}


@pytest.mark.parametrize(("args", "code", "message"), BAD_INPUT)
async def test_bad_input_is_rejected_with_the_field_named_and_nothing_changed(
    stack: Stack,
    ferry: Ferry,
    resources: dict[str, str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    expanded: list[str] = []
    for arg in args:
        if arg == SOURCE:
            expanded += ["--source-location-arn", resources["source"]]
            expanded += ["--destination-location-arn", resources["destination"]]
        else:
            expanded.append(arg.format(**resources))
    before = await _everything(ferry, resources["task"])

    result = run_cli(stack, *expanded)

    assert result.returncode == code, result.stderr
    assert message in result.stderr
    if code == 254:
        assert "An error occurred (InvalidRequestException) when calling the" in result.stderr
    assert await _everything(ferry, resources["task"]) == before


def test_an_unreachable_temporal_is_named(stack: Stack) -> None:
    result = run_cli(stack, "--address", "127.0.0.1:9", "list-tasks")

    assert result.returncode == 254
    assert "InternalException" in result.stderr
    assert "Cannot reach Temporal at 127.0.0.1:9" in result.stderr


async def _everything(ferry: Ferry, task: str) -> list[dict[str, Any]]:
    return [
        await ferry.list_locations({}),
        await ferry.list_tasks({}),
        await ferry.list_task_executions({"TaskArn": task}),
    ]


def test_tags_on_locations_tasks_and_executions(stack: Stack, workdir: Path) -> None:
    location_arn = ok(
        stack, "create-location-local", "--path", str(workdir), "--tags", "Key=team,Value=data"
    )["LocationArn"]
    write(workdir / "s" / "a.txt", "a")
    source = location(stack, workdir / "s")
    destination = location(stack, workdir / "d")
    task = ok(
        stack,
        "create-task",
        "--source-location-arn", source,
        "--destination-location-arn", destination,
        "--tags", "Key=env,Value=prod", "Key=owner,Value=ops",
        "--cloud-watch-log-group-arn",
        "arn:aws:logs:local:000000000000:log-group:/ferry/tasks:*",
    )["TaskArn"]  # fmt: skip
    ok(stack, "tag-resource", "--resource-arn", task, "--tags", "Key=env,Value=test")
    ok(stack, "untag-resource", "--resource-arn", task, "--keys", "owner")
    execution = ok(
        stack, "start-task-execution", "--task-arn", task, "--tags", "Key=run,Value=1", "--wait"
    )["TaskExecutionArn"]

    def tags(arn: str) -> list[dict[str, str]]:
        return ok(stack, "list-tags-for-resource", "--resource-arn", arn)["Tags"]

    assert tags(location_arn) == [{"Key": "team", "Value": "data"}]
    assert tags(task) == [{"Key": "env", "Value": "test"}]
    assert tags(execution) == [{"Key": "run", "Value": "1"}]
    described = ok(stack, "describe-task", "--task-arn", task)
    assert described["CloudWatchLogGroupArn"].endswith("log-group:/ferry/tasks:*")
    # An execution's tags, given at its start, change as any resource's do.
    ok(stack, "tag-resource", "--resource-arn", execution, "--tags", "Key=checked,Value=yes")
    ok(stack, "untag-resource", "--resource-arn", execution, "--keys", "run")
    assert tags(execution) == [{"Key": "checked", "Value": "yes"}]
    gone = execution[:-17] + "0" * 17  # an execution of the task that never was
    refused = run_cli(stack, "tag-resource", "--resource-arn", gone, "--tags", "Key=a")
    assert refused.returncode == 254
    assert "not found" in refused.stderr


REQUIRED = {
    operation: [name for name, field in shape.model_fields.items() if field.is_required()]
    for operation, shape in SHAPES.items()
}


@pytest.mark.parametrize("operation", [op for op, names in REQUIRED.items() if names])
def test_required_fields_may_come_from_cli_input_json_and_flags_win(
    operation: str, capsys: pytest.CaptureFixture[str]
) -> None:
    names = REQUIRED[operation]
    command = kebab(operation)
    whole = {name: f"json-{name}" for name in names}

    # Every required field from the JSON alone.
    args = build_parser().parse_args([command, "--cli-input-json", json.dumps(whole)])
    assert request_from(args) == whole
    # A flag beside it wins over the JSON.
    first = names[0]
    args = build_parser().parse_args(
        [command, "--cli-input-json", json.dumps(whole), f"--{kebab(first)}", "from-flag"]
    )
    assert request_from(args)[first] in ("from-flag", ["from-flag"])  # a list field: a list
    # Missing from both: refused before anything is sent, naming the field and its flag.
    for name in names:
        partial = {key: value for key, value in whole.items() if key != name}
        assert main([command, "--cli-input-json", json.dumps(partial)]) == 252
        error = capsys.readouterr().err
        assert f'Missing required parameter in input: "{name}" (--{kebab(name)})' in error
        assert all(f'"{other}"' not in error for other in partial)


def test_create_task_takes_its_whole_request_from_cli_input_json(
    stack: Stack, workdir: Path
) -> None:
    write(workdir / "s" / "a.txt", "a")
    source, destination = location(stack, workdir / "s"), location(stack, workdir / "d")
    request = {"SourceLocationArn": source, "DestinationLocationArn": destination, "Name": "x"}
    (workdir / "request.json").write_text(json.dumps(request))

    task = ok(stack, "create-task", "--cli-input-json", json.dumps(request))["TaskArn"]
    renamed = ok(
        stack, "create-task", "--cli-input-json", f"file://{workdir}/request.json", "--name", "y"
    )["TaskArn"]
    missing = run_cli(
        stack, "create-task", "--cli-input-json", json.dumps({"SourceLocationArn": source})
    )

    described = ok(stack, "describe-task", "--task-arn", task)
    assert (described["SourceLocationArn"], described["DestinationLocationArn"]) == (
        source,
        destination,
    )
    assert described["Name"] == "x"
    assert ok(stack, "describe-task", "--task-arn", renamed)["Name"] == "y"
    assert missing.returncode == 252
    assert '"DestinationLocationArn" (--destination-location-arn)' in missing.stderr
    assert "Parameter validation failed" in missing.stderr


def test_help_and_mistakes_show_every_command_and_a_command_parses_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    commands = [kebab(operation) for operation in SHAPES]
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    assert all(command in shown for command in ["dev", "worker", *commands])
    # A misspelt command after --address: argparse's error names every command to choose from.
    with pytest.raises(SystemExit) as ended:
        main(["--address", "127.0.0.1:9", "describe-tsk"])
    assert ended.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'describe-tsk'" in error
    assert all(f"'{command}'" in error for command in commands)
    # A command's own help has its flags.
    with pytest.raises(SystemExit):
        main(["describe-task", "--help"])
    assert "--task-arn" in capsys.readouterr().out
    argv = ["--address=127.0.0.1:9", "describe-task", "--task-arn", "T"]
    args = build_parser(argv).parse_args(argv)
    assert (args.address, args.operation, args.TaskArn) == ("127.0.0.1:9", "DescribeTask", "T")
