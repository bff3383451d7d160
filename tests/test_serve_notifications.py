"""`isobind serve` log levels, resource subscriptions, completions and audit of cancelled runs.

Each test starts its own `isobind serve` subprocess, over stdio or streamable
HTTP, with the real upstream servers of `serve_config` and the leaky server,
and drives it with the official MCP client.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated

from .conftest import LEAKY_TOKEN, TESTS, write_config
from .serving import (
    http_server,
    http_session,
    serve_command,
    serve_config,
    stdio_session,
    wait_for_file,
)

pytestmark = pytest.mark.anyio

TRANSPORTS = [pytest.param("stdio", id="stdio"), pytest.param("http", id="http")]
API = "isobind://api.d.ts"
TEMPLATE = "isobind://api/{server}.d.ts"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("control-state")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, state_dir: Path) -> Path:
    data = serve_config(state_dir, timeout=20)
    data["mcpServers"]["leaky"] = {
        "command": sys.executable,
        "args": [str(TESTS / "servers" / "leaky.py")],
        "env": {"LEAKY_TOKEN": LEAKY_TOKEN},
    }
    return write_config(tmp_path_factory.mktemp("serve"), data)


class Inbox:
    """Collects the notifications a client session receives, and waits for them."""

    def __init__(self) -> None:
        self.updated: list[str] = []
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self._arrived = anyio.Event()

    async def on_message(self, message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.updated.append(str(message.params.uri))
            self._wake()

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)
        self._wake()

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = anyio.Event()

    async def wait_for(self, found: Callable[[], bool], limit: float = 30) -> None:
        with anyio.fail_after(limit):
            while not found():
                await self._arrived.wait()

    def log_texts(self) -> list[str]:
        return [str(params.data) for params in self.logs]


@contextlib.asynccontextmanager
async def open_session(
    transport: str, config: Path, *extra: str, inbox: Inbox | None = None
) -> AsyncIterator[ClientSession]:
    options: dict[str, Any] = {}
    if inbox is not None:
        options = {"message_handler": inbox.on_message, "logging_callback": inbox.on_log}
    if transport == "stdio":
        async with stdio_session(config, *extra, **options) as session:
            yield session
        return
    with http_server(config, *extra) as server:
        async with http_session(server.url, **options) as session:
            yield session


# These requests exist only up to protocol 2025-11-25, so the SDK's helpers for
# them warn; the requests are sent as they are instead.
async def set_level(session: ClientSession, level: types.LoggingLevel) -> None:
    request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=level))
    await session.send_request(request, types.EmptyResult)


async def subscribe(session: ClientSession, uri: str) -> None:
    request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
    await session.send_request(request, types.EmptyResult)


async def unsubscribe(session: ClientSession, uri: str) -> None:
    request = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
    await session.send_request(request, types.EmptyResult)


async def run_code(session: ClientSession, code: str) -> types.CallToolResult:
    with anyio.fail_after(60):
        return await session.call_tool("run_code", {"code": code})


def label() -> str:
    return uuid.uuid4().hex[:12]


def text_of(read: types.ReadResourceResult) -> str:
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    return content.text


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_capabilities_advertised(transport: str, config: Path) -> None:
    async with open_session(transport, config) as session:
        initialized = session.initialize_result
        assert initialized is not None
        capabilities = initialized.capabilities

    assert capabilities.logging is not None
    assert capabilities.completions is not None
    assert capabilities.resources is not None
    assert capabilities.resources.subscribe is True
    assert not capabilities.resources.list_changed
    assert capabilities.tools is not None
    assert not capabilities.tools.list_changed
    assert capabilities.prompts is not None
    assert not capabilities.prompts.list_changed


async def test_completions_and_server_template(config: Path) -> None:
    template = types.ResourceTemplateReference(uri=TEMPLATE)
    prompt = types.PromptReference(name="code_mode")
    async with open_session("stdio", config) as session:
        servers = await session.complete(template, {"name": "server", "value": "fo"})
        all_servers = await session.complete(template, {"name": "server", "value": ""})
        task = await session.complete(
            prompt, {"name": "task", "value": "weather via tools.forecast.get_f"}
        )
        short = await session.complete(prompt, {"name": "task", "value": "time.get_cur"})
        free_text = await session.complete(prompt, {"name": "task", "value": "weather in "})
        with pytest.raises(MCPError, match="code_mode"):
            await session.complete(
                types.PromptReference(name="test_prompt_with_arguments"),
                {"name": "arg1", "value": "x"},
            )
        templates = await session.list_resource_templates()
        one_server = text_of(await session.read_resource("isobind://api/forecast.d.ts"))
        with pytest.raises(MCPError, match="no server 'nowhere'"):
            await session.read_resource("isobind://api/nowhere.d.ts")

    assert servers.completion.values == ["forecast"]
    assert set(all_servers.completion.values) == {"time", "forecast", "control", "leaky"}
    assert task.completion.values == ["weather via tools.forecast.get_forecast"]
    assert short.completion.values == ["tools.time.get_current_time"]
    assert free_text.completion.values == []
    assert [str(item.uri_template) for item in templates.resource_templates] == [TEMPLATE]
    assert "function get_forecast(" in one_server
    assert "function get_current_time(" not in one_server


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_subscribers_told_of_api_changes(transport: str, config: Path) -> None:
    inbox = Inbox()
    control = "isobind://api/control.d.ts"
    time_api = "isobind://api/time.d.ts"
    async with open_session(transport, config, inbox=inbox) as session:
        with pytest.raises(MCPError, match="no such resource"):
            await subscribe(session, "test://watched-resource")
        # Subscribed first, so an update for it would arrive before the others.
        await subscribe(session, time_api)
        await subscribe(session, API)
        await subscribe(session, control)

        await run_code(session, f"return await tools.control.add_tool({{name: 'a_{label()}'}});")
        await inbox.wait_for(lambda: control in inbox.updated)
        assert inbox.updated == [API, control]

        await unsubscribe(session, API)
        await run_code(session, f"return await tools.control.add_tool({{name: 'b_{label()}'}});")
        await inbox.wait_for(lambda: inbox.updated.count(control) == 2)

    assert inbox.updated == [API, control, control]


async def test_listeners_told_of_api_changes(config: Path) -> None:
    """A client on protocol 2026-07-28 hears of API changes on a `subscriptions/listen` stream."""
    command = serve_command(config)
    params = StdioServerParameters(command=command[0], args=command[1:])
    control = "isobind://api/control.d.ts"
    updated: list[str] = []
    async with Client(params) as client:
        assert client.protocol_version == "2026-07-28"
        async with client.listen(resource_subscriptions=[API, control]) as subscription:
            tool = f"d_{label()}"
            added = await client.call_tool(
                "run_code", {"code": f"return await tools.control.add_tool({{name: '{tool}'}});"}
            )
            assert added.is_error is False
            with anyio.fail_after(30):
                async for event in subscription:
                    assert isinstance(event, ResourceUpdated)
                    updated.append(event.uri)
                    if {API, control} <= set(updated):
                        break

    assert sorted(updated) == [API, control]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_log_messages_filtered_and_scrubbed(
    transport: str, config: Path, state_dir: Path
) -> None:
    inbox = Inbox()
    leak = "return await tools.leaky.log_token({});"
    async with open_session(transport, config, inbox=inbox) as session:
        # At the default level, warning, a restart is reported and stderr is not.
        await run_code(session, leak)
        pid = await run_code(session, "return (await tools.control.pid()).result;")
        assert pid.structured_content is not None
        os.kill(pid.structured_content["result"], signal.SIGKILL)
        await inbox.wait_for(lambda: any("restarting in" in text for text in inbox.log_texts()))
        assert {params.level for params in inbox.logs} == {"warning"}
        assert all(params.logger == "isobind.upstream" for params in inbox.logs)

        await set_level(session, "debug")
        await run_code(session, leak)
        await inbox.wait_for(
            lambda: (
                any("using token" in text for text in inbox.log_texts())
                and any("authenticating with" in text for text in inbox.log_texts())
            )
        )
        await run_code(session, f"return await tools.control.add_tool({{name: 'c_{label()}'}});")
        await inbox.wait_for(lambda: any("API ready" in text for text in inbox.log_texts()))

    texts = inbox.log_texts()
    stderr_line = next(text for text in texts if "using token" in text)
    assert "[REDACTED]" in stderr_line
    for text in texts:
        assert LEAKY_TOKEN not in text
    api_levels = {params.level for params in inbox.logs if params.logger == "isobind.api"}
    assert "info" in api_levels


async def test_log_flood_rate_limited(config: Path) -> None:
    inbox = Inbox()
    marker = f"flood-{label()}"
    lines = 400

    def received() -> list[str]:
        return [text for text in inbox.log_texts() if marker in text]

    async with open_session("stdio", config, inbox=inbox) as session:
        await set_level(session, "debug")
        written = await run_code(
            session,
            f"return await tools.control.write_stderr({{lines: {lines}, text: '{marker}'}});",
        )
        assert written.is_error is False
        await inbox.wait_for(
            lambda: any("log messages: isobind sends" in text for text in inbox.log_texts())
        )

    reports = [text for text in inbox.log_texts() if "log messages: isobind sends" in text]
    dropped = sum(int(text.split()[1]) for text in reports)
    # 50 at once, then 10 a second: the flood takes well under a second to
    # write, so at most a few more than 50 lines get through.
    assert 50 <= len(received()) < 100
    assert dropped > 0
    assert len(received()) + dropped >= lines


def audit_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line]


async def wait_for_cancelled_record(path: Path, name: str) -> dict[str, Any]:
    """Wait at most 30 s for the audit record of the cancelled run whose code names `name`.

    Another process writes the file, so the wait polls it every 50 ms.
    """
    with anyio.fail_after(30):
        while True:
            for record in audit_records(path):
                if record["type"] == "execution" and name in record["code"]:
                    return record
            await anyio.sleep(0.05)


def hang_code(name: str) -> str:
    return (
        f"await tools.control.echo({{text: 'before {name}'}});\n"
        f"await tools.control.hang({{label: '{name}'}});"
    )


def check_cancelled_record(record: dict[str, Any], audit: Path) -> None:
    assert record["cancelled"] is True
    assert record["ok"] is False
    assert record["error"]["name"] == "Cancelled"
    calls = [(call["tool"], call["ok"]) for call in record["calls"]]
    assert calls == [("echo", True), ("hang", False)]
    assert record["calls"][1]["error"]["name"] == "CallCancelled"
    call_records = [
        item
        for item in audit_records(audit)
        if item["type"] == "call" and item["executionId"] == record["executionId"]
    ]
    assert len(call_records) == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelled_run_audited(
    transport: str, config: Path, state_dir: Path, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    name = label()

    async def start_run(session: ClientSession) -> None:
        await run_code(session, hang_code(name))

    async with open_session(transport, config, "--audit", str(audit)) as session:
        async with anyio.create_task_group() as group:
            group.start_soon(start_run, session)
            await wait_for_file(state_dir / f"{name}.started")
            # Cancelling the request makes the client send notifications/cancelled.
            group.cancel_scope.cancel()
        record = await wait_for_cancelled_record(audit, name)
        after = await run_code(session, "return 1 + 1;")

    check_cancelled_record(record, audit)
    assert after.structured_content is not None
    assert after.structured_content["result"] == 2


async def run_until_closed(session: ClientSession, code: str) -> None:
    # The session closes under the pending request, which then fails.
    with contextlib.suppress(Exception):
        await run_code(session, code)


async def test_stdio_disconnect_audited(config: Path, state_dir: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    name = label()
    async with (
        anyio.create_task_group() as group,
        stdio_session(config, "--audit", str(audit)) as session,
    ):
        group.start_soon(run_until_closed, session, hang_code(name))
        await wait_for_file(state_dir / f"{name}.started")

    check_cancelled_record(await wait_for_cancelled_record(audit, name), audit)


async def test_http_disconnect_audited(config: Path, state_dir: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    name = label()
    with http_server(config, "--audit", str(audit)) as server:
        async with anyio.create_task_group() as group, http_session(server.url) as session:
            group.start_soon(run_until_closed, session, hang_code(name))
            await wait_for_file(state_dir / f"{name}.started")
        record = await wait_for_cancelled_record(audit, name)

    check_cancelled_record(record, audit)
