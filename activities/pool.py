"""The worker's process pool: where listing and batches run, one core each.

Copying and listing are Python work between system calls; in threads they share one
interpreter lock and use a little over one core. So the activities that do them wait in a
thread while the work runs in a pool process. A batch and the activity waiting for it talk
through small files in the worker's scratch folder: the batch writes its checkpoint there every
second (the activity heartbeats it to Temporal; a copy goes to the staging store), and the
activity writes a stop file there when Temporal cancels the execution or the worker shuts down,
and the batch's share of the bandwidth limit as it changes.

An attempt whose heartbeats no longer reach Temporal (activities/lease.py) is lost: its retry
may already run on another host. Its batch stops at once and writes nothing more, neither a
checkpoint (the retry's starting point) nor a file under its final name; a pool process that
does not stop within seconds (stuck in a request to storage that has gone out of reach) is
killed, so that nothing it retries lands after the retry's writes.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.lease import Lease
from activities.staging import StagingStore

T = TypeVar("T")
log = logging.getLogger("ferry.pool")

RELAY_SECONDS = 0.5
SHARE_SECONDS = 1.0  # how often a batch asks for its share of the bandwidth limit
LOST_GRACE_SECONDS = 2.0  # a lost batch's pool process that has not stopped by then is killed
LOST = "lost"  # the stop a lost attempt's batch is asked for
_PR_SET_PDEATHSIG = 1


class Stopped(Exception):
    """Raised in a pool process when the activity waiting for it asked it to stop."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Control:
    """What passes between a batch in a pool process and the activity waiting for it: the
    batch's checkpoint and the process's id one way; a stop request and the batch's bandwidth
    share the other, as small files in the worker's scratch folder. The checkpoint also goes to
    the staging store, where the next attempt finds it, on whichever host it runs."""

    def __init__(self, folder: str, name: str, key: str) -> None:
        """`key`: the checkpoint's key in the staging store."""
        self.checkpoint_path = os.path.join(folder, f"{name}.checkpoint")
        self.stop_path = os.path.join(folder, f"{name}.stop")
        self.rate_path = os.path.join(folder, f"{name}.rate")
        self.pid_path = os.path.join(folder, f"{name}.pid")
        self.key = key

    # In the pool process.

    def started(self) -> None:
        """The batch runs in this process (which a lost attempt kills if it must)."""
        with open(self.pid_path, "w", encoding="ascii") as file:
            file.write(str(os.getpid()))

    def guard(self) -> None:
        """Before anything that a retry elsewhere would see (a checkpoint, a file under its
        final name): stop if this attempt is lost, asked now rather than a moment ago."""
        if self.stop_requested() == LOST:
            raise Stopped(LOST)

    def checkpoint(self, details: dict[str, Any], store: StagingStore) -> None:
        self.guard()
        data = json.dumps(details)
        store.backend.put(self.key, data.encode())
        part = self.checkpoint_path + ".part"
        with open(part, "w", encoding="utf-8") as file:
            file.write(data)
        os.replace(part, self.checkpoint_path)

    def stop_requested(self) -> str | None:
        try:
            with open(self.stop_path, encoding="utf-8") as file:
                return file.read() or "cancel"
        except FileNotFoundError:
            return None

    def rate(self) -> int | None:
        try:
            with open(self.rate_path, encoding="utf-8") as file:
                return int(file.read())
        except (FileNotFoundError, ValueError):
            return None

    # In the activity.

    def saved(self, store: StagingStore) -> dict[str, Any] | None:
        """The last checkpoint an earlier attempt saved, wherever it ran. Newer than what it
        heartbeated: Temporal records a heartbeat only every few seconds."""
        try:
            text = "".join(store.backend.lines(self.key))
        except FileNotFoundError:
            return None
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(text) if text else None
        return None

    def reset(self) -> None:
        """Before an attempt: a stop asked of an earlier attempt, or a share given to it, is not
        for this one."""
        for path in (self.checkpoint_path, self.stop_path, self.rate_path, self.pid_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def discard(self, store: StagingStore) -> None:
        """After the batch is done: nothing of it is left, here or in the staging store."""
        self.reset()
        store.backend.delete([self.key])

    def latest(self) -> dict[str, Any] | None:
        """The batch's last checkpoint in this attempt, to heartbeat."""
        try:
            with open(self.checkpoint_path, encoding="utf-8") as file:
                return json.load(file)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def request_stop(self, reason: str) -> None:
        part = self.stop_path + ".part"
        with open(part, "w", encoding="utf-8") as file:
            file.write(reason)
        os.replace(part, self.stop_path)

    def kill(self) -> bool:
        """Kill the pool process the batch runs in; whether there was one."""
        try:
            with open(self.pid_path, encoding="ascii") as file:
                os.kill(int(file.read()), signal.SIGKILL)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return False
        return True

    def set_rate(self, bytes_per_second: int) -> None:
        part = self.rate_path + ".part"
        with open(part, "w", encoding="utf-8") as file:
            file.write(str(bytes_per_second))
        os.replace(part, self.rate_path)


def process_died(error: BrokenProcessPool) -> ApplicationError:
    """What an activity raises when a pool process died under its work (killed, out of memory):
    its attempt fails and is retried. Never the BrokenProcessPool itself: Temporal's worker takes
    a BrokenExecutor out of an activity for its own executor broken, and stops."""
    return ApplicationError(f"a pool process died: {error}", type="PoolProcessDied")


def _start_pool_process(log_level: int) -> None:
    # Die with the worker: an orphaned batch would go on writing the files its retry writes.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        os._exit(1)
    # Ctrl-C and SIGTERM are the worker's to handle; it stops the pool in order, its batches
    # checkpointed first. They reach the pool processes too when sent to the worker's process
    # group (a terminal's Ctrl-C, systemd's KillMode=control-group), and must not end a batch
    # there before it can checkpoint.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
    )
    logging.getLogger("smbprotocol").setLevel(logging.WARNING)  # it logs every request at INFO


def _ready() -> int:
    return os.getpid()


class _PoolProcess(multiprocessing.context.SpawnProcess):
    """A pool process ignores SIGTERM: ending one is killing it. (A broken pool terminates the
    processes it has left, whose batches are retried elsewhere: they must stop writing.)"""

    def terminate(self) -> None:
        self.kill()


class _PoolContext(multiprocessing.context.SpawnContext):
    Process = _PoolProcess


class WorkPool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._lock = threading.Lock()
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=_PoolContext(),
            initializer=_start_pool_process,
            initargs=(logging.getLogger().getEffectiveLevel(),),
        )

    def warm(self) -> None:
        """Start every process now rather than on the first execution."""
        for future in [self._executor.submit(_ready) for _ in range(self.processes)]:
            future.result()

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            try:
                return self._executor.submit(function, *args)
            except BrokenProcessPool:
                # A pool process died (killed, out of memory): the work it had failed, and is
                # retried by Temporal; what comes next gets a new pool.
                log.error("a pool process died; starting the pool again")
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._start()
                return self._executor.submit(function, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def run_batch(
        self,
        function: Callable[..., T],
        control: Control,
        checkpoint: dict[str, Any],
        *args: Any,
        share: Callable[[], int | None] | None = None,
        lease: Lease | None = None,
    ) -> T:
        """Run `function(*args, checkpoint, control)` in the pool from an activity: heartbeat its
        checkpoints, pass on its `share` of the bandwidth limit as it changes, and stop it when
        Temporal cancels, the worker shuts down, or the attempt's `lease` is lost."""
        control.reset()
        latest = checkpoint
        shared: int | None = None
        asked = 0.0
        lost_at: float | None = None
        # A cancel must reach the pool process, not interrupt this relay.
        with activity.shield_thread_cancel_exception():
            future = self.submit(function, *args, checkpoint, control)
            while True:
                try:
                    return future.result(timeout=RELAY_SECONDS)
                except FutureTimeout:
                    pass
                except Stopped as stop:
                    if stop.reason == LOST:
                        raise _lost(lease) from None
                    activity.heartbeat(control.latest() or latest)
                    if stop.reason == "cancel":
                        raise CancelledError("task execution cancelled") from None
                    raise ApplicationError(
                        "the worker is shutting down; the batch resumes on another attempt",
                        type="WorkerShutdown",
                    ) from None
                except Exception as error:
                    if lost_at is not None:
                        raise _lost(lease) from error
                    # The retry resumes from the batch's last checkpoint, written as it failed.
                    activity.heartbeat(control.latest() or latest)
                    if isinstance(error, BrokenProcessPool):
                        raise process_died(error) from error
                    raise
                if lost_at is not None:
                    if time.monotonic() - lost_at >= LOST_GRACE_SECONDS and control.kill():
                        log.warning("%s: its pool process did not stop: killed", _name())
                        lost_at = float("inf")  # its future fails as the pool breaks
                    continue
                latest = control.latest() or latest
                activity.heartbeat(latest)
                if lease is not None:
                    lease.renew(latest)
                    if lease.lost:
                        log.warning(
                            "%s: no heartbeat has reached Temporal for %.1f s: stopping, as its "
                            "retry may already run elsewhere; it writes nothing more",
                            _name(),
                            lease.unanswered,
                        )
                        control.request_stop(LOST)
                        lost_at = time.monotonic()
                        continue
                if share is not None and time.monotonic() - asked >= SHARE_SECONDS:
                    asked = time.monotonic()
                    rate = share()
                    if rate is not None and rate != shared:
                        control.set_rate(rate)
                        shared = rate
                if activity.is_cancelled():
                    if future.cancel():
                        raise CancelledError("task execution cancelled")
                    control.request_stop("cancel")
                elif activity.is_worker_shutdown():
                    control.request_stop("shutdown")


def _name() -> str:
    info = activity.info()
    return f"{info.workflow_id} {info.activity_id} (attempt {info.attempt})"


def _lost(lease: Lease | None) -> ApplicationError:
    """What a lost attempt ends with; if it reaches Temporal at all, the batch is retried from
    the last checkpoint this attempt saved before it was lost."""
    log.warning("%s: stopped; nothing more was written", _name())
    unanswered = f" for {lease.unanswered:.0f} s" if lease is not None else ""
    return ApplicationError(
        f"the attempt's heartbeats did not reach Temporal{unanswered}: it stopped, as its retry "
        "may run elsewhere",
        type="HeartbeatLost",
    )
