"""Helpers shared by the type tests: the captured tool lists and the real TypeScript compiler."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from isobind._tools import ToolAnnotations, ToolSpec

TESTS = Path(__file__).parent
TOOL_LISTS = TESTS / "data" / "tool_lists"
TSC = TESTS / "node" / "node_modules" / ".bin" / "tsc"

needs_tsc = pytest.mark.skipif(
    not TSC.exists(), reason=f"TypeScript compiler not installed at {TSC}: run npm ci in tests/node"
)


def corpus_servers() -> list[str]:
    """Names of the servers whose tool lists were captured, sorted."""
    return sorted(path.stem for path in TOOL_LISTS.glob("*.json"))


def tool_specs(server: str) -> list[ToolSpec]:
    """Load a captured tool list, converting MCP wire form to `ToolSpec`."""
    listing = json.loads((TOOL_LISTS / f"{server}.json").read_text())
    specs = []
    for tool in listing["tools"]:
        hints = tool.get("annotations", {})
        annotations = ToolAnnotations(
            read_only=hints.get("readOnlyHint"),
            destructive=hints.get("destructiveHint"),
            idempotent=hints.get("idempotentHint"),
            open_world=hints.get("openWorldHint"),
        )
        specs.append(
            ToolSpec(
                server=server,
                name=tool["name"],
                description=tool.get("description"),
                input_schema=tool["inputSchema"],
                output_schema=tool.get("outputSchema"),
                title=tool.get("title"),
                annotations=annotations,
            )
        )
    return specs


def compile_typescript(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.ts"
    path.write_text(source)
    command = [str(TSC), "--strict", "--noEmit", "--target", "es2022", "--lib", "es2022", str(path)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )


def assert_compiles(tmp_path: Path, source: str) -> None:
    result = compile_typescript(tmp_path, source)
    numbered = "\n".join(f"{n:4} {line}" for n, line in enumerate(source.splitlines(), 1))
    assert result.returncode == 0, f"tsc failed:\n{result.stdout}{result.stderr}\n{numbered}"


def in_async_function(body: str) -> str:
    return f"async function main(): Promise<void> {{{body}\n}}\n"
