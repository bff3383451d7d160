"""`isobind serve`: an MCP server that offers one code tool in place of many upstream tools.

Clients see a handful of tools: `run_code` runs TypeScript against `tools.*`,
and `list_servers`, `search_tools` and `describe_tools` load the API a piece at
a time. The whole TypeScript API is the resource `isobind://api.d.ts`, and the
prompt `code_mode` explains how to write code for it. The template
`isobind://api/{server}.d.ts` gives the declarations of one server's tools.

Clients on the handshake protocol versions may set a log level and subscribe
to these resources. `ClientHub` sends them upstream restarts, stderr lines
and API rebuilds as log messages, and `notifications/resources/updated` when
a subscribed resource's text changes; clients on 2026-07-28 get the updates
on their `subscriptions/listen` streams. The listed tools, resources,
templates and prompts, and the tool descriptions, never change, so the
server sends no `list_changed` notifications.

Every client shares one `Toolbox`, so upstream sessions are opened once and
each run gets its own V8 isolate. A run ends early when its request is
cancelled: by `notifications/cancelled`, by the end of the client's HTTP
session, or by the end of the stdio connection, which ends the server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field

from ._clients import ClientHub
from ._format import render_run_text, run_to_structured
from ._log_scrub import scrub_credential_shapes
from ._result import CallRecord
from ._toolbox import Toolbox

__all__ = [
    "API_RESOURCE_URI",
    "SERVER_API_TEMPLATE",
    "RunOutput",
    "ServeOptions",
    "build_server",
    "serve",
]

logger = logging.getLogger(__name__)

API_RESOURCE_URI = "isobind://api.d.ts"
SERVER_API_TEMPLATE = "isobind://api/{server}.d.ts"
_SERVER_API_URI = re.compile(r"isobind://api/([^/]+)\.d\.ts")
# An MCP completion result contains at most 100 values.
_MAX_COMPLETIONS = 100

_INSTRUCTIONS = (
    "Do the task by writing TypeScript for run_code: it calls the tools of several MCP servers "
    "as `await tools.<server>.<tool>(input)` in one sandboxed run. Find tools with "
    "list_servers and search_tools, read their types with describe_tools, then run code "
    "that does the whole job and returns only what you need."
)

_RUN_CODE_DESCRIPTION = """\
Run TypeScript in a fresh sandbox, as the body of an async function: top-level \
`await` and `return` work. Call tools as `await tools.<server>.<tool>(input)`, typed in \
describe_tools. `return` the value you need; console.log output comes back too. No \
network or files: only `tools.*`. Loop, filter and combine inside the code instead of \
calling run_code many times. A failed run reports the error name, message and line."""

_LIST_SERVERS_DESCRIPTION = "List the tool servers reachable as `tools.<server>` in run_code."

_SEARCH_DESCRIPTION = (
    "Search the tools callable in run_code by words in their names and descriptions. "
    "detail: names (cheapest), summaries (one line each) or declarations (TypeScript)."
)

_DESCRIBE_DESCRIPTION = (
    "Return the TypeScript declarations of tools, by name as `server.tool` "
    "(e.g. `time.get_current_time`), to call them correctly in run_code."
)

_PROMPT_TEXT = """\
You can call tools by writing TypeScript for the `run_code` tool.

- The code is the body of an async function: use `await`, and `return` the answer.
- Call a tool as `await tools.<server>.<tool>(input)`; the input is one object.
- The servers are: {servers}.
- Before calling a tool, read its declaration with `describe_tools` (or search with
  `search_tools`), so the input has the right fields.
- Do the loops, filtering and joining inside the code and return only the data the
  task needs; intermediate results stay in the sandbox.
- Catch errors with try/catch when a call may fail: a failing tool throws `ToolError`,
  an input that breaks the tool's schema throws `ToolInputError`.
- There is no network or file access: `fetch` and `import()` fail.
- If a run fails, the result names the error, its message and the line in your code;
  fix that line and run again.
"""


class RunError(BaseModel):
    """The error that ended a run."""

    name: str = Field(description="JavaScript error name, e.g. TypeError or ToolError")
    message: str
    line: int | None = Field(default=None, description="Line in the submitted code")
    column: int | None = None
    stack: str | None = None


class RunLog(BaseModel):
    """One console call of the code."""

    level: str
    message: str


class RunCall(BaseModel):
    """One tool call made by the code."""

    tool: str = Field(description="server.tool")
    ok: bool
    error: str | None = None
    duration_ms: float = Field(alias="durationMs")


class RunOutput(BaseModel):
    """The structured content of a `run_code` result."""

    ok: bool
    result: Any = Field(default=None, description="The code's return value")
    logs: list[RunLog]
    calls: list[RunCall]
    error: RunError | None = None
    duration_ms: float = Field(alias="durationMs")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Transport and authentication settings of `serve`."""

    transport: Literal["stdio", "http"] = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    """TCP port for HTTP; 0 picks a free one."""
    path: str = "/mcp"
    token: str | None = None
    """Bearer token that HTTP clients must send; `None` admits every client."""
    progress_interval: float = 1.0
    """Seconds between progress notifications of a run, besides one per tool call."""
    max_runs: int = 32
    """Runs executing at once, over all clients; later runs wait for a free slot."""


def new_client_hub(toolbox: Toolbox) -> ClientHub:
    """Create the `ClientHub` for `toolbox`, with its resources and its secret scrubbing."""

    def scrub(text: str) -> str:
        return scrub_credential_shapes(toolbox.redactor.scrub_text(text))

    def resources() -> list[str]:
        servers = [SERVER_API_TEMPLATE.format(server=name) for name in _server_ids(toolbox)]
        return [API_RESOURCE_URI, *servers]

    return ClientHub(
        lambda uri: render_resource(toolbox, uri),
        scrub,
        resources=resources,
        bus=InMemorySubscriptionBus(),
    )


def render_resource(toolbox: Toolbox, uri: str) -> str | None:
    """Return the text of the API resource `uri`, or `None` when there is no such resource."""
    if uri == API_RESOURCE_URI:
        return toolbox.declaration
    match = _SERVER_API_URI.fullmatch(uri)
    if match is None:
        return None
    return _server_declaration(toolbox, match.group(1))


def _server_declaration(toolbox: Toolbox, server: str) -> str | None:
    names = [f"{owner}.{tool}" for owner, tool in toolbox.callable_tools if owner == server]
    if not names:
        return None
    return toolbox.describe_tools(names)


def build_server(
    toolbox: Toolbox,
    clients: ClientHub | None = None,
    *,
    progress_interval: float = 1.0,
    max_runs: int = 32,
) -> MCPServer[Any]:
    """Build the MCP server that fronts the open `toolbox`.

    At most `max_runs` runs execute at once, because each holds a V8 isolate
    with its own memory limit. `clients` (default: a new hub) receives the
    log level and subscription requests; its notifications go out only
    inside `ClientHub.running()`.
    """
    if clients is None:
        clients = new_client_hub(toolbox)
    slots = asyncio.Semaphore(max_runs)
    server: MCPServer[Any] = MCPServer(
        "isobind",
        instructions=_INSTRUCTIONS,
        log_level="WARNING",
        subscriptions=clients.bus,
    )
    _serve_client_requests(server, clients, toolbox)
    read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(name="run_code", description=_RUN_CODE_DESCRIPTION)
    async def run_code(
        code: Annotated[str, Field(description="TypeScript or JavaScript source")],
        ctx: Context,
    ) -> Annotated[types.CallToolResult, RunOutput]:
        async with slots:
            return await _run_code(toolbox, code, ctx, progress_interval)

    @server.tool(
        name="list_servers",
        description=_LIST_SERVERS_DESCRIPTION,
        annotations=read_only,
        structured_output=False,
    )
    def list_servers() -> str:
        return _list_servers(toolbox)

    @server.tool(
        name="search_tools",
        description=_SEARCH_DESCRIPTION,
        annotations=read_only,
        structured_output=False,
    )
    def search_tools(
        query: Annotated[str, Field(description="Plain words, e.g. 'weather forecast'")],
        detail: Literal["names", "summaries", "declarations"] = "summaries",
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> str:
        try:
            return toolbox.search_tools(query, detail=detail, limit=limit)
        except ValueError as error:
            raise ToolError(str(error)) from error

    @server.tool(
        name="describe_tools",
        description=_DESCRIBE_DESCRIPTION,
        annotations=read_only,
        structured_output=False,
    )
    def describe_tools(
        names: Annotated[list[str], Field(description="Tool names as server.tool")],
    ) -> str:
        try:
            return toolbox.describe_tools(names)
        except ValueError as error:
            raise ToolError(str(error)) from error

    @server.resource(
        API_RESOURCE_URI,
        name="api",
        title="TypeScript API of tools.*",
        description="Declarations of every tool callable from run_code.",
        mime_type="text/x-typescript",
    )
    def api_declaration() -> str:
        return toolbox.declaration

    @server.resource(
        SERVER_API_TEMPLATE,
        name="server-api",
        title="TypeScript API of one server",
        description="Declarations of the tools of `tools.<server>`, with the types they use.",
        mime_type="text/x-typescript",
    )
    def server_api(server: str) -> str:
        text = _server_declaration(toolbox, server)
        if text is None:
            servers = ", ".join(_server_ids(toolbox)) or "none"
            raise ResourceNotFoundError(
                f"no server {server!r} with callable tools; the servers are: {servers}"
            )
        return text

    @server.prompt(
        name="code_mode",
        description="How to do a task by writing code for run_code.",
    )
    def code_mode(
        task: Annotated[str, Field(description="The task to do")] = "",
    ) -> str:
        servers = ", ".join(f"`tools.{name}`" for name in _server_ids(toolbox)) or "none"
        text = _PROMPT_TEXT.format(servers=servers)
        return f"{text}\nTask: {task}" if task else text

    return server


async def _run_code(
    toolbox: Toolbox, code: str, ctx: Context, progress_interval: float
) -> types.CallToolResult:
    started = time.monotonic()
    reporter = _ProgressReporter(ctx, started)
    ticker = asyncio.create_task(reporter.tick_every(progress_interval))
    try:
        result = await toolbox.execute(code, on_call=reporter.call_done)
    except asyncio.CancelledError:
        # The toolbox has written the audit record of the cancelled run.
        logger.info("run cancelled by the client after %.3f s", time.monotonic() - started)
        raise
    finally:
        ticker.cancel()
    structured = run_to_structured(result)
    outcome = "ok"
    if result.error is not None:
        outcome = result.error.name
    logger.info(
        "run %s: %s, %d calls, %.1f ms",
        result.execution_id,
        outcome,
        len(result.calls),
        result.duration * 1000,
    )
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=render_run_text(result, code))],
        structured_content=structured,
        is_error=not result.ok,
    )


class _ProgressReporter:
    """Sends `notifications/progress` for one run: elapsed seconds, with the calls done."""

    def __init__(self, ctx: Context, started: float):
        self._ctx = ctx
        self._started = started
        self._calls = 0
        self._last = -1.0

    async def call_done(self, record: CallRecord) -> None:
        self._calls += 1
        await self._report()

    async def tick_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._report()

    async def _report(self) -> None:
        # Progress must increase with every notification; elapsed time does,
        # unless two reports fall in the same clock tick.
        elapsed = round(time.monotonic() - self._started, 3)
        if elapsed <= self._last:
            return
        self._last = elapsed
        message = f"{self._calls} tool calls done after {elapsed:.1f} s"
        try:
            await self._ctx.report_progress(elapsed, None, message)
        except Exception:
            # A client that went away makes the send fail; the run's own
            # cancellation, not this report, ends the run.
            logger.debug("could not send a progress notification", exc_info=True)


def _serve_client_requests(server: MCPServer[Any], clients: ClientHub, toolbox: Toolbox) -> None:
    """Route log level, subscription and completion requests to `clients` and `_complete`."""
    server.middleware.append(clients.middleware)
    # NOTE: MCPServer (mcp 2.3) has no typed public way to serve these four
    # methods, so they go to its low-level server, which also derives the
    # `logging`, `completions` and `resources.subscribe` capabilities from them.
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, clients.set_level)
    lowlevel.add_request_handler(
        "resources/subscribe", types.SubscribeRequestParams, clients.subscribe
    )
    lowlevel.add_request_handler(
        "resources/unsubscribe", types.UnsubscribeRequestParams, clients.unsubscribe
    )

    async def complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        return types.CompleteResult(completion=_complete(toolbox, params.ref, params.argument))

    lowlevel.add_request_handler("completion/complete", types.CompleteRequestParams, complete)


def _complete(
    toolbox: Toolbox,
    ref: types.PromptReference | types.ResourceTemplateReference,
    argument: types.CompletionArgument,
) -> types.Completion:
    """Complete a server name in the server API template, or a tool name in a `code_mode` task.

    The task is free text, so only its last word is completed, and only once
    it starts a tool name: `tools.fo` or `fo` becomes `tools.forecast.get_forecast`.
    """
    if isinstance(ref, types.ResourceTemplateReference) and ref.uri == SERVER_API_TEMPLATE:
        if argument.name == "server":
            found = [name for name in _server_ids(toolbox) if name.startswith(argument.value)]
            return _completion(found)
    elif isinstance(ref, types.PromptReference) and ref.name == "code_mode":
        if argument.name == "task":
            return _complete_task(toolbox, argument.value)
    else:
        raise MCPError(
            code=types.INVALID_PARAMS,
            message="no completions: the prompt is code_mode and the resource template is "
            f"{SERVER_API_TEMPLATE}",
        )
    raise MCPError(
        code=types.INVALID_PARAMS,
        message=f"no argument {argument.name!r}: code_mode takes `task`, "
        f"{SERVER_API_TEMPLATE} takes `server`",
    )


def _complete_task(toolbox: Toolbox, task: str) -> types.Completion:
    head, _, word = task.rpartition(" ")
    if not word:
        return _completion([])
    prefix = f"{head} " if head or task.startswith(" ") else ""
    found = []
    for server, tool in toolbox.callable_tools:
        name = f"tools.{server}.{tool}"
        if name.startswith(word) or name.removeprefix("tools.").startswith(word):
            found.append(prefix + name)
    return _completion(found)


def _completion(values: list[str]) -> types.Completion:
    return types.Completion(
        values=values[:_MAX_COMPLETIONS],
        total=len(values),
        has_more=len(values) > _MAX_COMPLETIONS,
    )


def _server_ids(toolbox: Toolbox) -> list[str]:
    return [summary.name for summary in toolbox.list_servers()]


def _list_servers(toolbox: Toolbox) -> str:
    """Render one line per server: `name (N tools): title. description`."""
    lines = []
    for summary in toolbox.list_servers():
        about = ". ".join(part for part in (summary.title, summary.description) if part)
        line = f"{summary.name} ({summary.tool_count} tools)"
        lines.append(f"{line}: {about}" if about else line)
    return "\n".join(lines) if lines else "No servers with callable tools are configured."


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class BearerAuth:
    """ASGI middleware that admits only HTTP requests carrying `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self._expected = token.encode()

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        supplied = headers.get(b"authorization", b"")
        # RFC 9110: the scheme name is case-insensitive; the token is compared exactly.
        scheme, _, credentials = supplied.strip().partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._expected):
            await self.app(scope, receive, send)
            return
        logger.warning(
            "rejected an HTTP request from %s: %s bearer token",
            _client_address(scope),
            "invalid" if supplied else "missing",
        )
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32001, "message": "Unauthorized: send a valid bearer token"},
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="isobind"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _client_address(scope: MutableMapping[str, Any]) -> str:
    client = scope.get("client")
    if not client:
        return "an unknown client"
    host, port = client
    return f"{host}:{port}"


async def serve(
    toolbox: Toolbox,
    options: ServeOptions,
    *,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve the open `toolbox` over stdio or streamable HTTP until stopped.

    For HTTP, `on_listening` is called with the URL once the socket is bound.
    """
    clients = new_client_hub(toolbox)
    server = build_server(
        toolbox, clients, progress_interval=options.progress_interval, max_runs=options.max_runs
    )
    toolbox.add_api_listener(clients.api_changed)
    async with clients.running():
        if options.transport == "stdio":
            await server.run_stdio_async()
        else:
            await _serve_http(server, options, on_listening)


async def _serve_http(
    server: MCPServer[Any],
    options: ServeOptions,
    on_listening: Callable[[str], None] | None,
) -> None:
    import uvicorn

    app: Any = server.streamable_http_app(streamable_http_path=options.path, host=options.host)
    if options.token is not None:
        app = BearerAuth(app, options.token)

    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((options.host, options.port))
    # Listen before announcing the URL, so that a client connecting at once
    # waits in the backlog until uvicorn accepts instead of being refused.
    sock.listen(socket.SOMAXCONN)
    port = sock.getsockname()[1]
    host = f"[{options.host}]" if family == socket.AF_INET6 else options.host
    url = f"http://{host}:{port}{options.path}"

    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    http_server = uvicorn.Server(config)
    logger.info("serving MCP over streamable HTTP at %s", url)
    if on_listening is not None:
        on_listening(url)
    try:
        await http_server.serve(sockets=[sock])
    finally:
        sock.close()
