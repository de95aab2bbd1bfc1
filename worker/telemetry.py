"""OpenTelemetry for a worker: traces and metrics over OTLP when the standard
OTEL_EXPORTER_OTLP_ENDPOINT (or a signal's own endpoint) is set, and nothing when not.

Traces: Temporal's OpenTelemetry plugin carries the context from a workflow to the activities it
starts; the execution workflow makes a span for the execution and one per phase (replay-safe:
a span is exported once, by the worker that ends it, with its first start time), and each batch
activity a span beneath its phase. Metrics: Ferry's own, recorded through Temporal's metric
meters (replay-safe in workflows), and Temporal's SDK metrics, all drained from one buffer into
one OpenTelemetry MeterProvider, so that they reach the same collector with the same resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import (
    OpenTelemetryPlugin,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    BufferedMetric,
    MetricBuffer,
    Runtime,
    TelemetryConfig,
)

from api import Ferry
from models.errors import InvalidRequestException

log = logging.getLogger("ferry.telemetry")

# Metric updates between two drains (every second); Core drops updates beyond it.
BUFFERED_METRIC_UPDATES = 100_000
AGENT_REPORT_SECONDS = 30.0


@dataclass
class Telemetry:
    """What a worker passes to Temporal's client, and runs beside it."""

    tracer_provider: ReplaySafeTracerProvider | None
    meter_provider: MeterProvider | None
    buffer: MetricBuffer | None

    def client_options(self) -> dict[str, Any]:
        """For `Client.connect`: the tracing plugin and a runtime whose metrics are buffered."""
        options: dict[str, Any] = {}
        if self.tracer_provider is not None:
            options["plugins"] = [OpenTelemetryPlugin()]
        if self.buffer is not None:
            options["runtime"] = Runtime(telemetry=TelemetryConfig(metrics=self.buffer))
        return options

    @asynccontextmanager
    async def exporting(
        self, client: Client, agents_every: float = AGENT_REPORT_SECONDS
    ) -> AsyncIterator[None]:
        """While the worker runs: drain the metric buffer, and report whether each agent is
        up; flush everything when it stops."""
        try:
            if self.buffer is not None and self.meter_provider is not None:
                async with MetricDrain(self.buffer, self.meter_provider).running():
                    reporting = asyncio.create_task(_report_agents(client, agents_every))
                    try:
                        yield
                    finally:
                        reporting.cancel()
            else:
                yield
        finally:
            if self.tracer_provider is not None:
                self.tracer_provider.force_flush()
            if self.meter_provider is not None:
                self.meter_provider.force_flush()


class MetricDrain:
    """Moves the updates Temporal's runtime buffers (Ferry's metrics and Temporal's own) into
    OpenTelemetry instruments, every second and once more when the worker stops.

    Not temporalio's MetricsExporter: it remembers instruments and attribute sets by the id() of
    the buffer's objects, which Core frees with the meter that made them, so a new attribute set
    can be given a freed one's id and its updates land under the old set's attributes (seen in
    the telemetry test under load: an execution's phase durations recorded under the attributes
    of Temporal's poll requests). Here both are known by what they hold."""

    def __init__(self, buffer: MetricBuffer, provider: MeterProvider, every: float = 1.0) -> None:
        self._buffer = buffer
        self._meter = provider.get_meter("ferry")
        self._every = every
        self._instruments: dict[tuple[str, int], Any] = {}
        # Gauges: the last value of each attribute set, read by OpenTelemetry's export thread.
        self._gauges: dict[str, dict[frozenset[tuple[str, Any]], Observation]] = {}
        self._lock = threading.Lock()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        draining = asyncio.create_task(self._drain_every())
        try:
            yield
        finally:
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draining
            self.drain()  # what was recorded since the last round

    async def _drain_every(self) -> None:
        while True:
            self.drain()
            await asyncio.sleep(self._every)

    def drain(self) -> None:
        for update in self._buffer.retrieve_updates():
            try:
                attributes = dict(update.attributes)
                metric = update.metric
                if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                    self._instrument(metric).add(update.value, attributes)
                elif metric.kind == BUFFERED_METRIC_KIND_HISTOGRAM:
                    self._instrument(metric).record(update.value, attributes)
                else:
                    latest = self._gauge(metric)
                    with self._lock:
                        latest[frozenset(attributes.items())] = Observation(
                            update.value, attributes
                        )
            except Exception as error:  # a metric must never stop the worker
                log.warning("could not record metric %s: %s", update.metric.name, error)

    def _instrument(self, metric: BufferedMetric) -> Any:
        key = (metric.name, metric.kind)
        if key not in self._instruments:
            create = (
                self._meter.create_counter
                if metric.kind == BUFFERED_METRIC_KIND_COUNTER
                else self._meter.create_histogram
            )
            self._instruments[key] = create(
                metric.name, unit=metric.unit or "", description=metric.description or ""
            )
        return self._instruments[key]

    def _gauge(self, metric: BufferedMetric) -> dict[frozenset[tuple[str, Any]], Observation]:
        if metric.name not in self._gauges:
            latest: dict[frozenset[tuple[str, Any]], Observation] = {}
            self._gauges[metric.name] = latest

            def observe(_: CallbackOptions) -> Iterable[Observation]:
                with self._lock:
                    return list(latest.values())

            self._meter.create_observable_gauge(
                metric.name,
                callbacks=[observe],
                unit=metric.unit or "",
                description=metric.description or "",
            )
        return self._gauges[metric.name]


async def _report_agents(client: Client, every: float) -> None:
    """ferry_agent_up: 1 for each agent ONLINE (its worker polled within 90 s), 0 for OFFLINE,
    as DescribeAgent says; from every worker, which all see the same Temporal."""
    runtime = client.service_client.config.runtime or Runtime.default()
    gauge = runtime.metric_meter.create_gauge(
        "ferry_agent_up", "1 while the agent is ONLINE, 0 while it is OFFLINE"
    )
    ferry = Ferry(client)
    while True:
        try:
            token = None
            while True:
                page = await ferry.list_agents({"NextToken": token} if token else {})
                for agent in page["Agents"]:
                    attributes = {
                        "agent_arn": agent["AgentArn"],
                        "agent_name": agent.get("Name", ""),
                    }
                    gauge.set(int(agent["Status"] == "ONLINE"), attributes)
                token = page.get("NextToken")
                if not token:
                    break
        except Exception as error:  # a metric must never stop the worker
            log.warning("could not report the agents' status: %s", error)
        await asyncio.sleep(every)


def start(
    spans: SpanExporter | None = None, metrics: MetricReader | None = None, service: str = "ferry"
) -> Telemetry:
    """Telemetry to the given exporter and reader (the tests' in-memory ones, or OTLP's). The
    tracer provider becomes OpenTelemetry's global one: the workflow code and the activities
    find it there."""
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", service),
            "service.instance.id": f"{os.getpid()}@{socket.gethostname()}",
        }
    )
    tracer_provider = None
    if spans is not None:
        tracer_provider = create_tracer_provider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(spans))
        trace.set_tracer_provider(tracer_provider)
    meter_provider = None
    buffer = None
    if metrics is not None:
        meter_provider = MeterProvider(metric_readers=[metrics], resource=resource)
        buffer = MetricBuffer(BUFFERED_METRIC_UPDATES)
    return Telemetry(tracer_provider, meter_provider, buffer)


def from_environment(service: str) -> Telemetry | None:
    """OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, for one signal each), with the exporters' other
    standard variables (headers, timeout, certificates); None when no endpoint is set."""
    common = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    traced = bool(common or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    measured = bool(common or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
    if not (traced or measured):
        return None
    for variable in (
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ):
        protocol = os.environ.get(variable, "http/protobuf")
        if protocol != "http/protobuf":
            raise InvalidRequestException(
                f"{variable}={protocol}: Ferry exports OTLP over HTTP. Set it to http/protobuf "
                "and point the endpoint at the collector's HTTP port (4318)."
            )
    # Imported only when used: the exporters pull in requests and protobuf.
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return start(
        OTLPSpanExporter() if traced else None,
        PeriodicExportingMetricReader(OTLPMetricExporter()) if measured else None,
        service,
    )
