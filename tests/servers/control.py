"""An MCP server whose faults the serve tests trigger on purpose.

`hang` never returns and records, as files in $CONTROL_STATE_DIR, that it
started and that it was cancelled. `pid` lets a test kill this process.
`add_tool` adds a tool and sends `notifications/tools/list_changed`.
`write_stderr` writes many lines to stderr at once. `block` sleeps in a worker
thread, which a cancellation cannot stop, as a server stuck in a call does.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("control")


def _mark(name: str) -> None:
    state = os.environ.get("CONTROL_STATE_DIR")
    if state:
        # Write then rename, so that a test polling for the file never reads
        # it empty.
        target = Path(state) / name
        partial = target.with_name(f".{name}.partial")
        partial.write_text(str(os.getpid()), encoding="utf-8")
        os.replace(partial, target)


@server.tool()
def pid() -> int:
    """Return the process id of this server."""
    return os.getpid()


@server.tool()
def echo(text: str) -> str:
    """Return `text` unchanged."""
    return text


@server.tool()
async def hang(label: str) -> str:
    """Never return; mark `<label>.started`, and `<label>.cancelled` when cancelled."""
    _mark(f"{label}.started")
    try:
        await anyio.Event().wait()
    finally:
        _mark(f"{label}.cancelled")
    return "unreachable"


@server.tool()
def block(label: str, seconds: float) -> str:
    """Sleep `seconds` in a worker thread; mark `<label>.started` first."""
    _mark(f"{label}.started")
    time.sleep(seconds)
    return "slept"


@server.tool()
def write_stderr(lines: int, text: str) -> int:
    """Write `lines` numbered lines of `text` to stderr; return how many were written."""
    for number in range(lines):
        print(f"{text} {number}", file=sys.stderr)
    sys.stderr.flush()
    return lines


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Add a tool called `name` that returns its own name, and announce the new tool list."""

    def added() -> str:
        return name

    server.add_tool(added, name=name, description=f"Added at run time as {name}.")
    await ctx.request_context.session.send_tool_list_changed()
    return f"added {name}"


if __name__ == "__main__":
    server.run()
