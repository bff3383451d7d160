"""The host side of the sandbox: a pool of locked-down worker processes running isolates.

`SandboxSettings` chooses where isolates run. In the default mode, `"workers"`,
a `WorkerPool` starts its processes on first use and keeps them warm; each
worker runs several isolates at once, a fresh one per execution. Tool calls
arrive from a worker in batches, go to the run's `CallHandler` (the host's
`CallDispatcher`) and return in batches.

The host enforces every deadline itself. A worker that has not finished a run
`kill_grace` seconds after the run's time limit is killed with SIGKILL; that
run ends with `TimeLimitExceeded`, the other runs on that worker end with
`WorkerCrashedError`, and the pool starts a replacement. A worker that exits
or breaks the protocol fails only its own runs, the same way.

Mode `"inprocess"` runs isolates in the host process, with the isolate as the
only wall. It is meant for development and debugging.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import math
import os
import secrets
import signal
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from py_mini_racer import (
    JSEvalException,
    JSKeyError,
    JSOOMException,
    JSParseException,
    JSValueError,
)
from py_mini_racer._exc import JSTerminatedException

from ._errors import ClosedError, SandboxError
from ._lockdown import LockdownReport
from ._protocol import MAX_FRAME_BYTES, ProtocolError, encode_frame, read_frame
from ._sandbox import (
    CallHandler,
    Configuration,
    EngineLost,
    Limits,
    OversizedOutput,
    RunEnded,
    SandboxOutcome,
    _close_in_background,
    configuration_of,
    run_in_isolate,
)
from ._worker import PROBE_ENVIRONMENT_KEY, WORKER_LAUNCHER

__all__ = ["SandboxSettings", "WorkerPool"]

logger = logging.getLogger(__name__)


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """Settings of the sandbox: where isolates run and how worker processes are confined."""

    mode: Literal["workers", "inprocess"] = "workers"
    """`"workers"`: locked-down worker processes; `"inprocess"`: the host (development only)."""
    workers: int = field(default_factory=_default_workers)
    """Worker processes in the pool; by default one per CPU this process may run on."""
    start_timeout: float = 30.0
    """Seconds a new worker may take to initialise V8 and lock down."""
    kill_grace: float = 2.0
    """Seconds after a run's time limit before the host kills its worker."""
    worker_memory_mb: int = 2048
    """Private writable memory (RLIMIT_DATA) a worker may add after start-up, in MiB.

    It covers the V8 heaps and ArrayBuffers of all runs on the worker; a run
    that allocates past it gets `Array buffer allocation failed` or takes the
    worker down, and only that worker's runs fail."""
    max_open_files: int = 256
    """RLIMIT_NOFILE of a worker."""
    network_namespace: bool = True
    """Move each worker into a new network namespace (needs unprivileged user namespaces)."""
    pin_cpus: bool = True
    """Pin each worker to one CPU, spreading the workers over the CPUs this process may use.

    A worker's threads then hand work to each other on one CPU, which on a
    virtual machine costs a fraction of waking another one: trivial runs
    cost about 15% less CPU. A pinned worker cannot move to another CPU,
    so a request after a pause waits for its CPU to wake up, and a busy
    run takes CPU from the other runs on its worker."""
    stack_kb: int = 984
    """V8's stack limit per isolate in KiB (V8's own default is 984).

    Deeper recursion throws a RangeError, which ends the run with
    `StackLimitExceeded` unless the code catches it. V8 takes it once per
    process, so mode `"inprocess"` keeps V8's default."""

    def __post_init__(self) -> None:
        if self.mode not in ("workers", "inprocess"):
            raise ValueError(f"mode must be 'workers' or 'inprocess', not {self.mode!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if not (math.isfinite(self.start_timeout) and self.start_timeout > 0):
            raise ValueError(f"start_timeout must be above 0 seconds, not {self.start_timeout}")
        if not (math.isfinite(self.kill_grace) and self.kill_grace >= 0):
            raise ValueError(f"kill_grace must be 0 seconds or more, not {self.kill_grace}")
        # mini-racer runs each isolate on a thread with glibc's default stack
        # (8 MiB under the usual RLIMIT_STACK); 2 MiB stays well inside it.
        if not 64 <= self.stack_kb <= 2048:
            raise ValueError(f"stack_kb must be between 64 and 2048, not {self.stack_kb}")
        # Below these, a worker cannot start V8 or hold its pipes and libraries; the
        # runs would fail as crashes instead of the setting being named.
        if self.worker_memory_mb < 64:
            raise ValueError(
                f"worker_memory_mb must be at least 64 MiB, not {self.worker_memory_mb}"
            )
        if self.max_open_files < 16:
            raise ValueError(f"max_open_files must be at least 16, not {self.max_open_files}")


# Isolates each worker keeps prepared (prelude evaluated), at about 0.9 MiB each.
# Two cover a burst of two runs; a run that finds none has one prepared for it.
_PREPARED_ISOLATES = 2

_ENGINE_ERRORS: dict[str, type[JSEvalException]] = {
    error.__name__: error
    for error in (
        JSEvalException,
        JSParseException,
        JSOOMException,
        JSTerminatedException,
        JSValueError,
        JSKeyError,
        OversizedOutput,
    )
}


def _engine_error(name: Any, message: Any) -> JSEvalException:
    """Rebuild the mini-racer exception a worker reported by class name."""
    return _ENGINE_ERRORS.get(str(name), JSEvalException)(str(message))


class _RemoteBatch:
    """A batch of engine tasks queued on an isolate in a worker; see `_engine.EngineBatch`."""

    def __init__(self, count: int, notify_index: int | None):
        loop = asyncio.get_running_loop()
        self.count = count
        self.notify_index = notify_index
        self.last: asyncio.Future[Any] = loop.create_future()
        self.notified: asyncio.Future[Any] | None = None
        if notify_index is not None:
            self.notified = loop.create_future()
        self.notified_at: float | None = None
        self.engine_seconds: float | None = None
        self._quiet: list[tuple[int, Any, JSEvalException | None]] = []

    def notify(self, at: float, result: list[Any]) -> None:
        self.notified_at = at
        if self.notified is not None and not self.notified.done():
            _settle(self.notified, result)

    def finish(self, results: list[list[Any]]) -> None:
        indexes = [index for index in range(self.count) if index != self.notify_index]
        if len(results) != len(indexes):
            raise ValueError(f"{len(results)} results for a batch of {len(indexes)} tasks")
        for index, result in zip(indexes[:-1], results[:-1], strict=True):
            ok, *payload = result
            if ok:
                self._quiet.append((index, payload[0], None))
            else:
                self._quiet.append((index, None, _engine_error(*payload)))
        if not self.last.done():
            _settle(self.last, results[-1])

    def fail(self, error: BaseException) -> None:
        for future in (self.notified, self.last):
            if future is not None and not future.done():
                future.set_exception(error)
                # Read here too, so that asyncio does not log an error that no task awaits.
                future.exception()

    def abandon(self) -> None:
        for future in (self.notified, self.last):
            if future is not None and not future.done():
                future.cancel()

    def quiet_results(self) -> list[tuple[int, Any, JSEvalException | None]]:
        results, self._quiet = self._quiet, []
        return results


def _settle(future: asyncio.Future[Any], result: list[Any]) -> None:
    ok, *payload = result
    if ok:
        future.set_result(payload[0])
    else:
        future.set_exception(_engine_error(*payload))


class RemoteIsolate:
    """An isolate in a worker process, driven over the channel as `run_in_isolate` drives any.

    The worker prepares it when the host sends `prepare`, before or after the
    run that takes it arrives: the worker queues the run's first batch until
    the isolate is ready.
    """

    def __init__(self, worker: _Worker, number: int, configuration: Configuration | None):
        self.worker = worker
        self.number = number
        self.token = secrets.token_hex(16)
        self.configuration = configuration
        self.prepared = True
        self.broken = False
        self.started = False
        self.on_lost: Callable[[EngineLost], None] | None = None
        self.stopped_at_limit = False
        self._cpu_replies: list[asyncio.Future[Any]] = []
        self._batches: dict[int, _RemoteBatch] = {}
        self._batch_ids = itertools.count(1)
        self._memory_limit: int | None = None
        self._memory_hit = False
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stopped: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = False
        worker.isolates[number] = self
        worker.send(
            {
                "op": "prepare",
                "iso": number,
                "token": self.token,
                "configuration": list(configuration) if configuration is not None else None,
            }
        )

    def submit(self, sources: Sequence[str], notify_index: int | None = None) -> _RemoteBatch:
        if self.broken:
            raise SandboxError("an engine batch of this isolate was abandoned; close it")
        if not self.worker.alive:
            raise EngineLost(_crash_error(self.worker.failure or "it stopped"))

        batch_id = next(self._batch_ids)
        batch = _RemoteBatch(len(sources), notify_index)
        self._batches[batch_id] = batch
        message: dict[str, Any] = {
            "op": "batch",
            "iso": self.number,
            "batch": batch_id,
            "sources": list(sources),
            "notify": notify_index,
        }
        if self._memory_limit is not None:
            message["memory"] = self._memory_limit
            self._memory_limit = None

        frame_size = self.worker.send(message, urgent=False)
        if frame_size > MAX_FRAME_BYTES:
            # Never sent, so the worker holds no batch to wait for at the close.
            del self._batches[batch_id]
            raise RunEnded(
                {
                    "name": "InputTooLargeError",
                    "message": (
                        f"The code or a tool result makes a message of {frame_size} bytes to "
                        f"the sandbox, over the limit of {MAX_FRAME_BYTES}. Pass less data "
                        "at once, for example by asking the tool for a smaller result."
                    ),
                }
            )

        if not self.started:
            # The worker prepares the next isolates once the run has started.
            self.started = True
            self.worker.refill()
        self.worker.flush()
        return batch

    def abandon(self, batch: Any) -> None:
        self.broken = True
        batch.abandon()

    def set_memory_limit(self, limit_bytes: int) -> None:
        self._memory_limit = limit_bytes

    def memory_limit_reached(self) -> bool:
        return self._memory_hit

    def finished(self, message: dict[str, Any]) -> None:
        batch = self._batches.pop(int(message["batch"]), None)
        self._memory_hit = self._memory_hit or bool(message["memoryHit"])
        if batch is None:
            return
        cpu = message.get("cpu")
        if isinstance(cpu, (int, float)):
            batch.engine_seconds = float(cpu)
        if batch.notify_index is not None:
            batch.notify(float(message["at"]), message["notified"])
        batch.finish(message["results"])

    async def engine_seconds(self) -> float | None:
        """Ask the worker how much CPU the isolate's thread has used in this run."""
        if not self.worker.alive:
            return None
        reply = asyncio.get_running_loop().create_future()
        self._cpu_replies.append(reply)
        self.worker.send({"op": "cpu", "iso": self.number})
        try:
            async with asyncio.timeout(max(self.worker.kill_grace, 1.0)):
                used = await reply
        except TimeoutError:
            return None
        return float(used) if isinstance(used, (int, float)) else None

    def cpu_answered(self, used: Any) -> None:
        if self._cpu_replies:
            reply = self._cpu_replies.pop(0)
            if not reply.done():
                reply.set_result(used)

    def lost(self, error: EngineLost) -> None:
        for batch in self._batches.values():
            batch.fail(error)
        self._batches.clear()
        if self.on_lost is not None:
            self.on_lost(error)
        if not self._closed.done():
            self._closed.set_result(None)

    def confirm_closed(self) -> None:
        if not self._closed.done():
            self._closed.set_result(None)

    async def close(self) -> None:
        """Close the isolate in its worker; kill the worker if the close is not confirmed.

        A busy isolate (a batch still running, as after a time limit) gets
        `kill_grace` seconds to stop.
        """
        if self._closing:
            return
        self._closing = True
        worker = self.worker
        # A run stopped at its time limit may have left its worker stuck even
        # with no batch running, as when the worker is stopped during a tool call.
        busy = bool(self._batches) or self.stopped_at_limit
        for batch in self._batches.values():
            batch.abandon()
        self._batches.clear()
        if not worker.alive or not busy:
            # An idle isolate closes at once; its close can wait to share a
            # write with the worker's next message.
            worker.send({"op": "close", "iso": self.number}, urgent=False)
            worker.isolates.pop(self.number, None)
            self._stopped.set_result(None)
            return
        worker.send({"op": "close", "iso": self.number, "confirm": True})
        try:
            async with asyncio.timeout(worker.kill_grace):
                await asyncio.shield(self._closed)
        except TimeoutError:
            if worker.alive and worker.on_stuck is not None:
                worker.on_stuck(
                    worker,
                    f"it was killed because an isolate did not stop within "
                    f"{worker.kill_grace:g} s of the end of its run",
                )
        finally:
            worker.isolates.pop(self.number, None)
            if not self._stopped.done():
                self._stopped.set_result(None)

    async def stopped(self) -> None:
        """Wait until `close()` has finished: the worker confirmed, or was killed."""
        await asyncio.shield(self._stopped)


# Seconds a message that is not urgent may wait for another to share its write.
_LAZY_FLUSH_DELAY = 0.05


class _Worker:
    """One worker process and the isolates it holds."""

    def __init__(self, number: int, process: asyncio.subprocess.Process, cpu: int | None):
        self.number = number
        self.process = process
        self.cpu = cpu
        self.isolates: dict[int, RemoteIsolate] = {}
        self.spares: collections.deque[RemoteIsolate] = collections.deque()
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.alive = True
        self.failure: str | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.stderr_task: asyncio.Task[None] | None = None
        self.out_of_memory = False
        """Whether V8 reported a fatal out-of-memory error on the worker's stderr."""
        self.active = 0
        """Runs on this worker now."""
        self.suspects: set[RemoteIsolate] = set()
        """Isolates stopped at a limit whose close the worker has not confirmed yet."""
        self.last_run = 0
        """The number of the run last sent to this worker, for picking the least recent."""
        self.kill_grace = 2.0
        self.on_stuck: Callable[[_Worker, str], None] | None = None
        self.configuration: Configuration | None = None
        """The configuration of the last run, which the spares are prepared with."""
        self._isolate_numbers = itertools.count(1)
        self._outbox: list[bytes] = []
        self._flush_soon = False
        self._flush_later: asyncio.TimerHandle | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: dict[str, Any], *, urgent: bool = True) -> int:
        """Queue `message` for the worker; queued messages go out in one write.

        Each write wakes the worker, which on a virtual machine costs the
        writer up to a few hundred microseconds, so the messages of one
        event-loop iteration share a write. A message that is not `urgent`
        waits up to `_LAZY_FLUSH_DELAY` for an urgent one.
        """
        if not self.alive:
            return 0
        frame = encode_frame(message)
        if len(frame) > MAX_FRAME_BYTES + 4:
            # The worker would reject it and exit; the caller reports it instead.
            return len(frame) - 4
        self._outbox.append(frame)
        loop = asyncio.get_running_loop()
        if urgent and not self._flush_soon:
            self._flush_soon = True
            if self._flush_later is not None:
                self._flush_later.cancel()
                self._flush_later = None
            loop.call_soon(self.flush)
        elif not urgent and not self._flush_soon and self._flush_later is None:
            self._flush_later = loop.call_later(_LAZY_FLUSH_DELAY, self.flush)
        return len(frame) - 4

    def flush(self) -> None:
        """Write every queued message now."""
        self._flush_soon = False
        if self._flush_later is not None:
            self._flush_later.cancel()
            self._flush_later = None
        frames, self._outbox = self._outbox, []
        stdin = self.process.stdin
        if self.alive and frames and stdin is not None and not stdin.is_closing():
            stdin.write(b"".join(frames))

    def take_isolate(self, configuration: Configuration) -> RemoteIsolate:
        """Take a prepared isolate that fits `configuration`, or have one prepared."""
        self.configuration = configuration
        while self.spares:
            isolate = self.spares.popleft()
            if isolate.configuration in (None, configuration):
                return isolate
            # Prepared for the API or limits of earlier runs, which changed.
            _close_in_background(isolate)
        return RemoteIsolate(self, next(self._isolate_numbers), configuration)

    def refill(self) -> None:
        """Have isolates prepared until `_PREPARED_ISOLATES` wait for runs."""
        while self.alive and len(self.spares) < _PREPARED_ISOLATES:
            number = next(self._isolate_numbers)
            self.spares.append(RemoteIsolate(self, number, self.configuration))

    def fail(self, reason: str) -> None:
        """Mark the worker dead and fail everything its isolates were doing."""
        self.alive = False
        self.failure = reason
        error = EngineLost(_crash_error(reason))
        for isolate in list(self.isolates.values()):
            isolate.lost(error)
        self.isolates.clear()
        self.spares.clear()

    def kill(self) -> None:
        self.alive = False
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)


class WorkerPool:
    """Locked-down worker processes that run isolates for one `Toolbox`.

    Workers start on the first `run` and stay warm until `aclose()`.
    """

    def __init__(self, settings: SandboxSettings, *, _probe_module: str | None = None):
        self.settings = settings
        # Test-only: see `_worker.PROBE_ENVIRONMENT_KEY`.
        self._probe_module = _probe_module
        self._workers: list[_Worker] = []
        self._starting_cpus: list[int] = []
        self._reaping: set[asyncio.Task[None]] = set()
        self._starting: dict[int, asyncio.Task[_Worker]] = {}
        self._numbers = itertools.count(1)
        self._run_ids = itertools.count(1)
        self._closed = False
        self._lockdown: LockdownReport | None = None
        self._warned = False
        self.last_probe: dict[str, Any] | None = None
        """What the test probe reported from the last worker that started with one."""

    @property
    def lockdown(self) -> LockdownReport | None:
        """The lockdown level of the last worker that started, or `None` before the first."""
        return self._lockdown

    @property
    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self._workers if worker.alive]

    async def start(self) -> None:
        """Start every worker that is missing and wait until all are ready."""
        if self._closed:
            raise ClosedError("this sandbox pool is closed")
        while len(self._workers) + len(self._starting) < self.settings.workers:
            number = next(self._numbers)
            self._starting[number] = asyncio.get_running_loop().create_task(self._spawn(number))
        if self._starting:
            # Shielded: a caller that is cancelled while it waits must not
            # cancel the start that other callers wait for.
            starting = asyncio.gather(*self._starting.values(), return_exceptions=True)
            starting.add_done_callback(_retrieve)
            try:
                outcomes = await asyncio.shield(starting)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if self._closed and (current is None or not current.cancelling()):
                    # The pool closed during the start, not the caller's cancel.
                    raise ClosedError(
                        "this sandbox pool closed while its workers started"
                    ) from None
                raise
            if self._closed:
                raise ClosedError("this sandbox pool closed while its workers started")
            failures = [item for item in outcomes if isinstance(item, BaseException)]
            if failures and not any(worker.alive for worker in self._workers):
                raise failures[0]
            for failure in failures:
                # Runs go to the workers that did start; the next run retries the rest.
                logger.error("%s", failure)

    async def run(
        self,
        code: str,
        *,
        api: Mapping[str, Sequence[str]],
        handler: CallHandler,
        limits: Limits,
        filename: str = "code.ts",
    ) -> SandboxOutcome:
        """Run `code` in a fresh isolate on the least busy worker.

        The run is driven from here, as in-process runs are; the worker only
        runs its engine tasks.
        """
        worker = await self._pick()
        worker.last_run = next(self._run_ids)
        isolate = worker.take_isolate(configuration_of(api, limits))
        worker.active += 1
        try:
            outcome = await run_in_isolate(
                code, api=api, handler=handler, limits=limits, filename=filename, isolate=isolate
            )
            if isolate.broken or isolate.stopped_at_limit:
                # The run was stopped at a limit, so its worker may be stuck.
                # Later runs avoid it until the isolate's close is confirmed,
                # or the worker is killed `kill_grace` seconds after.
                worker.suspects.add(isolate)
                done = asyncio.ensure_future(isolate.stopped())
                done.add_done_callback(lambda _: worker.suspects.discard(isolate))
            return outcome
        finally:
            worker.active -= 1

    async def _pick(self) -> _Worker:
        if self._closed:
            raise ClosedError("this sandbox pool is closed")
        live = [worker for worker in self._workers if worker.alive]
        if not live:
            await self.start()
            live = [worker for worker in self._workers if worker.alive]
        elif len(live) + len(self._starting) < self.settings.workers:
            # Runs go to the live workers while the missing ones start.
            task = asyncio.get_running_loop().create_task(self._replace())
            task.add_done_callback(_log_replace_failure)
        if not live:
            raise SandboxError("no sandbox worker is running; see the log for why they failed")
        trusted = [worker for worker in live if not worker.suspects]
        if not trusted:
            # Every worker may be stuck: wait until one confirms a close or is killed.
            waits = [isolate.stopped() for worker in live for isolate in worker.suspects]
            await asyncio.wait(
                [asyncio.ensure_future(wait) for wait in waits],
                return_when=asyncio.FIRST_COMPLETED,
            )
            return await self._pick()
        # Among equally busy workers, the one that has waited longest has had
        # the most time to prepare its next isolates.
        return min(trusted, key=lambda worker: (worker.active, worker.last_run))

    async def _spawn(self, number: int) -> _Worker:
        try:
            worker = await self._start_process(number)
            self._workers.append(worker)
            return worker
        finally:
            self._starting.pop(number, None)

    async def _start_process(self, number: int) -> _Worker:
        cpu = self._choose_cpu()
        try:
            return await self._start_pinned(number, cpu)
        finally:
            if cpu is not None:
                self._starting_cpus.remove(cpu)

    async def _start_pinned(self, number: int, cpu: int | None) -> _Worker:
        settings = self.settings
        worker_settings = {
            "cpu": cpu,
            "netns": settings.network_namespace,
            "data_budget_mb": settings.worker_memory_mb,
            "max_open_files": settings.max_open_files,
            "stack_kb": settings.stack_kb,
        }
        environment: dict[str, str] = {}
        if self._probe_module is not None:
            environment[PROBE_ENVIRONMENT_KEY] = self._probe_module
        package_dir = str(Path(__file__).parent)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            WORKER_LAUNCHER,
            package_dir,
            json.dumps(worker_settings),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            cwd="/",
            start_new_session=True,
            limit=2**16,
        )
        worker = _Worker(number, process, cpu)
        worker.kill_grace = settings.kill_grace
        worker.on_stuck = self._fail_worker
        worker.stderr_task = asyncio.get_running_loop().create_task(_relay_stderr(worker))
        worker.reader_task = asyncio.get_running_loop().create_task(self._read(worker))
        try:
            async with asyncio.timeout(settings.start_timeout):
                ready = await asyncio.shield(worker.ready)
        except (TimeoutError, SandboxError) as error:
            worker.kill()
            await _reap(worker)
            reason = str(error) or (
                f"it was not ready within {settings.start_timeout:g} s (SandboxSettings."
                "start_timeout); a loaded machine may need a longer one"
            )
            raise SandboxError(
                f"sandbox worker {number} (pid {process.pid}) did not start: {reason}"
            ) from error
        except asyncio.CancelledError:
            # The pool closed while this worker started: do not leave it running.
            worker.kill()
            self._track_reap(worker)
            raise
        worker.refill()
        self._record_lockdown(LockdownReport.from_dict(ready.get("lockdown", {})))
        if "probe" in ready:
            self.last_probe = ready["probe"]
        logger.info("sandbox worker %d started, pid %d", number, process.pid)
        return worker

    def _choose_cpu(self) -> int | None:
        """Return the CPU for a new worker: of those this process may use, the least used."""
        if not self.settings.pin_cpus:
            return None
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        in_use = collections.Counter(worker.cpu for worker in self._workers if worker.alive)
        in_use.update(self._starting_cpus)
        cpu = min(cpus, key=lambda candidate: (in_use[candidate], candidate))
        self._starting_cpus.append(cpu)
        return cpu

    def _record_lockdown(self, report: LockdownReport) -> None:
        self._lockdown = report
        if report.missing and not self._warned:
            self._warned = True
            logger.warning(
                "sandbox workers run with a partial lockdown; missing: %s",
                "; ".join(report.missing),
            )

    async def _read(self, worker: _Worker) -> None:
        stdout = worker.process.stdout
        assert stdout is not None
        reason = "it exited"
        try:
            while True:
                message = await read_frame(stdout)
                if message is None:
                    break
                self._handle(worker, message)
        except (ProtocolError, KeyError, TypeError, ValueError) as error:
            logger.error("worker %d broke the protocol: %s; killing it", worker.number, error)
            reason = "it sent a malformed message"
            self._fail_worker(worker, reason)
            # Read to the end, or the pipe stays open and the exit is never collected.
            with contextlib.suppress(Exception):
                while await stdout.read(2**16):
                    pass
        if worker.alive and reason == "it exited" and worker.stderr_task is not None:
            # The process is gone, so its stderr ends too; its last lines say why.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(worker.stderr_task)
            if worker.out_of_memory:
                reason = "the V8 engine ran out of memory, which aborts the process"
            else:
                reason = await _exit_reason(worker)
        if worker.alive:
            self._fail_worker(worker, reason)

    def _handle(self, worker: _Worker, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "ready":
            if not worker.ready.done():
                worker.ready.set_result(message)
            return
        isolate = worker.isolates.get(int(message["iso"]))
        if isolate is None:
            # Closed by the host, which no longer waits for its results.
            return
        if op == "result":
            isolate.finished(message)
        elif op == "closed":
            isolate.confirm_closed()
        elif op == "cpu":
            isolate.cpu_answered(message["cpu"])
        else:
            raise ValueError(f"unknown message {op!r}")

    def _fail_worker(self, worker: _Worker, reason: str) -> None:
        worker.kill()
        if worker in self._workers:
            self._workers.remove(worker)
        was_ready = worker.ready.done()
        if not was_ready:
            worker.ready.set_exception(SandboxError(reason))
        worker.fail(reason)
        # A worker that failed to start is not replaced here: `_start_process`
        # raises for it, and replacing it would loop if every start fails.
        if was_ready and not self._closed:
            logger.warning(
                "sandbox worker %d (pid %d) failed: %s; starting a replacement",
                worker.number,
                worker.pid,
                reason,
            )
            task = asyncio.get_running_loop().create_task(self._replace())
            task.add_done_callback(_log_replace_failure)
        self._track_reap(worker)

    def _track_reap(self, worker: _Worker) -> None:
        task = asyncio.get_running_loop().create_task(_reap(worker))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def _replace(self) -> None:
        await self.start()

    async def aclose(self) -> None:
        """Stop every worker: close its channel, then kill it if it does not exit at once."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._starting.values()):
            task.cancel()
        workers, self._workers = self._workers, []
        for worker in workers:
            # Runs still in flight end now instead of at their time limit.
            worker.fail("the sandbox pool was closed while the run was in flight")
            if worker.process.stdin is not None:
                worker.process.stdin.close()
        await asyncio.gather(*(_reap(worker, grace=1.0) for worker in workers))
        # Workers killed earlier, whose exit may not have been collected yet.
        await asyncio.gather(*self._reaping, return_exceptions=True)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and getattr(self, "_workers", None):
            warnings.warn(
                "WorkerPool was not closed; its worker processes are left running until "
                "this process exits. Call aclose().",
                ResourceWarning,
                stacklevel=2,
            )


async def _reap(worker: _Worker, grace: float = 0.0) -> None:
    """Wait for the process to exit, killing it after `grace` seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await worker.process.wait()
            await _finish_reader(worker)
            return
    worker.kill()
    await worker.process.wait()
    await _finish_reader(worker)


async def _finish_reader(worker: _Worker) -> None:
    if worker.process.stdin is not None:
        worker.process.stdin.close()
    # The readers stop at end of file, which follows the exit because a
    # worker cannot start a process that could keep the pipes open.
    for task in (worker.reader_task, worker.stderr_task):
        if task is not None and task is not asyncio.current_task():
            await asyncio.gather(task, return_exceptions=True)


# Lines of a worker's stderr relayed to the log before the rest is only counted:
# a V8 fatal error prints a C stack trace of about 40 lines.
_MAX_STDERR_LINES = 200


async def _relay_stderr(worker: _Worker) -> None:
    """Log a worker's stderr (Python tracebacks, V8 fatal errors) line by line."""
    stderr = worker.process.stderr
    assert stderr is not None
    relayed = 0
    dropped = 0
    while True:
        try:
            raw = await stderr.readline()
        except ValueError:
            # A line over the stream's buffer limit: skip what was buffered.
            dropped += 1
            continue
        if not raw:
            break
        line = raw.decode(errors="replace").rstrip()
        if "out of memory" in line:
            worker.out_of_memory = True
        if relayed < _MAX_STDERR_LINES:
            relayed += 1
            logger.warning("worker %d: %s", worker.number, line)
        else:
            dropped += 1
    if dropped:
        logger.warning("worker %d: %d more stderr lines not logged", worker.number, dropped)


async def _exit_reason(worker: _Worker) -> str:
    """Describe how the worker's process ended, waiting a moment for its exit status."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.5):
            await worker.process.wait()
    code = worker.process.returncode
    if code is None:
        return "it closed its channel"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"it was killed by {name}"
    return f"it exited with status {code}"


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark the future's exception as read; its waiters see it, if any are left."""
    if not future.cancelled():
        future.exception()


def _log_replace_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("starting a replacement sandbox worker failed: %s", task.exception())


def _crash_error(reason: str) -> dict[str, Any]:
    return {
        "name": "WorkerCrashedError",
        "message": (
            f"The sandbox process running this code stopped before the run finished: "
            f"{reason}. Tool calls the code made may have taken effect. Run the code "
            "again; if it fails the same way, the code may be triggering an engine bug."
        ),
    }
