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
import contextlib
import importlib.util
import json
import logging
import os
import sys
from typing import Any

from ._lockdown import LockdownReport, enter_network_namespace, lock_down
from ._protocol import encode_frame, read_frame
from ._sandbox import (
    CallReply,
    CallRequest,
    Limits,
    _bootstrap_template,
    _init_engine,
    _Isolate,
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
    """The worker's end of the framed-JSON channel, batching tool calls per loop turn."""

    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer
        self._calls: dict[int, list[list[Any]]] = {}
        self._flush_scheduled = False

    def send(self, message: dict[str, Any]) -> None:
        self._writer.write(encode_frame(message))

    def queue_call(self, run_id: int, request: CallRequest) -> None:
        entry = [request.id, request.server, request.tool, request.input_text]
        self._calls.setdefault(run_id, []).append(entry)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_calls)

    def _flush_calls(self) -> None:
        self._flush_scheduled = False
        calls, self._calls = self._calls, {}
        for run_id, batch in calls.items():
            self.send({"op": "calls", "run": run_id, "calls": batch})


class _RemoteHandler:
    """The `CallHandler` of one run: forwards each call to the host and awaits its reply."""

    def __init__(self, run_id: int, channel: _Channel):
        self.run_id = run_id
        self.channel = channel
        self.pending: dict[int, asyncio.Future[CallReply]] = {}

    async def __call__(self, request: CallRequest) -> CallReply:
        future: asyncio.Future[CallReply] = asyncio.get_running_loop().create_future()
        self.pending[request.id] = future
        self.channel.queue_call(self.run_id, request)
        try:
            return await future
        finally:
            self.pending.pop(request.id, None)

    def settle(self, replies: list[Any]) -> None:
        for call_id, ok, payload in replies:
            future = self.pending.get(call_id)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(CallReply.success(payload))
            else:
                future.set_result(CallReply.failure(str(payload["name"]), str(payload["message"])))


class _Server:
    """Serves the runs the host sends, each in a fresh isolate prepared ahead."""

    def __init__(self, channel: _Channel):
        self.channel = channel
        self.handlers: dict[int, _RemoteHandler] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.spare: asyncio.Task[_Isolate] | None = None

    def prepare_isolate(self) -> None:
        self.spare = asyncio.get_running_loop().create_task(create_isolate())

    async def take_isolate(self) -> _Isolate:
        spare = self.spare
        self.prepare_isolate()
        if spare is None:
            return await create_isolate()
        return await spare

    def handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        run_id = message.get("run")
        if op == "run" and isinstance(run_id, int):
            task = asyncio.get_running_loop().create_task(self.run(run_id, message))
            self.tasks[run_id] = task
            task.add_done_callback(lambda _: self.tasks.pop(run_id, None))
        elif op == "replies":
            handler = self.handlers.get(run_id) if isinstance(run_id, int) else None
            if handler is not None:
                handler.settle(message["replies"])
        elif op == "cancel":
            cancelled = self.tasks.get(run_id) if isinstance(run_id, int) else None
            if cancelled is not None:
                cancelled.cancel()
        else:
            logger.error("unknown message from the host: %s", op)

    async def run(self, run_id: int, message: dict[str, Any]) -> None:
        handler = _RemoteHandler(run_id, self.channel)
        self.handlers[run_id] = handler
        try:
            isolate = await self.take_isolate()
            outcome = await run_in_isolate(
                message["code"],
                api=message["api"],
                handler=handler,
                limits=Limits.from_dict(message["limits"]),
                filename=message["filename"],
                isolate=isolate,
            )
            self.channel.send({"op": "done", "run": run_id, "outcome": outcome.to_dict()})
        except Exception as error:
            # The host gets the error's type only: the message of an engine
            # error may quote the sandboxed code's values.
            logger.exception("run %d failed outside the code", run_id)
            failure = {"name": "SandboxError", "message": f"{type(error).__name__} in the worker"}
            self.channel.send({"op": "done", "run": run_id, "outcome": {"error": failure}})
        finally:
            del self.handlers[run_id]


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
    server.prepare_isolate()
    channel.send(ready)
    while True:
        message = await read_frame(reader)
        if message is None:
            break
        server.handle(message)
    for task in list(server.tasks.values()):
        task.cancel()
    with contextlib.suppress(Exception):
        if server.spare is not None:
            await (await server.spare).close()


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
