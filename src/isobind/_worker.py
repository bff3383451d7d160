"""Entry point of a sandbox worker process: a V8 engine that the host drives, locked down.

The host starts a worker with an empty environment and `WORKER_LAUNCHER`,
which imports this module without running `isobind/__init__.py` (that would
load the MCP SDK and everything else the worker never needs). The worker

1. pins itself to the CPU the host chose, and moves into a new network
   namespace, while it still has one thread;
2. initialises V8 and creates a first isolate, so that everything V8 and
   Python load lazily is loaded;
3. locks itself down (`_lockdown.lock_down`) and reports the achieved level
   in its `ready` message;
4. runs engine tasks for the host over the framed-JSON channel on its stdin
   and stdout (`_protocol`). The host prepares isolates ahead, sends the
   tasks of each step of a run as one batch, and closes each isolate after
   its run. The host drives the run itself (tool calls, timers, limits), so
   a tool call's reply reaches the worker only as the text the code
   receives, and a credential never does.

There is no event loop here. The main thread reads the channel and queues
each batch's tasks on the isolate's thread at once. mini-racer calls back on
that thread as each task ends, and the callback writes the batch's results
to the channel itself. A tool call thus crosses one thread in the worker each
way. A second thread prepares isolates, and a third closes them, because
both take about a millisecond.

NOTE: this drives mini-racer 0.14's private `Context` members, as
`_engine.py` does, pinned in pyproject.toml.

The host, not the worker, enforces deadlines: it closes an isolate whose run
is over its limits, and kills the worker if the close is not confirmed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from py_mini_racer import JSEvalException
from py_mini_racer._mini_racer import _make_context

from ._lockdown import LockdownReport, enter_network_namespace, lock_down
from ._protocol import MAX_FRAME_BYTES, encode_frame, read_frame_from
from ._sandbox import (
    Configuration,
    _bootstrap_template,
    _init_engine,
    _webapis_source,
    preparation_sources,
)

__all__ = ["PROBE_ENVIRONMENT_KEY", "WORKER_LAUNCHER", "main"]

logger = logging.getLogger("isobind.worker")

# `python -c WORKER_LAUNCHER <package directory> <settings JSON>` registers
# the package without executing its `__init__`, then runs `main`.
WORKER_LAUNCHER = (
    "import sys, types\n"
    "package = types.ModuleType('isobind')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['isobind'] = package\n"
    "from isobind._worker import main\n"
    "main(sys.argv[2])\n"
)

# Set only by the test suite, through `WorkerPool(_probe_module=...)`: the path
# of a Python file that the worker loads before lockdown and whose `probe()`
# it calls after lockdown, playing native code that escaped the isolate. The
# sandboxed code cannot set an environment variable, and the config file has
# no key for it.
PROBE_ENVIRONMENT_KEY = "ISOBIND_TEST_PROBE_MODULE"

# Warm-up code for the first isolate, evaluated before lockdown: it loads ICU data and
# the time zone database, which would need to open files afterwards.
_WARM_UP = (
    "new Date().toString(); new Date().toLocaleString('en-US'); "
    "new Intl.NumberFormat('de-DE').format(1234.5); 'a'.localeCompare('b'); "
    "/\\p{L}+/u.test('word'); JSON.stringify({}); new URL('https://example.test/a?b=1').href"
)

Result = list[Any]
"""`[True, value]` or `[False, error class name, message]`, as the protocol sends it."""


class _CallInline:
    """Stands in for the event loop that mini-racer hands its callbacks to.

    mini-racer calls `call_soon_threadsafe` on the isolate's own thread as a
    task ends; running the callback right there saves a hop to another thread.
    """

    def call_soon_threadsafe(self, callback: Callable[..., None], *args: Any) -> None:
        callback(*args)


_INLINE = _CallInline()


def _result_of(context: Any, value_handle: Any) -> Result:
    try:
        value = context._value_handle_to_python(value_handle)
    except JSEvalException as error:
        return [False, type(error).__name__, str(error)]
    if value is None or isinstance(value, (str, int, float)):
        return [True, value]
    # undefined, or a live object: the host reads no JavaScript object.
    return [True, None]


class _Batch:
    """Engine tasks queued together on one isolate, with their results as they end."""

    def __init__(
        self,
        isolate: _WorkerIsolate,
        sources: Sequence[str],
        notify: int | None,
        on_notified: Callable[[Result], None] | None,
        on_done: Callable[[list[Result]], None],
    ):
        self.isolate = isolate
        self.notify = notify
        self.on_notified = on_notified
        self.on_done = on_done
        self.results: list[Result] = []
        self.last = len(sources) - 1
        context = isolate.context
        # The source handles stay referenced until the batch ends.
        self.handles: list[Any] = []
        for index, source in enumerate(sources):
            callback_id = next(context._next_async_callback_id)
            context._active_cancelable_mr_task_callbacks[callback_id] = functools.partial(
                self._settled, index, callback_id
            )
            handle = context._python_to_value_handle(source)
            self.handles.append(handle)
            context._dll.mr_eval(context._ctx, handle.raw, callback_id)

    def _settled(self, index: int, callback_id: int, value_handle: Any) -> None:
        # On the isolate's thread, which runs nothing else until this returns.
        isolate = self.isolate
        if isolate.cpu_clock is None:
            # The first task to end is the preparation: the run's CPU counts from here.
            isolate.cpu_clock = time.pthread_getcpuclockid(threading.get_ident())
            isolate.cpu_base = time.thread_time()
        context = isolate.context
        context._active_cancelable_mr_task_callbacks.pop(callback_id, None)
        result = _result_of(context, value_handle)
        if index == self.notify and self.on_notified is not None:
            self.on_notified(result)
        else:
            self.results.append(result)
        if index == self.last:
            self.handles = []
            self.on_done(self.results)


class _WorkerIsolate:
    """One isolate of this worker, from its preparation to its close."""

    def __init__(self, number: int, token: str, configuration: Configuration | None):
        self.number = number
        self.token = token
        self.configuration = configuration
        self.context: Any = None
        self.stack = contextlib.ExitStack()
        self.ready = False
        self.preparing = False
        self.closed = False
        self.cpu_clock: int | None = None
        """The CPU-time clock of the isolate's thread, known once its first task has ended."""
        self.cpu_base = 0.0
        """CPU seconds the isolate's thread had used when the preparation ended."""
        self.confirm = False
        """Whether the host waits for a `closed` message, as it does for a busy isolate."""
        self.failure: str | None = None
        """The reason the preparation failed; the isolate's batches then fail with it."""
        self.waiting: list[dict[str, Any]] = []
        """Batches that arrived before the isolate was ready."""
        self.lock = threading.Lock()

    def open(self) -> None:
        self.context = self.stack.enter_context(_make_context(_INLINE))  # type: ignore[arg-type]

    def run_now(self, sources: Sequence[str]) -> list[Result]:
        """Run `sources` as one batch and wait for their results, from a thread of the worker."""
        done = threading.Event()
        outcome: list[list[Result]] = []

        def finish(results: list[Result]) -> None:
            outcome.append(results)
            done.set()

        _Batch(self, sources, None, None, finish)
        done.wait()
        return outcome[0]


# A result whose text is longer than this is replaced when its frame is over the limit.
_OVERSIZED_RESULT = MAX_FRAME_BYTES // 8


def _bounded(result: Result) -> Result:
    if result[0] and isinstance(result[1], str) and len(result[1]) > _OVERSIZED_RESULT:
        return [
            False,
            "OversizedOutput",
            f"The code's output to the host (its result, console output and tool-call "
            f"inputs) is {len(result[1])} characters, too large to send. Return or log "
            "less at once.",
        ]
    return result


def _first_failure(results: Sequence[Result]) -> str | None:
    for result in results:
        if not result[0]:
            return f"{result[1]}: {result[2]}"
    return None


class _Engine:
    """Serves the host's requests: prepares, runs and closes isolates."""

    def __init__(self, channel_out: int):
        self._channel_out = channel_out
        self._write_lock = threading.Lock()
        self.isolates: dict[int, _WorkerIsolate] = {}
        self._to_prepare: queue.SimpleQueue[_WorkerIsolate | None] = queue.SimpleQueue()
        self._to_close: queue.SimpleQueue[_WorkerIsolate | None] = queue.SimpleQueue()
        self._starting = 0
        """Runs whose first batch is queued and not finished; preparation waits for them."""
        self._idle = threading.Condition()
        self._threads = [
            threading.Thread(target=self._prepare_loop, name="prepare", daemon=True),
            threading.Thread(target=self._close_loop, name="close", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def send(self, message: dict[str, Any]) -> None:
        encoded = encode_frame(message)
        if len(encoded) > MAX_FRAME_BYTES + 4 and message["op"] == "result":
            # The host would reject the frame and kill this worker: send each
            # oversized result as an error of its own instead.
            # NOTE: console output within a raised max_log_bytes can end the run
            # this way, where dropping the excess output would keep the result.
            message["results"] = [_bounded(result) for result in message["results"]]
            encoded = encode_frame(message)
        frame = memoryview(encoded)
        with self._write_lock:
            while frame:
                written = os.write(self._channel_out, frame)
                frame = frame[written:]

    def handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        number = int(message["iso"])
        if op == "prepare":
            configuration = message.get("configuration")
            isolate = _WorkerIsolate(
                number, str(message["token"]), tuple(configuration) if configuration else None
            )
            self.isolates[number] = isolate
            self._to_prepare.put(isolate)
        elif op == "batch":
            found = self.isolates.get(number)
            if found is None:
                self._fail_batch(message, "the isolate is closed or was never prepared")
                return
            with found.lock:
                if not found.ready:
                    found.waiting.append(message)
                    return
            self._start_batch(found, message)
        elif op == "cpu":
            self.send({"op": "cpu", "iso": number, "cpu": self._cpu_used(number)})
        elif op == "close":
            closing = self.isolates.pop(number, None)
            confirm = bool(message.get("confirm"))
            if closing is None:
                if confirm:
                    self.send({"op": "closed", "iso": number})
            else:
                closing.confirm = confirm
                self._to_close.put(closing)
        else:
            logger.error("unknown message from the host: %s", op)

    def _cpu_used(self, number: int) -> float | None:
        """Return the CPU seconds isolate `number` has used since its preparation, if known."""
        isolate = self.isolates.get(number)
        if isolate is None:
            return None
        if isolate.cpu_clock is None:
            # Still being prepared: its run has not started.
            return 0.0
        try:
            return time.clock_gettime(isolate.cpu_clock) - isolate.cpu_base
        except OSError:
            # The isolate's thread has ended.
            return None

    def _fail_batch(self, message: dict[str, Any], reason: str) -> None:
        failed: Result = [False, "JSEvalException", reason]
        count = len(message["sources"])
        reply: dict[str, Any] = {"op": "result", "iso": message["iso"], "batch": message["batch"]}
        if message.get("notify") is not None:
            count -= 1
            reply["at"] = time.monotonic()
            reply["notified"] = failed
        self.send({**reply, "results": [failed] * count, "memoryHit": False})

    def _start_batch(self, isolate: _WorkerIsolate, message: dict[str, Any]) -> None:
        if isolate.failure is not None:
            self._fail_batch(message, isolate.failure)
            return
        memory = message.get("memory")
        if memory is not None:
            isolate.context.set_hard_memory_limit(int(memory))
        notify = message.get("notify")
        first = notify is not None
        if first:
            with self._idle:
                self._starting += 1
        reply: dict[str, Any] = {"op": "result", "iso": isolate.number, "batch": message["batch"]}

        def notified(result: Result) -> None:
            # Sent with the batch's results: one write, so one wake-up of the host.
            reply["at"] = time.monotonic()
            reply["notified"] = result

        def done(results: list[Result]) -> None:
            with isolate.lock:
                # Once the close has begun, the context may be gone.
                hit = not isolate.closed and bool(isolate.context.was_hard_memory_limit_reached())
            reply["results"] = results
            reply["memoryHit"] = hit
            reply["cpu"] = time.thread_time() - isolate.cpu_base
            self.send(reply)
            if first:
                with self._idle:
                    self._starting -= 1
                    self._idle.notify_all()

        _Batch(isolate, message["sources"], notify, notified, done)

    def _prepare_loop(self) -> None:
        while True:
            isolate = self._to_prepare.get()
            if isolate is None:
                return
            # Preparing takes a few ms of CPU; a run that is starting goes first.
            # A run stuck in its first batch delays each preparation by at most this.
            with self._idle:
                self._idle.wait_for(lambda: self._starting == 0, timeout=0.005)
            with isolate.lock:
                if isolate.closed:
                    continue
                isolate.preparing = True
            try:
                isolate.open()
                sources = preparation_sources(isolate.token, isolate.configuration)
                # One script instead of one task each: no model code runs in
                # between, and each task costs a callback. The isolate's thread
                # finishes the preparation while this thread creates the next.
                _Batch(
                    isolate,
                    [";\n".join(sources)],
                    None,
                    None,
                    functools.partial(self._prepared, isolate),
                )
            except Exception as error:
                logger.exception("preparing an isolate failed")
                self._prepared(isolate, [[False, type(error).__name__, "preparing failed"]])

    def _prepared(self, isolate: _WorkerIsolate, results: list[Result]) -> None:
        """Start the batches that waited for `isolate`; on its thread, or the preparing one."""
        failure = _first_failure(results)
        with isolate.lock:
            if failure is not None:
                isolate.failure = failure
            isolate.preparing = False
            isolate.ready = True
            waiting, isolate.waiting = isolate.waiting, []
            closed = isolate.closed
        if closed:
            # The host closed it while it was being prepared.
            isolate.failure = "the isolate is closed"
            self._to_close.put(isolate)
        for message in waiting:
            self._start_batch(isolate, message)

    def _close_loop(self) -> None:
        while True:
            isolate = self._to_close.get()
            if isolate is None:
                return
            with isolate.lock:
                isolate.closed = True
                if isolate.preparing:
                    # The preparing thread queues it again when it is done.
                    continue
            # Stops any JavaScript still running and waits for the isolate's thread.
            isolate.stack.close()
            if isolate.confirm:
                self.send({"op": "closed", "iso": isolate.number})

    def stop(self) -> None:
        self._to_prepare.put(None)
        for isolate in list(self.isolates.values()):
            self._to_close.put(isolate)
        self.isolates.clear()
        self._to_close.put(None)
        for thread in self._threads:
            thread.join(timeout=5)


def _warm_up(stack_kb: int) -> None:
    _init_engine((f"--stack-size={stack_kb}",))
    isolate = _WorkerIsolate(0, "", None)
    isolate.open()
    try:
        sources = [_bootstrap_template(), _webapis_source(), _WARM_UP]
        failure = _first_failure(isolate.run_now(sources))
        if failure is not None:
            raise RuntimeError(f"the warm-up failed: {failure}")
    finally:
        isolate.stack.close()


def _load_probe() -> Any:
    path = os.environ.get(PROBE_ENVIRONMENT_KEY)
    if not path:
        return None
    spec = importlib.util.spec_from_file_location("isobind_test_probe", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the probe module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _serve(channel_in: int, channel_out: int, settings: dict[str, Any]) -> None:
    report = LockdownReport()
    failure = settings.get("netns_failure")
    if failure is None:
        report.network_namespace = True
    else:
        report.missing.append(f"network namespace: {failure}")

    _warm_up(int(settings["stack_kb"]))
    probe = _load_probe()
    reader = os.fdopen(channel_in, "rb", buffering=2**16)

    lock_down(
        report,
        data_budget_bytes=int(settings["data_budget_mb"]) * 1024 * 1024,
        max_open_files=int(settings["max_open_files"]),
    )
    ready: dict[str, Any] = {"op": "ready", "lockdown": report.to_dict()}
    if probe is not None:
        ready["probe"] = probe.probe()

    engine = _Engine(channel_out)
    engine.send(ready)
    try:
        while True:
            message = read_frame_from(reader)
            if message is None:
                break
            engine.handle(message)
    finally:
        engine.stop()


def _limit_thread_stacks(stack_kb: int) -> None:
    """Give threads started from now on a stack of V8's limit plus 1 MiB, not glibc's 8 MiB.

    Every isolate runs on a thread of its own, and each thread's stack counts
    against RLIMIT_DATA, so with 8 MiB stacks a few hundred waiting runs used
    up a worker's memory budget.
    """
    size = max(2 * 1024 * 1024, (stack_kb + 1024) * 1024)
    try:
        libc = ctypes.CDLL(None)
        attributes = ctypes.create_string_buffer(128)  # larger than any pthread_attr_t
        if libc.pthread_attr_init(attributes) != 0:
            raise OSError("pthread_attr_init failed")
        if libc.pthread_attr_setstacksize(attributes, ctypes.c_size_t(size)) != 0:
            raise OSError("pthread_attr_setstacksize failed")
        if libc.pthread_setattr_default_np(attributes) != 0:
            raise OSError("pthread_setattr_default_np failed")
    except (OSError, AttributeError) as error:
        logger.warning("cannot set the default thread stack size; threads get 8 MiB: %s", error)


def _pin(cpu: int | None) -> None:
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as error:
        logger.warning("cannot pin the worker to CPU %d: %s", cpu, error)


def main(settings_text: str) -> None:
    """Run the worker until the host closes the channel."""
    # Before anything starts a thread: the threads V8 and this module start
    # inherit the CPU, and the kernel refuses a new user namespace to a
    # process with more than one thread.
    settings: dict[str, Any] = json.loads(settings_text)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="isobind worker: %(message)s"
    )
    _pin(settings.get("cpu"))
    _limit_thread_stacks(int(settings["stack_kb"]))
    settings["netns_failure"] = enter_network_namespace() if settings.get("netns") else "disabled"

    # The channel moves to new descriptors; stray output on fd 1 (a print, a
    # V8 message) then goes to stderr instead of corrupting the frames.
    channel_in = os.dup(0)
    channel_out = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    _serve(channel_in, channel_out, settings)
