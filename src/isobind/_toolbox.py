"""`Toolbox`: tool sources in, one TypeScript API out, code executed against it."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import re
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import anyio
import anyio.to_thread

from ._approval import Approver
from ._audit import AuditLog
from ._bindings import CallDispatcher, CallObserver, ToolRegistry, ToolSource
from ._budget import RateWindows
from ._config import Config, HttpServer, load_config
from ._egress import EGRESS_KEY, EgressGateway
from ._erase import TypeScriptSyntaxError, erase_types
from ._errors import ApiError, ClosedError, ConfigError, UpstreamError
from ._functions import FunctionTools
from ._json_tree import map_leaves
from ._log_scrub import scrub_credential_shapes
from ._naming import to_identifier
from ._oauth import ClientCredentialsAuth
from ._policy import ServerPolicy, check_tool
from ._pool import SandboxSettings, WorkerPool
from ._redact import LiveRedactor
from ._result import ExecutionError, ExecutionResult, LogEntry
from ._sandbox import CallReply, CallRequest, Limits, SandboxOutcome, run_in_isolate, wait_closed
from ._search import DISCOVERY_SERVER, ServerSummary, ToolCatalog, discovery_reply
from ._telemetry import Telemetry, finish_span
from ._tools import ToolSpec
from ._typescript import Api, render_api
from ._upstream import McpConnection

__all__ = ["Toolbox"]

# A result up to this many characters of JSON is decoded on the event loop; a larger
# one in a worker thread.
_INLINE_RESULT_CHARS = 65_536

logger = logging.getLogger(__name__)


class Toolbox:
    """Connects to the configured MCP servers and runs code against their tools.

    Use it as an async context manager::

        async with Toolbox.from_config("isobind.json") as toolbox:
            print(toolbox.declaration)
            result = await toolbox.execute("return await tools.time.get_current_time(...)")

    Upstream sessions open once in `open()` and are reused by every execution;
    each execution gets a fresh V8 isolate that is closed when it ends. The
    isolates run in locked-down worker processes, started on the first
    execution, unless `sandbox=SandboxSettings(mode="inprocess")`. When a
    server reports that its tool list changed, or is restarted, the tools are
    listed again and the API is rebuilt. Executions already running keep the
    API they started with.
    """

    list_tools_timeout: float = 60.0
    """Seconds one server may take to return its whole tool list in `open()`."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        functions: Iterable[FunctionTools] = (),
        limits: Limits | None = None,
        sandbox: SandboxSettings | None = None,
        audit: AuditLog | str | os.PathLike[str] | None = None,
        secrets: Iterable[str] = (),
        approve: Approver | None = None,
        approval_timeout: float = 300.0,
        approve_writes: bool | None = None,
        tracer_provider: Any = None,
    ):
        """Set up the toolbox; nothing connects until `open()`.

        `approve` decides the calls that a rule marks for approval: it receives an
        `ApprovalRequest` and must return `True` (or an awaitable of `True`) within
        `approval_timeout` seconds for the call to run. `approve_writes` (default:
        the config's ``approveWrites``) requires approval for every tool not
        annotated read-only. Spans of executions and calls go to `tracer_provider`
        (an OpenTelemetry ``TracerProvider``), else to the global provider.
        `sandbox` defaults to the config's ``isobind.sandbox`` settings.
        """
        self.config = config
        self._telemetry = Telemetry(tracer_provider)
        self._approver = approve
        self._approval_timeout = approval_timeout
        if approve_writes is None:
            approve_writes = config.approve_writes if config is not None else False
        self._approve_writes = approve_writes
        self._functions = list(functions)
        if limits is None:
            limits = config.run_limits() if config is not None else Limits()
        self.limits = limits
        if sandbox is None:
            sandbox = config.sandbox if config is not None else None
        self.sandbox = sandbox if sandbox is not None else SandboxSettings()
        self._pool: WorkerPool | None = None
        if self.sandbox.mode == "workers":
            self._pool = WorkerPool(self.sandbox)
        all_secrets = set(secrets)
        if config is not None:
            all_secrets |= config.secrets
        self.redactor = LiveRedactor(all_secrets)
        if audit is None and config is not None and config.audit is not None:
            audit = config.audit
        if audit is not None and not isinstance(audit, AuditLog):
            audit = AuditLog(audit)
        self.audit = audit.with_redactor(self.redactor) if audit is not None else None
        self._connections: dict[str, McpConnection] = {}
        self._egress: EgressGateway | None = None
        self._registry: ToolRegistry | None = None
        # Kept across API rebuilds, so that a tool-list change does not reset the windows.
        self._rate_windows = RateWindows(config.rate_limit_store if config is not None else None)
        self._catalog: ToolCatalog | None = None
        self._declaration = ""
        self._compact_declaration = ""
        self._callable_tools: tuple[tuple[str, str], ...] = ()
        self._state = "new"
        self._refresh_lock = asyncio.Lock()
        self._refresh_tasks: set[asyncio.Task[None]] = set()
        self._api_listeners: list[Callable[[], None]] = []
        self.api_version = 0
        """Incremented each time the API is built or rebuilt."""

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str],
        *,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Toolbox:
        """Build a toolbox from a config file in the `mcpServers` format."""
        return cls(load_config(path, environ=environ), **options)

    async def __aenter__(self) -> Toolbox:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect to every server, list the tools and build the TypeScript API."""
        if self._state == "closed":
            raise ClosedError("this Toolbox is closed; create a new one")
        if self._state == "open":
            return
        self._state = "open"
        try:
            if self.audit is not None:
                self._check_audit(self.audit)
            await self._connect_all()
            await self._build_api()
        except BaseException:
            await self.aclose()
            raise

    @staticmethod
    def _check_audit(audit: AuditLog) -> None:
        try:
            audit.check_writable()
        except OSError as error:
            raise ConfigError(
                f"cannot open the audit log for appending: {error.strerror or error}. "
                "Fix the path or its permissions",
                path=str(audit.path),
            ) from error

    async def _connect_all(self) -> None:
        if self.config is None:
            return
        if self.config.egress is not None:
            self._egress = EgressGateway(self.config.egress, self.redactor)
        for name, server in self.config.servers.items():
            auth = None
            if isinstance(server, HttpServer) and server.oauth is not None:
                auth = ClientCredentialsAuth(server.oauth, on_token=self._add_secret)
            self._connections[name] = McpConnection(
                server, redactor=self.redactor, auth=auth, on_tools_changed=self._tools_changed
            )
        try:
            async with asyncio.TaskGroup() as group:
                for connection in self._connections.values():
                    group.create_task(connection.open())
        except ExceptionGroup as failures:
            # Report the first server that failed as it is, not wrapped in a group.
            first = _first_leaf(failures)
            raise first from first.__cause__

    def _add_secret(self, secret: str) -> None:
        self.redactor.add([secret])

    async def _build_api(self, *, keep_unreachable: bool = False) -> None:
        """List every source's tools and build the API and the tool registry.

        With `keep_unreachable`, a server that cannot be listed keeps the tools
        of its last listing instead of failing the whole build.
        """
        sources: dict[str, ToolSource] = dict(self._connections)
        for group in self._functions:
            if group.name in sources:
                raise ApiError(
                    f"function group {group.name!r} has the name of a configured MCP server; "
                    "rename one of them"
                )
            sources[group.name] = group

        tools: list[ToolSpec] = []
        for source in sources.values():
            if isinstance(source, McpConnection):
                tools.extend(await self._list_server_tools(source, keep_unreachable))
            else:
                tools.extend(source.list_tools())
        policies = self._policies()
        allowed = _without_clashes(
            [tool for tool in tools if check_tool(tool, policies[tool.server]) is None]
        )
        api = render_api(_with_denied_bindings(tools, allowed))
        allowed_api = render_api(allowed, log_problems=False)
        # The problems of these schemas were logged by the first rendering.
        self._declaration = allowed_api.declaration
        compact = render_api(allowed, log_problems=False, detail="compact")
        self._compact_declaration = compact.declaration
        self._callable_tools = tuple(sorted(allowed_api.bindings))
        self._registry = ToolRegistry(
            api,
            sources,
            policies,
            self.redactor,
            approver=self._approver,
            approval_timeout=self._approval_timeout,
            approve_writes=self._approve_writes,
            telemetry=self._telemetry,
            egress=self._egress,
            windows=self._rate_windows,
        )
        self._catalog = _build_catalog(api, policies, sources)
        self.api_version += 1
        logger.info(
            "API ready: %d servers, %d tools, %d callable",
            len(sources),
            len(tools),
            len(allowed),
        )

    async def _list_tools(self, connection: McpConnection) -> list[ToolSpec]:
        # The MCP client drops a response it cannot parse and then waits for it
        # forever. `McpConnection` recovers one nested too deeply on stdio, but
        # not other unparsable responses.
        try:
            with anyio.fail_after(self.list_tools_timeout):
                return await connection.list_tools()
        except TimeoutError as error:
            raise UpstreamError(
                f"tools/list did not complete within {self.list_tools_timeout:g} s "
                "(the server may have sent a response the MCP client cannot parse)",
                server=connection.name,
            ) from error

    async def _list_server_tools(
        self, connection: McpConnection, keep_unreachable: bool
    ) -> list[ToolSpec]:
        try:
            return await self._list_tools(connection)
        except UpstreamError as error:
            if not keep_unreachable:
                raise
            logger.warning("%s; keeping its %d tools listed before", error, len(connection.tools))
            return connection.tools

    async def refresh(self) -> None:
        """List the tools of every server again and rebuild the API.

        A server that cannot be listed keeps its previous tools. If the new
        tools cannot form one API (`ApiError`), the previous API stays and the
        error is logged.
        """
        self._require_open()
        async with self._refresh_lock:
            try:
                await self._build_api(keep_unreachable=True)
            except ApiError:
                logger.exception("tool lists changed but cannot form one API; keeping the old one")
                return
        for listener in list(self._api_listeners):
            listener()

    def add_api_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each rebuild of the API by `refresh()`."""
        self._api_listeners.append(listener)

    def _tools_changed(self, server: str) -> None:
        if self._state != "open":
            return
        logger.info("rebuilding the API: tools of MCP server %s may have changed", server)
        task = asyncio.get_running_loop().create_task(self._refresh_logged())
        self._refresh_tasks.add(task)
        task.add_done_callback(self._refresh_tasks.discard)

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except Exception:
            logger.exception("rebuilding the API failed")

    def _policies(self) -> dict[str, ServerPolicy]:
        policies: dict[str, ServerPolicy] = {}
        if self.config is not None:
            policies.update(self.config.policies)
        for group in self._functions:
            policies.setdefault(group.name, ServerPolicy.default())
        return policies

    @property
    def declaration(self) -> str:
        """The TypeScript declaration of the `tools` global: the callable tools only."""
        self._require_open()
        return self._declaration

    @property
    def compact_declaration(self) -> str:
        """`declaration` with each description cut to its first sentence, for a prompt.

        Optional properties, and required ones whose description only restates
        the names, lose their descriptions. Every type, tag and enum note stays.
        `describe_tools` returns the full text.
        """
        self._require_open()
        return self._compact_declaration

    @property
    def callable_tools(self) -> tuple[tuple[str, str], ...]:
        """The (server, tool) identifiers of the callable tools, as code writes them."""
        self._require_open()
        return self._callable_tools

    @property
    def api(self) -> Api:
        """The API of every listed tool, including those the policy denies."""
        return self._require_open().api

    def list_servers(self) -> list[ServerSummary]:
        """List the servers that have callable tools, in config order.

        Show this to a model when the whole declaration is too long for its
        prompt. It then goes on with `search_tools` and `describe_tools`.
        """
        self._require_open()
        assert self._catalog is not None
        return self._catalog.list_servers()

    def search_tools(
        self,
        query: str,
        *,
        detail: Literal["names", "summaries", "declarations"] = "summaries",
        limit: int = 10,
    ) -> str:
        """Search the callable tools and return the best `limit` matches as text for a model.

        The ranking is BM25F over tool names, titles, descriptions and parameter
        names, so a plain-language query such as "commits of a repository" finds
        `tools.git.git_log`. `detail` chooses the text: `"names"` gives one
        `tools.server.tool` per line, `"summaries"` adds the first sentence of
        each description, and `"declarations"` gives a TypeScript declaration of
        the matched tools, with the types they use. A query that matches nothing
        returns a sentence saying so, with the server names.

        Raises:
            ValueError: `detail` is not one of the three, or `limit` is not 1 to 100.
        """
        self._require_open()
        assert self._catalog is not None
        return self._catalog.search_tools(query, detail=detail, limit=limit)

    def describe_tools(self, names: Sequence[str]) -> str:
        """Return the TypeScript declaration of the named callable tools and the types they use.

        Names take the form `"server.tool"` or `"tools.server.tool"`, with the
        identifiers of the declaration.

        Raises:
            ValueError: a name is not a callable tool; the message names each such
                name and suggests the closest real ones.
        """
        self._require_open()
        assert self._catalog is not None
        return self._catalog.describe_tools(names)

    def _require_open(self) -> ToolRegistry:
        if self._state == "closed":
            raise ClosedError("this Toolbox is closed; create a new one")
        if self._registry is None:
            raise ClosedError("this Toolbox is not open; use `async with` or call open()")
        return self._registry

    async def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the sandbox's run limit, not a wait
        memory_mb: int | None = None,
        filename: str = "code.ts",
        dry_run: bool = False,
        on_call: CallObserver | None = None,
    ) -> ExecutionResult:
        """Run TypeScript or JavaScript `code` as the body of an async function.

        The code sees the global `tools`; its return value, console output and
        tool calls come back in the `ExecutionResult`. Errors of the code (and
        limits it hits) are reported in `ExecutionResult.error`, not raised.
        `on_call` receives the record of each tool call as it finishes; it is
        awaited when it is a coroutine function. Cancelling the task that awaits
        this stops the run and its tool calls.

        With `dry_run`, every tool not annotated read-only is answered with a
        `PermissionDeniedError` instead of running, and `ExecutionResult.would_call`
        lists those calls.
        """
        registry = self._require_open()
        limits = self.limits
        if timeout is not None:
            limits = replace(limits, timeout=timeout)
        if memory_mb is not None:
            limits = replace(limits, memory_mb=memory_mb)
        execution_id = uuid.uuid4().hex
        attributes: dict[str, str | int | bool] = {
            "isobind.execution_id": execution_id,
            "isobind.dry_run": dry_run,
        }
        with self._telemetry.span("isobind.execution", attributes) as span:
            result = await self._execute(
                registry, code, limits, filename, execution_id, dry_run, on_call
            )
            error_name = result.error.name if result.error is not None else None
            finish_span(span, ok=result.ok, error_name=error_name, calls=len(result.calls))
        return result

    async def _execute(
        self,
        registry: ToolRegistry,
        code: str,
        limits: Limits,
        filename: str,
        execution_id: str,
        dry_run: bool,
        on_call: CallObserver | None,
    ) -> ExecutionResult:
        started_at = datetime.datetime.now(datetime.UTC)
        dispatcher = CallDispatcher(registry, dry_run=dry_run, on_call=on_call)

        try:
            javascript = erase_types(code)
        except TypeScriptSyntaxError as error:
            outcome = SandboxOutcome(
                error={
                    "name": "SyntaxError",
                    "message": str(error),
                    "line": error.line,
                    "column": error.column,
                }
            )
        else:
            runtime_api: dict[str, list[str]] = {}
            for server, tool in registry.api.bindings:
                runtime_api.setdefault(server, []).append(tool)
            if registry.egress is not None:
                runtime_api[EGRESS_KEY] = ["request"]
            run = self._pool.run if self._pool is not None else run_in_isolate
            try:
                outcome = await run(
                    javascript,
                    api=runtime_api,
                    handler=self._with_discovery(dispatcher),
                    limits=limits,
                    filename=filename,
                )
            except asyncio.CancelledError:
                await self._audit_cancelled(code, dispatcher, execution_id, started_at, limits)
                raise

        audit = self.audit

        def finish() -> ExecutionResult:
            result = replace(self._build_result(outcome, dispatcher, execution_id), dry_run=dry_run)
            if audit is not None:
                audit.append(_audit_records(result, code, started_at, limits))
            return result

        if audit is None and len(outcome.result_text or "") <= _INLINE_RESULT_CHARS:
            return finish()
        # Writing the audit log, and decoding and scrubbing a large result, would
        # stall every other run and client that shares this event loop.
        return await anyio.to_thread.run_sync(finish)

    async def _audit_cancelled(
        self,
        code: str,
        dispatcher: CallDispatcher,
        execution_id: str,
        started_at: datetime.datetime,
        limits: Limits,
    ) -> None:
        """Append the audit records of a run cancelled by its caller, with the calls it made.

        A call still in flight when the run was cancelled is recorded as
        `CallCancelled` by the dispatcher before the cancellation reaches here.
        """
        if self.audit is None:
            return
        elapsed = datetime.datetime.now(datetime.UTC) - started_at
        result = ExecutionResult(
            ok=False,
            result=None,
            logs=[],
            calls=list(dispatcher.records),
            # NOTE: the console output stays in the sandbox, so this record has none.
            error=ExecutionError(
                name="Cancelled",
                message="the caller cancelled the run or disconnected before it finished",
            ),
            duration=elapsed.total_seconds(),
            execution_id=execution_id,
            dry_run=dispatcher.dry_run,
        )
        records = _audit_records(result, code, started_at, limits)
        records[-1]["cancelled"] = True
        logger.info(
            "run %s cancelled after %d calls; writing its audit record",
            execution_id,
            len(result.calls),
        )
        # The caller's cancel scope is still cancelled, so the write needs a
        # shield to run at all.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.audit.append, records)

    def _with_discovery(
        self, dispatcher: CallDispatcher
    ) -> Callable[[CallRequest], Coroutine[Any, Any, CallReply]]:
        """Route the sandbox's `isobind.*` calls to the catalog, and other calls to `dispatcher`."""
        catalog = self._catalog
        assert catalog is not None
        scrub = self.redactor.scrub_text

        async def handle(request: CallRequest) -> CallReply:
            if request.server != DISCOVERY_SERVER:
                return await dispatcher(request)
            reply = discovery_reply(catalog, request.tool, request.input_text)
            if reply.value_text is not None:
                # NOTE: scrubbing JSON text breaks the JSON when a secret matches
                # its syntax; the run then ends with a SandboxError.
                return CallReply.success(scrub(reply.value_text))
            return reply

        return handle

    def _build_result(
        self, outcome: SandboxOutcome, dispatcher: CallDispatcher, execution_id: str
    ) -> ExecutionResult:
        def scrub(text: str) -> str:
            return self.redactor.scrub_text(well_formed(text))

        raw = outcome.error
        value = None
        if raw is None and outcome.result_text is not None:
            try:
                value = self.redactor.scrub(well_formed_data(json.loads(outcome.result_text)))
            except RecursionError:
                raw = {
                    "name": "ResultTooLargeError",
                    "message": "The returned value is nested too deeply. Return a flatter value.",
                }
        error = None
        if raw is not None:
            error = ExecutionError(
                name=scrub(str(raw.get("name", "Error"))),
                message=scrub(str(raw.get("message", ""))),
                stack=scrub(raw["stack"]) if raw.get("stack") else None,
                line=raw.get("line"),
                column=raw.get("column"),
            )
        logs = [
            LogEntry(entry["level"], scrub_credential_shapes(scrub(entry["message"])))
            for entry in outcome.logs
        ]
        return ExecutionResult(
            ok=error is None,
            result=value,
            logs=logs,
            calls=list(dispatcher.records),
            error=error,
            duration=outcome.duration,
            execution_id=execution_id,
            logs_dropped=outcome.logs_dropped,
        )

    async def aclose(self) -> None:
        """Close every upstream session; the toolbox cannot be used afterwards."""
        if self._state == "closed":
            return
        self._state = "closed"
        for task in list(self._refresh_tasks):
            task.cancel()
        if self._pool is not None:
            await self._pool.aclose()
        await wait_closed()
        if self._egress is not None:
            await self._egress.aclose()
        self._rate_windows.close()
        connections = list(self._connections.values())
        if connections:
            await asyncio.gather(
                *(connection.aclose() for connection in connections), return_exceptions=True
            )

    def __del__(self) -> None:
        if getattr(self, "_state", "closed") == "open":
            warnings.warn(
                "Toolbox was not closed; use `async with` or call aclose()",
                ResourceWarning,
                stacklevel=2,
            )


_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """Replace lone UTF-16 surrogates, which JavaScript strings may hold, with U+FFFD."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def well_formed_data(value: Any) -> Any:
    """Return a copy of JSON data with `well_formed` applied to every string, keys included."""
    return map_leaves(value, _well_formed_leaf)


def _well_formed_leaf(leaf: object) -> object:
    return well_formed(leaf) if isinstance(leaf, str) else leaf


def _api_key(tool: ToolSpec) -> tuple[str, str]:
    """Return the server and the identifier under which the API shows `tool`."""
    return tool.server, to_identifier(tool.name)


def _without_clashes(tools: list[ToolSpec]) -> list[ToolSpec]:
    """Return `tools` without those whose API name an earlier tool of the server has.

    A server that lists one name twice, or two names that map to one identifier
    (`get-data` and `get_data`), keeps the first, so that the other servers and
    tools still load. A warning names both and how to choose.
    """
    first_by_key: dict[tuple[str, str], ToolSpec] = {}
    unique = []
    for tool in tools:
        key = _api_key(tool)
        first = first_by_key.setdefault(key, tool)
        if first is tool:
            unique.append(tool)
            continue
        logger.warning(
            "MCP server %r: tools %r and %r both map to `tools.%s.%s`; the second is left "
            "out. To keep it instead, deny the first by its original name in the config",
            tool.server,
            first.name,
            tool.name,
            to_identifier(tool.server),
            key[1],
        )
    return unique


def _with_denied_bindings(tools: list[ToolSpec], allowed: list[ToolSpec]) -> list[ToolSpec]:
    """Return the allowed tools and every denied tool whose identifier is still free.

    A denied tool keeps a binding so that calling it is a PermissionDeniedError, not
    "not a function". One whose name maps to the identifier of an allowed tool, or
    of a denied tool before it, is left out, so that a name clash can be fixed by
    denying one of the two tools.

    NOTE: the bindings let code list denied tool names with `Object.keys`.
    """
    allowed_ids = {id(tool) for tool in allowed}
    claimed = {_api_key(tool) for tool in allowed}
    bound = []
    for tool in tools:
        if id(tool) not in allowed_ids:
            key = _api_key(tool)
            if key in claimed:
                continue
            claimed.add(key)
        bound.append(tool)
    return bound


def _build_catalog(
    api: Api, policies: Mapping[str, ServerPolicy], sources: Mapping[str, ToolSource]
) -> ToolCatalog:
    callable_tools = {
        key: spec
        for key, spec in api.bindings.items()
        if check_tool(spec, policies[spec.server]) is None
    }
    counts: dict[str, int] = {}
    for server_id, _ in callable_tools:
        counts[server_id] = counts.get(server_id, 0) + 1

    summaries = []
    for server_id, server_name in api.servers.items():
        if server_id in counts:
            title, description = _server_info(sources[server_name])
            summaries.append(ServerSummary(server_id, title, description, counts[server_id]))
    return ToolCatalog(callable_tools, summaries)


def _server_info(source: ToolSource) -> tuple[str | None, str | None]:
    """Return the title and description a server sent in its `initialize` result.

    Without a description, the first line of its `instructions` is used instead.
    """
    if not isinstance(source, McpConnection) or source._session is None:
        return None, None
    session = source._session
    info = session.server_info
    title = info.title if info is not None else None
    description = info.description if info is not None else None
    if description is None and session.instructions:
        description = session.instructions.strip().split("\n", 1)[0][:200] or None
    return title, description


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    inner = group.exceptions[0]
    return _first_leaf(inner) if isinstance(inner, BaseExceptionGroup) else inner


def _audit_records(
    result: ExecutionResult, code: str, started_at: datetime.datetime, limits: Limits
) -> list[dict[str, Any]]:
    """Return one record per call, then the execution record (see `_audit` for the format)."""
    data = result.to_dict()
    records: list[dict[str, Any]] = [
        {"type": "call", "executionId": result.execution_id, "index": index, **call}
        for index, call in enumerate(data["calls"])
    ]
    execution = {
        "type": "execution",
        "executionId": result.execution_id,
        "startedAt": started_at.isoformat(),
        "code": code,
        "ok": result.ok,
        "result": data["result"],
        "error": data["error"],
        "calls": data["calls"],
        "logs": data["logs"],
        "logsDropped": result.logs_dropped,
        "timings": {"durationMs": data["durationMs"]},
        "limits": {"timeoutS": limits.timeout, "memoryMb": limits.memory_mb},
    }
    if result.dry_run:
        execution["dryRun"] = True
    records.append(execution)
    return records
