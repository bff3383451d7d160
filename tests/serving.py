"""Helpers that start `isobind serve` as a real subprocess and connect real MCP clients to it."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from .conftest import EXAMPLES, TESTS

TOKEN_VARIABLE = "ISOBIND_TEST_TOKEN"
TOKEN = "test-bearer-4b9d2e7a1c"


def serve_config(state_dir: Path | None, *, timeout: float = 3) -> dict[str, Any]:
    """A config with two example servers, and the fault-injecting `control` server
    when `state_dir` is given."""
    servers: dict[str, Any] = {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "Etc/UTC"]},
        "forecast": {
            "command": sys.executable,
            "args": [str(EXAMPLES / "servers" / "forecast.py")],
            "env": {"FORECAST_API_KEY": "forecast-key-0a1b2c3d4e"},
        },
    }
    if state_dir is not None:
        servers["control"] = {
            "command": sys.executable,
            "args": [str(TESTS / "servers" / "control.py")],
            "env": {"CONTROL_STATE_DIR": str(state_dir)},
        }
    return {"mcpServers": servers, "isobind": {"timeout": timeout, "memoryMb": 64}}


def serve_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "isobind", "serve", "--config", str(config), *args]


@contextlib.asynccontextmanager
async def stdio_session(config: Path, *extra: str, **options: Any) -> AsyncIterator[ClientSession]:
    """Start `isobind serve` over stdio and open an initialised client session to it.

    `options` go to `ClientSession`, e.g. `message_handler` or `logging_callback`.
    """
    command = serve_command(config, *extra)
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, **options) as session,
    ):
        with anyio.fail_after(60):
            await session.initialize()
        yield session


class HttpServer:
    """`isobind serve --transport http` in a subprocess, with its stderr drained by a thread."""

    def __init__(self, config: Path, *extra: str, token: str | None = TOKEN):
        env = dict(os.environ)
        args = ["--transport", "http", "--port", "0", *extra]
        if token is not None:
            env[TOKEN_VARIABLE] = token
            args += ["--token-env", TOKEN_VARIABLE]
        self.process = subprocess.Popen(
            serve_command(config, *args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.stderr_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()
        self.url = self._wait_for_url()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self) -> str:
        marker = "serving MCP at "
        while True:
            line = self._lines.get(timeout=60)
            if line is None:
                raise RuntimeError(f"isobind serve exited: {''.join(self.stderr_lines)}")
            if marker in line:
                return line.split(marker, 1)[1].strip()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._thread.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@contextlib.contextmanager
def http_server(config: Path, *extra: str, token: str | None = TOKEN) -> Iterator[HttpServer]:
    server = HttpServer(config, *extra, token=token)
    try:
        yield server
    finally:
        server.close()


@contextlib.asynccontextmanager
async def http_session(
    url: str, token: str | None = TOKEN, **options: Any
) -> AsyncIterator[ClientSession]:
    """Open an initialised client session over streamable HTTP; `options` go to `ClientSession`."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=120.0))
    async with (
        client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write, **options) as session,
    ):
        with anyio.fail_after(30):
            await session.initialize()
        yield session


async def wait_for_file(path: Path, limit: float = 20) -> str:
    """Wait at most `limit` seconds until `path` exists, then return its text.

    The file is written by another process, so there is no event to await;
    the wait polls every 20 ms.
    """
    marker = anyio.Path(path)
    with anyio.fail_after(limit):
        while not await marker.exists():  # noqa: ASYNC110
            await anyio.sleep(0.02)
    return await marker.read_text(encoding="utf-8")
