"""`ferry`: the DataSync operations as `aws datasync` spells them, the access keys that may call
the endpoint as `aws iam` spells them, plus the commands that run Ferry itself (`dev`, `worker`,
`api`, `demo`).

Every operation's flags come from its request shape: `--source-location-arn` for
SourceLocationArn, and structures (`--options`, `--includes`) in shorthand or JSON. Responses
print as JSON; errors read like the AWS CLI's, with its exit codes (252 bad syntax, 254 a
rejected request).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from activities.staging import StagingError
from api.requests import ACCESS_KEY_SHAPES, SHAPES
from api.secrets import SecretError
from models.errors import DataSyncError, InvalidRequestException
from starter.shorthand import ShorthandError, parse_value

PROCESSES_HELP = (
    "processes for listing and batches (FERRY_PROCESSES, default 1 per core, at least 2)"
)
OPERATIONS = {**SHAPES, **ACCESS_KEY_SHAPES}
DEFAULT_API_PORT = 8090
EXIT_FAILED = 1
EXIT_SYNTAX = 252
EXIT_REJECTED = 254


def kebab(name: str) -> str:
    """`SourceLocationArn` -> `source-location-arn`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _structured(annotation: Any) -> tuple[bool, bool]:
    """(takes shorthand or JSON, is a list) for a request field's type."""
    for candidate in (annotation, *get_args(annotation)):
        origin = get_origin(candidate)
        if origin is list:
            return True, True
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return True, False
        if get_args(candidate) and candidate is not annotation:
            nested = _structured(candidate)
            if nested[0]:
                return nested
    return False, False


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; given arguments that name an operation, with that one's
    only: a parser per operation costs a fresh process more than the operation does."""
    wanted = _operation_in(argv)
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Ferry: self-hosted data transfers with the AWS DataSync API, on Temporal.",
    )
    parser.add_argument(
        "--address",
        help="Temporal frontend host:port (default: TEMPORAL_ADDRESS, else localhost:7233)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    dev = commands.add_parser(
        "dev", help="run Temporal's dev server and a worker, in the foreground"
    )
    _stack_arguments(dev)
    dev.add_argument("--headless", action="store_true", help="without the Temporal UI")
    dev.add_argument("--processes", type=int, help=PROCESSES_HELP)
    _endpoint_arguments(dev, "127.0.0.1")
    dev.add_argument(
        "--no-api", action="store_true", help="without the DataSync endpoint (--api-port)"
    )

    api = commands.add_parser(
        "api",
        help="serve DataSync's API (boto3, the AWS CLI, Terraform) against an existing Temporal",
    )
    api.add_argument("--host", default="127.0.0.1", help="the address to listen on (127.0.0.1)")
    api.add_argument("--port", type=int, default=DEFAULT_API_PORT, help="its port (8090)")
    api.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    api.add_argument("--tls-key", help="and this private key (PEM)")
    api.add_argument("--data-dir", help="Ferry's data (FERRY_DATA_DIR): its secret.key")

    worker = commands.add_parser("worker", help="run a worker against an existing Temporal")
    worker.add_argument("--data-dir", help="Ferry's data (FERRY_DATA_DIR)")
    _staging_argument(worker)
    worker.add_argument("--processes", type=int, help=PROCESSES_HELP)
    worker.add_argument(
        "--agent",
        action="store_true",
        help="run as an agent: activate with a key (see create-agent), then serve that agent",
    )
    worker.add_argument(
        "--state-dir", help="where an agent keeps its key and identity (default DATA_DIR/agent)"
    )
    worker.add_argument(
        "--activation-port",
        type=int,
        help="an agent: hand out its activation key over HTTP on this port, as DataSync's agent "
        "does on port 80 (Terraform's aws_datasync_agent ip_address)",
    )
    worker.add_argument(
        "--activation-host", default="0.0.0.0", help="and on this address (0.0.0.0)"
    )

    logs = commands.add_parser(
        "logs", help="an execution's log lines (its task's LogLevel), from the staging store"
    )
    logs.add_argument("--task-execution-arn", required=True)
    logs.add_argument("--data-dir", help="Ferry's data (FERRY_DATA_DIR)")
    _staging_argument(logs)

    demo = commands.add_parser(
        "demo", help="copy a sample tree between two local locations and show the execution"
    )
    _stack_arguments(demo)
    demo.add_argument(
        "--exit", action="store_true", help="stop the embedded stack at the end (no waiting)"
    )

    for operation, shape in OPERATIONS.items():
        if wanted is not None and kebab(operation) != wanted:
            continue
        what = "DataSync" if operation in SHAPES else "Ferry's endpoint (as IAM's)"
        sub = commands.add_parser(kebab(operation), help=f"{what} {operation}")
        sub.set_defaults(operation=operation)
        for name, field in shape.model_fields.items():
            if field.annotation in (bool, bool | None):
                sub.add_argument(f"--{kebab(name)}", dest=name, action="store_true", default=None)
                continue
            structured, many = _structured(field.annotation)
            # Required, but checked after --cli-input-json, which may give it instead.
            sub.add_argument(
                f"--{kebab(name)}",
                dest=name,
                nargs="+" if many else None,
                metavar="JSON|SHORTHAND" if structured else name.upper(),
                help="required (here or in --cli-input-json)" if field.is_required() else None,
            )
        sub.add_argument(
            "--cli-input-json",
            help="the whole request as JSON (or file://PATH); flags given beside it win",
        )
        if operation == "StartTaskExecution":
            sub.add_argument(
                "--wait",
                action="store_true",
                help="wait for the end; show progress on a terminal; exit 0 only on SUCCESS",
            )
    return parser


def _operation_in(argv: list[str] | None) -> str | None:
    """The operation's command `argv` names, if it names one before anything but --address."""
    arguments = iter(argv or ())
    for argument in arguments:
        if argument == "--address":
            next(arguments, None)
        elif not argument.startswith("--address="):
            # Anything else (help, another command, a mistake) gets the parser of every command.
            return argument if argument in map(kebab, OPERATIONS) else None
    return None


def _stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="Ferry's data (FERRY_DATA_DIR, ~/.local/share/ferry)")
    parser.add_argument("--port", type=int, default=7233, help="Temporal gRPC port (7233)")
    parser.add_argument("--ui-port", type=int, default=8233, help="Temporal UI port (8233)")
    _staging_argument(parser)


def _endpoint_arguments(parser: argparse.ArgumentParser, host: str) -> None:
    parser.add_argument(
        "--api-port", type=int, default=DEFAULT_API_PORT, help="the DataSync endpoint's port (8090)"
    )
    parser.add_argument("--api-host", default=host, help=f"and its address ({host})")


def _staging_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--staging-url",
        help="the staging store shared by every worker and agent: s3://BUCKET/PREFIX (AWS "
        "credentials, region and endpoint as the AWS SDKs read them) or a directory "
        "(FERRY_STAGING_URL; default DATA_DIR/staging)",
    )


class MissingParameters(Exception):
    """A request without a field its operation requires, after the flags and --cli-input-json:
    refused before anything is sent, as the AWS CLI refuses it."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(
            "Parameter validation failed:\n"
            + "\n".join(
                f'Missing required parameter in input: "{name}" (--{kebab(name)})' for name in names
            )
        )


def request_from(args: argparse.Namespace) -> dict[str, Any]:
    """The request: --cli-input-json's fields, then the flags given, which win."""
    shape = OPERATIONS[args.operation]
    request: dict[str, Any] = {}
    if args.cli_input_json:
        whole = parse_value(args.cli_input_json)
        if not isinstance(whole, dict):
            raise ShorthandError(
                f"--cli-input-json: the request must be a JSON object, not {whole!r}"
            )
        request.update(whole)
    for name, field in shape.model_fields.items():
        value = getattr(args, name)
        if value is None:
            continue
        structured, many = _structured(field.annotation)
        if many:
            value = [parse_value(v) if structured and _looks_structured(v) else v for v in value]
            if len(value) == 1 and isinstance(value[0], list):
                value = value[0]
        elif structured:
            value = parse_value(value)
        elif isinstance(value, str) and value.startswith("file://"):
            value = Path(value.removeprefix("file://")).read_text()  # as the AWS CLI reads it
        request[name] = value
    absent = [
        name
        for name, field in shape.model_fields.items()
        if field.is_required() and name not in request
    ]
    if absent:
        raise MissingParameters(absent)
    return request


def _looks_structured(value: str) -> bool:
    return "=" in value or value.lstrip().startswith(("{", "[")) or value.startswith("file://")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot print {type(value).__name__}")


def print_json(response: dict[str, Any]) -> None:
    print(json.dumps(response, indent=4, default=_json_default, ensure_ascii=False))


async def run_operation(args: argparse.Namespace, request: dict[str, Any]) -> int:
    from api import Ferry, method_name
    from api.client import connect

    ferry = Ferry(await connect(args.address))
    call = getattr(ferry, method_name(args.operation))
    response = await call(request)
    if "MaxResults" not in request and "NextToken" not in request:
        response = await _every_page(call, request, response)
    if not getattr(args, "wait", False):
        print_json(response)
        return 0
    from starter.progress import follow

    final = await follow(ferry, response["TaskExecutionArn"], live=sys.stderr.isatty())
    print_json(final)
    return 0 if final.get("Status") == "SUCCESS" else EXIT_FAILED


async def _every_page(
    call: Any, request: dict[str, Any], response: dict[str, Any]
) -> dict[str, Any]:
    """As the AWS CLI does: a List* asked without MaxResults or NextToken follows NextToken
    and prints one list of every page."""
    while token := response.pop("NextToken", None):
        following = await call({**request, "NextToken": token})
        for field, entries in following.items():
            if isinstance(entries, list):
                response[field] = [*response.get(field, []), *entries]
        response["NextToken"] = following.get("NextToken")
    return response


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("FERRY_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    # But what the workflows say (an execution's end, its staging traffic, limits changing).
    logging.getLogger("temporalio.workflow").setLevel(logging.INFO)
    logging.getLogger("smbprotocol").setLevel(logging.WARNING)  # it logs every request at INFO
    try:
        if args.command in ("dev", "worker", "demo", "api"):
            # Exported to the processes they start: workers open the secrets they use. Only the
            # embedded stack makes a key; a worker elsewhere must be given the one in use.
            from api.secrets import use_key_file
            from api.settings import data_dir

            use_key_file(data_dir(args.data_dir), make=args.command in ("dev", "demo"))
        if args.command == "dev":
            from api.settings import data_dir
            from starter.dev import run_dev, staging_url

            directory = data_dir(args.data_dir)
            return asyncio.run(
                run_dev(
                    directory,
                    args.port,
                    args.ui_port,
                    not args.headless,
                    _processes(args),
                    staging_url(args.staging_url, directory),
                    None if args.no_api else (args.api_host, args.api_port),
                )
            )
        if args.command == "api":
            return asyncio.run(_api(args))
        if args.command == "worker":
            return asyncio.run(_worker(args))
        if args.command == "logs":
            return _logs(args)
        if args.command == "demo":
            from starter.demo import run_demo

            return asyncio.run(run_demo(args))
        try:
            request = request_from(args)
        except ShorthandError as error:
            print(f"\nError parsing parameter: {error}", file=sys.stderr)
            return EXIT_SYNTAX
        except MissingParameters as error:
            print(f"\n{error}", file=sys.stderr)
            return EXIT_SYNTAX
        return asyncio.run(run_operation(args, request))
    except DataSyncError as error:
        operation = getattr(args, "operation", args.command)
        print(
            f"\nAn error occurred ({error.code}) when calling the {operation} operation: "
            f"{error.message}",
            file=sys.stderr,
        )
        return EXIT_REJECTED
    except (StagingError, SecretError) as error:
        print(f"\n{error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


async def _worker(args: argparse.Namespace) -> int:
    from api.client import ensure_search_attributes
    from api.settings import data_dir
    from starter.dev import staging_url, stop_signals
    from worker.main import run_worker, worker_client

    if (args.state_dir or args.activation_port) and not args.agent:
        raise InvalidRequestException(
            "--state-dir and --activation-port are for an agent: add --agent."
        )
    service = "ferry-agent" if args.agent else "ferry-worker"
    staging = staging_url(args.staging_url, data_dir(args.data_dir))
    async with worker_client(args.address, service=service) as client:
        await ensure_search_attributes(client)
        stop = asyncio.Event()
        stop_signals(stop)
        if args.agent:
            from worker.agent import run_agent

            state = Path(args.state_dir) if args.state_dir else data_dir(args.data_dir) / "agent"
            activation = (
                (args.activation_host, args.activation_port) if args.activation_port else None
            )
            return await run_agent(client, state, staging, stop, _processes(args), activation)
        await run_worker(client, staging, stop, _processes(args))
    return 0


async def _api(args: argparse.Namespace) -> int:
    from api import Ferry
    from api.client import connect
    from starter.dev import stop_signals
    from starter.endpoint import serve_endpoint

    if bool(args.tls_cert) != bool(args.tls_key):
        raise InvalidRequestException(
            "--tls-cert and --tls-key go together: give both, or neither."
        )
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    endpoint = await serve_endpoint(Ferry(await connect(args.address)), args.host, args.port, tls)
    print(f"DataSync API: {endpoint.url}", file=sys.stderr)
    stop = asyncio.Event()
    stop_signals(stop)
    await stop.wait()
    await endpoint.stop()
    return 0


def _logs(args: argparse.Namespace) -> int:
    from activities.staging import open_staging
    from api.settings import data_dir
    from models.arn import TASK_EXECUTION_ARN
    from starter.dev import staging_url

    if not TASK_EXECUTION_ARN.match(args.task_execution_arn):
        raise InvalidRequestException(
            f"--task-execution-arn: {args.task_execution_arn!r} is not a task execution ARN "
            "(arn:aws:datasync:REGION:ACCOUNT:task/task-ID/execution/exec-ID)."
        )
    staging = staging_url(args.staging_url, data_dir(args.data_dir))
    printed = False
    for line in open_staging(staging).log_lines(args.task_execution_arn):
        sys.stdout.write(line)
        printed = True
    if not printed:
        raise InvalidRequestException(
            f"No log lines for {args.task_execution_arn} in {staging}: its LogLevel was OFF, it "
            "logged nothing yet, or its workers keep their staging store elsewhere "
            "(--staging-url)."
        )
    return 0


def _processes(args: argparse.Namespace) -> int | None:
    return args.processes or int(os.environ.get("FERRY_PROCESSES", 0)) or None


def run() -> None:
    """The `ferry` executable."""
    code = main()
    # Leave without interpreter teardown: the Temporal client's Rust threads can outlive it and
    # abort the process in finalization (temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
