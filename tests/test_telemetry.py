"""OpenTelemetry: the spans and metrics of a real execution, read back from the SDK's in-memory
exporter and reader of a worker run in the test's own process; and OTLP over HTTP from a
`ferry worker` to a collector of the test's, when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

import asyncio
import gc
import gzip
import http.server
import os
import signal
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import Stack
from helpers import (
    create_task,
    differences,
    empty_folder,
    free_port,
    run,
    start,
    until,
    wait,
    write,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from test_agents import activate

from api import Ferry
from api.client import connect
from models.errors import InvalidRequestException
from worker.main import run_worker
from worker.telemetry import MetricDrain, Telemetry, from_environment
from worker.telemetry import start as start_telemetry

# OpenTelemetry's tracer provider is set once per process: one for this module's tests.
SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()
TELEMETRY = start_telemetry(SPANS, METRICS, "ferry-test")


@asynccontextmanager
async def worker_in_this_process(stack: Stack, telemetry: Telemetry) -> AsyncIterator[Ferry]:
    """A worker with `telemetry`, on the stack's server; on leaving, everything is exported."""
    client = await connect(stack.address, **telemetry.client_options())
    stop = asyncio.Event()
    async with telemetry.exporting(client, agents_every=1.0):
        worker = asyncio.create_task(run_worker(client, str(stack.directory / "staging"), stop, 2))
        try:
            yield Ferry(client)
        finally:
            stop.set()
            await worker


def points(name: str, **attributes: str) -> list[Any]:
    """The data points of metric `name` whose attributes include `attributes`."""
    data = METRICS.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
        if attributes.items() <= dict(point.attributes or {}).items()
    ]


def total(name: str, **attributes: str) -> int:
    return sum(point.value for point in points(name, **attributes))


async def test_an_execution_is_one_trace_of_phases_and_batches_with_its_metrics(
    own_stack: Callable[..., Stack], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = own_stack(workers=0)
    monkeypatch.setenv("FERRY_BATCH_FILES", "4")  # 12 files: three batches of files
    source, destination = workdir / "source", workdir / "destination"
    for number in range(12):
        write(source / f"d{number % 2}" / f"f{number:02d}", os.urandom(1000 + number))
    empty_folder(destination)
    write(destination / "stale", b"old")

    async with worker_in_this_process(stack, TELEMETRY) as ferry:
        task = await create_task(
            ferry, source, destination, Options={"PreserveDeletedFiles": "REMOVE"}
        )
        result = await run(ferry, task)
        arn = result["TaskExecutionArn"]
        assert result["Status"] == "SUCCESS", result["Result"]
        assert differences(source, destination) == []
        # And an agent, ONLINE: up.
        _, agent_arn = await activate(stack, ferry, workdir / "agent", "near-the-data")
        await until(lambda: [p.value for p in points("ferry_agent_up", agent_arn=agent_arn)] == [1])
        assert points("ferry_agent_up", agent_arn=agent_arn, agent_name="near-the-data")

    spans = [s for s in SPANS.get_finished_spans() if _attribute(s, "task_execution_arn") == arn]
    roots = [span for span in spans if span.name == "TaskExecution"]
    assert len(roots) == 1
    root = roots[0]
    assert root.parent is None
    assert root.status.status_code != StatusCode.ERROR
    assert _attribute(root, "task_arn") == task
    assert _attribute(root, "source.location_type") == "LOCAL"
    assert _attribute(root, "destination.location_type") == "LOCAL"
    assert _attribute(root, "status") == "SUCCESS"
    assert _attribute(root, "files_transferred") == result["FilesTransferred"]
    assert (
        _attribute(root, "bytes_written")
        == result["BytesWritten"]
        == sum(1000 + number for number in range(12))
    )
    # Everything of the execution is in the root's trace, and nothing else is.
    assert {span.context.trace_id for span in spans} == {root.context.trace_id}

    children = _children(spans)
    phases = {span.name: span for span in children[root.context.span_id]}
    assert {"LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING"} <= set(phases)
    assert set(phases) <= {"QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING"}
    assert phases["LAUNCHING"].end_time <= phases["PREPARING"].start_time
    # Twelve files, two folders and the root.
    assert _attribute(phases["PREPARING"], "files_to_transfer") == 15
    assert result["EstimatedFilesToTransfer"] == 15
    assert _attribute(phases["PREPARING"], "files_to_delete") == 1
    assert _attribute(phases["TRANSFERRING"], "bytes_written") == result["BytesWritten"]
    assert _attribute(phases["VERIFYING"], "files_verified") == result["FilesVerified"]
    for phase in phases.values():
        assert root.start_time <= phase.start_time <= phase.end_time <= root.end_time

    transfers = children[phases["TRANSFERRING"].context.span_id]
    assert {span.name for span in transfers} == {"TransferBatch"}
    files = [span for span in transfers if _attribute(span, "step") == "files"]
    assert sorted(_attribute(span, "batch") for span in files) == [0, 1, 2]
    assert sum(_attribute(span, "bytes_written") for span in transfers) == result["BytesWritten"]
    assert sum(_attribute(span, "files_deleted") for span in transfers) == 1
    for span in transfers:
        assert phases["TRANSFERRING"].start_time <= span.start_time
        assert span.end_time <= phases["TRANSFERRING"].end_time
    verifications = children[phases["VERIFYING"].context.span_id]
    assert {span.name for span in verifications} == {"VerifyBatch"}
    # The files' contents, in batches; folders are compared while PREPARING's listing is read.
    assert sum(_attribute(span, "files_verified") for span in verifications) == 12
    assert result["FilesVerified"] == 15

    # Metrics, by execution and location type; Temporal's own beside them.
    mine = {
        "task_execution_arn": arn,
        "source_location_type": "LOCAL",
        "destination_location_type": "LOCAL",
    }
    assert total("ferry_files_transferred", **mine) == result["FilesTransferred"]
    assert total("ferry_bytes_written", **mine) == result["BytesWritten"]
    assert total("ferry_files_deleted", **mine) == result["FilesDeleted"] == 1
    assert total("ferry_files_verified", **mine) == result["FilesVerified"]
    assert total("ferry_files_skipped", **mine) == result["FilesSkipped"]
    assert total("ferry_files_failed", **mine) == 0
    assert sum(point.count for point in points("ferry_queued_duration", **mine)) == 1
    durations = {
        dict(point.attributes)["phase"]: point for point in points("ferry_phase_duration", **mine)
    }
    assert set(durations) == {"LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING"}
    assert durations["TRANSFERRING"].sum == pytest.approx(
        result["Result"]["TransferDuration"], abs=2
    )
    throughput = points("ferry_batch_throughput", **mine)
    assert sum(point.count for point in throughput) == len(files)
    assert all(point.min > 0 for point in throughput)
    # Temporal's SDK metrics, through the same meter provider.
    assert points("temporal_activity_execution_latency", activity_type="TransferBatch")
    assert total("temporal_workflow_completed", workflow_type="TaskExecution") >= 1


def test_metrics_of_meters_made_and_dropped_keep_their_own_attributes() -> None:
    """Each batch makes a meter with its execution's attributes and drops it; Core then frees
    the attribute set, and a later one may reuse its id(). Every update must still land under
    its own attributes (temporalio's MetricsExporter put 299 of these 300 under others')."""
    buffer = MetricBuffer(10_000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    reader = InMemoryMetricReader()
    drain = MetricDrain(buffer, MeterProvider(metric_readers=[reader]))
    for number in range(300):
        meter = runtime.metric_meter.with_additional_attributes({"execution": str(number)})
        meter.create_counter("ferry_files_transferred").add(number + 1)
        meter.create_histogram("ferry_batch_throughput").record(number)
        del meter
        gc.collect()
        drain.drain()

    data = reader.get_metrics_data()
    assert data is not None
    found = {
        (metric.name, point.attributes["execution"]): point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    }
    for number in range(300):
        assert found["ferry_files_transferred", str(number)].value == number + 1
        assert found["ferry_batch_throughput", str(number)].sum == number


def _attribute(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(f"ferry.{name}")


def _children(spans: list[ReadableSpan]) -> dict[int, list[ReadableSpan]]:
    children: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        if span.parent is not None:
            children[span.parent.span_id].append(span)
    return children


def test_without_an_endpoint_nothing_is_set_up_and_a_grpc_protocol_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in list(os.environ):
        if variable.startswith("OTEL_"):
            monkeypatch.delenv(variable)
    assert from_environment("ferry-worker") is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(InvalidRequestException, match=r"OTEL_EXPORTER_OTLP_PROTOCOL=grpc.*4318"):
        from_environment("ferry-worker")


class _Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP receiver: keeps the requests posted to /v1/traces and /v1/metrics."""

    def __init__(self) -> None:
        self.received: dict[str, list[bytes]] = defaultdict(list)
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.received[self.path].append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self, arn: str) -> list[Any]:
        """The spans received of execution `arn`; each resource must be Ferry's test service."""
        found = []
        for body in self.received["/v1/traces"]:
            for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}
                assert service["service.name"] == "ferry-under-test"
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        values = {a.key: a.value.string_value for a in span.attributes}
                        if values.get("ferry.task_execution_arn") == arn:
                            found.append(span)
        return found

    def metric_names(self) -> set[str]:
        return {
            metric.name
            for body in self.received["/v1/metrics"]
            for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }


def _value(span: Any, key: str) -> Any:
    """An attribute of an OTLP span: a string or an integer."""
    for attribute in span.attributes:
        if attribute.key == key:
            value = attribute.value
            return value.string_value if value.HasField("string_value") else value.int_value
    raise KeyError(key)


def exporting_to(collector: _Collector) -> dict[str, str]:
    """A worker's environment for OTLP to `collector`, exporting often."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_SERVICE_NAME": "ferry-under-test",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }


@pytest.fixture
def collector() -> Iterator[_Collector]:
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


async def test_a_worker_exports_over_otlp_when_the_endpoint_is_set(
    own_stack: Callable[..., Stack], workdir: Path, collector: _Collector
) -> None:
    stack = own_stack(**exporting_to(collector))
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", workdir / "destination"
    write(source / "file", b"exported")
    empty_folder(destination)
    result = await run(ferry, await create_task(ferry, source, destination))
    assert result["Status"] == "SUCCESS"
    arn = result["TaskExecutionArn"]

    wanted = {"TaskExecution", "TRANSFERRING", "TransferBatch"}
    await until(lambda: wanted <= {span.name for span in collector.spans(arn)}, 30)
    await until(lambda: {"ferry_bytes_written", "ferry_phase_duration"} <= collector.metric_names())


async def test_a_trace_survives_the_crash_of_the_worker_running_the_execution(
    own_stack: Callable[..., Stack], workdir: Path, collector: _Collector
) -> None:
    environment = {**exporting_to(collector), "FERRY_BATCH_FILES": "4"}
    stack = own_stack(**environment)
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", workdir / "destination"
    files = [f"file-{number:02d}.bin" for number in range(24)]
    for name in files:
        write(source / name, os.urandom(256 * 1024))
    empty_folder(destination)
    # About six seconds of TRANSFERRING; the worker dies in the middle of it.
    task = await create_task(ferry, source, destination, Options={"BytesPerSecond": 1 << 20})
    arn = await start(ferry, task)
    await until(lambda: sum(1 for name in files if (destination / name).exists()) >= 8)
    stack.stop_worker(stack.workers[0], signal.SIGKILL)
    stack.start_worker(**environment)
    result = await wait(ferry, arn)
    assert result["Status"] == "SUCCESS", result["Result"]

    # The new worker replayed the history: the spans begun before the crash are exported once,
    # by it, with the ids and start times they had; the batches it ran are beneath them.
    await until(lambda: "TaskExecution" in {span.name for span in collector.spans(arn)}, 30)
    spans = collector.spans(arn)
    roots = [span for span in spans if span.name == "TaskExecution"]
    assert len(roots) == 1 and not roots[0].parent_span_id
    phases = [span for span in spans if span.parent_span_id == roots[0].span_id]
    names = [span.name for span in phases if span.name != "QUEUED"]
    assert sorted(names) == ["LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING"]
    assert {span.trace_id for span in spans} == {roots[0].trace_id}
    transferring = next(span for span in phases if span.name == "TRANSFERRING")
    batches = [span for span in spans if span.name == "TransferBatch"]
    assert batches and all(span.parent_span_id == transferring.span_id for span in batches)
    # The batches the dead worker was running never ended; every batch that ended is there once
    # (one that finished on the dead worker may not have been sent before it died).
    finished = [span for span in batches if span.status.code != span.status.STATUS_CODE_ERROR]
    indexes = [(_value(span, "ferry.step"), _value(span, "ferry.batch")) for span in finished]
    assert len(indexes) == len(set(indexes))
    assert (
        0
        < sum(_value(span, "ferry.bytes_written") for span in finished)
        <= (result["BytesWritten"])
    )
    assert roots[0].start_time_unix_nano <= transferring.start_time_unix_nano
