"""One execution of JavaScript in a fresh V8 isolate, driven step by step from the host.

The isolate is created for one run and closed after it. The host never reads a
live JavaScript object and never lets JavaScript call into Python. It only
evaluates calls of the prelude's functions (`_bootstrap.js`). `__isobind.poll()`
returns a JSON string of the tool calls, console output and completion since
the last step, and `__isobind.deliver(text)` settles finished tool calls.
A step queues a deliver (or a timer firing) and a poll as two mini-racer tasks
at once. The isolate thread drains the microtask queue after each task, so the
microtasks the deliver started have finished before the poll runs, and the
host pays one thread round trip per step.

Deadlines are enforced here, never inside the sandbox: every step runs under
the run's wall-clock deadline, and when it passes the isolate is closed, which
makes mini-racer call V8's `TerminateExecution`. That also stops a microtask
loop, which runs between mini-racer tasks where cancelling a task cannot reach.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
from py_mini_racer import (
    JSEvalException,
    JSOOMException,
    LibAlreadyInitializedError,
    init_mini_racer,
)
from py_mini_racer._exc import JSTerminatedException

# NOTE: `_make_context` is private to mini-racer (pinned to 0.14 in
# pyproject.toml). It is used instead of `MiniRacer` because `MiniRacer()` also
# installs a timer implementation that runs JavaScript outside any host step,
# and costs a synchronous evaluation (about 0.35 ms) per isolate.
from py_mini_racer._mini_racer import _make_context

from ._engine import EngineBatch
from ._errors import SandboxError

__all__ = [
    "ENGINE_FLAGS",
    "CallReply",
    "CallRequest",
    "Configuration",
    "Limits",
    "LocalCalls",
    "SandboxOutcome",
    "configuration_of",
    "create_isolate",
    "names_web_api",
    "preparation_sources",
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

    def __post_init__(self) -> None:
        # The config file and the CLI check these too; this covers Python callers.
        for name in ("timeout", "cpu_time"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"{name} must be a finite number of seconds above 0, not {value!r}"
                )
        minimums = {
            "memory_mb": 1,
            "max_log_bytes": 0,
            "max_result_bytes": 1,
            "max_calls": 0,
            "max_concurrent_calls": 1,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"{name} must be a whole number of at least {minimum}, not {value!r}"
                )


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
    """`time.monotonic()` when the engine task just before the code's own task ended.

    A worker takes the stamp itself. CLOCK_MONOTONIC is shared by all
    processes, so the host can compare it with its own clock."""

    @property
    def ok(self) -> bool:
        return self.error is None


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


_prelude_sources: tuple[str, str] | None = None
_BOOTSTRAP_URL = "isobind:bootstrap"
_WEBAPIS_URL = "isobind:webapis"


def _read_prelude() -> tuple[str, str]:
    """Return `_bootstrap.js` and `_webapis.js`, each ending in its own `sourceURL`.

    They are read once, so a locked-down worker reads them before lockdown.
    """
    global _prelude_sources
    if _prelude_sources is None:
        here = Path(__file__).parent
        bootstrap = (here / "_bootstrap.js").read_text(encoding="utf-8")
        webapis = (here / "_webapis.js").read_text(encoding="utf-8")
        _prelude_sources = (
            _with_source_url(bootstrap, _BOOTSTRAP_URL),
            _with_source_url(webapis, _WEBAPIS_URL),
        )
    return _prelude_sources


def _with_source_url(source: str, url: str) -> str:
    """Return `source` with exactly one `sourceURL` comment, at its end.

    `_map_stack` keeps only the frames of the code's own file, so the stack of
    the error a run reports shows no frames from these URLs.
    """
    directive = f"//# sourceURL={url}"
    return f"{source.replace(directive, '').rstrip()}\n{directive}\n"


def _bootstrap_template() -> str:
    """Return `_bootstrap.js`, the prelude that every isolate evaluates before any code.

    It also reads `_webapis.js`, so a worker that calls it before lockdown has both.
    """
    return _read_prelude()[0]


def _webapis_source() -> str:
    """Return `_webapis.js`, which the run evaluates only for code that `names_web_api`."""
    return _read_prelude()[1]


_WEB_API_DEFINITION = re.compile(r'^\s*define\("(?P<name>[A-Za-z_$][\w$]*)"', re.MULTILINE)


@functools.cache
def _web_api_reference() -> re.Pattern[str]:
    names = _WEB_API_DEFINITION.findall(_webapis_source())
    if not names:
        raise SandboxError(
            "_webapis.js defines no globals through `define(...)`, so the installed "
            "isobind package is damaged; reinstall it"
        )
    named = "|".join(re.escape(name) for name in names)
    # The global object used other than as `<object>.<identifier>`, which
    # can reach any of its properties by a name built at run time. `this`
    # counts because the code's main function runs in sloppy mode, where a
    # plain call's `this` is the global object.
    computed = r"(?:globalThis|self|window|this)(?![\w$])(?!\s*\.\s*[A-Za-z_$#])"
    return re.compile(rf"(?<![\w$])(?:(?:{named})(?![\w$])|{computed})")


def names_web_api(code: str) -> bool:
    """Return whether a run of `code` needs `_webapis.js` evaluated before it.

    The scan is of the text, comments and strings included, so it errs towards
    loading. It is true when the code contains, as a whole word, a global that
    `_webapis.js` defines (`TextEncoder`, `URL`, ...), or `globalThis`, `self`,
    `window` or `this` anywhere but before `.name`, as in `globalThis[name]`
    or `Reflect.ownKeys(globalThis)`. Code that reaches a
    Web API in another way, such as through `\\u` escapes in an identifier,
    gets the bootstrap's placeholder, which throws a `ReferenceError` naming
    the global and saying to write its name in the code.
    """
    return _web_api_reference().search(code) is not None


def _render_prepare(token: str) -> str:
    """Return the script that gives a fresh isolate its bridge key and its `crypto` key."""
    return f'__isobind.prepare("{token}", "{os.urandom(32).hex()}")'


Configuration = tuple[str, str]
"""The API and the limits as the JSON texts that the prelude's `configure` takes."""


def configuration_of(api: Mapping[str, Sequence[str]], limits: Limits) -> Configuration:
    """Return what `configure` gives an isolate for a run with `api` and `limits`.

    Runs with equal configurations can use isolates configured ahead alike.
    """
    limits_json = json.dumps(
        {
            "maxLogBytes": limits.max_log_bytes,
            "maxCalls": limits.max_calls,
            "maxBufferBytes": limits.memory_mb * _MiB,
            "maxResultBytes": limits.max_result_bytes,
        }
    )
    api_json = json.dumps({server: list(tools) for server, tools in api.items()})
    return api_json, limits_json


def _render_configure(configuration: Configuration, token: str) -> str:
    """Return the script that gives a prepared isolate its API and limits."""
    arguments = ", ".join(json.dumps(text) for text in (token, *configuration))
    return f"__isobind.configure({arguments})"


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
        """Whether `_bootstrap.js` has been evaluated and `prepare` called, and nothing since
        but `configure`."""
        self.configuration: Configuration | None = None
        """The configuration `configure` gave the isolate ahead of its run, if any."""
        self.broken = False
        """Whether a batch was abandoned, so that its late results could mix with the next."""
        self.on_lost: Callable[[EngineLost], None] | None = None
        """Never called: an isolate in this process goes only with the process."""
        self.stopped_at_limit = False
        # Only the host has it, and the bridge rejects calls without it.
        self.token = secrets.token_hex(16)

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

    def submit(self, sources: Sequence[str], notify_index: int | None = None) -> EngineBatch:
        """Queue `sources` as consecutive engine tasks in one `EngineBatch`."""
        if self.broken:
            raise SandboxError("an engine batch of this isolate was abandoned; close it")
        return EngineBatch(self.context, sources, notify_index)

    def abandon(self, batch: EngineBatch) -> None:
        """Cancel what is left of `batch`; the isolate takes no batch after this."""
        self.broken = True
        batch.abandon()

    def set_memory_limit(self, limit_bytes: int) -> None:
        self.context.set_hard_memory_limit(limit_bytes)

    def memory_limit_reached(self) -> bool:
        return bool(self.context.was_hard_memory_limit_reached())

    async def engine_seconds(self) -> float | None:
        # The isolate's thread is mini-racer's, so the run uses the wall clock instead.
        return None

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


class RunEnded(Exception):
    """Ends a run with `error`, a failure the host detected outside the code."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(error["message"])
        self.error = error


class EngineLost(RunEnded):
    """The engine running an isolate is gone: its worker process died."""


class OversizedOutput(JSEvalException):
    """A worker could not send a task's result, because it was over the channel's size limit."""


class EngineBatchLike(Protocol):
    """The parts of a batch of engine tasks that a run reads: `EngineBatch`, or one in a worker."""

    last: asyncio.Future[Any]
    notified: asyncio.Future[Any] | None
    notified_at: float | None
    engine_seconds: float | None
    """CPU seconds the isolate has used since it was prepared, as of this batch's end."""

    def quiet_results(self) -> list[tuple[int, Any, JSEvalException | None]]: ...


class EngineIsolate(Protocol):
    """An isolate a run can drive: `_Isolate` in this process, or one in a worker process."""

    token: str
    prepared: bool
    configuration: Configuration | None
    on_lost: Callable[[EngineLost], None] | None
    """Called when the engine is gone while the run waits for something else."""
    stopped_at_limit: bool
    """Whether the run was stopped at its time limit, so its engine may be stuck."""

    def submit(
        self, sources: Sequence[str], notify_index: int | None = None
    ) -> EngineBatchLike: ...

    def abandon(self, batch: Any) -> None: ...

    def set_memory_limit(self, limit_bytes: int) -> None: ...

    def memory_limit_reached(self) -> bool: ...

    async def engine_seconds(self) -> float | None:
        """Return the CPU seconds the isolate has used since it was prepared, if known."""
        ...

    async def close(self) -> None: ...


SettleCall = Callable[[int, CallReply], None]
"""Receives the id and the reply of a finished call."""


class LocalCalls:
    """Runs each call of a run as a task of `handler` in this process."""

    def __init__(self, handler: CallHandler):
        self.handler = handler
        self.tasks: dict[asyncio.Task[CallReply], int] = {}

    def start(self, requests: Sequence[CallRequest], settle: SettleCall) -> None:
        loop = asyncio.get_running_loop()
        for request in requests:
            task = loop.create_task(self.handler(request))
            self.tasks[task] = request.id
            task.add_done_callback(functools.partial(self._finished, settle))

    def _finished(self, settle: SettleCall, task: asyncio.Task[CallReply]) -> None:
        call_id = self.tasks.pop(task)
        if task.cancelled():
            # Before the run ends, the code gets a failed call; after, `settle` ignores it.
            settle(call_id, CallReply.failure("CallCancelled", "the call was cancelled"))
            return
        error = task.exception()
        if error is None:
            settle(call_id, task.result())
            return
        # The reply carries no exception text: it could hold host details.
        logger.error("handling call %d failed", call_id, exc_info=error)
        settle(call_id, CallReply.failure("ToolError", "The host failed to handle this call."))

    async def cancel(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # Let the cancelled calls record themselves before the result is
            # built; each ends at its next await. The wait uses `asyncio.wait`,
            # which (unlike `gather`) does not cancel the calls a second time
            # when it is cancelled itself: a second cancel would interrupt the
            # MCP client's `notifications/cancelled` to the upstream server.
            # An anyio cancel scope (the MCP server's request scope) cancels
            # every await inside it again, so `asyncio.shield` alone would not
            # wait here.
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT)


class _Run:
    """The host side of one run: the step loop and the calls in flight."""

    def __init__(
        self,
        isolate: EngineIsolate,
        calls: LocalCalls,
        limits: Limits,
        filename: str,
    ):
        self.isolate = isolate
        self.calls = calls
        self.limits = limits
        self.filename = filename
        self.outcome = SandboxOutcome()
        self.started = time.monotonic()
        self.token = isolate.token
        self.engine_time = 0.0
        self.waiting: collections.deque[CallRequest] = collections.deque()
        self.in_flight: set[int] = set()
        self.replies: list[list[Any]] = []
        """Finished calls not yet delivered, as the prelude's `deliver` takes them."""
        self._wakeup: asyncio.Future[None] | None = None
        self.lost: EngineLost | None = None
        isolate.on_lost = self.engine_lost
        self.calls_seen = 0
        self.log_size = 0
        self.extra_dropped = 0
        """Console entries dropped here, past what the prelude reported dropping."""

    def now_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    async def run_engine(self, sources: Sequence[str], code_index: int | None = None) -> Any:
        """Queue `sources` as one batch of engine tasks and return the last one's result.

        The batch is charged to the run's `cpu_time` budget. When `code_index`
        is given, that task is the code's own script: `code_started` is stamped
        as it starts, and its errors are mapped to the code's error, which
        ends the run with `None` returned.
        """
        remaining = self.limits.cpu_time - self.engine_time
        started = time.monotonic()
        # The task before the code's calls back as it ends, for the stamp.
        notify_index = code_index - 1 if code_index else None
        batch = self.isolate.submit(sources, notify_index)
        finished = False
        last = None
        last_error: JSEvalException | None = None
        try:
            while True:
                try:
                    async with asyncio.timeout(max(remaining, 0.0)):
                        await self._wait_batch(batch)
                    break
                except TimeoutError:
                    # The wall clock is an upper bound. An isolate in a worker
                    # can report the CPU time it really used, which is less
                    # when runs on that worker wait for each other.
                    used = await self.isolate.engine_seconds()
                    if used is None or used >= self.limits.cpu_time:
                        raise
                    remaining = max(self.limits.cpu_time - used, _MIN_CPU_RECHECK)
            try:
                last = batch.last.result()
            except JSEvalException as failure:
                last_error = failure
            finished = True
        except TimeoutError:
            raise _LimitHit(
                "CpuTimeLimitExceeded",
                f"The code ran for more than {self.limits.cpu_time:g} s of engine time and "
                "was stopped. Look for endless loops, or do less work per run.",
            ) from None
        finally:
            if batch.engine_seconds is not None:
                self.engine_time = batch.engine_seconds
            else:
                self.engine_time += time.monotonic() - started
            if not finished:
                self.isolate.abandon(batch)
        # Every task has ended; the first failure among them counts, as if
        # they had been awaited in order.
        for index, _, error in batch.quiet_results():
            if error is None:
                continue
            if index == code_index:
                self._code_failed(error)
                return None
            raise error
        if last_error is not None:
            raise last_error
        return last

    async def _wait_batch(self, batch: EngineBatchLike) -> None:
        """Wait until `batch` has ended; shielded, so a timeout can be followed by another wait."""
        if batch.notified is not None:
            await asyncio.shield(batch.notified)
            # The code's task runs as soon as the one before has finished,
            # so this stamp is no earlier than its first statement.
            self.outcome.code_started = batch.notified_at
        with contextlib.suppress(JSEvalException):
            await asyncio.shield(batch.last)

    def _code_failed(self, error: JSEvalException) -> None:
        """Record the error of the code's script as the code's, unless it is the engine's."""
        if isinstance(error, (JSOOMException, JSTerminatedException)):
            # The engine stopped the script (a close or the memory limit), not the parser.
            raise error
        if self.isolate.memory_limit_reached():
            raise error
        # A parse error, or, for code that closed the wrapper early, an error
        # thrown outside its main function.
        self.outcome.error = _map_syntax_error(str(error), self.filename)

    async def step(self, source: str) -> dict[str, Any]:
        """Evaluate `source` and then a poll as one batch of engine tasks; return the poll."""
        # NOTE: two tasks per step, each calling back into Python on the isolate's
        # thread, keep a tool call through a worker near +0.5 ms over the tool (target
        # 0.3 ms); V8 runs the deliver's microtasks only after its task ends.
        return self.read_poll(await self.run_engine([source, self.poll_source()]))

    async def begin(self, code: str, api: Mapping[str, Sequence[str]]) -> dict[str, Any] | None:
        """Configure the isolate, start the code and poll once, as one batch of engine tasks.

        Returns the poll, or `None` when the code did not compile or threw
        outside its main function; the error is then in the outcome.
        """
        sources: list[str] = []
        if not self.isolate.prepared:
            sources += [_bootstrap_template(), _render_prepare(self.token)]
        if names_web_api(code):
            # A task of its own before the code's, like the bootstrap, so its
            # globals are defined before the code's first statement.
            sources.append(_webapis_source())
        configuration = configuration_of(api, self.limits)
        if self.isolate.configuration is None:
            # A task of its own: passed in the code's script, the code could
            # close the wrapper early and supply its own API and limits.
            sources.append(_render_configure(configuration, self.token))
        elif self.isolate.configuration == configuration:
            # Configured ahead; an empty task marks when the code's task starts.
            sources.append("0")
        else:
            raise SandboxError("the isolate was configured ahead for another API or limits")
        sources += [wrap_code(code, self.filename), self.poll_source()]
        text = await self.run_engine(sources, code_index=len(sources) - 2)
        if text is None and self.outcome.error is not None:
            return None
        return self.read_poll(text)

    def poll_source(self) -> str:
        return f'__isobind.poll("{self.token}")'

    def read_poll(self, text: Any) -> dict[str, Any]:
        """Take the calls and console output of a poll; return the poll.

        The prelude keeps a sound run within the call and console limits. The
        poll may come from a worker process that escaped its isolate, so both
        are enforced here too, and every field is type-checked.
        """
        if not isinstance(text, str):
            raise SandboxError(f"the sandbox prelude returned {type(text).__name__}, not text")
        try:
            message = _checked_poll(json.loads(text))
        except (ValueError, TypeError, RecursionError) as error:
            raise SandboxError(f"the sandbox prelude returned a malformed poll: {error}") from None
        self._take_logs(message["logs"], message["logsDropped"])
        for call_id, server, tool, input_text in message["calls"]:
            request = CallRequest(call_id, server, tool, input_text)
            self.calls_seen += 1
            if self.calls_seen > self.limits.max_calls:
                self.in_flight.add(request.id)
                self.settle(request.id, CallReply.failure("LimitExceededError", self._call_limit))
                continue
            self.waiting.append(request)
        return message

    @property
    def _call_limit(self) -> str:
        return f"CallLimitExceeded: the run made more than {self.limits.max_calls} tool calls"

    def _take_logs(self, entries: list[dict[str, str]], dropped: int) -> None:
        for entry in entries:
            # The prelude counts each entry as its message plus 32 characters.
            self.log_size += len(entry["message"]) + 32
            if self.log_size > self.limits.max_log_bytes + _LOG_SLACK:
                self.extra_dropped += 1
            else:
                self.outcome.logs.append(entry)
        self.outcome.logs_dropped = dropped + self.extra_dropped

    def start_calls(self) -> None:
        free = self.limits.max_concurrent_calls - len(self.in_flight)
        if not self.waiting or free <= 0:
            return
        batch: list[CallRequest] = []
        while self.waiting and len(batch) < free:
            request = self.waiting.popleft()
            self.in_flight.add(request.id)
            batch.append(request)
        self.calls.start(batch, self.settle)

    def settle(self, call_id: int, reply: CallReply) -> None:
        """Take the reply of one call, to be delivered at the next step."""
        if call_id not in self.in_flight:
            return
        self.in_flight.discard(call_id)
        if reply.ok:
            self.replies.append([call_id, True, reply.value_text])
        else:
            error = {"name": reply.error_name, "message": reply.error_message}
            self.replies.append([call_id, False, error])
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def engine_lost(self, error: EngineLost) -> None:
        """End the run with `error` at its next wait: the isolate's engine is gone."""
        self.lost = error
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def wait_for_replies(self, wait: float | None) -> bool:
        """Wait until a call has finished, or for `wait` seconds; return whether one has."""
        if self.lost is not None:
            raise self.lost
        if not self.replies:
            loop = asyncio.get_running_loop()
            self._wakeup = loop.create_future()
            timer = None
            if wait is not None:
                timer = loop.call_later(wait, _wake, self._wakeup)
            try:
                await self._wakeup
            finally:
                self._wakeup = None
                if timer is not None:
                    timer.cancel()
            if self.lost is not None:
                raise self.lost
        return bool(self.replies)

    def deliver_source(self) -> str:
        payload = json.dumps(json.dumps(self.replies))
        self.replies = []
        return f'__isobind.deliver("{self.token}", {payload}, {self.now_ms():.3f})'

    def fire_timers_source(self) -> str:
        return f'__isobind.fireTimers("{self.token}", {self.now_ms():.3f})'

    async def step_loop(self, message: dict[str, Any]) -> None:
        while True:
            if message["bufferLimitHit"]:
                raise _LimitHit("MemoryLimitExceeded", self._buffer_message())
            if message["done"]:
                self._finish(message)
                return
            self.start_calls()
            if self.in_flight or self.replies:
                if await self.wait_for_replies(self._timer_wait(message["nextTimer"])):
                    message = await self.step(self.deliver_source())
                else:
                    message = await self.step(self.fire_timers_source())
            elif message["nextTimer"] is not None:
                await self.wait_for_replies(self._timer_wait(message["nextTimer"]) or 0)
                message = await self.step(self.fire_timers_source())
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
        size = message.get("resultTooLarge")
        if result is not None and len(result) > self.limits.max_result_bytes:
            size = len(result)
        if size is not None:
            self.outcome.error = {
                "name": "ResultTooLargeError",
                "message": (
                    f"The returned value is {size} characters of JSON, over the "
                    f"limit of {self.limits.max_result_bytes}. Return a summary instead."
                ),
            }
            return
        self.outcome.result_text = result


# Seconds of CPU budget a run is given, at least, before its usage is checked again.
_MIN_CPU_RECHECK = 0.05

# Room for the "... [truncated]" marker the prelude appends to the last kept
# message, and for the level names.
_LOG_SLACK = 64


def _checked_poll(message: Any) -> dict[str, Any]:
    """Return `message` if it has the shape of a poll, or raise TypeError or ValueError."""
    if not isinstance(message, dict):
        raise TypeError("not an object")

    calls = message["calls"]
    logs = message["logs"]
    if not isinstance(calls, list) or not isinstance(logs, list):
        raise TypeError("calls or logs is not a list")
    for call in calls:
        if not (
            isinstance(call, list)
            and len(call) == 4
            and isinstance(call[0], int)
            and all(isinstance(part, str) for part in call[1:])
        ):
            raise TypeError("a call is not [id, server, tool, input]")
    for entry in logs:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("level"), str)
            and isinstance(entry.get("message"), str)
        ):
            raise TypeError("a log entry is not {level, message}")

    if not isinstance(message["logsDropped"], int):
        raise TypeError("logsDropped is not a number")
    result = message["result"]
    if result is not None and not isinstance(result, str):
        raise TypeError("result is not text")
    error = message["error"]
    if error is not None and not (
        isinstance(error, dict)
        and all(isinstance(error.get(key), str) for key in ("name", "message"))
    ):
        raise TypeError("error is not {name, message, stack}")
    too_large = message.get("resultTooLarge")
    if too_large is not None and (isinstance(too_large, bool) or not isinstance(too_large, int)):
        raise TypeError("resultTooLarge is not a whole number")
    next_timer = message["nextTimer"]
    if next_timer is not None and not isinstance(next_timer, (int, float)):
        raise TypeError("nextTimer is not a number")
    return message


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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
    isolate: EngineIsolate | None = None,
) -> SandboxOutcome:
    """Run JavaScript `code` as the body of an async function in a fresh isolate.

    `api` lists the tool identifiers per server identifier that `tools` exposes;
    each call goes to `handler`, a coroutine function run as one task per call.
    `isolate`, from `create_isolate()` or a worker, is used when given; it must
    never have run code. The isolate is closed once the run ends, whatever
    happened, and is never reused.

    A failure of the engine or the prelude ends the run with a `SandboxError`
    in the outcome instead of raising.
    """
    calls = LocalCalls(handler)
    if isolate is None:
        isolate = await _Isolate.create()
    run = _Run(isolate, calls, limits, filename)
    try:
        isolate.set_memory_limit(limits.memory_mb * _MiB)
        await _run_steps(run, code, api)
    finally:
        try:
            await calls.cancel()
        finally:
            run.outcome.duration = time.monotonic() - run.started
            # Closing takes about 0.3 ms of a worker thread; the result does not
            # wait for it. `wait_closed()` waits for every close still running.
            _close_in_background(isolate)
    return run.outcome


def preparation_sources(token: str, configuration: Configuration | None) -> list[str]:
    """Return the engine tasks that prepare a fresh isolate for a run, in order.

    They evaluate `_bootstrap.js`, give the isolate its bridge `token`,
    configure it when a `configuration` is given, and poll once. The poll only
    reads the prelude's state; it makes V8 compile the poll's functions before
    the request arrives. `_webapis.js` is not among them: `_Run.begin` adds it
    for code that `names_web_api`.
    """
    sources = [_bootstrap_template(), _render_prepare(token)]
    if configuration is not None:
        sources.append(_render_configure(configuration, token))
    sources.append(f'__isobind.poll("{token}")')
    return sources


async def create_isolate(configuration: Configuration | None = None) -> _Isolate:
    """Create an isolate, evaluate the prelude and prepare the bridge, for `run_in_isolate`.

    With a `configuration`, it also calls `configure` with it, and then only a
    run with the same configuration can use it. It also polls once, which only
    reads the prelude's state, so that V8 compiles the poll's functions before
    the request arrives.
    """
    isolate = await _Isolate.create()
    batch = isolate.submit(preparation_sources(isolate.token, configuration))
    try:
        await batch.last
        for _, _, error in batch.quiet_results():
            if error is not None:
                raise error
    except BaseException:
        isolate.abandon(batch)
        await isolate.close()
        raise
    isolate.prepared = True
    isolate.configuration = configuration
    return isolate


_closing: set[asyncio.Task[None]] = set()


def _close_in_background(isolate: EngineIsolate) -> None:
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
            message = await run.begin(code, api)
            if message is not None:
                await run.step_loop(message)
    except TimeoutError:
        run.isolate.stopped_at_limit = True
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
    except RunEnded as ended:
        run.outcome.error = ended.error
    except OversizedOutput as error:
        run.outcome.error = {"name": "ResultTooLargeError", "message": str(error)}
    except JSOOMException:
        run.outcome.error = _memory_error(limits)
    except Exception as error:
        if isinstance(error, JSEvalException) and run.isolate.memory_limit_reached():
            run.outcome.error = _memory_error(limits)
            return
        # The prelude or the engine failed between the code's steps. The log
        # gets the traceback; the result gets the error's type only, because an
        # engine error's message may quote the sandboxed code's values.
        logger.error("the sandbox failed outside the code", exc_info=error)
        run.outcome.error = _bridge_error(error)


def _bridge_error(error: BaseException) -> dict[str, Any]:
    return {
        "name": "SandboxError",
        "message": (
            f"The sandbox failed outside the code ({type(error).__name__}) and the run "
            "was stopped. Tool calls the code made may have taken effect. Run the code "
            "again; if it fails the same way, report it as a bug in isobind."
        ),
    }


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


# Names of errors that only the host reports, for limits and failures it detects. Code
# that throws an error with one of them must not pass it off as the real thing.
HOST_ERROR_NAMES = frozenset(
    {
        "TimeLimitExceeded",
        "CpuTimeLimitExceeded",
        "MemoryLimitExceeded",
        "StackLimitExceeded",
        "ResultTooLargeError",
        "InputTooLargeError",
        "DeadlockError",
        "WorkerCrashedError",
        "SandboxError",
        "Cancelled",
    }
)


def _map_error(error: dict[str, Any], filename: str) -> dict[str, Any]:
    stack, line, column = _map_stack(error.get("stack") or "", filename)
    mapped: dict[str, Any] = {"name": error["name"], "message": error["message"]}
    if error["name"] in HOST_ERROR_NAMES:
        mapped = {
            "name": "Error",
            "message": (
                f"the code threw an error named {error['name']}, a name that isobind "
                f"reserves for its own errors: {error['message']}"
            ),
        }
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
