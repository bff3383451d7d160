"""One execution of JavaScript in a fresh V8 isolate, driven step by step from the host.

The isolate is created for one run and closed after it. The host never reads a
live JavaScript object and never lets JavaScript call into Python. It only
evaluates two functions of the prelude (`_bootstrap.js`). `__isobind.poll()`
returns a JSON string of the tool calls, console output and completion since
the last step, and `__isobind.deliver(text)` settles finished tool calls.
Each step is a separate mini-racer task, so the microtasks started by one
step have drained before the next poll runs.

Deadlines are enforced here, never inside the sandbox: every step runs under
the run's wall-clock deadline, and when it passes the isolate is closed, which
makes mini-racer call V8's `TerminateExecution`. That also stops a microtask
loop, which runs between mini-racer tasks where cancelling a task cannot reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from py_mini_racer import (
    JSEvalException,
    JSOOMException,
    JSParseException,
    LibAlreadyInitializedError,
    init_mini_racer,
)

# NOTE: `_make_context` is private to mini-racer (pinned to 0.14 in
# pyproject.toml). It is used instead of `MiniRacer` because `MiniRacer()` also
# installs a timer implementation that runs JavaScript outside any host step,
# and costs a synchronous evaluation (about 0.35 ms) per isolate.
from py_mini_racer._mini_racer import _make_context

from ._errors import SandboxError

__all__ = [
    "ENGINE_FLAGS",
    "CallReply",
    "CallRequest",
    "Limits",
    "SandboxOutcome",
    "create_isolate",
    "run_in_isolate",
    "wait_closed",
]

logger = logging.getLogger(__name__)

# V8 flags for every isolate in this process: no `eval`/`new Function`, so code
# cannot build a dynamic `import()` or other code from strings at run time.
ENGINE_FLAGS = (
    "--single-threaded",
    "--disallow-code-generation-from-strings",
)

MAIN_FUNCTION = "__isobind_main"
_CODE_PREFIX = f"__isobind.start(async function {MAIN_FUNCTION}() {{"
_CLOSE_TIMEOUT = 5.0
_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-run budgets, all enforced by the host."""

    timeout: float = 30.0
    """Wall-clock seconds for the whole run, tool calls included."""
    memory_mb: int = 128
    """V8 heap limit in MiB; ArrayBuffers get a separate budget of the same size."""
    max_log_bytes: int = 1_000_000
    """Characters of console output kept; later output is counted and dropped."""
    max_result_bytes: int = 16_000_000
    """Characters of JSON in the returned value."""
    max_calls: int = 10_000
    """Tool calls one run may start."""
    max_concurrent_calls: int = 64
    """Tool calls in flight at once; later calls wait for a free slot."""
    cpu_time: float = 10.0
    """Seconds the engine may spend running the code, tool calls and timer waits excluded.

    Measured as the wall-clock time of the host's engine steps, so it is an
    upper bound on the CPU time the code used."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        names = [item.name for item in dataclasses.fields(cls)]
        return cls(**{name: data[name] for name in names if name in data})


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A tool call made by the sandboxed code, as data."""

    id: int
    server: str
    """Server identifier, as in `tools.<server>`."""
    tool: str
    """Tool identifier, as in `tools.<server>.<tool>`."""
    input_text: str
    """The input object as JSON text, produced inside the sandbox (untrusted)."""


@dataclass(frozen=True, slots=True)
class CallReply:
    """The host's reply to one call: JSON text, or an error by name."""

    ok: bool
    value_text: str | None = None
    error_name: str = "ToolError"
    error_message: str = ""

    @classmethod
    def success(cls, value_text: str | None) -> CallReply:
        return cls(ok=True, value_text=value_text)

    @classmethod
    def failure(cls, name: str, message: str) -> CallReply:
        return cls(ok=False, error_name=name, error_message=message)


CallHandler = Callable[[CallRequest], Coroutine[Any, Any, CallReply]]


@dataclass(slots=True)
class SandboxOutcome:
    """The end state of one run; `error` is `None` when the code succeeded."""

    result_text: str | None = None
    error: dict[str, Any] | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    logs_dropped: int = 0
    duration: float = 0.0
    code_started: float | None = None
    """`time.monotonic()` when the code was handed to the engine; CLOCK_MONOTONIC is
    shared by all processes, so the host can compare it with its own clock."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "result_text": self.result_text,
            "error": self.error,
            "logs": self.logs,
            "logs_dropped": self.logs_dropped,
            "duration": self.duration,
            "code_started": self.code_started,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxOutcome:
        """Rebuild an outcome sent by a worker, checking the type of every field."""
        result_text = data.get("result_text")
        error = data.get("error")
        logs = data.get("logs", [])
        if result_text is not None and not isinstance(result_text, str):
            raise TypeError("result_text is not a string")
        if error is not None and not (
            isinstance(error, dict)
            and isinstance(error.get("name"), str)
            and isinstance(error.get("message"), str)
        ):
            raise TypeError("error is not an object with a name and a message")
        if not isinstance(logs, list) or not all(
            isinstance(entry, dict)
            and isinstance(entry.get("level"), str)
            and isinstance(entry.get("message"), str)
            for entry in logs
        ):
            raise TypeError("logs is not a list of {level, message} objects")
        return cls(
            result_text=result_text,
            error=error,
            logs=logs,
            logs_dropped=int(data.get("logs_dropped", 0)),
            duration=float(data.get("duration", 0.0)),
            code_started=_optional_float(data.get("code_started")),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


_engine_lock = threading.Lock()
_engine_ready = False


def _init_engine(extra_flags: Sequence[str] = ()) -> None:
    """Initialise V8 once per process with `ENGINE_FLAGS` and `extra_flags`."""
    global _engine_ready
    with _engine_lock:
        if _engine_ready:
            return
        try:
            init_mini_racer(flags=(*ENGINE_FLAGS, *extra_flags))
        except LibAlreadyInitializedError:
            logger.warning(
                "mini-racer was initialised before isobind, without the flags %s; "
                "only the sandbox prelude blocks eval and new Function. Import isobind "
                "before creating any MiniRacer to get both guards.",
                " ".join(ENGINE_FLAGS),
            )
        _engine_ready = True


_prelude_source: str | None = None
_SOURCE_URL = "//# sourceURL=isobind:bootstrap"


def _bootstrap_template() -> str:
    """Return the prelude: `_bootstrap.js`, then `_webapis.js`, as one script.

    It is read once; a locked-down worker reads it before lockdown.
    """
    global _prelude_source
    if _prelude_source is None:
        here = Path(__file__).parent
        bootstrap = (here / "_bootstrap.js").read_text(encoding="utf-8")
        webapis = (here / "_webapis.js").read_text(encoding="utf-8")
        bootstrap = bootstrap.replace(_SOURCE_URL, "")
        _prelude_source = f"{bootstrap}\n{webapis}\n{_SOURCE_URL}\n"
    return _prelude_source


def _render_configure(api: Mapping[str, Sequence[str]], limits: Limits, token: str) -> str:
    """Return the script that gives a prepared isolate this run's API, limits and key."""
    limits_json = json.dumps(
        {
            "maxLogBytes": limits.max_log_bytes,
            "maxCalls": limits.max_calls,
            "maxBufferBytes": limits.memory_mb * _MiB,
        }
    )
    api_json = json.dumps({server: list(tools) for server, tools in api.items()})
    arguments = ", ".join(json.dumps(text) for text in (token, api_json, limits_json))
    return f'__isobind.configure({arguments}, "{os.urandom(32).hex()}")'


def wrap_code(code: str, filename: str) -> str:
    """Wrap `code` as the body of the async main function, keeping its line numbers.

    The prefix shares line 1 with the code, so only columns on line 1 shift, by
    `len(_CODE_PREFIX)`; `_map_stack` undoes that.
    """
    return f"{_CODE_PREFIX}{code}\n}});\n//# sourceURL={filename}\n"


class _Isolate:
    """A mini-racer isolate bound to the running event loop, closed from a thread."""

    def __init__(self, stack: contextlib.ExitStack, context: Any):
        self._stack = stack
        self.context = context
        self.closed = False
        self.prepared = False
        """Whether the prelude has been evaluated, and nothing else."""

    @classmethod
    async def create(cls) -> _Isolate:
        loop = asyncio.get_running_loop()

        def build() -> _Isolate:
            stack = contextlib.ExitStack()
            context = stack.enter_context(_make_context(loop))
            return cls(stack, context)

        _init_engine()
        return await asyncio.to_thread(build)

    async def eval(self, source: str) -> Any:
        return await self.context.eval_cancelable(source)

    def set_memory_limit(self, limit_bytes: int) -> None:
        self.context.set_hard_memory_limit(limit_bytes)

    def memory_limit_reached(self) -> bool:
        return bool(self.context.was_hard_memory_limit_reached())

    async def close(self) -> None:
        """Close the isolate; this terminates any JavaScript still running in it."""
        if self.closed:
            return
        self.closed = True
        try:
            await asyncio.wait_for(asyncio.to_thread(self._stack.close), _CLOSE_TIMEOUT)
        except TimeoutError:
            # NOTE: the closing thread is left behind; V8 did not stop within
            # _CLOSE_TIMEOUT after TerminateExecution, which has not been seen.
            logger.error("V8 isolate did not close within %.0f s", _CLOSE_TIMEOUT)


class _Run:
    """The host side of one run: the step loop and the calls in flight."""

    def __init__(
        self,
        isolate: _Isolate,
        handler: CallHandler,
        limits: Limits,
        filename: str,
    ):
        self.isolate = isolate
        self.handler = handler
        self.limits = limits
        self.filename = filename
        self.outcome = SandboxOutcome()
        self.started = time.monotonic()
        # Only the host knows it: the bridge rejects calls without it.
        self.token = secrets.token_hex(16)
        self.engine_time = 0.0
        self.waiting: list[CallRequest] = []
        self.in_flight: dict[asyncio.Task[CallReply], int] = {}

    def now_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    async def eval(self, source: str) -> Any:
        """Evaluate `source` as one engine step, charged to the run's `cpu_time` budget."""
        remaining = self.limits.cpu_time - self.engine_time
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                return await self.isolate.eval(source)
        except TimeoutError:
            raise _LimitHit(
                "CpuTimeLimitExceeded",
                f"The code ran for more than {self.limits.cpu_time:g} s of engine time and "
                "was stopped. Look for endless loops, or do less work per run.",
            ) from None
        finally:
            self.engine_time += time.monotonic() - started

    async def poll(self) -> dict[str, Any]:
        text = await self.eval(f'__isobind.poll("{self.token}")')
        if not isinstance(text, str):
            raise SandboxError(f"the sandbox prelude returned {type(text).__name__}, not text")
        message: dict[str, Any] = json.loads(text)
        self.outcome.logs.extend(message["logs"])
        self.outcome.logs_dropped = message["logsDropped"]
        for call_id, server, tool, input_text in message["calls"]:
            self.waiting.append(CallRequest(call_id, server, tool, input_text))
        return message

    def start_calls(self) -> None:
        while self.waiting and len(self.in_flight) < self.limits.max_concurrent_calls:
            request = self.waiting.pop(0)
            task = asyncio.create_task(self.handler(request))
            self.in_flight[task] = request.id

    async def deliver(self, done: set[asyncio.Task[CallReply]]) -> None:
        outcomes: list[list[Any]] = []
        for task in done:
            call_id = self.in_flight.pop(task)
            try:
                reply = task.result()
            except Exception:
                # The reply carries no exception text: it could hold host details.
                logger.exception("handling call %d failed", call_id)
                reply = CallReply.failure("ToolError", "The host failed to handle this call.")
            if reply.ok:
                outcomes.append([call_id, True, reply.value_text])
            else:
                error = {"name": reply.error_name, "message": reply.error_message}
                outcomes.append([call_id, False, error])
        payload = json.dumps(json.dumps(outcomes))
        await self.eval(f'__isobind.deliver("{self.token}", {payload}, {self.now_ms():.3f})')

    async def step_loop(self) -> None:
        while True:
            message = await self.poll()
            if message["bufferLimitHit"]:
                raise _LimitHit("MemoryLimitExceeded", self._buffer_message())
            if message["done"]:
                self._finish(message)
                return
            self.start_calls()
            if self.in_flight:
                done, _ = await asyncio.wait(
                    self.in_flight,
                    timeout=self._timer_wait(message["nextTimer"]),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done:
                    await self.deliver(done)
                    continue
                await self.eval(f'__isobind.fireTimers("{self.token}", {self.now_ms():.3f})')
            elif message["nextTimer"] is not None:
                await asyncio.sleep(self._timer_wait(message["nextTimer"]) or 0)
                await self.eval(f'__isobind.fireTimers("{self.token}", {self.now_ms():.3f})')
            elif self.isolate.memory_limit_reached():
                # V8 stopped a microtask chain that ran out of heap between two
                # steps, so the promise the code awaits can no longer settle.
                raise JSOOMException("the V8 heap limit was reached between steps")
            else:
                raise _LimitHit(
                    "DeadlockError",
                    "The code is awaiting a promise that nothing can settle: no tool call "
                    "or timer is pending. Make sure every promise you await is resolved.",
                )

    def _timer_wait(self, next_timer: float | None) -> float | None:
        if next_timer is None:
            return None
        return max(0.0, next_timer / 1000)

    def _buffer_message(self) -> str:
        return (
            f"The code allocated more than {self.limits.memory_mb} MiB of ArrayBuffer "
            "memory. Process the data in smaller pieces or raise the memory limit."
        )

    def _finish(self, message: dict[str, Any]) -> None:
        error = message["error"]
        if error is not None and _is_buffer_failure(error):
            raise _LimitHit(
                "MemoryLimitExceeded",
                "The code's buffers could not be allocated: the sandbox process has no "
                "memory left outside the V8 heap. Process the data in smaller pieces.",
            )
        if error is not None:
            self.outcome.error = _map_error(message["error"], self.filename)
            return
        result = message["result"]
        if result is not None and len(result) > self.limits.max_result_bytes:
            self.outcome.error = {
                "name": "ResultTooLargeError",
                "message": (
                    f"The returned value is {len(result)} characters of JSON, over the "
                    f"limit of {self.limits.max_result_bytes}. Return a summary instead."
                ),
            }
            return
        self.outcome.result_text = result

    async def cancel_calls(self) -> None:
        for task in self.in_flight:
            task.cancel()
        if self.in_flight:
            # The wait is shielded, and uses `asyncio.wait`, which (unlike
            # `gather`) does not cancel the calls a second time when it is
            # cancelled itself: a second cancel would interrupt the MCP
            # client's `notifications/cancelled` to the upstream server. It is
            # plain asyncio because a locked worker cannot import the lazily
            # loaded parts of anyio.
            await asyncio.shield(asyncio.wait(self.in_flight, timeout=_CLOSE_TIMEOUT))
        self.in_flight.clear()


def _is_buffer_failure(error: dict[str, Any]) -> bool:
    # V8's message when the worker's RLIMIT_DATA refuses a buffer's memory.
    return bool(
        error.get("name") == "RangeError"
        and str(error.get("message", "")).startswith("Array buffer allocation failed")
    )


class _LimitHit(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
        self.message = message


async def run_in_isolate(
    code: str,
    *,
    api: Mapping[str, Sequence[str]],
    handler: CallHandler,
    limits: Limits,
    filename: str = "code.ts",
    isolate: _Isolate | None = None,
) -> SandboxOutcome:
    """Run JavaScript `code` as the body of an async function in a fresh isolate.

    `api` lists the tool identifiers per server identifier that `tools` exposes;
    each call reaches `handler`. `isolate`, from `create_isolate()`, is used
    when given; it must never have run code. The isolate is closed once the
    run ends, whatever happened, and is never reused.
    """
    if isolate is None:
        isolate = await _Isolate.create()
    run = _Run(isolate, handler, limits, filename)
    try:
        isolate.set_memory_limit(limits.memory_mb * _MiB)
        await _run_steps(run, code, api)
    finally:
        try:
            await run.cancel_calls()
        finally:
            run.outcome.duration = time.monotonic() - run.started
            # Closing takes about 0.3 ms of a worker thread; the result does not
            # wait for it. `wait_closed()` waits for every close still running.
            _close_in_background(isolate)
    return run.outcome


async def create_isolate() -> _Isolate:
    """Create an isolate and evaluate the prelude ahead of a run, for `run_in_isolate`."""
    isolate = await _Isolate.create()
    try:
        await isolate.eval(_bootstrap_template())
    except BaseException:
        await isolate.close()
        raise
    isolate.prepared = True
    return isolate


_closing: set[asyncio.Task[None]] = set()


def _close_in_background(isolate: _Isolate) -> None:
    task = asyncio.get_running_loop().create_task(isolate.close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def wait_closed() -> None:
    """Wait until every isolate closed in the background has closed."""
    while _closing:
        await asyncio.gather(*list(_closing), return_exceptions=True)


async def _run_steps(run: _Run, code: str, api: Mapping[str, Sequence[str]]) -> None:
    limits = run.limits
    try:
        async with asyncio.timeout(limits.timeout):
            if not run.isolate.prepared:
                await run.eval(_bootstrap_template())
            # A step of its own: passed in the code's script, the code could
            # close the wrapper early and supply its own token, API and limits.
            await run.eval(_render_configure(api, limits, run.token))
            run.outcome.code_started = time.monotonic()
            try:
                await run.eval(wrap_code(code, run.filename))
            except JSParseException as error:
                run.outcome.error = _map_syntax_error(str(error), run.filename)
                return
            await run.step_loop()
    except TimeoutError:
        # NOTE: console output the isolate buffered since the last poll is lost
        # here: the isolate may still be busy, so it is not asked for it.
        run.outcome.error = {
            "name": "TimeLimitExceeded",
            "message": (
                f"The run did not finish within {limits.timeout:g} s and was stopped. "
                "Look for endless loops, or do less work per run."
            ),
        }
    except _LimitHit as hit:
        run.outcome.error = {"name": hit.name, "message": hit.message}
    except JSOOMException:
        run.outcome.error = _memory_error(limits)
    except JSEvalException as error:
        if run.isolate.memory_limit_reached():
            run.outcome.error = _memory_error(limits)
        else:
            # NOTE: in mode="inprocess" this reaches the caller of
            # Toolbox.execute, which then writes no audit record; a worker
            # turns it into the run's error instead.
            raise SandboxError(f"V8 failed outside the code: {error}") from error


def _memory_error(limits: Limits) -> dict[str, Any]:
    return {
        "name": "MemoryLimitExceeded",
        "message": (
            f"The code used more than the {limits.memory_mb} MiB memory limit and was "
            "stopped. Keep less data in memory at once, or raise the limit."
        ),
    }


_FRAME_LOCATION = re.compile(r"(?P<file>[^\s()]+):(?P<line>\d+):(?P<column>\d+)")


def _map_stack(stack: str, filename: str) -> tuple[str, int | None, int | None]:
    """Keep the frames of the model's code, with columns as written, and find its location."""
    kept: list[str] = []
    first_line: int | None = None
    first_column: int | None = None
    for raw_line in stack.splitlines():
        if not raw_line.lstrip().startswith("at "):
            kept.append(raw_line)
            continue
        match = _FRAME_LOCATION.search(raw_line)
        if match is None or match.group("file") != filename:
            continue
        line = int(match.group("line"))
        column = int(match.group("column"))
        if line == 1:
            column -= len(_CODE_PREFIX)
            if column < 1:
                # The wrapper's own call of the main function, not the code.
                continue
        if first_line is None:
            first_line, first_column = line, column
        text = raw_line[: match.start()] + f"{filename}:{line}:{column}" + raw_line[match.end() :]
        kept.append(text.replace(MAIN_FUNCTION, "main"))
    return "\n".join(kept), first_line, first_column


_STACK_OVERFLOW = "Maximum call stack size exceeded"


def _map_error(error: dict[str, Any], filename: str) -> dict[str, Any]:
    stack, line, column = _map_stack(error.get("stack") or "", filename)
    mapped: dict[str, Any] = {"name": error["name"], "message": error["message"]}
    if error["name"] == "RangeError" and error["message"] == _STACK_OVERFLOW:
        # The code did not catch V8's stack overflow: name the limit it hit.
        mapped = {
            "name": "StackLimitExceeded",
            "message": (
                f"{_STACK_OVERFLOW}: the code recursed deeper than the stack limit. "
                "Look for unbounded recursion, or use a loop."
            ),
        }
    if stack:
        mapped["stack"] = stack
    if line is not None:
        mapped["line"] = line
        mapped["column"] = column
    return mapped


_PARSE_HEADER = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+): (?P<name>\w+): (?P<message>.*)$")


def _map_syntax_error(text: str, filename: str) -> dict[str, Any]:
    """Turn mini-racer's parse error text into an error pointing into the code as written."""
    lines = text.splitlines()
    header = _PARSE_HEADER.match(lines[0]) if lines else None
    if header is None:
        return {"name": "SyntaxError", "message": text.strip()}
    line = int(header.group("line"))
    error: dict[str, Any] = {
        "name": header.group("name"),
        "message": header.group("message"),
        "line": line,
    }
    if len(lines) >= 3 and "^" in lines[2]:
        column = lines[2].index("^") + 1
        if line == 1:
            column -= len(_CODE_PREFIX)
        error["column"] = column
        source_line = lines[1][len(_CODE_PREFIX) :] if line == 1 else lines[1]
        error["stack"] = f"{error['name']}: {error['message']}\n    at {filename}:{line}:{column}"
        error["source"] = source_line
    return error
