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
BODY_SECONDS = 30.0  # a client that has not sent its body by then is dropped
IDLE_SECONDS = 75.0  # a kept-alive connection without a request is closed after this
IN_FLIGHT = 64  # operations run at once; more wait their turn


@dataclass
class Endpoint:
    """A running endpoint: where it listens, and how to stop it."""

    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


def endpoint_app(ferry: Ferry) -> web.Application:
    check = SignatureCheck(ferry.access_keys, ferry.region)
    turns = asyncio.Semaphore(IN_FLIGHT)

    async def handle(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        try:
            if request.method != "POST":
                raise Refused(
                    "UnknownOperationException",
                    f"{request.method} is not an operation: POST a DataSync request.",
                    status=404,
                )
            body = await _body(request)
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

    app = web.Application(client_max_size=protocol.MAX_BODY_BYTES)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _body(request: web.Request) -> bytes:
    if (request.content_length or 0) > protocol.MAX_BODY_BYTES:
        raise Refused(
            "SerializationException",
            f"The request body is larger than DataSync takes ({protocol.MAX_BODY_BYTES} bytes).",
            status=413,
            prefix="",
        )
    try:
        async with asyncio.timeout(BODY_SECONDS):
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
            f"The request body did not arrive within {BODY_SECONDS:.0f} seconds.",
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
) -> Endpoint:
    """Start serving DataSync's API for `ferry` on host:port (HTTPS with `tls`, a certificate
    and key file)."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    runner = web.AppRunner(endpoint_app(ferry), access_log=None, keepalive_timeout=IDLE_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context, backlog=1024)
    await site.start()
    scheme = "https" if context else "http"
    bound = runner.addresses[0][1] if runner.addresses else port
    return Endpoint(runner, f"{scheme}://{host}:{bound}")
