"""One execution of JavaScript in a fresh V8 isolate, driven step by step from the host.

The isolate is created for one run and closed after it. The host never reads a
live JavaScript object and never lets JavaScript call into Python: it only
evaluates two functions of the prelude (`_bootstrap.js`), `__isobind.poll()`,
which returns a JSON string of what happened since the last step (tool calls,
console output, completion), and `__isobind.deliver(text)`, which settles
finished tool calls. Each step is a separate mini-racer task, so the microtasks
started by one step have drained before the next poll runs.

Deadlines are enforced here, never inside the sandbox: every step runs under
the run's wall-clock deadline, and when it passes the isolate is closed, which
makes mini-racer call V8's `TerminateExecution`. That also stops a microtask
loop, which runs between mini-racer tasks where cancelling a task cannot reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import anyio
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
    """What the host returns for one call: JSON text, or an error by name."""

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

    @property
    def ok(self) -> bool:
        return self.error is None


_engine_lock = threading.Lock()
_engine_ready = False


def _init_engine() -> None:
    """Initialise V8 once per process with `ENGINE_FLAGS`."""
    global _engine_ready
    with _engine_lock:
        if _engine_ready:
            return
        try:
            init_mini_racer(flags=ENGINE_FLAGS)
        except LibAlreadyInitializedError:
            logger.warning(
                "mini-racer was initialised before isobind, without the flags %s; "
                "only the sandbox prelude blocks eval and new Function. Import isobind "
                "before creating any MiniRacer to get both guards.",
                " ".join(ENGINE_FLAGS),
            )
        _engine_ready = True


_bootstrap_source: str | None = None


def _bootstrap_template() -> str:
    global _bootstrap_source
    if _bootstrap_source is None:
        _bootstrap_source = (
            resources.files("isobind").joinpath("_bootstrap.js").read_text(encoding="utf-8")
        )
    return _bootstrap_source


def _render_bootstrap(api: Mapping[str, Sequence[str]], limits: Limits) -> str:
    limits_json = json.dumps(
        {
            "maxLogBytes": limits.max_log_bytes,
            "maxCalls": limits.max_calls,
            "maxBufferBytes": limits.memory_mb * _MiB,
        }
    )
    api_json = json.dumps({server: list(tools) for server, tools in api.items()})
    return (
        _bootstrap_template()
        .replace("__ISOBIND_API__", api_json)
        .replace("__ISOBIND_LIMITS__", limits_json)
    )


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
        self.waiting: list[CallRequest] = []
        self.in_flight: dict[asyncio.Task[CallReply], int] = {}

    def now_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    async def poll(self) -> dict[str, Any]:
        text = await self.isolate.eval("__isobind.poll()")
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
            reply = task.result()
            if reply.ok:
                outcomes.append([call_id, True, reply.value_text])
            else:
                error = {"name": reply.error_name, "message": reply.error_message}
                outcomes.append([call_id, False, error])
        payload = json.dumps(json.dumps(outcomes))
        await self.isolate.eval(f"__isobind.deliver({payload}, {self.now_ms():.3f})")

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
                await self.isolate.eval(f"__isobind.fireTimers({self.now_ms():.3f})")
            elif message["nextTimer"] is not None:
                await asyncio.sleep(self._timer_wait(message["nextTimer"]) or 0)
                await self.isolate.eval(f"__isobind.fireTimers({self.now_ms():.3f})")
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
        if message["error"] is not None:
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
            # client's `notifications/cancelled` to the upstream server.
            with anyio.CancelScope(shield=True):
                await asyncio.wait(self.in_flight, timeout=_CLOSE_TIMEOUT)
        self.in_flight.clear()


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
) -> SandboxOutcome:
    """Run JavaScript `code` as the body of an async function in a fresh isolate.

    `api` lists the tool identifiers per server identifier that `tools` exposes;
    each call reaches `handler`. The isolate is closed before this returns,
    whatever happened.
    """
    isolate = await _Isolate.create()
    run = _Run(isolate, handler, limits, filename)
    try:
        isolate.set_memory_limit(limits.memory_mb * _MiB)
        await _run_steps(run, code, api)
    finally:
        await run.cancel_calls()
        run.outcome.duration = time.monotonic() - run.started
        # Closing takes about 0.3 ms of a worker thread; the result does not
        # wait for it. `wait_closed()` waits for every close still running.
        _close_in_background(isolate)
    return run.outcome


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
            await run.isolate.eval(_render_bootstrap(api, limits))
            try:
                await run.isolate.eval(wrap_code(code, run.filename))
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
        if first_line is None:
            first_line, first_column = line, column
        text = raw_line[: match.start()] + f"{filename}:{line}:{column}" + raw_line[match.end() :]
        kept.append(text.replace(MAIN_FUNCTION, "main"))
    return "\n".join(kept), first_line, first_column


def _map_error(error: dict[str, Any], filename: str) -> dict[str, Any]:
    stack, line, column = _map_stack(error.get("stack") or "", filename)
    mapped: dict[str, Any] = {"name": error["name"], "message": error["message"]}
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
