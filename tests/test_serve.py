"""`isobind serve` driven by the official MCP client over stdio and streamable HTTP.

Each server is a real `isobind serve` subprocess with real upstream servers:
mcp-server-time, the example forecast server and tests/servers/control.py.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession

from .conftest import write_config
from .serving import (
    TOKEN,
    HttpServer,
    http_server,
    http_session,
    serve_config,
    stdio_session,
    wait_for_file,
)

pytestmark = pytest.mark.anyio

TWO_SERVERS_CODE = """\
const now = await tools.time.get_current_time({timezone: "Asia/Tokyo"});
const days = await tools.forecast.get_forecast({city: "Oslo", days: 2});
console.log("fetched", days.result.length, "days");
return {timezone: now.timezone, cities: days.result.map((day: {city: string}) => day.city)};
"""


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("control-state")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, state_dir: Path) -> Path:
    return write_config(tmp_path_factory.mktemp("serve"), serve_config(state_dir))


@pytest.fixture(scope="module")
def http(config: Path) -> Iterator[HttpServer]:
    with http_server(config) as server:
        yield server


@pytest.fixture(scope="module", params=["stdio", "http"])
async def session(request: pytest.FixtureRequest, config: Path) -> AsyncIterator[ClientSession]:
    """One client session per transport, shared by the tests of this module."""
    if request.param == "stdio":
        async with stdio_session(config) as opened:
            yield opened
    else:
        server: HttpServer = request.getfixturevalue("http")
        async with http_session(server.url) as opened:
            yield opened


async def run_code(session: ClientSession, code: str, **options: Any) -> types.CallToolResult:
    with anyio.fail_after(60):
        return await session.call_tool("run_code", {"code": code}, **options)


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def label() -> str:
    return uuid.uuid4().hex[:12]


async def test_lists_code_tools(session: ClientSession) -> None:
    listed = await session.list_tools()
    names = {tool.name for tool in listed.tools}
    assert names == {"run_code", "list_servers", "search_tools", "describe_tools"}
    run_tool = next(tool for tool in listed.tools if tool.name == "run_code")
    assert run_tool.output_schema is not None
    assert "tools.<server>.<tool>" in (run_tool.description or "")


async def test_upstream_tools_not_listed(session: ClientSession) -> None:
    listed = await session.list_tools()
    names = {tool.name for tool in listed.tools}
    assert "get_current_time" not in names
    assert "get-forecast" not in names


async def test_api_resource_has_declarations(session: ClientSession) -> None:
    listed = await session.list_resources()
    uris = [str(resource.uri) for resource in listed.resources]
    assert uris == ["isobind://api.d.ts"]

    read = await session.read_resource("isobind://api.d.ts")
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert "declare namespace tools.time" in content.text
    assert "function get_forecast(" in content.text
    assert "function hang(" in content.text


async def test_prompt_names_servers(session: ClientSession) -> None:
    prompt = await session.get_prompt("code_mode", {"task": "Weather in Oslo"})
    message = prompt.messages[0].content
    assert isinstance(message, types.TextContent)
    assert "`tools.time`" in message.text
    assert "`tools.forecast`" in message.text
    assert message.text.endswith("Task: Weather in Oslo")


async def test_run_calls_two_servers(session: ClientSession) -> None:
    result = await run_code(session, TWO_SERVERS_CODE)

    assert result.is_error is False
    structured = result.structured_content
    assert structured is not None
    assert structured["ok"] is True
    assert structured["result"] == {"timezone": "Asia/Tokyo", "cities": ["Oslo", "Oslo"]}
    assert structured["logs"] == [{"level": "log", "message": "fetched 2 days"}]
    assert [call["tool"] for call in structured["calls"]] == [
        "time.get_current_time",
        "forecast.get-forecast",
    ]
    text = text_of(result)
    assert text.startswith('{"timezone": "Asia/Tokyo", "cities": ["Oslo", "Oslo"]}')
    assert "[log] fetched 2 days" in text


async def test_run_error_names_line(session: ClientSession) -> None:
    code = "const city = 42;\nconst loud = (city as any).toUpperCase();\nreturn loud;"
    result = await run_code(session, code)

    assert result.is_error is True
    structured = result.structured_content
    assert structured is not None
    assert structured["ok"] is False
    assert structured["error"]["name"] == "TypeError"
    assert structured["error"]["line"] == 2
    text = text_of(result)
    assert text.startswith("TypeError at line 2, column ")
    assert "2 | const loud = (city as any).toUpperCase();" in text


async def test_tool_error_reaches_code(session: ClientSession) -> None:
    code = """\
try {
  await tools.forecast.get_forecast({city: "Oslo", days: 99});
} catch (error) {
  return {name: error.name, message: error.message};
}"""
    result = await run_code(session, code)

    structured = result.structured_content
    assert structured is not None
    assert structured["result"]["name"] == "ToolError"
    assert "between 1 and 7" in structured["result"]["message"]


async def test_syntax_error_reports_location(session: ClientSession) -> None:
    result = await run_code(session, "const x = ;")

    structured = result.structured_content
    assert structured is not None
    assert structured["error"]["name"] == "SyntaxError"
    assert structured["error"]["line"] == 1


async def test_list_servers_names_each(session: ClientSession) -> None:
    result = await session.call_tool("list_servers", {})
    text = text_of(result)
    for server in ("time", "forecast", "control"):
        assert server in text


async def test_search_finds_forecast(session: ClientSession) -> None:
    result = await session.call_tool(
        "search_tools", {"query": "weather forecast for a city", "detail": "names", "limit": 3}
    )

    assert result.is_error is False
    assert "tools.forecast.get_forecast" in text_of(result).splitlines()[:3]


async def test_search_declarations_detail(session: ClientSession) -> None:
    result = await session.call_tool(
        "search_tools", {"query": "current time timezone", "detail": "declarations", "limit": 1}
    )

    assert "function get_current_time(" in text_of(result)


async def test_describe_returns_declaration(session: ClientSession) -> None:
    result = await session.call_tool("describe_tools", {"names": ["forecast.get_forecast"]})

    text = text_of(result)
    assert result.is_error is False
    assert "function get_forecast(" in text
    assert "function get_current_time(" not in text


async def test_describe_unknown_tool_is_error(session: ClientSession) -> None:
    result = await session.call_tool("describe_tools", {"names": ["forecast.get_weather"]})

    assert result.is_error is True
    assert "forecast.get_weather" in text_of(result)


async def test_progress_reported_per_call(session: ClientSession) -> None:
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))

    code = "for (const t of ['a', 'b', 'c']) await tools.control.echo({text: t});\nreturn 3;"
    result = await run_code(session, code, progress_callback=on_progress)

    assert result.is_error is False
    assert len(updates) >= 3
    progresses = [progress for progress, _ in updates]
    assert progresses == sorted(progresses)
    assert len(set(progresses)) == len(progresses)
    assert any(message and message.startswith("3 tool calls done") for _, message in updates)


async def test_concurrent_runs_do_not_mix(session: ClientSession) -> None:
    results: dict[int, Any] = {}

    async def run_one(number: int) -> None:
        code = (
            f"const {{result: echoed}} = await tools.control.echo({{text: 'run-{number}'}});\n"
            f"globalThis.mine = {number};\n"
            "return {echoed, mine: globalThis.mine};"
        )
        result = await run_code(session, code)
        results[number] = result.structured_content

    async with anyio.create_task_group() as group:
        for number in range(8):
            group.start_soon(run_one, number)

    for number in range(8):
        assert results[number]["result"] == {"echoed": f"run-{number}", "mine": number}


async def test_hanging_upstream_hits_time_limit(session: ClientSession, state_dir: Path) -> None:
    name = label()
    result = await run_code(session, f"return await tools.control.hang({{label: '{name}'}});")

    structured = result.structured_content
    assert structured is not None
    assert structured["error"]["name"] == "TimeLimitExceeded"
    await wait_for_file(state_dir / f"{name}.cancelled")


async def test_client_cancel_stops_run(session: ClientSession, state_dir: Path) -> None:
    name = label()

    async def start_run() -> None:
        await run_code(session, f"await tools.control.hang({{label: '{name}'}});")

    async with anyio.create_task_group() as group:
        group.start_soon(start_run)
        await wait_for_file(state_dir / f"{name}.started")
        group.cancel_scope.cancel()

    await wait_for_file(state_dir / f"{name}.cancelled")
    after = await run_code(session, "return 1 + 1;")
    assert after.structured_content is not None
    assert after.structured_content["result"] == 2


async def test_tool_list_change_rebuilds_api(session: ClientSession) -> None:
    tool = f"added_{label()}"
    added = await run_code(session, f"return await tools.control.add_tool({{name: '{tool}'}});")
    assert added.is_error is False

    with anyio.fail_after(20):
        while True:
            read = await session.read_resource("isobind://api.d.ts")
            content = read.contents[0]
            assert isinstance(content, types.TextResourceContents)
            if f"function {tool}(" in content.text:
                break
            await anyio.sleep(0.05)

    result = await run_code(session, f"return (await tools.control.{tool}({{}})).result;")
    assert result.structured_content is not None
    assert result.structured_content["result"] == tool


async def test_killed_upstream_restarts(config: Path, state_dir: Path) -> None:
    name = label()
    code = f"""\
try {{
  await tools.control.hang({{label: '{name}'}});
}} catch (error) {{
  return {{name: error.name, message: error.message}};
}}"""
    async with stdio_session(config) as session:
        outcome: dict[str, Any] = {}

        async def start_run() -> None:
            outcome["result"] = await run_code(session, code)

        async with anyio.create_task_group() as group:
            group.start_soon(start_run)
            old_pid = int(await wait_for_file(state_dir / f"{name}.started"))
            os.kill(old_pid, signal.SIGKILL)

        result = outcome["result"].structured_content
        assert result["result"]["name"] == "ToolError"
        assert "tools.control.hang" in result["result"]["message"]

        # Runs after the kill fail cleanly while the server restarts, then
        # reach the new process.
        failures: list[str] = []
        with anyio.fail_after(30):
            while True:
                probe = await run_code(session, "return (await tools.control.pid()).result;")
                structured = probe.structured_content
                assert structured is not None
                if structured["ok"]:
                    break
                failures.append(structured["error"]["message"])
                await anyio.sleep(0.1)

    assert structured["result"] != old_pid
    for message in failures:
        assert "MCP server 'control'" in message


async def test_stdio_disconnect_cancels_run(config: Path, state_dir: Path) -> None:
    name = label()

    async def start_run(session: ClientSession) -> None:
        await run_code(session, f"await tools.control.hang({{label: '{name}'}});")

    async with stdio_session(config) as session, anyio.create_task_group() as group:
        group.start_soon(start_run, session)
        await wait_for_file(state_dir / f"{name}.started")
        group.cancel_scope.cancel()

    await wait_for_file(state_dir / f"{name}.cancelled")


async def test_max_runs_queues_later_runs(config: Path, state_dir: Path) -> None:
    first, second = label(), label()
    scopes = {first: anyio.CancelScope(), second: anyio.CancelScope()}

    async def hang(session: ClientSession, name: str) -> None:
        with scopes[name]:
            await run_code(session, f"await tools.control.hang({{label: '{name}'}});")

    async with (
        stdio_session(config, "--max-runs", "1") as session,
        anyio.create_task_group() as group,
    ):
        group.start_soon(hang, session, first)
        await wait_for_file(state_dir / f"{first}.started")
        group.start_soon(hang, session, second)
        # The server reads requests in order, so once this later request is
        # answered the second run has been taken up and is waiting.
        await session.call_tool("list_servers", {})
        assert not (state_dir / f"{second}.started").exists()

        scopes[first].cancel()
        await wait_for_file(state_dir / f"{second}.started")
        scopes[second].cancel()


async def test_http_disconnect_cancels_run(http: HttpServer, state_dir: Path) -> None:
    name = label()

    async def start_run(session: ClientSession) -> None:
        await run_code(session, f"await tools.control.hang({{label: '{name}'}});")

    async with http_session(http.url) as session, anyio.create_task_group() as group:
        group.start_soon(start_run, session)
        await wait_for_file(state_dir / f"{name}.started")
        group.cancel_scope.cancel()

    await wait_for_file(state_dir / f"{name}.cancelled")


async def test_http_clients_share_upstreams(http: HttpServer) -> None:
    pids: list[int] = []
    for _ in range(2):
        async with http_session(http.url) as session:
            result = await run_code(session, "return (await tools.control.pid()).result;")
            assert result.structured_content is not None
            pids.append(result.structured_content["result"])
    assert pids[0] == pids[1]


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_http_bearer_scheme_any_case(http: HttpServer, scheme: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as client:
        response = await client.post(
            http.url,
            content=json.dumps(INITIALIZE),
            headers={
                "Authorization": f"{scheme} {TOKEN}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="missing"),
        pytest.param("wrong-token", id="wrong"),
        pytest.param(f"{TOKEN}x", id="longer"),
    ],
)
async def test_http_rejects_bad_token(http: HttpServer, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    async with httpx2.AsyncClient(timeout=30) as client:
        response = await client.post(
            http.url,
            content=json.dumps(request),
            headers={
                **headers,
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
