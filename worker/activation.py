"""The agent's side of activation over HTTP, as DataSync's agent has it: while it waits for
CreateAgent, `GET /?gatewayType=SYNC&activationRegion=R` on its activation port answers with a
redirect that carries its activation key. This is how Terraform's `aws_datasync_agent` with
`ip_address` (and DataSync's console) obtains a key without a person copying it."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from aiohttp import web


def activation_app(current_key: Callable[[], str | None], region: str) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        query = request.query
        if query.get("gatewayType") != "SYNC":
            return web.Response(
                status=400, text="Ask with gatewayType=SYNC: this is a Ferry (DataSync) agent.\n"
            )
        if query.get("activationRegion") != region:
            return web.Response(
                status=400,
                text=f"This agent activates in region {region!r} (FERRY_REGION), not "
                f"{query.get('activationRegion')!r}.\n",
            )
        key = current_key()
        if key is None:
            return web.Response(status=409, text="This agent is not waiting for activation.\n")
        fields = urllib.parse.urlencode({"activationKey": key, "activationRegion": region})
        raise web.HTTPFound(f"http://{request.host}/?{fields}")

    app = web.Application()
    app.router.add_get("/", handle)
    return app


async def serve_activation(
    current_key: Callable[[], str | None], region: str, host: str, port: int
) -> web.AppRunner:
    runner = web.AppRunner(activation_app(current_key, region), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
