"""`isobind serve` under attack over stdio with a real MCP client, and its options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from .conftest import write_config
from .serving import stdio_session

pytestmark = pytest.mark.anyio


async def run_code(session: ClientSession, code: str) -> str:
    """Return the text of a `run_code` reply, or the error that the client raised, as text."""
    try:
        with anyio.fail_after(30):
            reply = await session.call_tool("run_code", {"code": code})
    except MCPError as error:
        return f"MCPError: {error}"
    if reply.is_error:
        return f"isError: {reply.content[0]}"
    first = reply.content[0]
    return getattr(first, "text", repr(first))


async def test_cancel_at_start_keeps_server(tmp_path: Path) -> None:
    # The first request starts the worker pool. A client that cancels it
    # while the workers start must not end the runs of other requests, nor
    # the server.
    config = write_config(tmp_path, {"mcpServers": {}, "isobind": {"timeout": 5}})
    replies: dict[int, str] = {}

    async with stdio_session(config) as session:

        async def cancelled_request() -> None:
            with anyio.move_on_after(0.05):
                await session.call_tool("run_code", {"code": "return 1"})

        async def request(number: int) -> None:
            replies[number] = await run_code(session, f"return {number}")

        async with anyio.create_task_group() as group:
            group.start_soon(cancelled_request)
            for number in range(2, 6):
                group.start_soon(request, number)

        after = await run_code(session, "return 'after'")

    assert replies == {2: "2", 3: "3", 4: "4", 5: "5"}
    assert after == '"after"'


def test_serve_takes_timeout_option() -> None:
    # The README's Limits section states that `exec`, `serve` and `run` take
    # `--timeout` and `--memory-mb`.
    command = [sys.executable, "-m", "isobind", "serve", "--help"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    listed = {option: option in completed.stdout for option in ("--timeout", "--memory-mb")}

    assert completed.returncode == 0
    assert listed == {"--timeout": True, "--memory-mb": True}
