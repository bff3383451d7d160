"""Loading a real MCP server whose schemas are malformed, enormous or hostile.

The server (tests/servers/hostile.py) speaks MCP over stdio. Each hostile tool
must degrade on its own, with a warning naming the server, the tool and the
problem, while the ordinary tool keeps its types and runs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from isobind import Toolbox, UpstreamError, load_config

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
    logger = logging.getLogger("isobind._typescript")
    logger.addHandler(records)
    try:
        async with Toolbox(load_config(path, environ={})) as toolbox:
            logger.removeHandler(records)
            yield toolbox, records.messages
    finally:
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
        pytest.param("cycle", "refers to itself through unions alone", id="cycle"),
        pytest.param("wide", "longer than 400000 characters once rendered", id="wide"),
        pytest.param("long-description", "description of 1000000 characters cut", id="long"),
        pytest.param("malformed", "a schema must be an object or boolean", id="malformed"),
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
  // @ts-expect-error: injected declarations must not exist
  const leaked: string = stolen;"""
    assert_compiles(tmp_path, toolbox.declaration + in_async_function(usage))


async def test_unparsable_tool_list_times_out(tmp_path: Path) -> None:
    # Nested past what the MCP client parses, the tools/list response is dropped
    # and never answered; the bounded wait turns that into an error.
    server = {
        "command": sys.executable,
        "args": [str(TESTS / "servers" / "hostile.py")],
        "env": {"HOSTILE_DEPTH": "150"},
    }
    path = write_config(tmp_path, {"mcpServers": {"hostile": server}})
    toolbox = Toolbox(load_config(path, environ={}))
    toolbox.list_tools_timeout = 2
    with pytest.raises(UpstreamError, match="tools/list did not complete within 2 s"):
        await toolbox.open()
