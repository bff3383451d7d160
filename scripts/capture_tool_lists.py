"""Capture the tool lists of real MCP servers into tests/data/tool_lists/.

Run from the repository root with the dev virtualenv after installing the npm
servers under tests/node (`npm ci --prefix tests/node`)::

    .venv/bin/python scripts/capture_tool_lists.py

Each server is started over stdio and its `tools/list` is read page by page.
Every file is written as `{"tools": [...]}` in MCP wire form (camelCase keys
such as `inputSchema`), so the tests load exactly what a server sends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client, types

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NODE_BIN = ROOT / "tests" / "node" / "node_modules" / ".bin"
OUT_DIR = ROOT / "tests" / "data" / "tool_lists"

# A server that keeps returning cursors has a bug, so the capture stops instead
# of looping forever.
MAX_PAGES = 100


def make_git_repository(path: Path) -> None:
    """Create a git repository with one commit for mcp-server-git to open."""
    identity = ["-c", "user.name=capture", "-c", "user.email=capture@example.invalid"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README").write_text("capture\n")
    subprocess.run(["git", "-C", str(path), "add", "README"], check=True)
    subprocess.run(["git", "-C", str(path), *identity, "commit", "-q", "-m", "init"], check=True)


async def list_all_tools(params: StdioServerParameters) -> list[dict[str, Any]]:
    """Start one server and return every tool it lists, in wire form."""
    tools: list[dict[str, Any]] = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            tools.extend(
                tool.model_dump(by_alias=True, exclude_none=True, mode="json")
                for tool in page.tools
            )
            cursor = page.next_cursor
            if cursor is None:
                return tools

    raise RuntimeError(
        f"{params.command}: tools/list still returned a cursor after {MAX_PAGES} pages"
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repository = Path(scratch) / "repo"
        make_git_repository(repository)
        files = Path(scratch) / "files"
        files.mkdir()

        servers = {
            "time": StdioServerParameters(command=str(VENV_BIN / "mcp-server-time")),
            "git": StdioServerParameters(
                command=str(VENV_BIN / "mcp-server-git"),
                args=["--repository", str(repository)],
            ),
            "everything": StdioServerParameters(command=str(NODE_BIN / "mcp-server-everything")),
            "filesystem": StdioServerParameters(
                command=str(NODE_BIN / "mcp-server-filesystem"), args=[str(files)]
            ),
            "memory": StdioServerParameters(
                command=str(NODE_BIN / "mcp-server-memory"),
                env={"MEMORY_FILE_PATH": str(Path(scratch) / "memory.jsonl")},
            ),
        }

        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for name, params in servers.items():
            tools = await list_all_tools(params)
            out = OUT_DIR / f"{name}.json"
            out.write_text(json.dumps({"tools": tools}, indent=2, ensure_ascii=False) + "\n")
            print(f"{name}: {len(tools)} tools -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    anyio.run(main)
