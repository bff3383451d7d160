"""Capture the tool lists of real MCP servers into tests/data/tool_lists/.

Run from the repository root with the dev virtualenv, after installing the npm
servers the tests use (`npm ci --prefix tests/node`) and the extra npm servers
that only this script starts (`npm ci --prefix scripts/capture`). The extra
PyPI servers need virtualenvs of their own: mcp-server-fetch needs
`mcp>=2.3`, while mcp-server-sqlite 2025.4.25 and mcp-server-sentry 2025.1.14
import names that `mcp` 2 removed and need `mcp<2`. So run the script once with
each virtualenv's `bin` first on PATH::

    PATH="$FETCH_VENV/bin:$PATH" .venv/bin/python scripts/capture_tool_lists.py
    PATH="$OLD_MCP_VENV/bin:$PATH" CAPTURE_REDIS_URL=redis://127.0.0.1:6399 \
        .venv/bin/python scripts/capture_tool_lists.py

Each server is started over stdio and its `tools/list` is read page by page.
Every file is written as `{"tools": [...]}` in MCP wire form (camelCase keys
such as `inputSchema`), so the tests load exactly what a server sends.

Servers that need credentials get dummy ones: listing tools sends nothing
upstream. A server that cannot start or list its tools within the time limit
(for example one that must reach a database first) is skipped with the reason,
and its earlier file, if any, is kept.
"""

from __future__ import annotations

import json
import os
import shutil
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
CAPTURE_NODE_BIN = ROOT / "scripts" / "capture" / "node_modules" / ".bin"
OUT_DIR = ROOT / "tests" / "data" / "tool_lists"

# A server that keeps returning cursors has a bug, so the capture stops instead
# of looping forever.
MAX_PAGES = 100
# Seconds one server may take to start and list its tools.
TIMEOUT = 60

# Placeholder credentials: listing tools never sends them anywhere, and a few
# servers refuse to start without them.
DUMMY = "capture-placeholder-not-a-secret"
# A loopback address where nothing listens, for servers that take a database URL.
NOWHERE = "127.0.0.1:9"


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


def python_server(command: str) -> str:
    """Find a PyPI server on PATH, else beside the running interpreter."""
    return shutil.which(command) or str(VENV_BIN / command)


def servers(scratch: Path) -> dict[str, StdioServerParameters]:
    """Return the servers to capture, by the name their file gets."""
    repository = scratch / "repo"
    make_git_repository(repository)
    files = scratch / "files"
    files.mkdir()

    def npm(
        directory: Path, name: str, *args: str, env: dict[str, str] | None = None
    ) -> StdioServerParameters:
        return StdioServerParameters(command=str(directory / name), args=list(args), env=env)

    return {
        "time": StdioServerParameters(command=python_server("mcp-server-time")),
        "git": StdioServerParameters(
            command=python_server("mcp-server-git"), args=["--repository", str(repository)]
        ),
        "fetch": StdioServerParameters(command=python_server("mcp-server-fetch")),
        "sqlite": StdioServerParameters(
            command=python_server("mcp-server-sqlite"),
            args=["--db-path", str(scratch / "capture.db")],
        ),
        "sentry": StdioServerParameters(
            command=python_server("mcp-server-sentry"), args=["--auth-token", DUMMY]
        ),
        "everything": npm(NODE_BIN, "mcp-server-everything"),
        "filesystem": npm(NODE_BIN, "mcp-server-filesystem", str(files)),
        "memory": npm(
            NODE_BIN,
            "mcp-server-memory",
            env={"MEMORY_FILE_PATH": str(scratch / "memory.jsonl")},
        ),
        "github": npm(
            CAPTURE_NODE_BIN,
            "mcp-server-github",
            env={"GITHUB_PERSONAL_ACCESS_TOKEN": DUMMY},
        ),
        "gitlab": npm(
            CAPTURE_NODE_BIN,
            "mcp-server-gitlab",
            env={"GITLAB_PERSONAL_ACCESS_TOKEN": DUMMY, "GITLAB_API_URL": f"http://{NOWHERE}"},
        ),
        "postgres": npm(CAPTURE_NODE_BIN, "mcp-server-postgres", f"postgresql://{NOWHERE}/capture"),
        # The redis server connects before it lists tools, so it is captured
        # only when CAPTURE_REDIS_URL names a running Redis (a local one will do).
        "redis": npm(
            CAPTURE_NODE_BIN,
            "mcp-server-redis",
            os.environ.get("CAPTURE_REDIS_URL", f"redis://{NOWHERE}"),
        ),
        "sequential-thinking": npm(CAPTURE_NODE_BIN, "mcp-server-sequential-thinking"),
        "brave-search": npm(
            CAPTURE_NODE_BIN, "mcp-server-brave-search", env={"BRAVE_API_KEY": DUMMY}
        ),
        "slack": npm(
            CAPTURE_NODE_BIN,
            "mcp-server-slack",
            env={"SLACK_BOT_TOKEN": DUMMY, "SLACK_TEAM_ID": "T00000000"},
        ),
        "google-maps": npm(
            CAPTURE_NODE_BIN, "mcp-server-google-maps", env={"GOOGLE_MAPS_API_KEY": DUMMY}
        ),
    }


async def capture(name: str, params: StdioServerParameters) -> None:
    out = OUT_DIR / f"{name}.json"
    try:
        with anyio.fail_after(TIMEOUT):
            tools = await list_all_tools(params)
    except Exception as error:  # any failure of one server skips only that server
        print(f"{name}: skipped, {type(error).__name__}: {error}", file=sys.stderr)
        return

    out.write_text(json.dumps({"tools": tools}, indent=2, ensure_ascii=False) + "\n")
    print(f"{name}: {len(tools)} tools -> {out.relative_to(ROOT)}")


async def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name, params in servers(Path(scratch)).items():
            await capture(name, params)


if __name__ == "__main__":
    anyio.run(main)
