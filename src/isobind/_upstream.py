"""Sessions with upstream MCP servers, over stdio or streamable HTTP.

Each `McpConnection` owns one background task that enters the SDK's transport
and `ClientSession` contexts and keeps them open until `aclose()`. anyio
requires a context to be entered and exited in the same task, and this holds
whichever task opens or closes the connection.

A server's stderr goes through a pipe to this process, where each line is
scrubbed of secrets and logged at DEBUG; the last lines are kept to explain a
server that fails to start.

Each `tools/list` response is repaired tool by tool before the SDK validates
it (see `isobind._listing`), so one malformed tool costs only that tool.

A server that ends its session after the first handshake (its process exits,
or its stream closes) is started again with exponential backoff. Calls made
while it is down raise `UpstreamError` at once instead of waiting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from ._config import HttpServer, StdioServer
from ._errors import ClosedError, UpstreamError, describe_exception
from ._listing import MAX_MESSAGE_DEPTH, clean_tool_page, recover_deep_message
from ._log_scrub import LineScrubber
from ._redact import Scrubber
from ._tools import ToolAnnotations, ToolSpec

__all__ = ["McpConnection"]

logger = logging.getLogger(__name__)

# A server that pages forever must not hang loading; 1,000 pages of tools is
# far beyond any real server.
_MAX_TOOL_PAGES = 1000
_STDERR_TAIL_LINES = 20
_SHUTDOWN_TIMEOUT = 10.0

# Restart delays after a server's session ends: 0.5 s, doubled per failed
# attempt, at most 30 s. A session that stayed up for `_STABLE_AFTER` seconds
# resets the delay, so a server that crashes on every start backs off.
_RESTART_DELAY = 0.5
_MAX_RESTART_DELAY = 30.0
_STABLE_AFTER = 30.0

ToolsChangedCallback = Callable[[str], None]
"""Called with the server name when its tool list may have changed."""


class _StderrRelay:
    """A pipe for a server's stderr; a thread logs each line, scrubbed of secrets."""

    def __init__(self, server: str, redactor: Scrubber):
        self.server = server
        self.tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._lines = LineScrubber(redactor, self._log)
        read_fd, write_fd = os.pipe()
        self.writer = os.fdopen(write_fd, "w", encoding="utf-8", errors="replace")
        self._reader = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
        self._thread = threading.Thread(
            target=self._pump, name=f"isobind-stderr-{server}", daemon=True
        )
        self._thread.start()

    def _pump(self) -> None:
        with self._reader:
            for line in self._reader:
                self._lines.feed(line.rstrip("\n"))
        self._lines.flush()

    def _log(self, text: str) -> None:
        self.tail.append(text)
        logger.debug("server %s stderr: %s", self.server, text)

    def close(self) -> None:
        # The child has its own copy of the write end, so the reader thread
        # ends when the child exits and that copy closes too.
        with contextlib.suppress(OSError):
            self.writer.close()

    def recent(self) -> str:
        return "\n".join(self.tail)


def _resolve_command(command: str) -> str:
    """Find `command` on PATH, then beside the running interpreter (a virtualenv's bin)."""
    if os.sep in command:
        return command
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(command, path=search)
    return found if found is not None else command


# Run before the server's command on Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) makes the
# kernel kill the server when this process dies, however it dies, and the setting
# survives exec. Without it, a server stuck in a call outlives a killed `isobind
# serve` as an orphan. The guard exits if this process died before prctl ran.
_PARENT_DEATH_GUARD = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _guarded(command: str, args: list[str]) -> tuple[str, list[str]]:
    """Return the command line that starts `command` under the parent-death guard.

    Off Linux, or for a command that is not an executable file (which then fails
    to start with the usual "not found" error), the command is returned as it is.
    """
    if not sys.platform.startswith("linux") or not os.access(command, os.X_OK):
        return command, args
    # -I -S: no environment variables, user site or site-packages, for a fast start.
    guard = ["-I", "-S", "-c", _PARENT_DEATH_GUARD, str(os.getpid()), command]
    return sys.executable, [*guard, *args]


def _to_spec(server: str, tool: types.Tool, schema_problem: str | None) -> ToolSpec:
    hints = tool.annotations
    annotations = ToolAnnotations()
    if hints is not None:
        annotations = ToolAnnotations(
            read_only=hints.read_only_hint,
            destructive=hints.destructive_hint,
            idempotent=hints.idempotent_hint,
            open_world=hints.open_world_hint,
        )
    title = tool.title or (hints.title if hints is not None else None)
    return ToolSpec(
        server=server,
        name=tool.name,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        output_schema=dict(tool.output_schema) if tool.output_schema is not None else None,
        title=title,
        annotations=annotations,
        schema_problem=schema_problem,
    )


class McpConnection:
    """One session with one upstream MCP server, opened once and reused for many calls."""

    def __init__(
        self,
        server: StdioServer | HttpServer,
        *,
        redactor: Scrubber,
        startup_timeout: float = 30.0,
        auth: httpx2.Auth | None = None,
        on_tools_changed: ToolsChangedCallback | None = None,
    ):
        self.server = server
        self.name = server.name
        self.tools: list[ToolSpec] = []
        """The tools of the last successful `list_tools()`."""
        self.restarts = 0
        """How many times the session was started again after it ended."""
        self.on_tools_changed = on_tools_changed
        self._redactor = redactor
        self._auth = auth
        self._log_lines = LineScrubber(redactor, self._log_notification)
        self._startup_timeout = startup_timeout
        self._session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._stderr: _StderrRelay | None = None
        self._bad_lines = 0
        self._first_bad_line: str | None = None
        self._closed = False
        # Ids of the `tools/list` requests in flight, and the problems
        # `_clean_tool_page` found per tool name. `_listing` lets one listing run at a time.
        self._tool_list_ids: set[types.RequestId] = set()
        self._schema_problems: dict[str, str] = {}
        self._listing = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether a session with the server is up; false while it restarts."""
        return self._session is not None

    async def open(self) -> None:
        """Start or connect to the server and complete the MCP handshake."""
        if self._closed:
            raise ClosedError(f"the connection to MCP server {self.name!r} is closed")
        self._task = asyncio.create_task(self._hold(), name=f"isobind-upstream-{self.name}")
        ready = asyncio.create_task(self._ready.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, self._task},
                timeout=self._startup_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
        if self._session is not None and self._ready.is_set():
            logger.info("connected to MCP server %s", self.name)
            return
        if not done:
            await self.aclose()
            raise UpstreamError(
                f"did not complete the MCP handshake within {self._startup_timeout:g} s "
                "and was stopped. Check that `command` starts an MCP server on stdio"
                f"{self._stderr_hint()}",
                server=self.name,
            )
        await self.aclose()
        raise UpstreamError(self._describe_failure(), server=self.name) from self._failure

    def _describe_failure(self) -> str:
        failure = self._failure
        server = self.server
        scrub = self._redactor.scrub_text
        if isinstance(failure, FileNotFoundError) and isinstance(server, StdioServer):
            if server.cwd is not None and not Path(server.cwd).is_dir():
                return scrub(
                    f"could not start: its working directory {str(server.cwd)!r} does not "
                    "exist. Fix `cwd` in the config"
                )
            return scrub(
                f"could not start: command {server.command!r} was not found. Install the "
                "server or fix `command` in the config"
            )
        detail = self._redactor.scrub_text(_describe_failure_cause(failure))
        if isinstance(server, HttpServer):
            return f"could not connect to {self._redactor.scrub_text(server.url)}: {detail}"
        junk = ""
        if self._first_bad_line is not None:
            junk = (
                f"; it wrote {self._bad_lines} line(s) to stdout that are not JSON-RPC, the "
                f"first {self._first_bad_line!r}, so it may not be an MCP server or it prints "
                "its logs to stdout"
            )
        return f"exited or failed during the MCP handshake: {detail}{junk}{self._stderr_hint()}"

    def _stderr_hint(self) -> str:
        if self._stderr is None:
            return ""
        recent = self._stderr.recent()
        return f"\nlast lines of its stderr:\n{recent}" if recent else ""

    async def _hold(self) -> None:
        try:
            await self._hold_session()
        except Exception as error:
            self._failure = error
        if not self._ready.is_set():
            return
        attempt = 0
        while not self._closing.is_set():
            delay = min(_MAX_RESTART_DELAY, _RESTART_DELAY * 2**attempt)
            logger.warning(
                "MCP server %s: session ended; restarting in %.1f s (attempt %d)",
                self.name,
                delay,
                attempt + 1,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            if self._closing.is_set():
                return
            started = time.monotonic()
            self.restarts += 1
            try:
                await self._hold_session()
            except Exception as error:
                logger.warning(
                    "MCP server %s: restart failed: %s",
                    self.name,
                    self._redactor.scrub_text(describe_exception(error, type_names=True)),
                )
            stable = time.monotonic() - started >= _STABLE_AFTER
            attempt = 0 if stable else attempt + 1

    async def _hold_session(self) -> None:
        """Run one session until `aclose()` or until the server's stream ends."""
        # A new session numbers its requests afresh, so ids of the last one must not match.
        self._tool_list_ids.clear()
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                watched = _EndWatcher(read, self._filter_message)
                session = await stack.enter_async_context(
                    ClientSession(
                        watched,
                        _RequestWatcher(write, self._tool_list_ids),
                        logging_callback=self._server_log,
                        message_handler=self._on_message,
                    )
                )
                await session.initialize()
                self._session = session
                first = not self._ready.is_set()
                self._ready.set()
                if not first:
                    logger.info("MCP server %s restarted", self.name)
                    self._notify_tools_changed()
                await _first_of(self._closing.wait(), watched.ended.wait())
                if not self._closing.is_set():
                    logger.warning("MCP server %s: the connection closed", self.name)
        finally:
            self._session = None
            self._log_lines.flush()
            if self._stderr is not None:
                self._stderr.close()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            logger.info("MCP server %s: tool list changed", self.name)
            self._notify_tools_changed()
        elif isinstance(message, Exception):
            self._bad_message(message)

    def _bad_message(self, error: Exception) -> None:
        """Note a message the server sent that is not JSON-RPC, such as a print to stdout."""
        self._bad_lines += 1
        if self._first_bad_line is not None:
            return
        # pydantic's own text shortens long values, which would cut a secret in the
        # message so that the redactor no longer finds it: show the whole input instead.
        text = type(error).__name__
        if isinstance(error, ValidationError) and error.errors():
            line = error.errors()[0].get("input")
            text = line if isinstance(line, str) else json.dumps(line, default=str)
        excerpt = self._redactor.scrub_text(text[:100_000])[:200]
        self._first_bad_line = excerpt
        logger.warning(
            "MCP server %s sent a message that is not JSON-RPC, which is ignored: %r. "
            "A stdio server must write only JSON-RPC messages to stdout, and its logs to stderr",
            self.name,
            excerpt,
        )

    def _notify_tools_changed(self) -> None:
        if self.on_tools_changed is not None:
            self.on_tools_changed(self.name)

    async def _server_log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Log an MCP log notification from the server, scrubbed of secrets, line by line."""
        data = params.data if isinstance(params.data, str) else repr(params.data)
        for line in data.split("\n"):
            self._log_lines.feed(line, label=f"({params.level}) ")

    def _log_notification(self, text: str) -> None:
        logger.debug("server %s log %s", self.name, text)

    def _transport(self) -> contextlib.AbstractAsyncContextManager[Any]:
        server = self.server
        if isinstance(server, StdioServer):
            self._stderr = _StderrRelay(self.name, self._redactor)
            command, args = _guarded(_resolve_command(server.command), list(server.args))
            params = StdioServerParameters(
                command=command, args=args, env=dict(server.env), cwd=server.cwd
            )
            return stdio_client(params, errlog=self._stderr.writer)
        client = httpx2.AsyncClient(
            headers=dict(server.headers),
            timeout=httpx2.Timeout(30.0, read=300.0),
            auth=self._auth,
        )
        return _http_transport(server.url, client)

    async def list_tools(self) -> list[ToolSpec]:
        """List every tool, following pagination.

        A tool with an invalid schema is kept with `schema_problem` set, and an
        entry without a usable name is left out; both are logged.
        """
        async with self._listing:
            self._schema_problems.clear()
            specs = await self._list_pages()
            self.tools = specs
            return specs

    async def _list_pages(self) -> list[ToolSpec]:
        session = self._require_session()
        specs: list[ToolSpec] = []
        cursor: str | None = None
        for _ in range(_MAX_TOOL_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            try:
                page = await session.list_tools(params=params)
            except Exception as error:
                detail = self._redactor.scrub_text(describe_exception(error, type_names=True))
                raise UpstreamError(
                    f"tools/list failed: {detail}",
                    server=self.name,
                ) from error
            for tool in page.tools:
                problem = self._schema_problems.get(tool.name)
                specs.append(_to_spec(self.name, tool, problem))
            cursor = page.next_cursor
            if not cursor:
                return specs
        raise UpstreamError(
            f"tools/list returned more than {_MAX_TOOL_PAGES} pages; the server's "
            "pagination does not end",
            server=self.name,
        )

    def _filter_message(self, item: SessionMessage | Exception) -> SessionMessage | Exception:
        """Recover a message nested too deeply for the SDK, and repair `tools/list` results."""
        # NOTE: over streamable HTTP the SDK replaces an unparsable response with a
        # JSON-RPC parse error before this filter receives it, so there a tools/list
        # nested too deeply fails as a whole instead of being recovered.
        if isinstance(item, Exception):
            recovered = recover_deep_message(item)
            if recovered is None:
                return item
            logger.warning(
                "MCP server %s: a message nested more than %d JSON levels deep was parsed "
                "with its deeper values cut",
                self.name,
                MAX_MESSAGE_DEPTH,
            )
            item = recovered

        message = item.message
        if isinstance(message, types.JSONRPCResponse) and message.id in self._tool_list_ids:
            self._tool_list_ids.discard(message.id)
            self._clean_tool_page(message.result)
        elif isinstance(message, types.JSONRPCError) and message.id is not None:
            self._tool_list_ids.discard(message.id)
        return item

    def _clean_tool_page(self, result: dict[str, Any]) -> None:
        session = self._session
        version = session.protocol_version if session is not None else None
        cleaned = clean_tool_page(result, version)
        scrub = self._redactor.scrub_text
        for sentence in cleaned.skipped:
            logger.warning("MCP server %s: tools/list %s", self.name, _log_text(scrub(sentence)))
        for name, problems in cleaned.problems.items():
            text = _log_text(scrub("; ".join(problems)))
            if name in cleaned.unknown:
                # The API logs it when it types the tool `unknown`.
                self._schema_problems[name] = text
            else:
                logger.warning(
                    "MCP server %r, tool %r: invalid fields ignored: %s", self.name, name, text
                )

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call one tool; transport and protocol errors propagate to the caller."""
        session = self._require_session()
        return await session.call_tool(name, arguments)

    def _require_session(self) -> ClientSession:
        if self._closed:
            raise ClosedError(f"the connection to MCP server {self.name!r} is closed")
        if self._session is None:
            raise UpstreamError(
                "is not connected: its session ended and it is being restarted; "
                "try again in a few seconds",
                server=self.name,
            )
        return self._session

    async def aclose(self) -> None:
        """End the session and stop the server process, if this side started it."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        task = self._task
        if task is None:
            return
        if not self._ready.is_set():
            # Still in the handshake: nothing to finish cleanly, so stop at once.
            task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=_SHUTDOWN_TIMEOUT)
        except TimeoutError:
            logger.error(
                "MCP server %s did not shut down within %g s", self.name, _SHUTDOWN_TIMEOUT
            )
            task.cancel()
            # The SDK's stdio shutdown bounds its own waits (about 6 s).
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=_SHUTDOWN_TIMEOUT)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        logger.info("closed MCP server %s", self.name)


class _EndWatcher:
    """A read stream that passes the transport's messages on and sets `ended` when it ends.

    The SDK's `ClientSession` stays open after its transport's stream ends, so
    this is how a connection notices that the server is gone. It wraps the
    stream instead of relaying it through a task, which would add a task
    switch to every message.
    """

    def __init__(
        self,
        stream: MemoryObjectReceiveStream[SessionMessage | Exception],
        message_filter: Callable[[SessionMessage | Exception], SessionMessage | Exception],
    ):
        self._stream = stream
        self._filter = message_filter
        self.ended = anyio.Event()

    @property
    def last_context(self) -> Any:
        return getattr(self._stream, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item = await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.ended.set()
            raise
        return self._filter(item)

    async def aclose(self) -> None:
        await self._stream.aclose()

    def __aiter__(self) -> _EndWatcher:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _EndWatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _RequestWatcher:
    """A write stream that records the ids of the `tools/list` requests it passes on."""

    def __init__(self, stream: Any, ids: set[types.RequestId]):
        self._stream = stream
        self._ids = ids

    async def send(self, item: SessionMessage, /) -> None:
        message = item.message
        if isinstance(message, types.JSONRPCRequest) and message.method == "tools/list":
            self._ids.add(message.id)
        await self._stream.send(item)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> _RequestWatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def _first_of(*waits: Any) -> None:
    """Wait until the first of the awaitables `waits` finishes, then cancel the rest."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


@contextlib.asynccontextmanager
async def _http_transport(url: str, client: httpx2.AsyncClient) -> Any:
    async with client, streamable_http_client(url, http_client=client) as streams:
        yield streams


def _log_text(text: str) -> str:
    """Escape control characters, so that text from a server cannot forge log lines."""
    return "".join(repr(char)[1:-1] if char < " " or char == "\x7f" else char for char in text)


def _describe_failure_cause(error: BaseException | None) -> str:
    return "unknown error" if error is None else describe_exception(error, type_names=True)
