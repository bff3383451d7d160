"""Code mode for the OpenAI Agents SDK: a function tool that runs TypeScript through a `Toolbox`.

Usage::

    from agents import Agent, Runner
    from isobind.adapters.openai_agents import code_mode_tool

    async with Toolbox.from_config("isobind.json") as toolbox:
        agent = Agent(name="assistant", tools=[code_mode_tool(toolbox)])
        result = await Runner.run(agent, "What time is it in Tokyo?")
"""

from __future__ import annotations

import json
from typing import Any

from agents import FunctionTool
from agents.tool_context import ToolContext

from .._codemode import (
    CODE_TOOL_NAME,
    CODE_TOOL_PARAMETERS,
    ApiMode,
    describe_code_tool,
    execute_for_model,
)
from .._toolbox import Toolbox

__all__ = ["code_mode_tool"]


def code_mode_tool(
    toolbox: Toolbox, *, name: str = CODE_TOOL_NAME, api: ApiMode = "auto"
) -> FunctionTool:
    """Return a function tool, `name`, that runs TypeScript in `toolbox`.

    The toolbox must be open: the tool's description is built from its API
    when this function is called. `api` chooses whether the description
    declares every tool (`"full"`), lists the servers and the tool-search
    helpers (`"search"`), or searches only for a large API (`"auto"`).
    """

    async def invoke(context: ToolContext[Any], arguments: str) -> str:
        try:
            data = json.loads(arguments)
        except ValueError as error:
            return f'The arguments are not valid JSON ({error}); send {{"code": "..."}}.'
        code = data.get("code") if isinstance(data, dict) else None
        if not isinstance(code, str):
            return f'`{name}` takes {{"code": "..."}} with the code as a string.'
        return await execute_for_model(toolbox, code)

    return FunctionTool(
        name=name,
        description=describe_code_tool(toolbox, api=api),
        params_json_schema=CODE_TOOL_PARAMETERS,
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )
