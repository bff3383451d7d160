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
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from ._errors import ClosedError, SandboxError
from ._lockdown import LockdownReport
from ._protocol import ProtocolError, encode_frame, read_frame
from ._sandbox import CallHandler, CallReply, CallRequest, Limits, SandboxOutcome
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


@dataclass(slots=True)
class _PendingRun:
    handler: CallHandler
    limits: Limits
    outcome: asyncio.Future[SandboxOutcome]
    calls: set[asyncio.Task[None]] = field(default_factory=set)
    calls_started: int = 0


class _Worker:
    """One worker process and the runs it has in hand."""

    def __init__(self, number: int, process: asyncio.subprocess.Process):
        self.number = number
        self.process = process
        self.runs: dict[int, _PendingRun] = {}
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.alive = True
        self.reader_task: asyncio.Task[None] | None = None
        self.stderr_task: asyncio.Task[None] | None = None
        self.out_of_memory = False
        """Whether V8 reported a fatal out-of-memory error on the worker's stderr."""
        self.last_run = 0
        """The number of the run last sent to this worker, for picking the least recent."""
        self._replies: dict[int, list[list[Any]]] = {}
        self._flush_scheduled = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        if self.alive and stdin is not None and not stdin.is_closing():
            stdin.write(encode_frame(message))

    def queue_reply(self, run_id: int, call_id: int, reply: CallReply) -> None:
        if reply.ok:
            entry: list[Any] = [call_id, True, reply.value_text]
        else:
            entry = [call_id, False, {"name": reply.error_name, "message": reply.error_message}]
        self._replies.setdefault(run_id, []).append(entry)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_replies)

    def _flush_replies(self) -> None:
        self._flush_scheduled = False
        replies, self._replies = self._replies, {}
        for run_id, batch in replies.items():
            if run_id in self.runs:
                self.send({"op": "replies", "run": run_id, "replies": batch})

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
            await asyncio.gather(*self._starting.values())

    async def run(
        self,
        code: str,
        *,
        api: Mapping[str, Sequence[str]],
        handler: CallHandler,
        limits: Limits,
        filename: str = "code.ts",
    ) -> SandboxOutcome:
        """Run `code` in a fresh isolate on the least busy worker."""
        worker = await self._pick()
        run_id = next(self._run_ids)
        worker.last_run = run_id
        future: asyncio.Future[SandboxOutcome] = asyncio.get_running_loop().create_future()
        pending = _PendingRun(handler, limits, future)
        worker.runs[run_id] = pending
        worker.send(
            {
                "op": "run",
                "run": run_id,
                "code": code,
                "api": {server: list(tools) for server, tools in api.items()},
                "limits": limits.to_dict(),
                "filename": filename,
            }
        )
        try:
            async with asyncio.timeout(limits.timeout + self.settings.kill_grace):
                return await asyncio.shield(future)
        except TimeoutError:
            logger.error(
                "worker %d (pid %d) did not finish run %d within %.1f s of its limit; killing it",
                worker.number,
                worker.pid,
                run_id,
                self.settings.kill_grace,
            )
            self._fail_worker(worker, "it was killed because a run on it overran its time limit")
            return _time_limit_outcome(limits)
        except asyncio.CancelledError:
            worker.send({"op": "cancel", "run": run_id})
            raise
        finally:
            worker.runs.pop(run_id, None)
            calls = list(pending.calls)
            for task in calls:
                task.cancel()
            if calls:
                # Let the cancelled calls record themselves before the result is
                # built; each ends at its next await, so 5 s is a generous bound.
                # An anyio cancel scope (the MCP server's request scope) cancels
                # every await inside it again, so asyncio.shield alone would not
                # wait here.
                with anyio.CancelScope(shield=True):
                    await asyncio.wait(calls, timeout=5)

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
        # Among equally busy workers, the one that has waited longest has had
        # the most time to prepare its next isolates.
        return min(live, key=lambda worker: (len(worker.runs), worker.last_run))

    async def _spawn(self, number: int) -> _Worker:
        try:
            worker = await self._start_process(number)
            self._workers.append(worker)
            return worker
        finally:
            self._starting.pop(number, None)

    async def _start_process(self, number: int) -> _Worker:
        settings = self.settings
        worker_settings = {
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
        worker = _Worker(number, process)
        worker.stderr_task = asyncio.get_running_loop().create_task(_relay_stderr(worker))
        worker.reader_task = asyncio.get_running_loop().create_task(self._read(worker))
        try:
            async with asyncio.timeout(settings.start_timeout):
                ready = await asyncio.shield(worker.ready)
        except (TimeoutError, SandboxError) as error:
            worker.kill()
            await _reap(worker)
            raise SandboxError(
                f"sandbox worker {number} (pid {process.pid}) did not start: {error}"
            ) from error
        except asyncio.CancelledError:
            # The pool closed while this worker started: do not leave it running.
            worker.kill()
            asyncio.get_running_loop().create_task(_reap(worker))
            raise
        self._record_lockdown(LockdownReport.from_dict(ready.get("lockdown", {})))
        if "probe" in ready:
            self.last_probe = ready["probe"]
        logger.info("sandbox worker %d started, pid %d", number, process.pid)
        return worker

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
        if worker.alive and reason == "it exited" and worker.stderr_task is not None:
            # The process is gone, so its stderr ends too; its last lines say why.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(worker.stderr_task)
            if worker.out_of_memory:
                reason = "the V8 engine ran out of memory, which aborts the process"
        if worker.alive:
            self._fail_worker(worker, reason)

    def _handle(self, worker: _Worker, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "ready":
            if not worker.ready.done():
                worker.ready.set_result(message)
            return
        run_id = message["run"]
        pending = worker.runs.get(run_id)
        if pending is None:
            return
        if op == "calls":
            for call_id, server, tool, input_text in message["calls"]:
                request = CallRequest(int(call_id), str(server), str(tool), str(input_text))
                refusal = _check_call_limits(pending)
                if refusal is not None:
                    # Only a compromised worker gets here: the prelude and the
                    # worker's step loop keep a sound run within these limits.
                    logger.warning("worker %d run %d: %s", worker.number, run_id, refusal)
                    worker.queue_reply(run_id, request.id, CallReply.failure(*refusal))
                    continue
                pending.calls_started += 1
                task = asyncio.get_running_loop().create_task(
                    self._call(worker, run_id, pending, request)
                )
                pending.calls.add(task)
                task.add_done_callback(pending.calls.discard)
        elif op == "done":
            if not pending.outcome.done():
                outcome = SandboxOutcome.from_dict(message["outcome"])
                pending.outcome.set_result(_check_outcome_limits(outcome, pending.limits))
        else:
            raise ValueError(f"unknown message {op!r}")

    async def _call(
        self, worker: _Worker, run_id: int, pending: _PendingRun, request: CallRequest
    ) -> None:
        try:
            reply = await pending.handler(request)
        except Exception:
            # The reply carries no exception text: it could hold host details.
            logger.exception("run %d: handling call %d failed", run_id, request.id)
            reply = CallReply.failure("ToolError", "The host failed to handle this call.")
        worker.queue_reply(run_id, request.id, reply)

    def _fail_worker(self, worker: _Worker, reason: str) -> None:
        worker.kill()
        if worker in self._workers:
            self._workers.remove(worker)
        was_ready = worker.ready.done()
        if not was_ready:
            worker.ready.set_exception(SandboxError(reason))
        for pending in worker.runs.values():
            if not pending.outcome.done():
                pending.outcome.set_result(_crash_outcome(worker, reason))
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
        asyncio.get_running_loop().create_task(_reap(worker))

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
            worker.alive = False
            if worker.process.stdin is not None:
                worker.process.stdin.close()
        await asyncio.gather(*(_reap(worker, grace=1.0) for worker in workers))

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


def _log_replace_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("starting a replacement sandbox worker failed: %s", task.exception())


def _check_call_limits(pending: _PendingRun) -> tuple[str, str] | None:
    """Return the error name and message that reject one more call, or `None`."""
    limits = pending.limits
    if pending.calls_started >= limits.max_calls:
        return "LimitExceededError", f"CallLimitExceeded: more than {limits.max_calls} tool calls"
    if len(pending.calls) >= limits.max_concurrent_calls:
        return (
            "LimitExceededError",
            f"more than {limits.max_concurrent_calls} tool calls in flight at once",
        )
    return None


# Room for the "... [truncated]" marker the prelude appends to the last kept
# message, and for the level names.
_LOG_SLACK = 64


def _check_outcome_limits(outcome: SandboxOutcome, limits: Limits) -> SandboxOutcome:
    """Enforce the result and console limits on the host as well as in the worker."""
    result = outcome.result_text
    if result is not None and len(result) > limits.max_result_bytes:
        return SandboxOutcome(
            error={
                "name": "ResultTooLargeError",
                "message": (
                    f"The returned value is {len(result)} characters of JSON, over the "
                    f"limit of {limits.max_result_bytes}. Return a summary instead."
                ),
            },
            duration=outcome.duration,
        )
    kept: list[dict[str, str]] = []
    size = 0
    for entry in outcome.logs:
        # The prelude counts each entry as its message plus 32 characters.
        size += len(entry["message"]) + 32
        if size > limits.max_log_bytes + _LOG_SLACK:
            outcome.logs_dropped += len(outcome.logs) - len(kept)
            outcome.logs = kept
            break
        kept.append(entry)
    return outcome


def _crash_outcome(worker: _Worker, reason: str) -> SandboxOutcome:
    return SandboxOutcome(
        error={
            "name": "WorkerCrashedError",
            "message": (
                f"The sandbox process running this code stopped before the run finished: "
                f"{reason}. Tool calls the code made may have taken effect. Run the code "
                "again; if it fails the same way, the code may be triggering an engine bug."
            ),
        }
    )


def _time_limit_outcome(limits: Limits) -> SandboxOutcome:
    return SandboxOutcome(
        error={
            "name": "TimeLimitExceeded",
            "message": (
                f"The run did not finish within {limits.timeout:g} s and was stopped. "
                "Look for endless loops, or do less work per run."
            ),
        },
        duration=limits.timeout,
    )
