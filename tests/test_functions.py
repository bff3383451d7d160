"""Python functions as tools, beside MCP servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
from pydantic import BaseModel

from isobind import FunctionTools, Toolbox

from .conftest import ROOT

pytestmark = pytest.mark.anyio


class Total(BaseModel):
    value: int
    terms: int


def add(a: int, b: int = 2) -> Total:
    """Add two integers."""
    return Total(value=a + b, terms=2)


async def shout(text: str) -> str:
    """Upper-case `text`."""
    await asyncio.sleep(0)
    return text.upper()


def explode() -> None:
    """Always fail."""
    raise RuntimeError("exploded on purpose")


async def test_function_tools_are_typed_and_callable() -> None:
    math = FunctionTools("math", [add, shout, explode], read_only=True)
    async with Toolbox(functions=[math]) as toolbox:
        assert "function add(" in toolbox.declaration
        assert "Add two integers." in toolbox.declaration
        result = await toolbox.execute(
            "const t = await tools.math.add({a: 40});\n"
            "const s = await tools.math.shout({text: 'hi'});\n"
            "try { await tools.math.explode(); } catch (e) { return [t, s, e.name, e.message]; }"
        )
    assert result.ok, result.error
    total, text, name, message = result.result
    assert total == {"value": 42, "terms": 2}
    assert text == "HI"
    assert name == "ToolError"
    assert "exploded on purpose" in message


async def test_function_input_validated() -> None:
    async with Toolbox(functions=[FunctionTools("math", [add])]) as toolbox:
        result = await toolbox.execute("return await tools.math.add({a: 'x'})")
    assert result.error is not None
    assert result.error.name == "ToolInputError"
    assert "input.a" in result.error.message


async def test_toolbox_rejects_use_after_close() -> None:
    toolbox = Toolbox(functions=[FunctionTools("math", [add])])
    async with toolbox:
        pass
    with pytest.raises(Exception, match="closed"):
        await toolbox.execute("return 1")


def test_eval_blocked_without_engine_flags() -> None:
    # A process that created a bare MiniRacer first cannot give isobind its V8
    # flags; the prelude must still block code generation from strings.
    script = textwrap.dedent(
        """
        import asyncio
        from py_mini_racer import MiniRacer
        MiniRacer().eval("1")
        from isobind import FunctionTools, Toolbox

        def ping() -> int:
            return 1

        async def main():
            async with Toolbox(functions=[FunctionTools("t", [ping])]) as toolbox:
                for code in ("return eval('1')", "return Function('return 1')()",
                             "return (async function(){}).constructor('return 1')",
                             "return (function*(){}).constructor('yield 1')"):
                    result = await toolbox.execute(code)
                    print(result.error.name if result.error else "ALLOWED")

        asyncio.run(main())
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["EvalError"] * 4
