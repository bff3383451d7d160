"""The framework adapters, each driven by its framework's test model or a scripted server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from isobind import FunctionTools, Toolbox

from .model_servers import ScriptedModelServer, Turn

pytestmark = pytest.mark.anyio

SECRET = "adapter-secret-value-8c7b6a5d"

BROKEN_CODE = "const total = 1;\nreturn await tools.math.ad({a: 2, b: 3});"
FIXED_CODE = "return await tools.math.add({a: 2, b: 3});"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def reveal() -> str:
    """Return a text that contains the host's secret."""
    return f"the secret is {SECRET}"


@pytest.fixture(scope="module")
async def toolbox() -> AsyncIterator[Toolbox]:
    tools = FunctionTools("math", [add, reveal], read_only=True)
    async with Toolbox(functions=[tools], secrets=[SECRET]) as opened:
        yield opened


async def test_pydantic_ai_toolset_fixes_code(toolbox: Toolbox) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.messages import (
        ModelMessage,
        ModelRequest,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from isobind.adapters.pydantic_ai import code_mode_toolset

    descriptions: list[str] = []
    returns: list[str] = []

    def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        descriptions.extend(tool.description or "" for tool in info.function_tools)
        returns.clear()
        for message in messages:
            if isinstance(message, ModelRequest):
                returns.extend(
                    str(part.content) for part in message.parts if isinstance(part, ToolReturnPart)
                )
        if not returns:
            return ModelResponse(parts=[ToolCallPart("execute_typescript", {"code": BROKEN_CODE})])
        if len(returns) == 1:
            return ModelResponse(parts=[ToolCallPart("execute_typescript", {"code": FIXED_CODE})])
        return ModelResponse(parts=[TextPart("The sum is 5.")])

    agent = Agent(FunctionModel(scripted), toolsets=[code_mode_toolset(toolbox)])
    result = await agent.run("Add 2 and 3.")

    assert result.output == "The sum is 5."
    assert "function add(input: {" in descriptions[0]
    assert "body of an async function" in descriptions[0]
    assert "At line 2" in returns[0]
    assert "Closest names: tools.math.add." in returns[0]
    assert "Returned value (JSON):\n5" in returns[1]


async def test_pydantic_ai_toolset_with_test_model(toolbox: Toolbox) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    from isobind.adapters.pydantic_ai import code_mode_toolset

    model = TestModel()
    agent = Agent(model, toolsets=[code_mode_toolset(toolbox)])
    result = await agent.run("Run something.")

    assert model.last_model_request_parameters is not None
    tools = model.last_model_request_parameters.function_tools
    assert [tool.name for tool in tools] == ["execute_typescript"]
    assert "execute_typescript" in result.output
    assert "The run" in result.output


async def test_openai_agents_tool_runs_code(toolbox: Toolbox) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
    from openai import AsyncOpenAI

    from isobind.adapters.openai_agents import code_mode_tool

    # The SDK exports traces to OpenAI unless tracing is off.
    set_tracing_disabled(True)
    turns = [
        Turn.code(BROKEN_CODE),
        Turn.code(
            "return {sum: await tools.math.add({a: 2, b: 3}), note: await tools.math.reveal({})};"
        ),
        Turn(text="The sum is 5."),
    ]
    with ScriptedModelServer("openai", turns) as server:
        client = AsyncOpenAI(api_key="sk-agents-test", base_url=server.base_url, max_retries=0)
        model = OpenAIChatCompletionsModel(model="scripted", openai_client=client)
        agent = Agent(name="coder", model=model, tools=[code_mode_tool(toolbox)])
        result = await Runner.run(agent, "Add 2 and 3.")
        await client.close()

    assert result.final_output == "The sum is 5."
    tools = server.requests[0].json["tools"]
    assert [tool["function"]["name"] for tool in tools] == ["execute_typescript"]
    assert "function add(input: {" in tools[0]["function"]["description"]
    second = server.requests[1].json["messages"][-1]
    assert second["role"] == "tool"
    assert "Closest names: tools.math.add." in second["content"]
    third = server.requests[2].json["messages"][-1]["content"]
    assert '"sum": 5' in third
    assert "the secret is [REDACTED]" in third
    for request in server.requests:
        assert SECRET not in request.body.decode()


async def test_langchain_tool_runs_scripted_call(toolbox: Toolbox) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from isobind.adapters.langchain import code_mode_tool

    tool = code_mode_tool(toolbox)
    call = {"name": "execute_typescript", "args": {"code": BROKEN_CODE}, "id": "call_1"}
    model = GenericFakeChatModel(messages=iter([AIMessage(content="", tool_calls=[call])]))

    reply = await model.ainvoke("Add 2 and 3.")
    assert isinstance(reply, AIMessage)
    output = await tool.ainvoke(reply.tool_calls[0])

    assert isinstance(output, ToolMessage)
    assert output.tool_call_id == "call_1"
    assert "TypeError: tools.math.ad is not a function" in str(output.content)
    assert "2 | return await tools.math.ad({a: 2, b: 3});" in str(output.content)
    schema = convert_to_openai_tool(tool)["function"]
    assert "function add(input: {" in schema["description"]
    assert schema["parameters"]["required"] == ["code"]


async def test_langchain_tool_scrubs_secret(toolbox: Toolbox) -> None:
    from isobind.adapters.langchain import code_mode_tool

    tool = code_mode_tool(toolbox)
    output = await tool.ainvoke({"code": "return await tools.math.reveal({});"})
    assert "the secret is [REDACTED]" in output
    assert SECRET not in output


async def test_adapter_search_mode_description(toolbox: Toolbox) -> None:
    from isobind.adapters.langchain import code_mode_tool

    tool = code_mode_tool(toolbox, api="search")
    assert "function searchTools(" in tool.description
    assert "- tools.math (2 tools)" in tool.description
    assert "function add(" not in tool.description
