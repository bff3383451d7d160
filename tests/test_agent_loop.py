"""The agent loop in process: limits, malformed tool calls, provider errors, error hints."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import anyio
import pytest
from rich.console import Console

from isobind import FunctionTools, ModelError, Toolbox
from isobind._agent import Agent, AgentLimits, system_prompt
from isobind._codemode import format_execution
from isobind._display import TerminalEvents, print_answer
from isobind._providers import AnthropicProvider, OpenAIProvider, Provider

from .model_servers import Kind, ScriptedModelServer, Turn

pytestmark = pytest.mark.anyio

API_KEY = "sk-loop-test-key-0123456789"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.fixture(scope="module")
async def toolbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Toolbox]:
    audit = tmp_path_factory.mktemp("loop") / "audit.jsonl"
    math = FunctionTools("math", [add, multiply], read_only=True)
    async with Toolbox(functions=[math], secrets=[API_KEY], audit=audit) as opened:
        yield opened


def provider_for(kind: Kind, server: ScriptedModelServer) -> Provider:
    if kind == "openai":
        return OpenAIProvider("scripted", api_key=API_KEY, base_url=server.base_url, max_retries=0)
    return AnthropicProvider("scripted", api_key=API_KEY, base_url=server.base_url, max_retries=0)


@pytest.fixture(params=["openai", "anthropic"])
def kind(request: pytest.FixtureRequest) -> Kind:
    value: Kind = request.param
    return value


async def test_loop_stops_at_max_turns(toolbox: Toolbox, kind: Kind) -> None:
    turns = [Turn.code("return 1;") for _ in range(5)]
    with ScriptedModelServer(kind, turns) as server:
        provider = provider_for(kind, server)
        agent = Agent(toolbox, provider, limits=AgentLimits(max_turns=2))
        result = await agent.run("count")
        await provider.aclose()
    assert result.status == "max_turns"
    assert result.answer is None
    assert result.turns == 2
    assert len(server.requests) == 2


async def test_loop_stops_at_token_budget(toolbox: Toolbox, kind: Kind) -> None:
    turns = [Turn.code("return 1;") for _ in range(3)]
    with ScriptedModelServer(kind, turns) as server:
        provider = provider_for(kind, server)
        agent = Agent(toolbox, provider, limits=AgentLimits(max_tokens=10))
        result = await agent.run("count")
        await provider.aclose()
    assert result.status == "max_tokens"
    assert result.turns == 1
    assert result.usage.total_tokens >= 10
    assert len(server.requests) == 1


async def test_parallel_code_calls_both_answered(toolbox: Toolbox, kind: Kind) -> None:
    both = Turn(
        calls=[
            ("execute_typescript", {"code": "return await tools.math.add({a: 2, b: 3});"}),
            ("execute_typescript", {"code": "return await tools.math.multiply({a: 2, b: 3});"}),
        ]
    )
    with ScriptedModelServer(kind, [both, Turn(text="5 and 6")]) as server:
        provider = provider_for(kind, server)
        result = await Agent(toolbox, provider).run("add and multiply 2 and 3")
        await provider.aclose()
    assert result.status == "answered"
    assert [run.result.result for run in result.runs if run.result is not None] == [5, 6]
    messages = server.requests[1].json["messages"]
    if kind == "openai":
        assert [message["role"] for message in messages[-2:]] == ["tool", "tool"]
    else:
        blocks = messages[-1]["content"]
        assert [block["type"] for block in blocks] == ["tool_result", "tool_result"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(("get_weather", {"city": "Oslo"}), "no tool 'get_weather'", id="name"),
        pytest.param(("execute_typescript", {"script": "return 1"}), '{"code": "..."}', id="args"),
    ],
)
async def test_malformed_call_explained_to_model(
    toolbox: Toolbox, call: tuple[str, dict[str, str]], expected: str
) -> None:
    with ScriptedModelServer("openai", [Turn(calls=[call]), Turn(text="done")]) as server:
        provider = provider_for("openai", server)
        result = await Agent(toolbox, provider).run("anything")
        await provider.aclose()
    assert result.status == "answered"
    assert result.runs[0].result is None
    assert expected in result.runs[0].feedback
    assert expected in server.requests[1].json["messages"][-1]["content"]


async def test_provider_error_raises_model_error(toolbox: Toolbox, kind: Kind) -> None:
    assert toolbox.audit is not None
    with ScriptedModelServer(kind, []) as server:
        provider = provider_for(kind, server)
        with pytest.raises(ModelError, match="HTTP 500"):
            await Agent(toolbox, provider).run("anything")
        await provider.aclose()
    audit_text = await anyio.Path(toolbox.audit.path).read_text(encoding="utf-8")
    last = json.loads(audit_text.splitlines()[-1])
    assert last["type"] == "session"
    assert last["status"] == "error"
    assert "HTTP 500" in last["error"]


async def test_system_prompt_carries_rules_and_api(toolbox: Toolbox) -> None:
    with ScriptedModelServer("openai", []) as server:
        provider = provider_for("openai", server)
        prompt = Agent(toolbox, provider).system_prompt
        await provider.aclose()
    assert "function multiply(input: {" in prompt
    assert "body of an async function" in prompt
    assert "no network" in prompt
    assert f"stopped after {toolbox.limits.timeout:g} seconds" in prompt


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param(
            "return await tools.math.ad({a: 1, b: 2});",
            "`math` has no tool `ad`. Closest names: tools.math.add.",
            id="unknown-tool",
        ),
        pytest.param(
            "return await tools.maths.add({a: 1, b: 2});",
            "there is no server `maths`. Closest names: tools.math.add.",
            id="unknown-server",
        ),
        pytest.param(
            'const fs = require("fs");',
            "no Node.js or browser globals",
            id="require",
        ),
        pytest.param("const x: number = ;", "body of an async function", id="syntax"),
        pytest.param(
            'return await tools.math.add({a: "1", b: 2});',
            "input interface in the API",
            id="input",
        ),
        pytest.param("await new Promise(() => {});", "await only promises", id="deadlock"),
    ],
)
async def test_error_hint(toolbox: Toolbox, code: str, expected: str) -> None:
    result = await toolbox.execute(code)
    feedback = format_execution(result, code, toolbox.callable_tools)
    assert feedback.startswith("The run failed with ")
    assert expected in feedback.split("Hint: ")[1]


async def test_error_shows_source_line(toolbox: Toolbox) -> None:
    code = "const a = 1;\nconst b = undefined;\nreturn b.c;"
    result = await toolbox.execute(code)
    feedback = format_execution(result, code, toolbox.callable_tools)
    assert "TypeError" in feedback
    assert "At line 3, column 10:\n3 | return b.c;\n             ^" in feedback


async def test_large_result_is_cut(toolbox: Toolbox) -> None:
    code = 'return "x".repeat(50000);'
    result = await toolbox.execute(code)
    feedback = format_execution(result, code, toolbox.callable_tools)
    assert len(feedback) < 21_000
    assert "more characters; return fewer fields]" in feedback


async def test_console_output_follows_result(toolbox: Toolbox) -> None:
    code = 'console.log("step", 1); console.warn("careful"); return {sum: 3};'
    result = await toolbox.execute(code)
    feedback = format_execution(result, code, toolbox.callable_tools)
    assert '"sum": 3' in feedback
    assert "Console output:\nstep 1\n[warn] careful" in feedback


async def test_search_mode_prompt_lists_servers(toolbox: Toolbox) -> None:
    prompt = system_prompt(toolbox, api="search")
    assert "function multiply(" not in prompt
    assert "- tools.math (2 tools)" in prompt
    assert "function searchTools(" in prompt
    assert "Rules for the code" in prompt


async def test_auto_mode_declares_small_api(toolbox: Toolbox) -> None:
    prompt = system_prompt(toolbox, api="auto")
    assert "function multiply(input: {" in prompt
    assert "function searchTools(" not in prompt


async def test_search_mode_session_finds_tool(toolbox: Toolbox, kind: Kind) -> None:
    search = 'return await isobind.searchTools("multiply numbers", {detail: "declarations"});'
    turns = [
        Turn.code(search),
        Turn.code("return await tools.math.multiply({a: 6, b: 7});"),
        Turn(text="6 times 7 is 42."),
    ]
    with ScriptedModelServer(kind, turns) as server:
        provider = provider_for(kind, server)
        result = await Agent(toolbox, provider, api="search").run("Multiply 6 by 7.")
        await provider.aclose()
    assert result.status == "answered"
    assert "function multiply(" in result.runs[0].feedback
    second = result.runs[1].result
    assert second is not None
    assert second.result == 42
    assert "function multiply(" not in server.requests[0].body.decode()
    assert "function multiply(" in server.requests[1].body.decode()


async def test_secret_in_task_is_scrubbed(toolbox: Toolbox) -> None:
    with ScriptedModelServer("openai", [Turn(text="noted")]) as server:
        provider = provider_for("openai", server)
        result = await Agent(toolbox, provider).run(f"Remember the key {API_KEY}.")
        await provider.aclose()
    assert result.status == "answered"
    body = server.requests[0].body.decode()
    assert API_KEY not in body
    assert "Remember the key [REDACTED]." in body


async def test_repeated_tool_name_chunks_accepted(toolbox: Toolbox) -> None:
    turns = [Turn.code("return await tools.math.add({a: 1, b: 1});"), Turn(text="2")]
    with ScriptedModelServer("openai", turns, repeat_tool_names=True) as server:
        provider = provider_for("openai", server)
        result = await Agent(toolbox, provider).run("Add 1 and 1.")
        await provider.aclose()
    run = result.runs[0].result
    assert run is not None
    assert run.result == 2


async def test_terminal_output_escapes_control_characters(toolbox: Toolbox) -> None:
    title = "\x1b]0;PWNED\x07"
    turns = [
        Turn.code(f"console.log({json.dumps(title)}); throw new Error({json.dumps(title)});"),
        Turn(calls=[("get_weather", {"city": "Oslo"})]),
        Turn(text=f"answer {title}"),
    ]
    output = io.StringIO()
    console = Console(file=output, force_terminal=False, width=200)
    with ScriptedModelServer("openai", turns) as server:
        provider = provider_for("openai", server)
        events = TerminalEvents(console)
        result = await Agent(toolbox, provider, events=events).run("anything")
        await provider.aclose()
    print_answer(console, console, result)
    text = output.getvalue()
    assert "PWNED" in text
    assert "\x1b]0;" not in text
    assert "\x07" not in text
    assert "1 code runs, 1 rejected tool calls" in text
