"""The bundled example: it runs, and it type-checks against the generated API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

import isobind
from isobind import Toolbox, load_config

from .conftest import EXAMPLES, NODE_BIN

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def example_toolbox() -> AsyncIterator[Toolbox]:
    async with Toolbox(load_config(EXAMPLES / "isobind.json", environ={})) as toolbox:
        yield toolbox


async def test_example_script_runs(example_toolbox: Toolbox) -> None:
    code = (EXAMPLES / "repo_report.ts").read_text(encoding="utf-8")
    result = await example_toolbox.execute(code, filename="repo_report.ts")
    assert result.ok, result.error
    assert result.result["cities"] == ["Paris", "Tokyo"]
    assert result.result["commits"] >= 1
    assert any(entry.message.startswith("Paris: ") for entry in result.logs)
    assert {call.server for call in result.calls} == {"git", "time", "forecast"}


async def test_example_script_typechecks(example_toolbox: Toolbox, tmp_path: Path) -> None:
    tsc = NODE_BIN / "tsc"
    if not tsc.exists():
        pytest.fail(f"{tsc} is missing: run `npm ci --prefix tests/node` first")
    code = (EXAMPLES / "repo_report.ts").read_text(encoding="utf-8")
    (tmp_path / "api.d.ts").write_text(example_toolbox.declaration, encoding="utf-8")
    globals_path = Path(isobind.__file__).parent / "sandbox_globals.d.ts"
    # Type-check the script as the body of an async function, as isobind runs it.
    (tmp_path / "script.ts").write_text(
        f"export async function main() {{\n{code}\n}}\n", encoding="utf-8"
    )
    completed = await anyio.run_process(
        [
            str(tsc),
            "--strict",
            "--noEmit",
            "--target",
            "es2022",
            "--lib",
            "es2022",
            str(globals_path),
            str(tmp_path / "api.d.ts"),
            str(tmp_path / "script.ts"),
        ],
        check=False,
    )
    assert completed.returncode == 0, completed.stdout.decode() + completed.stderr.decode()
