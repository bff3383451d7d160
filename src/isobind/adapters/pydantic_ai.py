"""Code mode for pydantic-ai: a toolset with one tool that runs TypeScript through a `Toolbox`.

Usage::

    from pydantic_ai import Agent
    from isobind.adapters.pydantic_ai import code_mode_toolset

    async with Toolbox.from_config("isobind.json") as toolbox:
        agent = Agent("openai:gpt-4.1", toolsets=[code_mode_toolset(toolbox)])
        result = await agent.run("What time is it in Tokyo?")
"""

from __future__ import annotations

from typing import Any

from pydantic_ai import FunctionToolset, Tool

from .._codemode import CODE_TOOL_NAME, ApiMode, describe_code_tool, execute_for_model
from .._toolbox import Toolbox

__all__ = ["code_mode_toolset"]


def code_mode_toolset(
    toolbox: Toolbox, *, name: str = CODE_TOOL_NAME, api: ApiMode = "auto"
) -> FunctionToolset[Any]:
    """Return a toolset whose one tool, `name`, runs TypeScript in `toolbox`.

    The toolbox must be open: the tool's description is built from its API
    when this function is called. `api` chooses whether the description
    declares every tool (`"full"`), lists the servers and the tool-search
    helpers (`"search"`), or searches only for a large API (`"auto"`).
    """

    async def execute_typescript(code: str) -> str:
        """Run TypeScript in a fresh sandbox.

        Args:
            code: TypeScript, run as the body of an async function.
        """
        return await execute_for_model(toolbox, code)

    tool = Tool(
        execute_typescript,
        takes_ctx=False,
        name=name,
        description=describe_code_tool(toolbox, api=api),
    )
    return FunctionToolset([tool])
