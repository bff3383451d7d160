"""Shared fixtures: real MCP servers over stdio, started once per test module."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from isobind import Toolbox, load_config

TESTS = Path(__file__).parent
ROOT = TESTS.parent
NODE_BIN = TESTS / "node" / "node_modules" / ".bin"
EXAMPLES = ROOT / "examples"

# The credential the leaky test server echoes; long enough to be scrubbed in
# every encoding.
LEAKY_TOKEN = "sk-test-9f8e7d6c5b4a39281706"


def node_server(name: str) -> str:
    """Path of an npm MCP server installed by `npm ci --prefix tests/node`."""
    path = NODE_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci --prefix tests/node` first")
    return str(path)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def write_config(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "isobind.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the filesystem server, with one file to read."""
    root = tmp_path_factory.mktemp("fs")
    (root / "allowed").mkdir()
    (root / "allowed" / "notes.txt").write_text("hello from the host\n", encoding="utf-8")
    (root / "outside.txt").write_text("not for the sandbox\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository with three commits."""
    repo = tmp_path_factory.mktemp("repo")
    git = shutil.which("git")
    assert git is not None, "git is needed for the mcp-server-git tests"

    def run(*args: str) -> None:
        subprocess.run([git, *args], cwd=repo, check=True, capture_output=True)

    run("init", "-q", "-b", "main")
    run("config", "user.email", "test@example.invalid")
    run("config", "user.name", "Test")
    for number in range(1, 4):
        (repo / f"file{number}.txt").write_text(f"content {number}\n", encoding="utf-8")
        run("add", ".")
        run("commit", "-q", "-m", f"commit number {number}")
    return repo


@pytest.fixture(scope="module")
def config_data(sandbox_dir: Path, git_repo: Path) -> dict[str, Any]:
    return {
        "mcpServers": {
            "time": {"command": "mcp-server-time", "args": ["--local-timezone", "Etc/UTC"]},
            "git": {"command": "mcp-server-git", "args": ["--repository", str(git_repo)]},
            "fs": {
                "command": node_server("mcp-server-filesystem"),
                "args": [str(sandbox_dir / "allowed")],
            },
            "forecast": {
                "command": sys.executable,
                "args": [str(EXAMPLES / "servers" / "forecast.py")],
                "env": {"FORECAST_API_KEY": "${FORECAST_API_KEY:-forecast-key-0a1b2c3d4e}"},
            },
            "leaky": {
                "command": sys.executable,
                "args": [str(TESTS / "servers" / "leaky.py")],
                "env": {"LEAKY_TOKEN": "${LEAKY_TOKEN}"},
            },
        },
        "isobind": {
            "timeout": 5,
            "memoryMb": 64,
            "servers": {
                "fs": {"readOnly": True},
                "time": {"deny": ["convert_*"]},
            },
        },
    }


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory, config_data: dict[str, Any]) -> Path:
    return write_config(tmp_path_factory.mktemp("config"), config_data)


@pytest.fixture(scope="module")
def environ() -> dict[str, str]:
    return {"LEAKY_TOKEN": LEAKY_TOKEN, "PATH": ""}


@pytest.fixture(scope="module")
async def toolbox(
    config_path: Path, environ: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Toolbox]:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    config = load_config(config_path, environ=environ)
    async with Toolbox(config, audit=audit) as opened:
        yield opened


def pytest_configure(config: pytest.Config) -> None:
    # V8 takes its flags once per process: initialise it the way isobind does
    # before any test creates a bare MiniRacer.
    from isobind._sandbox import _init_engine

    _init_engine()
