"""Code mode for LangChain: a tool that runs TypeScript through a `Toolbox`.

Usage::

    from langchain_openai import ChatOpenAI
    from isobind.adapters.langchain import code_mode_tool

    async with Toolbox.from_config("isobind.json") as toolbox:
        tool = code_mode_tool(toolbox)
        model = ChatOpenAI(model="gpt-4.1").bind_tools([tool])
        reply = await model.ainvoke("What time is it in Tokyo?")
        outputs = [await tool.ainvoke(call) for call in reply.tool_calls]

The tool runs asynchronously only (`ainvoke`), because a `Toolbox` runs on
asyncio.
"""

from __future__ import annotations

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from .._codemode import CODE_TOOL_NAME, ApiMode, describe_code_tool, execute_for_model
from .._toolbox import Toolbox

__all__ = ["code_mode_tool"]


class CodeInput(BaseModel):
    """The input of the code tool."""

    code: str = Field(description="TypeScript, run as the body of an async function.")


def code_mode_tool(
    toolbox: Toolbox, *, name: str = CODE_TOOL_NAME, api: ApiMode = "auto"
) -> StructuredTool:
    """Return a tool, `name`, that runs TypeScript in `toolbox`.

    The toolbox must be open: the tool's description is built from its API
    when this function is called. `api` chooses whether the description
    declares every tool (`"full"`), lists the servers and the tool-search
    helpers (`"search"`), or searches only for a large API (`"auto"`).
    """

    async def execute_typescript(code: str) -> str:
        return await execute_for_model(toolbox, code)

    return StructuredTool.from_function(
        coroutine=execute_typescript,
        name=name,
        description=describe_code_tool(toolbox, api=api),
        args_schema=CodeInput,
    )
