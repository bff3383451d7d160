"""Upstream servers that exit or change their tools, seen from a `Toolbox` in this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from isobind import Toolbox, _upstream, load_config

from .conftest import EXAMPLES, write_config
from .serving import serve_config

pytestmark = pytest.mark.anyio


@pytest.fixture
async def toolbox(tmp_path: Path) -> AsyncIterator[Toolbox]:
    config = write_config(tmp_path, serve_config(tmp_path))
    async with Toolbox(load_config(config)) as opened:
        yield opened


def api_rebuilt(toolbox: Toolbox) -> anyio.Event:
    """An event set the next time the toolbox rebuilds its API."""
    event = anyio.Event()
    toolbox.add_api_listener(event.set)
    return event


async def control_pid(toolbox: Toolbox) -> int:
    result = await toolbox.execute("return (await tools.control.pid()).result;")
    assert result.ok, result.error
    return int(result.result)


async def test_calls_fail_cleanly_while_restarting(
    toolbox: Toolbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A restart delay far longer than the test keeps the server down.
    monkeypatch.setattr(_upstream, "_RESTART_DELAY", 600.0)
    connection = toolbox._connections["control"]
    os.kill(await control_pid(toolbox), signal.SIGKILL)

    # Nothing signals the end of a session, so the wait polls.
    with anyio.fail_after(20):
        while connection.connected:  # noqa: ASYNC110
            await anyio.sleep(0.02)
    result = await toolbox.execute(
        "try { await tools.control.pid(); } catch (error) { return [error.name, error.message]; }"
    )

    name, message = result.result
    assert name == "ToolError"
    assert "MCP server 'control'" in message
    assert "being restarted" in message
    other = await toolbox.execute("return (await tools.control.echo({text: 'x'})).result;")
    assert other.error is not None
    assert other.error.name == "ToolError"


async def test_restart_reaches_new_process(toolbox: Toolbox) -> None:
    connection = toolbox._connections["control"]
    old_pid = await control_pid(toolbox)
    rebuilt = api_rebuilt(toolbox)
    os.kill(old_pid, signal.SIGKILL)

    # A restarted server is listed again, which rebuilds the API.
    with anyio.fail_after(30):
        await rebuilt.wait()

    assert connection.restarts == 1
    assert connection.connected
    assert await control_pid(toolbox) != old_pid
    time_result = await toolbox.execute(
        "return (await tools.time.get_current_time({timezone: 'Etc/UTC'})).timezone;"
    )
    assert time_result.result == "Etc/UTC"


async def test_tool_list_change_rebuilds_declaration(toolbox: Toolbox) -> None:
    rebuilt = api_rebuilt(toolbox)
    added = await toolbox.execute("return await tools.control.add_tool({name: 'fresh_tool'});")
    assert added.ok, added.error

    with anyio.fail_after(20):
        await rebuilt.wait()

    assert "function fresh_tool(" in toolbox.declaration
    called = await toolbox.execute("return (await tools.control.fresh_tool({})).result;")
    assert called.result == "fresh_tool"


class ForecastOverHttp:
    """examples/servers/forecast_http.py in a subprocess, restartable on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLES / "servers" / "forecast_http.py"),
                "--port",
                str(self.port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        url = line.removeprefix("listening on ").strip()
        self.port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        return url

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=20)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None


async def test_http_upstream_reconnects(tmp_path: Path) -> None:
    upstream = ForecastOverHttp()
    url = upstream.start()
    config = write_config(tmp_path, {"mcpServers": {"forecast": {"type": "http", "url": url}}})
    code = "return (await tools.forecast.list_cities({})).result.length;"
    try:
        async with Toolbox(load_config(config)) as toolbox:
            assert (await toolbox.execute(code)).result == 5

            upstream.kill()
            down = await toolbox.execute(code)
            assert down.error is not None
            assert down.error.name == "ToolError"

            rebuilt = api_rebuilt(toolbox)
            upstream.start()
            with anyio.fail_after(30):
                await rebuilt.wait()
            assert (await toolbox.execute(code)).result == 5
    finally:
        upstream.kill()
