"""`isobind serve` driven by npm tools: the MCP Inspector's CLI mode and the conformance suite."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import TESTS, write_config
from .serving import HttpServer, http_server, serve_config

pytestmark = pytest.mark.node

NODE_MODULES = TESTS / "node" / "node_modules"
# NOTE: inspector-cli 1.0.3 finds its package.json relative to the working
# directory, not to its module, so it only starts from its own build folder.
INSPECTOR_BUILD = NODE_MODULES / "@modelcontextprotocol" / "inspector-cli" / "build"
CONFORMANCE = NODE_MODULES / ".bin" / "conformance"
EXPECTED_FAILURES = TESTS / "data" / "conformance-expected-failures.yaml"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("serve"), serve_config(None))


@pytest.fixture(scope="module")
def http(config: Path) -> Iterator[HttpServer]:
    """A server without a bearer token, because the conformance suite sends none."""
    with http_server(config, token=None) as server:
        yield server


def inspect(*args: str) -> Any:
    """Run the Inspector's CLI mode and return the JSON it prints."""
    index = INSPECTOR_BUILD / "index.js"
    if not index.exists():
        pytest.fail(f"{index} is missing: run `npm ci --prefix tests/node` first")
    completed = subprocess.run(
        ["node", str(index), *args],
        cwd=INSPECTOR_BUILD,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def inspect_http(server: HttpServer, *args: str) -> Any:
    return inspect(server.url, "--transport", "http", *args)


def test_inspector_lists_tools_over_http(http: HttpServer) -> None:
    listed = inspect_http(http, "--method", "tools/list")

    names = {tool["name"] for tool in listed["tools"]}
    assert names == {"run_code", "list_servers", "search_tools", "describe_tools"}


def test_inspector_runs_code_over_http(http: HttpServer) -> None:
    code = (
        "const now = await tools.time.get_current_time({timezone: 'Europe/Oslo'});\n"
        "const days = await tools.forecast.get_forecast({city: 'Lima', days: 1});\n"
        "return [now.timezone, days.result[0].city];"
    )
    result = inspect_http(
        http, "--method", "tools/call", "--tool-name", "run_code", "--tool-arg", f"code={code}"
    )

    assert result["isError"] is False
    assert result["structuredContent"]["result"] == ["Europe/Oslo", "Lima"]


def test_inspector_searches_over_http(http: HttpServer) -> None:
    result = inspect_http(
        http,
        "--method",
        "tools/call",
        "--tool-name",
        "search_tools",
        "--tool-arg",
        "query=forecast",
        "detail=names",
    )

    assert "tools.forecast.get_forecast" in result["content"][0]["text"]


def test_inspector_reads_resource_over_http(http: HttpServer) -> None:
    read = inspect_http(http, "--method", "resources/read", "--uri", "isobind://api.d.ts")

    text = read["contents"][0]["text"]
    assert "declare namespace tools.forecast" in text


def test_conformance_suite_passes_baseline(http: HttpServer, tmp_path: Path) -> None:
    if not CONFORMANCE.exists():
        pytest.fail(f"{CONFORMANCE} is missing: run `npm ci --prefix tests/node` first")
    completed = subprocess.run(
        [
            str(CONFORMANCE),
            "server",
            "--url",
            http.url,
            "--expected-failures",
            str(EXPECTED_FAILURES),
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    summary = completed.stdout[completed.stdout.find("=== SUMMARY ===") :]
    assert completed.returncode == 0, summary or completed.stderr
    assert "✓ server-initialize" in summary
    assert "✓ tools-list" in summary
    assert "✓ logging-set-level" in summary
    assert "✓ dns-rebinding-protection" in summary
