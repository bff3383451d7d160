"""Loading a real MCP server whose tools are malformed, enormous or hostile.

The server (tests/servers/hostile.py) speaks MCP over stdio. Each hostile tool
must degrade on its own, with a warning naming the server, the tool and the
problem, while the ordinary tool keeps its types and runs. Loading must finish:
the module's timeout turns a hang into a failure.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from isobind import Toolbox, load_config

from .conftest import write_config
from .support import TESTS, assert_compiles, in_async_function, needs_tsc

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
async def loaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Toolbox, list[str]]]:
    server = {"command": sys.executable, "args": [str(TESTS / "servers" / "hostile.py")]}
    path = write_config(tmp_path_factory.mktemp("config"), {"mcpServers": {"hostile": server}})
    records = _Records()
    loggers = [logging.getLogger(name) for name in ("isobind._typescript", "isobind._upstream")]
    for logger in loggers:
        logger.addHandler(records)
    try:
        async with Toolbox(load_config(path, environ={})) as toolbox:
            for logger in loggers:
                logger.removeHandler(records)
            yield toolbox, records.messages
    finally:
        for logger in loggers:
            logger.removeHandler(records)


def warning_for(messages: list[str], tool: str) -> str:
    found = [message for message in messages if f"tool {tool!r}" in message]
    assert len(found) == 1, messages
    assert found[0].startswith(f"MCP server 'hostile', tool {tool!r}")
    return found[0]


@pytest.mark.parametrize(
    ("tool", "problem"),
    [
        pytest.param("deep", "nested more than 40 levels deep", id="deep"),
        pytest.param(
            "very-deep", "inputSchema: nested more than 128 JSON levels deep", id="very-deep"
        ),
        pytest.param("cycle", "refers to itself through unions alone", id="cycle"),
        pytest.param("wide", "longer than 400000 characters once rendered", id="wide"),
        pytest.param("long-description", "description of 1000000 characters cut", id="long"),
        pytest.param("malformed", "a schema must be an object or boolean", id="malformed"),
        pytest.param(
            "string-schema", "invalid schema typed as unknown: inputSchema: ", id="string-schema"
        ),
        pytest.param(
            "list-properties",
            "inputSchema at properties: Input should be a valid dictionary",
            id="list-properties",
        ),
        pytest.param(
            "list-output",
            "invalid schema typed as unknown: outputSchema: ",
            id="list-output",
        ),
        pytest.param(
            "number-description",
            "invalid fields ignored: description: Input should be a valid string",
            id="number-description",
        ),
    ],
)
async def test_hostile_tool_warns(
    loaded: tuple[Toolbox, list[str]], tool: str, problem: str
) -> None:
    _, messages = loaded
    assert problem in warning_for(messages, tool)


async def test_malformed_warning_lists_each_part(loaded: tuple[Toolbox, list[str]]) -> None:
    _, messages = loaded
    message = warning_for(messages, "malformed")
    assert "#/properties/ref/$ref: must be a string" in message
    assert "cannot resolve 'https://127.0.0.1:9/schema.json'" in message


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        pytest.param(4, "it has no usable name (name: Field required)", id="no-name"),
        pytest.param(5, "it has no usable name (name: Input should be a valid string)", id="int"),
        pytest.param(6, "it is not an object", id="string"),
        pytest.param(7, "it is not an object", id="null"),
    ],
)
async def test_unnamed_entry_skipped(
    loaded: tuple[Toolbox, list[str]], entry: int, problem: str
) -> None:
    _, messages = loaded
    # Entries are counted within their page, and these are on the second.
    expected = f"MCP server hostile: tools/list entry {entry} skipped: {problem}"
    assert expected in messages


async def test_every_named_tool_loads(loaded: tuple[Toolbox, list[str]]) -> None:
    toolbox, _ = loaded
    names = [tool for server, tool in toolbox.callable_tools if server == "hostile"]
    assert sorted(names) == sorted(
        [
            "deep",
            "very_deep",
            "cycle",
            "wide",
            "long_description",
            "malformed",
            "injection",
            "string_schema",
            "list_properties",
            "ping",
            "number_description",
            "list_output",
        ]
    )


async def test_invalid_schemas_loosely_typed(loaded: tuple[Toolbox, list[str]]) -> None:
    declaration = loaded[0].declaration
    for tool in ("very_deep", "string_schema", "list_properties"):
        signature = f"function {tool}(input?: {{ [key: string]: unknown }}): Promise<unknown>;"
        assert signature in declaration
    # Only the output schema was invalid, so the input keeps its type.
    assert "function list_output(input?: ListOutputInput): Promise<unknown>;" in declaration
    assert "interface ListOutputInput { q?: string }" in declaration


async def test_invalid_description_dropped(loaded: tuple[Toolbox, list[str]]) -> None:
    declaration = loaded[0].declaration
    line = "  function number_description(input?: { [key: string]: unknown }): Promise<unknown>;"
    assert line in declaration.splitlines()
    assert "42" not in declaration


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param("tools.hostile.string_schema({a: 1})", "string-schema", id="string-schema"),
        pytest.param('tools.hostile.list_output({q: "x"})', "list-output", id="list-output"),
        pytest.param("tools.hostile.very_deep({})", "very-deep", id="very-deep"),
    ],
)
async def test_loosely_typed_tool_runs(
    loaded: tuple[Toolbox, list[str]], call: str, expected: str
) -> None:
    toolbox, _ = loaded
    result = await toolbox.execute(f"return await {call};")
    assert result.ok, result.error
    assert result.result == expected


async def test_ordinary_tool_keeps_types(loaded: tuple[Toolbox, list[str]]) -> None:
    toolbox, _ = loaded
    assert "interface PingInput { message?: string }" in toolbox.declaration
    assert "function ping(input?: PingInput): Promise<unknown>;" in toolbox.declaration


async def test_ordinary_tool_runs(loaded: tuple[Toolbox, list[str]]) -> None:
    toolbox, _ = loaded
    result = await toolbox.execute('return await tools.hostile.ping({message: "hi"});')
    assert result.ok, result.error
    assert result.result == "ping"


async def test_hostile_tools_typed_unknown(loaded: tuple[Toolbox, list[str]]) -> None:
    toolbox, _ = loaded
    assert "function deep(input?: unknown): Promise<unknown>;" in toolbox.declaration
    assert "function wide(input?: unknown): Promise<unknown>;" in toolbox.declaration


async def test_long_description_cut(loaded: tuple[Toolbox, list[str]]) -> None:
    toolbox, _ = loaded
    assert len(toolbox.declaration) < 40_000
    assert "[992000 more characters cut]" in toolbox.declaration
    assert "interface LongDescriptionInput {" in toolbox.declaration


async def test_injection_stays_in_comment(loaded: tuple[Toolbox, list[str]]) -> None:
    toolbox, _ = loaded
    assert "stolen" in toolbox.declaration
    assert '"*/ x"?: string' in toolbox.declaration


@needs_tsc
async def test_hostile_declaration_compiles(
    loaded: tuple[Toolbox, list[str]], tmp_path: Path
) -> None:
    toolbox, _ = loaded
    usage = """
  await tools.hostile.ping({ message: "hi" });
  await tools.hostile.injection({ "*/ x": "y" });
  await tools.hostile.string_schema({ a: 1 });
  await tools.hostile.list_output({ q: "x" });
  // @ts-expect-error: the input is declared, so a misspelt key is an error
  await tools.hostile.list_output({ query: "x" });
  // @ts-expect-error: injected declarations must not exist
  const leaked: string = stolen;"""
    assert_compiles(tmp_path, toolbox.declaration + in_async_function(usage))


@needs_tsc
async def test_hostile_compact_declaration_compiles(
    loaded: tuple[Toolbox, list[str]], tmp_path: Path
) -> None:
    toolbox, _ = loaded
    usage = """
  await tools.hostile.ping({ message: "hi" });
  await tools.hostile.injection({ "*/ x": "y" });
  // @ts-expect-error: injected declarations must not exist
  const leaked: string = stolen;"""
    declaration = toolbox.compact_declaration
    assert len(declaration) < len(toolbox.declaration)
    assert_compiles(tmp_path, declaration + in_async_function(usage))


def test_exec_calls_ordinary_tool(tmp_path: Path) -> None:
    server = {"command": sys.executable, "args": [str(TESTS / "servers" / "hostile.py")]}
    config = write_config(tmp_path, {"mcpServers": {"hostile": server}})
    script = tmp_path / "script.ts"
    script.write_text('return await tools.hostile.ping({message: "hi"});\n', encoding="utf-8")
    command = [sys.executable, "-m", "isobind", "exec", str(script), "--config", str(config)]
    completed = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, timeout=50, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["result"] == "ping"
    assert "tool 'string-schema': invalid schema typed as unknown" in completed.stderr
