"""An activity attempt's hold on its work: heartbeats that Temporal has answered.

Temporal gives an attempt's work to another attempt, on any worker, once the attempt's
heartbeats have not reached the server for its heartbeat timeout. A worker cut off from
Temporal cannot tell from the SDK's heartbeats, which go in the background and fail quietly. So
an attempt also sends heartbeats of its own and looks at the answers: once none has been
answered for LOST_FRACTION of the timeout (or the server no longer knows the attempt), it takes
itself for lost and stops its work, before the server gives that work away.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import AsyncActivityCancelledError, Client
from temporalio.service import RPCError, RPCStatusCode

RENEW_SECONDS = 2.0
# Stopped this much into the heartbeat timeout, an attempt is still before the server's own
# deadline, with a few seconds to spare for its last operation to end.
LOST_FRACTION = 0.75


class Background:
    """Calls to Temporal made from an activity's thread on the worker's event loop, one at a
    time and never waited for: each outcome is picked up on a later look."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._call: concurrent.futures.Future[Any] | None = None

    @property
    def busy(self) -> bool:
        return self._call is not None and not self._call.done()

    def finished(self) -> concurrent.futures.Future[Any] | None:
        """The call that has ended since the last look, if one has."""
        if self._call is None or not self._call.done():
            return None
        call, self._call = self._call, None
        return call

    def start(self, call: Coroutine[Any, Any, Any]) -> None:
        self._call = asyncio.run_coroutine_threadsafe(call, self.loop)

    def close(self) -> None:
        if self._call is not None:
            self._call.cancel()


class Lease:
    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        info = activity.info()
        timeout = info.heartbeat_timeout
        self.limit = timeout.total_seconds() * LOST_FRACTION if timeout else None
        self._handle = client.get_async_activity_handle(task_token=info.task_token)
        self._calls = Background(loop)
        self.answered = time.monotonic()  # when the last heartbeat Temporal answered was sent
        self._sent = 0.0
        self._gone = False  # the server no longer knows this attempt

    def renew(self, details: Any) -> None:
        """Send a heartbeat with `details`, unless one is on its way or went a moment ago."""
        call = self._calls.finished()
        if call is not None:
            try:
                call.result()
                self.answered = self._sent
            except AsyncActivityCancelledError:
                self.answered = self._sent  # answered; the SDK's heartbeats bring the cancel
            except RPCError as error:
                self._gone = error.status == RPCStatusCode.NOT_FOUND
            except Exception:  # not answered: the time since the last answer tells
                pass
        if not self._calls.busy and time.monotonic() - self._sent >= RENEW_SECONDS:
            self._sent = time.monotonic()
            self._calls.start(
                self._handle.heartbeat(details, rpc_timeout=timedelta(seconds=RENEW_SECONDS * 2))
            )

    @property
    def unanswered(self) -> float:
        """Seconds since the last answered heartbeat was sent."""
        return time.monotonic() - self.answered

    @property
    def lost(self) -> bool:
        return self._gone or (self.limit is not None and self.unanswered > self.limit)

    def close(self) -> None:
        self._calls.close()
