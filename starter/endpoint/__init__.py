"""Ferry's DataSync endpoint: DataSync's own API on the wire (AWS JSON 1.1 over HTTP/1.1,
signed with SigV4), so that boto3, the AWS CLI and Terraform drive Ferry with nothing changed
but their endpoint. A thin layer over `Ferry.call`, the operations the CLI runs."""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from dataclasses import dataclass

from aiohttp import web

from api import Ferry
from models.errors import DataSyncError
from starter.endpoint import protocol
from starter.endpoint.signatures import Refused, SignatureCheck

log = logging.getLogger("ferry.endpoint")
DEFAULT_PORT = 8090


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the endpoint. aiohttp bounds a request head's size (8,190
    bytes a line, 128 headers) and closes a connection idle for `idle_seconds`, from when it
    opens and after each answer; the rest is the endpoint's own (_Connection, `handle`)."""

    head_seconds: float = 10.0  # from a request's first byte to its last header
    body_seconds: float = 30.0  # from its head to the end of its body (408 after)
    idle_seconds: float = 75.0  # a kept-alive connection without a request; > the SDKs' pools
    connections: int = 1024  # open at once; one more is answered 503 and closed
    in_flight: int = 64  # operations running at once; more wait their turn


@dataclass
class Endpoint:
    """A running endpoint: where it listens, and how to stop it."""

    runner: web.AppRunner
    server: asyncio.Server
    url: str

    async def stop(self) -> None:
        self.server.close()
        await self.runner.cleanup()


class _Connections:
    """The connections open now, each behind a _Connection."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open: dict[asyncio.BaseTransport, _Connection] = {}

    def started(self, transport: asyncio.BaseTransport | None) -> None:
        if (connection := self.open.get(transport)) is not None:  # type: ignore[arg-type]
            connection.started()

    def ended(self, transport: asyncio.BaseTransport | None) -> None:
        if (connection := self.open.get(transport)) is not None:  # type: ignore[arg-type]
            connection.ended()


class _Connection(asyncio.Protocol):
    """A client's connection in front of aiohttp's, for the two limits aiohttp has no setting
    for: a request head must arrive within `head_seconds` of its first byte (else the
    connection is closed), and no more than `connections` are open at once."""

    def __init__(self, inner: asyncio.Protocol, connections: _Connections) -> None:
        self.inner = inner
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.busy = False  # a request's head has arrived and its answer is not written yet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        limit = self.connections.limits.connections
        if len(self.connections.open) >= limit:
            transport.write(_busy(limit))  # type: ignore[attr-defined]
            transport.close()
            return
        self.connections.open[transport] = self
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.transport not in self.connections.open:
            return  # refused: more connections than the limit
        if not self.busy and self.deadline is None:
            self.deadline = asyncio.get_running_loop().call_later(
                self.connections.limits.head_seconds, self._too_slow
            )
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.transport not in self.connections.open:
            return None
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self.connections.open.pop(self.transport, None) is not None:  # type: ignore[arg-type]
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def started(self) -> None:
        self._cancel()
        self.busy = True

    def ended(self) -> None:
        self.busy = False

    def _too_slow(self) -> None:
        self.deadline = None
        seconds = self.connections.limits.head_seconds
        log.info("closed a connection whose request head took over %g s", seconds)
        if self.transport is not None:
            self.transport.close()

    def _cancel(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None


def _busy(limit: int) -> bytes:
    body = protocol.error(
        "ServiceUnavailableException",
        f"Ferry's endpoint has {limit} connections open, its limit: try again shortly.",
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Content-Type: {protocol.CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-amzn-RequestId: {uuid.uuid4()}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def endpoint_app(ferry: Ferry, limits: Limits, connections: _Connections) -> web.Application:
    check = SignatureCheck(ferry.access_keys, ferry.region)
    turns = asyncio.Semaphore(limits.in_flight)

    async def handle(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        connections.started(request.transport)
        try:
            if request.method != "POST":
                raise Refused(
                    "UnknownOperationException",
                    f"{request.method} is not an operation: POST a DataSync request.",
                    status=404,
                )
            body = await _body(request, limits.body_seconds)
            await check.check(request.method, request.raw_path, request.headers, body)
            name = protocol.operation(request.headers.get("X-Amz-Target"))
            fields = protocol.request(body)
            async with turns:
                response = await ferry.call(name, fields)
            return _reply(request_id, 200, protocol.answer(response))
        except Refused as refused:
            return _reply(request_id, refused.status, protocol.error(refused.type, refused.message))
        except DataSyncError as failure:
            return _reply(
                request_id,
                protocol.status_of(failure),
                protocol.error(failure.code, failure.message),
            )
        except Exception:
            log.exception("request %s failed", request_id)
            return _reply(
                request_id,
                500,
                protocol.error(
                    "InternalException",
                    f"Ferry failed to answer request {request_id}; its log has why.",
                ),
            )
        finally:
            connections.ended(request.transport)

    app = web.Application(client_max_size=protocol.MAX_BODY_BYTES)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _body(request: web.Request, seconds: float) -> bytes:
    if (request.content_length or 0) > protocol.MAX_BODY_BYTES:
        raise Refused(
            "SerializationException",
            f"The request body is larger than DataSync takes ({protocol.MAX_BODY_BYTES} bytes).",
            status=413,
            prefix="",
        )
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Refused(
            "SerializationException",
            f"The request body is larger than DataSync takes ({protocol.MAX_BODY_BYTES} bytes).",
            status=413,
            prefix="",
        ) from None
    except TimeoutError:
        raise Refused(
            "RequestTimeoutException",
            f"The request body did not arrive within {seconds:g} seconds.",
            status=408,
            prefix="",
        ) from None


def _reply(request_id: str, status: int, body: bytes) -> web.Response:
    return web.Response(
        status=status,
        body=body,
        content_type=protocol.CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )


async def serve_endpoint(
    ferry: Ferry,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    tls: tuple[str, str] | None = None,
    limits: Limits = Limits(),
) -> Endpoint:
    """Start serving DataSync's API for `ferry` on host:port (HTTPS with `tls`, a certificate
    and key file)."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    connections = _Connections(limits)
    runner = web.AppRunner(
        endpoint_app(ferry, limits, connections),
        access_log=None,
        keepalive_timeout=limits.idle_seconds,
    )
    await runner.setup()
    assert runner.server is not None
    factory = runner.server
    server = await asyncio.get_running_loop().create_server(
        lambda: _Connection(factory(), connections),
        host,
        port,
        ssl=context,
        backlog=1024,
        reuse_address=True,
    )
    scheme = "https" if context else "http"
    bound = server.sockets[0].getsockname()[1]
    return Endpoint(runner, server, f"{scheme}://{host}:{bound}")
