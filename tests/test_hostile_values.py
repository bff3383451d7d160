"""Hostile values and failing servers: each gets a clear error and the host carries on."""

from __future__ import annotations

import json
import math
import sys
import threading
import time

import anyio
import pytest

from isobind import FunctionTools, Toolbox, UpstreamError, parse_config
from isobind._redact import Redactor
from isobind._upstream import McpConnection

pytestmark = pytest.mark.anyio


def not_a_number() -> float:
    """Return NaN, which JSON cannot carry."""
    return math.nan


def numbers() -> dict[str, float]:
    """Return infinities inside a structure."""
    return {"up": math.inf, "down": -math.inf, "fine": 1.5}


def echo(text: str) -> str:
    """Return `text`."""
    return text


async def wait_forever() -> str:
    """Never return; the fault under test is a call still in flight at the end of a run."""
    await anyio.Event().wait()
    return "unreachable"


@pytest.fixture
async def toolbox() -> Toolbox:
    tools = FunctionTools("t", [not_a_number, numbers, echo, wait_forever], read_only=True)
    async with Toolbox(functions=[tools]) as opened:
        yield opened


async def test_nan_result_becomes_null(toolbox: Toolbox) -> None:
    result = await toolbox.execute("return [await tools.t.not_a_number(), await tools.t.numbers()]")
    assert result.ok, result.error
    assert result.result == [None, {"up": None, "down": None, "fine": 1.5}]


async def test_lone_surrogate_input_rejected(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        "try { await tools.t.echo({text: 'a\\ud800b'}); } catch (e) { return e.name; }"
    )
    assert result.result == "ToolInputError"
    after = await toolbox.execute("return await tools.t.echo({text: 'fine'})")
    assert after.result == "fine"


async def test_lone_surrogate_output_replaced(toolbox: Toolbox) -> None:
    result = await toolbox.execute("console.log('x\\udc00y'); return {['k\\ud800']: 'v\\ud83d'};")
    assert result.ok, result.error
    assert result.result == {"k\ufffd": "v\ufffd"}
    assert result.logs[0].message == "x\ufffdy"
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")


async def test_deeply_nested_result_is_error(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        "let v: any = 1; for (let i = 0; i < 5000; i++) v = [v]; return v;"
    )
    assert result.error is not None
    assert result.error.name in {"ResultTooLargeError", "RangeError"}
    after = await toolbox.execute("return 2")
    assert after.result == 2


async def test_call_in_flight_at_end_recorded(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        "tools.t.wait_forever();\n"
        "await new Promise((resolve) => setTimeout(resolve, 1));\n"
        "return 'done';"
    )
    assert result.result == "done"
    assert len(result.calls) == 1
    assert result.calls[0].ok is False
    assert result.calls[0].error == {
        "name": "CallCancelled",
        "message": "the run ended before the call finished",
    }


async def test_call_in_flight_at_deadline_recorded(toolbox: Toolbox) -> None:
    result = await toolbox.execute("await tools.t.wait_forever();", timeout=0.3)
    assert result.error is not None
    assert result.error.name == "TimeLimitExceeded"
    assert [call.error["name"] for call in result.calls if call.error] == ["CallCancelled"]


async def test_handshake_timeout_stops_server() -> None:
    config = parse_config({"mcpServers": {"hang": {"command": "sleep", "args": ["60"]}}})
    connection = McpConnection(
        config.servers["hang"], redactor=Redactor.empty(), startup_timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="did not complete the MCP handshake"):
        await connection.open()
    # The SDK's stdio shutdown waits at most about 6 s before it kills the process.
    assert time.monotonic() - started < 15


async def test_missing_cwd_named_in_error(tmp_path: pytest.TempPathFactory) -> None:
    config = parse_config(
        {
            "mcpServers": {
                "s": {"command": sys.executable, "cwd": "/nonexistent-isobind-dir", "args": []}
            }
        }
    )
    with pytest.raises(UpstreamError, match="working directory"):
        async with Toolbox(config):
            pass


async def test_secret_in_command_scrubbed_from_error() -> None:
    config = parse_config(
        {"mcpServers": {"s": {"command": "/opt/${TOOL_SECRET}/server"}}},
        environ={"TOOL_SECRET": "secret-path-part-123456"},
    )
    with pytest.raises(UpstreamError) as raised:
        async with Toolbox(config):
            pass
    assert "secret-path-part-123456" not in str(raised.value)
    assert "[REDACTED]" in str(raised.value)


@pytest.mark.parametrize(
    ("code", "name", "message"),
    [
        pytest.param("throw {custom: 1}", "Error", 'Uncaught {"custom":1}', id="plain-object"),
        pytest.param("throw 5", "Error", "Uncaught 5", id="number"),
        pytest.param("throw new RangeError('r')", "RangeError", "r", id="error-object"),
    ],
)
async def test_thrown_values_named(toolbox: Toolbox, code: str, name: str, message: str) -> None:
    result = await toolbox.execute(code)
    assert result.error is not None
    assert result.error.name == name
    assert result.error.message == message


@pytest.mark.parametrize(
    "code",
    [
        pytest.param('new Uint8Array("536870912")', id="string-length"),
        pytest.param("new (new Uint8Array(0).constructor)(536870912)", id="prototype-constructor"),
        pytest.param("new ArrayBuffer({valueOf() { return 536870912; }})", id="valueof-length"),
        pytest.param(
            "new ArrayBuffer(1, {maxByteLength: 536870912}).resize(536870912)", id="resize"
        ),
        pytest.param("new ArrayBuffer(1).transfer(536870912)", id="transfer"),
        pytest.param(
            "new (new DataView(new ArrayBuffer(8)).buffer.constructor)(536870912)",
            id="dataview-buffer-constructor",
        ),
    ],
)
async def test_buffer_allocation_paths_metered(toolbox: Toolbox, code: str) -> None:
    result = await toolbox.execute(f"const b = {code}; return 1;", memory_mb=16)
    assert result.error is not None
    assert result.error.name == "MemoryLimitExceeded"
    after = await toolbox.execute(
        "return new Uint8Array([1, 2, 3]).length + new ArrayBuffer(8).byteLength"
    )
    assert after.result == 11


async def test_empty_console_lines_capped(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        "for (let i = 0; i < 700000; i++) console.log(''); return 'done';"
    )
    assert result.result == "done"
    assert len(result.logs) < 40_000
    assert result.logs_dropped > 600_000


async def test_promise_chain_oom_named(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        "const a = []; const p = Promise.resolve();\n"
        "for (;;) { await p; a.push(new Array(1e5).fill(1)); }",
        memory_mb=16,
    )
    assert result.error is not None
    assert result.error.name == "MemoryLimitExceeded"


async def test_prepare_stack_trace_trap_keeps_tool_error(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        "Error.prepareStackTrace = () => ({ toString() { throw 1; } });\n"
        "try { await tools.t.echo({text: 5}); } catch (e) { return e.name; }"
    )
    assert result.ok, result.error
    assert result.result == "ToolInputError"


async def test_large_result_decoded_off_event_loop(
    toolbox: Toolbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records which thread builds each result; the build itself runs unchanged.
    threads: list[str] = []
    build = Toolbox._build_result

    def recording(self: Toolbox, *args: object) -> object:
        threads.append(threading.current_thread().name)
        return build(self, *args)

    monkeypatch.setattr(Toolbox, "_build_result", recording)
    small = await toolbox.execute("return 1")
    large = await toolbox.execute("return new Array(1 << 16).fill({k: 'v'})")
    assert small.result == 1
    assert large.ok, large.error
    assert len(large.result) == 1 << 16
    main = threading.current_thread().name
    assert threads[0] == main
    assert threads[1] != main
