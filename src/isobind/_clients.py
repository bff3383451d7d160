"""The clients of `isobind serve`: their log level, resource subscriptions and notifications.

`ClientHub` keeps one `_ClientState` per MCP connection, created on the
connection's first request. It sends, on each connection's standalone stream:

- `notifications/message` for records of the upstream and toolbox loggers
  (server restarts and failures, upstream stderr lines, API rebuilds) at or
  above the level the client set with `logging/setLevel` (`warning` until it
  does). The text is scrubbed of secrets and credential shapes again before
  it leaves. At most `_LOG_BURST` messages go out at once, then `_LOG_RATE`
  a second, and the rest are counted and reported as dropped.
- `notifications/resources/updated` for each subscribed resource whose text
  changed when the API was rebuilt.

Only connections on the handshake protocol versions (2025-11-25 and earlier)
get these. On 2026-07-28 connections `logging/setLevel` and
`resources/subscribe` do not exist, and log delivery is scoped to a request.
There, resource updates go out as `ResourceUpdated` events on the MCP
server's subscription bus, to clients that listen for those URIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ._log_scrub import hide_pydantic_inputs

__all__ = ["RELAYED_LOGGERS", "ClientHub"]

logger = logging.getLogger(__name__)

_LEVELS: tuple[types.LoggingLevel, ...] = get_args(types.LoggingLevel)
"""The MCP log levels, least severe first (the RFC 5424 order)."""

DEFAULT_LEVEL: types.LoggingLevel = "warning"

RELAYED_LOGGERS: Mapping[str, str] = {
    "isobind._upstream": "isobind.upstream",
    "isobind._toolbox": "isobind.api",
}
"""Python loggers whose records reach clients, with the logger name clients see."""

# A person reads these in a client's log view, where more than 10 lines a
# second cannot be read. A burst of 50 covers a server's start-up banner.
_LOG_RATE = 10.0
_LOG_BURST = 50.0
_QUEUE_SIZE = 1000
"""Notifications waiting to be sent, over all clients, before new ones are dropped."""


def mcp_level(levelno: int) -> types.LoggingLevel:
    """Map a Python log level to the MCP level of the same severity."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def _rank(level: types.LoggingLevel) -> int:
    return _LEVELS.index(level)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class _ClientState:
    level: types.LoggingLevel = DEFAULT_LEVEL
    subscriptions: dict[str, str | None] = field(default_factory=dict)
    """Subscribed URI -> digest of its text at subscription or at the last update sent."""


ResourceRenderer = Callable[[str], str | None]
"""Returns the current text of a resource URI, or `None` when no such resource exists."""


class ClientHub:
    """Tracks connected MCP clients and sends them log and resource notifications."""

    def __init__(
        self,
        render: ResourceRenderer,
        scrub: Callable[[str], str],
        *,
        resources: Callable[[], Iterable[str]] = tuple,
        bus: SubscriptionBus | None = None,
    ):
        """Set up the hub; nothing is sent until `running()`.

        `render` returns a resource's text, `scrub` cleans log text of secrets,
        and `resources` lists the URIs whose changes are published on `bus`.
        """
        self._render = render
        self._scrub = scrub
        self._resources = resources
        self._bus = bus
        self._published: dict[str, str] = {}
        self._publishing: set[asyncio.Task[None]] = set()
        self._clients: weakref.WeakKeyDictionary[Connection, _ClientState] = (
            weakref.WeakKeyDictionary()
        )
        self._queue: asyncio.Queue[tuple[Connection, str, dict[str, Any]]] = asyncio.Queue(
            _QUEUE_SIZE
        )
        self._tokens = _LOG_BURST
        self._refilled = time.monotonic()
        self._dropped_logs = 0
        self._dropped_report: asyncio.TimerHandle | None = None
        self._dropped_sends = 0

    @property
    def bus(self) -> SubscriptionBus | None:
        """The bus that feeds `subscriptions/listen` streams (protocol 2026-07-28)."""
        return self._bus

    # Request handlers and middleware, registered on the MCP server.

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        """Register the connection of every inbound message, then handle the message."""
        self._state(ctx)
        return await call_next(ctx)

    async def set_level(
        self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        self._state(ctx).level = params.level
        session_id = ctx.session._connection.session_id or "stdio"
        logger.info("client session %s set its log level to %s", session_id, params.level)
        return types.EmptyResult()

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        text = self._render(params.uri)
        if text is None:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"cannot subscribe to {params.uri}: no such resource; "
                "list the resources and resource templates for the valid URIs",
                data={"uri": params.uri},
            )
        self._state(ctx).subscriptions[params.uri] = _digest(text)
        return types.EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        self._state(ctx).subscriptions.pop(params.uri, None)
        return types.EmptyResult()

    def _state(self, ctx: ServerRequestContext[Any, Any]) -> _ClientState:
        # NOTE: mcp 2.3 hands handlers a per-request session proxy, and the
        # connection behind it, the one identity that lasts across requests,
        # is only reachable through its private attribute.
        connection: Connection = ctx.session._connection
        state = self._clients.get(connection)
        if state is None:
            state = self._clients[connection] = _ClientState()
        return state

    # Events from the toolbox and the log relay, on the event loop's thread.

    def api_changed(self) -> None:
        """Queue `notifications/resources/updated` for each subscribed resource that changed."""
        for connection, state in self._reachable():
            for uri, sent in state.subscriptions.items():
                text = self._render(uri)
                current = _digest(text) if text is not None else None
                if current == sent:
                    continue
                state.subscriptions[uri] = current
                self._enqueue(connection, "notifications/resources/updated", {"uri": uri})
        self._publish_changes()

    def _digests(self) -> dict[str, str]:
        digests = {}
        for uri in self._resources():
            text = self._render(uri)
            if text is not None:
                digests[uri] = _digest(text)
        return digests

    def _publish_changes(self) -> None:
        if self._bus is None:
            return
        current = self._digests()
        changed = sorted(
            uri
            for uri in current.keys() | self._published.keys()
            if current.get(uri) != self._published.get(uri)
        )
        self._published = current
        for uri in changed:
            task = asyncio.get_running_loop().create_task(self._bus.publish(ResourceUpdated(uri)))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    def log(
        self, level: types.LoggingLevel, logger_name: str, text: str, *, limited: bool = True
    ) -> None:
        """Queue a `notifications/message` for each client whose level admits `level`.

        With `limited`, the message counts against the rate limit and may be dropped.
        """
        targets = [
            connection
            for connection, state in self._reachable()
            if _rank(level) >= _rank(state.level)
        ]
        if not targets:
            return
        if limited and not self._take_token():
            self._dropped_logs += 1
            self._schedule_dropped_report()
            return
        data = self._scrub(hide_pydantic_inputs(text))
        for connection in targets:
            params = {"level": level, "logger": logger_name, "data": data}
            self._enqueue(connection, "notifications/message", params)

    def _reachable(self) -> Iterator[tuple[Connection, _ClientState]]:
        for connection, state in list(self._clients.items()):
            if connection.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
                continue
            if connection.initialized.is_set():
                yield connection, state

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(_LOG_BURST, self._tokens + (now - self._refilled) * _LOG_RATE)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _schedule_dropped_report(self) -> None:
        if self._dropped_report is not None:
            return
        loop = asyncio.get_running_loop()
        self._dropped_report = loop.call_later(1.0, self._report_dropped)

    def _report_dropped(self) -> None:
        self._dropped_report = None
        dropped, self._dropped_logs = self._dropped_logs, 0
        logger.warning(
            "dropped %d log messages for clients: more than %g a second", dropped, _LOG_RATE
        )
        self.log(
            "warning",
            "isobind",
            f"dropped {dropped} log messages: isobind sends at most {_LOG_RATE:g} a second",
            limited=False,
        )

    def _enqueue(self, connection: Connection, method: str, params: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((connection, method, params))
        except asyncio.QueueFull:
            self._dropped_sends += 1
            if self._dropped_sends == 1 or self._dropped_sends % 100 == 0:
                logger.warning(
                    "dropped %d notifications to clients: %d are waiting to be sent",
                    self._dropped_sends,
                    _QUEUE_SIZE,
                )

    async def _send_queued(self) -> None:
        while True:
            connection, method, params = await self._queue.get()
            # Connection.notify drops the message, without raising, when the
            # client has gone or has no standalone stream open.
            await connection.notify(method, params)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Send queued notifications, and relay log records to clients, inside the block."""
        sender = asyncio.create_task(self._send_queued(), name="isobind-client-notifications")
        self._published = self._digests()
        try:
            with relay_logs(self):
                yield
        finally:
            sender.cancel()
            if self._dropped_report is not None:
                self._dropped_report.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


class _RelayHandler(logging.Handler):
    """Passes records to `ClientHub.log` on the event loop, then on to the host's handlers.

    The relayed loggers are set to DEBUG while this is installed, so that
    clients can ask for debug lines, and no longer propagate. A record at or
    above the level the host configured is handed to the parent logger here,
    so the host's own log shows what it showed before.
    """

    def __init__(
        self, hub: ClientHub, loop: asyncio.AbstractEventLoop, host_levels: dict[str, int]
    ):
        super().__init__(logging.DEBUG)
        self._hub = hub
        self._loop = loop
        self._host_levels = host_levels

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text = f"{text}: {record.exc_info[1]!r}"
            name = RELAYED_LOGGERS.get(record.name, record.name)
            level = mcp_level(record.levelno)
            # Stderr lines arrive on reader threads; the hub lives on the loop.
            self._loop.call_soon_threadsafe(self._hub.log, level, name, text)
        except RuntimeError:
            pass  # the loop has closed: the server is shutting down
        except Exception:
            self.handleError(record)
        self._pass_to_host(record)

    def _pass_to_host(self, record: logging.LogRecord) -> None:
        source = logging.getLogger(record.name)
        threshold = self._host_levels.get(record.name, logging.NOTSET)
        parent = source.parent
        if threshold == logging.NOTSET and parent is not None:
            threshold = parent.getEffectiveLevel()
        if record.levelno >= threshold and parent is not None:
            parent.handle(record)


@contextlib.contextmanager
def relay_logs(hub: ClientHub) -> Iterator[None]:
    """Install `_RelayHandler` on the relayed loggers inside the block."""
    saved = {name: logging.getLogger(name) for name in RELAYED_LOGGERS}
    host_levels = {name: source.level for name, source in saved.items()}
    propagate = {name: source.propagate for name, source in saved.items()}
    handler = _RelayHandler(hub, asyncio.get_running_loop(), host_levels)
    for source in saved.values():
        source.addHandler(handler)
        source.setLevel(logging.DEBUG)
        source.propagate = False
    try:
        yield
    finally:
        for name, source in saved.items():
            source.removeHandler(handler)
            source.setLevel(host_levels[name])
            source.propagate = propagate[name]
