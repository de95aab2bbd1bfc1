"""An execution's spans and metrics, made from its workflow.

One trace per execution: a root span from StartTime to the end, a span per phase (QUEUED,
LAUNCHING, PREPARING, TRANSFERRING, VERIFYING), and beneath each phase the spans of its batch
activities, which Temporal's OpenTelemetry plugin parents through the activities' headers.
Spans are replay-safe (the plugin's tracer provider): a span is exported once, by the worker
that ends it, with the ids and start time it was given first. A run that continues as new ends
its open spans; the next run's spans join the trace through the root's context, carried in the
state. Metrics go through Temporal's workflow meter, which records nothing during a replay.
Without telemetry configured, the tracer and the meter do nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from opentelemetry import context, propagate, trace
    from opentelemetry.trace import Span, Status, StatusCode

    from models.execution import Counters, ExecutionInput, ExecutionState, metric_attributes
    from models.staging import StagingTraffic


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


class ExecutionTelemetry:
    def __init__(self, execution: ExecutionInput, state: ExecutionState) -> None:
        self.execution = execution
        self.state = state
        self.attributes: dict[str, str] = {
            "ferry.task_arn": execution.TaskArn,
            "ferry.task_execution_arn": execution.TaskExecutionArn,
            "ferry.source.location_type": execution.Source.LocationType,
            "ferry.destination.location_type": execution.Destination.LocationType,
        }
        self._tracer = trace.get_tracer("ferry.execution")
        self._root: Span | None = None
        self._phases: dict[str, Span] = {}
        meter = workflow.metric_meter().with_additional_attributes(
            metric_attributes(execution.TaskExecutionArn, execution.Source, execution.Destination)
        )
        self._counters = {
            name: meter.create_counter(f"ferry_{name}", "As DescribeTaskExecution counts them")
            for name in Counters().named()
        }
        self._staging = {
            name: meter.create_counter(
                f"ferry_staging_{name}", "What the execution asked of the staging store"
            )
            for name in StagingTraffic.model_fields
        }
        self._phase_duration = meter.create_histogram_timedelta(
            "ferry_phase_duration", "How long each phase of an execution took", "ms"
        )
        self._queued = meter.create_histogram_timedelta(
            "ferry_queued_duration", "How long an execution waited in QUEUED", "ms"
        )

    def open(self) -> None:
        """At the start of each run: the execution's root span, made by its first run."""
        if not self.state.trace:
            self._root = self._tracer.start_span(
                "TaskExecution",
                context=context.Context(),  # a trace of its own, whoever started it
                start_time=_ns(self.execution.StartTime),
                attributes=self.attributes,
            )
            carrier: dict[str, str] = {}
            propagate.inject(carrier, trace.set_span_in_context(self._root))
            self.state.trace = carrier

    def _parent(self) -> context.Context:
        if self._root is not None:
            return trace.set_span_in_context(self._root)
        return propagate.extract(self.state.trace)

    def begin(self, phase: str, at: datetime | None = None) -> None:
        """A phase's span, from `at` (now); a phase already begun keeps its span."""
        if phase not in self._phases:
            self._phases[phase] = self._tracer.start_span(
                phase,
                context=self._parent(),
                start_time=_ns(at or workflow.now()),
                attributes=self.attributes,
            )

    def end(self, phase: str, status: str, started: datetime | None, **attributes: int) -> None:
        """A phase ended (SUCCESS or ERROR): its span, with the execution's counters so far and
        `attributes`, and its duration."""
        now = workflow.now()
        self._phase_duration.record(
            now - (started or now), {"phase": phase, "phase_status": status}
        )
        span = self._phases.pop(phase, None)
        if span is not None:
            span.set_attributes(self._counted())
            span.set_attributes({f"ferry.{name}": value for name, value in attributes.items()})
            if status == "ERROR":
                span.set_status(Status(StatusCode.ERROR))
            span.end(_ns(workflow.now()))

    def queued(self, since: datetime, until: datetime) -> None:
        """The time an execution waited for its task and agents."""
        self._queued.record(until - since)
        if until - since >= timedelta(milliseconds=1):
            self.begin("QUEUED", since)
            span = self._phases.pop("QUEUED")
            span.end(_ns(until))

    @contextmanager
    def within(self, phase: str | None) -> Iterator[None]:
        """Activities started here are children of `phase`'s span (None: of the root's)."""
        span = self._phases.get(phase) if phase else None
        token = context.attach(trace.set_span_in_context(span) if span else self._parent())
        try:
            yield
        finally:
            context.detach(token)

    def _counted(self) -> dict[str, int]:
        """The execution's counters, as span attributes: ferry.files_transferred, ..."""
        return {f"ferry.{name}": value for name, value in self.state.counters.named().items()}

    def count(self, counters: Counters) -> None:
        for name, value in counters.named().items():
            if value:
                self._counters[name].add(value)

    def staged(self, traffic: StagingTraffic) -> None:
        """ferry_staging_requests, ferry_staging_bytes_written, ferry_staging_bytes_read."""
        for name, value in traffic:
            if value:
                self._staging[name].add(value)

    def close(self, status: str | None = None, code: str | None = None) -> None:
        """At the end of a run: open phases end; the root ends with the execution's outcome
        (`status` None: the run continues as new)."""
        for phase in list(self._phases):
            span = self._phases.pop(phase)
            if status is None:
                span.set_attribute("ferry.continued_as_new", True)
            else:
                span.set_status(Status(StatusCode.ERROR))
            span.end(_ns(workflow.now()))
        if self._root is None:
            return
        self._root.set_attributes(self._counted())
        self._root.set_attribute("ferry.status", status or "CONTINUED_AS_NEW")
        if code:
            self._root.set_attribute("ferry.error_code", code)
            self._root.set_status(Status(StatusCode.ERROR, code))
        self._root.end(_ns(workflow.now()))
        self._root = None
