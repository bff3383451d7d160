"""Entry point of a sandbox worker process: runs isolates for the host, locked down.

The host starts a worker with an empty environment and `WORKER_LAUNCHER`,
which imports this module without running `isobind/__init__.py` (that would
load the MCP SDK and everything else the worker never needs). The worker

1. moves into a new network namespace while it still has one thread;
2. initialises V8 and creates a first isolate, so that everything V8 and
   Python load lazily is loaded;
3. locks itself down (`_lockdown.lock_down`) and reports the achieved level
   in its `ready` message;
4. serves runs over the framed-JSON channel on its stdin and stdout
   (`_protocol`), several at once, each in a fresh isolate created ahead of
   the request. Tool calls go to the host in batches and come back as
   replies. The worker never receives a credential.

The host, not the worker, is trusted to enforce deadlines: the worker stops a
run at its time limit, and the host kills the worker if it does not.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._lockdown import LockdownReport, enter_network_namespace, lock_down
from ._protocol import encode_frame, read_frame
from ._sandbox import (
    CallBackend,
    CallReply,
    CallRequest,
    Configuration,
    Limits,
    SettleCall,
    _bootstrap_template,
    _close_in_background,
    _init_engine,
    _Isolate,
    configuration_of,
    create_isolate,
    run_in_isolate,
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
    "/\\p{L}+/u.test('word'); JSON.stringify({})"
)


class _Channel:
    """The worker's end of the framed-JSON channel."""

    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer

    def send(self, message: dict[str, Any]) -> None:
        self._writer.write(encode_frame(message))


class _RemoteCalls(CallBackend):
    """The calls of one run: each step's new calls go to the host as one frame."""

    def __init__(self, run_id: int, channel: _Channel):
        self.run_id = run_id
        self.channel = channel
        self._settle: SettleCall | None = None

    def start(self, requests: Sequence[CallRequest], settle: SettleCall) -> None:
        self._settle = settle
        calls = [
            [request.id, request.server, request.tool, request.input_text] for request in requests
        ]
        self.channel.send({"op": "calls", "run": self.run_id, "calls": calls})

    def settle(self, replies: list[Any]) -> None:
        """Pass the host's replies to the run; the run ignores ids it is not waiting for."""
        settle = self._settle
        if settle is None:
            return
        for call_id, ok, payload in replies:
            if ok:
                settle(call_id, CallReply.success(payload))
            else:
                settle(call_id, CallReply.failure(str(payload["name"]), str(payload["message"])))


# Isolates each worker keeps prepared (prelude evaluated), at about 0.9 MiB each.
# Two cover a burst of two runs; a run that finds none creates its own.
_PREPARED_ISOLATES = 2


class _Server:
    """Serves the runs the host sends, each in a fresh isolate prepared ahead."""

    def __init__(self, channel: _Channel):
        self.channel = channel
        self.calls: dict[int, _RemoteCalls] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.spares: collections.deque[_Isolate] = collections.deque()
        self.refill_task: asyncio.Task[None] | None = None
        self.configuration: Configuration | None = None
        """The configuration of the last run, which the next isolates are configured with."""
        self.starting = 0
        """Runs between their request and their first poll, which a refill waits for."""
        self._idle = asyncio.Event()
        self._idle.set()

    def refill(self) -> None:
        """Prepare isolates in the background until `_PREPARED_ISOLATES` are ready."""
        if self.refill_task is None and len(self.spares) < _PREPARED_ISOLATES:
            self.refill_task = asyncio.get_running_loop().create_task(self._refill())

    async def _refill(self) -> None:
        try:
            while len(self.spares) < _PREPARED_ISOLATES:
                # Preparing takes a few ms of CPU; a run that is starting goes first.
                await self._idle.wait()
                self.spares.append(await create_isolate(self.configuration))
        except Exception:
            logger.exception("preparing an isolate failed")
        finally:
            self.refill_task = None

    async def take_isolate(self, configuration: Configuration) -> _Isolate:
        """Take a prepared isolate that fits `configuration`, or create one."""
        self.configuration = configuration
        while self.spares:
            isolate = self.spares.popleft()
            if isolate.configuration in (None, configuration):
                return isolate
            # Configured for the API or limits of earlier runs, which changed.
            _close_in_background(isolate)
        return await create_isolate()

    def handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        run_id = message.get("run")
        if op == "run" and isinstance(run_id, int):
            task = asyncio.get_running_loop().create_task(self.run(run_id, message))
            self.tasks[run_id] = task
            task.add_done_callback(lambda _: self.tasks.pop(run_id, None))
        elif op == "replies":
            calls = self.calls.get(run_id) if isinstance(run_id, int) else None
            if calls is not None:
                calls.settle(message["replies"])
        elif op == "cancel":
            cancelled = self.tasks.get(run_id) if isinstance(run_id, int) else None
            if cancelled is not None:
                cancelled.cancel()
        else:
            logger.error("unknown message from the host: %s", op)

    async def run(self, run_id: int, message: dict[str, Any]) -> None:
        calls = _RemoteCalls(run_id, self.channel)
        self.calls[run_id] = calls
        self.starting += 1
        self._idle.clear()
        started = False

        def count_started() -> None:
            nonlocal started
            if started:
                return
            started = True
            self.starting -= 1
            if self.starting == 0:
                self._idle.set()

        try:
            limits = Limits.from_dict(message["limits"])
            isolate = await self.take_isolate(configuration_of(message["api"], limits))
            outcome = await run_in_isolate(
                message["code"],
                api=message["api"],
                handler=calls,
                limits=limits,
                filename=message["filename"],
                isolate=isolate,
                on_started=count_started,
            )
            self.channel.send({"op": "done", "run": run_id, "outcome": outcome.to_dict()})
        except Exception as error:
            # The host gets the error's type only: the message of an engine
            # error may quote the sandboxed code's values.
            logger.exception("run %d failed outside the code", run_id)
            failure = {"name": "SandboxError", "message": f"{type(error).__name__} in the worker"}
            self.channel.send({"op": "done", "run": run_id, "outcome": {"error": failure}})
        finally:
            del self.calls[run_id]
            count_started()
            self.refill()


async def _warm_up(stack_kb: int) -> None:
    _bootstrap_template()
    _init_engine((f"--stack-size={stack_kb}",))
    isolate = await create_isolate()
    try:
        await isolate.eval(_WARM_UP)
    finally:
        await isolate.close()


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


async def _serve(channel_in: int, channel_out: int, settings: dict[str, Any]) -> None:
    report = LockdownReport()
    failure = settings.get("netns_failure")
    if failure is None:
        report.network_namespace = True
    else:
        report.missing.append(f"network namespace: {failure}")

    await _warm_up(int(settings["stack_kb"]))
    probe = _load_probe()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**16)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(channel_in, "rb", buffering=0)
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(channel_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    lock_down(
        report,
        data_budget_bytes=int(settings["data_budget_mb"]) * 1024 * 1024,
        max_open_files=int(settings["max_open_files"]),
    )
    ready: dict[str, Any] = {"op": "ready", "lockdown": report.to_dict()}
    if probe is not None:
        ready["probe"] = await asyncio.to_thread(probe.probe)

    channel = _Channel(writer)
    server = _Server(channel)
    server.refill()
    channel.send(ready)
    while True:
        message = await read_frame(reader)
        if message is None:
            break
        server.handle(message)
    for task in list(server.tasks.values()):
        task.cancel()
    if server.refill_task is not None:
        server.refill_task.cancel()
    with contextlib.suppress(Exception):
        for isolate in server.spares:
            await isolate.close()


def main(settings_text: str) -> None:
    """Run the worker until the host closes the channel."""
    # Before anything starts a thread: the kernel refuses a new user
    # namespace to a process with more than one.
    settings: dict[str, Any] = json.loads(settings_text)
    settings["netns_failure"] = enter_network_namespace() if settings.get("netns") else "disabled"
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="isobind worker: %(message)s"
    )

    # The channel moves to new descriptors; stray output on fd 1 (a print, a
    # V8 message) then goes to stderr instead of corrupting the frames.
    channel_in = os.dup(0)
    channel_out = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    asyncio.run(_serve(channel_in, channel_out, settings))
