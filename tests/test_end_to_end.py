"""Code Mode end to end: real MCP servers over stdio, real V8 isolates."""

from __future__ import annotations

import base64
import json
import logging
import sys
import urllib.parse
from pathlib import Path

import anyio
import pytest

from isobind import ExecutionResult, Toolbox, parse_config

from .conftest import LEAKY_TOKEN, TESTS

PAGED = TESTS / "servers" / "paged.py"

pytestmark = pytest.mark.anyio


async def run_ok(toolbox: Toolbox, code: str) -> ExecutionResult:
    result = await toolbox.execute(code)
    assert result.ok, result.error
    return result


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        pytest.param("time", "function get_current_time(", id="time"),
        pytest.param("git", "function git_log(", id="git"),
        pytest.param("fs", "function read_text_file(", id="filesystem"),
        pytest.param("forecast", "function get_forecast(", id="example"),
        pytest.param("leaky", "function echo_token(", id="leaky"),
    ],
)
async def test_declaration_lists_server_tools(toolbox: Toolbox, server: str, expected: str) -> None:
    declaration = toolbox.declaration
    assert f"namespace tools.{server}" in declaration or f"{server}: {{" in declaration
    assert expected in declaration


async def test_declaration_hides_denied_tools(toolbox: Toolbox) -> None:
    declaration = toolbox.declaration
    assert "function write_file(" not in declaration
    assert "function convert_time(" not in declaration
    assert "function read_text_file(" in declaration


async def test_declaration_carries_descriptions(toolbox: Toolbox) -> None:
    assert "IANA timezone name" in toolbox.declaration


async def test_dashed_tool_name_reaches_original(toolbox: Toolbox) -> None:
    result = await run_ok(
        toolbox, 'return await tools.forecast.get_forecast({city: "Oslo", days: 2})'
    )
    forecast = result.result
    days = forecast["result"] if isinstance(forecast, dict) else forecast
    assert len(days) == 2
    assert days[0]["city"] == "Oslo"
    assert result.calls[0].server == "forecast"
    assert result.calls[0].tool == "get-forecast"


async def test_time_tool_returns_structured_data(toolbox: Toolbox) -> None:
    result = await run_ok(
        toolbox,
        'const now = await tools.time.get_current_time({timezone: "Asia/Tokyo"});\n'
        "return now.timezone;",
    )
    assert result.result == "Asia/Tokyo"


async def test_git_log_through_sandbox(toolbox: Toolbox, git_repo: Path) -> None:
    code = f"return await tools.git.git_log({{repo_path: {json.dumps(str(git_repo))}}})"
    result = await run_ok(toolbox, code)
    assert "commit number 3" in json.dumps(result.result)


async def test_readonly_server_allows_read(toolbox: Toolbox, sandbox_dir: Path) -> None:
    path = json.dumps(str(sandbox_dir / "allowed" / "notes.txt"))
    result = await run_ok(toolbox, f"return await tools.fs.read_text_file({{path: {path}}})")
    assert "hello from the host" in json.dumps(result.result)


async def test_readonly_server_refuses_write(toolbox: Toolbox, sandbox_dir: Path) -> None:
    target = sandbox_dir / "allowed" / "written.txt"
    code = f"""
try {{
  await tools.fs.write_file({{path: {json.dumps(str(target))}, content: "x"}});
  return "written";
}} catch (error) {{
  return [error.name, error.message, error instanceof PermissionDeniedError];
}}
"""
    result = await run_ok(toolbox, code)
    name, message, is_instance = result.result
    assert name == "PermissionDeniedError"
    assert "readOnly" in message
    assert is_instance is True
    assert not target.exists()
    assert result.calls[0].error is not None
    assert result.calls[0].error["name"] == "PermissionDeniedError"


async def test_denied_tool_names_rule(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        'await tools.time.convert_time({source_timezone: "Etc/UTC", time: "12:00", '
        'target_timezone: "Asia/Tokyo"})'
    )
    assert not result.ok
    assert result.error is not None
    assert result.error.name == "PermissionDeniedError"
    assert "isobind.servers.time.deny" in result.error.message
    assert result.error.line == 1


async def test_tool_error_caught_by_code(toolbox: Toolbox) -> None:
    code = """
try {
  await tools.forecast.get_forecast({city: "Lima", days: 99});
} catch (error) {
  return {name: error.name, message: error.message, isToolError: error instanceof ToolError};
}
"""
    result = await run_ok(toolbox, code)
    assert result.result["name"] == "ToolError"
    assert "days must be between 1 and 7" in result.result["message"]
    assert result.result["isToolError"] is True


async def test_invalid_input_is_tool_input_error(toolbox: Toolbox) -> None:
    result = await toolbox.execute("await tools.forecast.get_forecast({city: 42})")
    assert result.error is not None
    assert result.error.name == "ToolInputError"
    assert "input.city" in result.error.message


async def test_uncaught_tool_error_fails_run(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        "const x = 1;\nawait tools.forecast.get_forecast({city: 'Lima', days: 0});"
    )
    assert not result.ok
    assert result.error is not None
    assert result.error.name == "ToolError"
    assert result.error.line == 2


@pytest.mark.parametrize(
    ("code", "what"),
    [
        pytest.param("await fetch('http://127.0.0.1:9/x')", "fetch", id="fetch"),
        pytest.param("new XMLHttpRequest()", "XMLHttpRequest", id="xhr"),
        pytest.param("new WebSocket('ws://127.0.0.1:9')", "WebSocket", id="websocket"),
        pytest.param("await import('http://127.0.0.1:9/m.js')", "import", id="dynamic-import"),
        pytest.param("new EventSource('http://127.0.0.1:9')", "EventSource", id="eventsource"),
    ],
)
async def test_network_access_is_named_error(toolbox: Toolbox, code: str, what: str) -> None:
    wrapped = f"""
try {{
  {code};
  return "reached the network";
}} catch (error) {{
  return [error.name, error.message, error instanceof NetworkAccessError];
}}
"""
    result = await run_ok(toolbox, wrapped)
    name, message, is_instance = result.result
    assert name == "NetworkAccessError"
    assert what in message
    assert "tools." in message
    assert is_instance is True


async def test_eval_is_disabled(toolbox: Toolbox) -> None:
    result = await toolbox.execute("return eval('import(\"http://127.0.0.1:9/x\")')")
    assert result.error is not None
    assert result.error.name == "EvalError"


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        urllib.parse.quote(secret, safe=""),
    ]


def assert_no_secret(text: str) -> None:
    for form in encodings(LEAKY_TOKEN):
        assert form not in text, f"secret form {form!r} leaked"
    # The core of the token, in case a prefix was scrubbed on its own.
    assert "9f8e7d6c5b4a39281706" not in text


async def test_secret_scrubbed_from_results(toolbox: Toolbox) -> None:
    code = """
const clear = await tools.leaky.echo_token();
const encoded = await tools.leaky.echo_encoded();
console.log(clear, encoded);
console.log(atobSafe(encoded.base64));
function atobSafe(text) { try { return atob(text); } catch { return text; } }
return {clear, encoded};
"""
    result = await run_ok(toolbox, code)
    assert result.result["clear"] == {"result": "the token is [REDACTED]"}
    assert_no_secret(json.dumps(result.to_dict()))


async def test_secret_scrubbed_from_errors(toolbox: Toolbox) -> None:
    caught = await run_ok(
        toolbox,
        "try { await tools.leaky.fail_with_token() } catch (e) { return e.message }",
    )
    assert "upstream rejected key" in caught.result
    assert_no_secret(json.dumps(caught.to_dict()))

    uncaught = await toolbox.execute("await tools.leaky.fail_with_token()")
    assert uncaught.error is not None
    assert uncaught.error.name == "ToolError"
    assert_no_secret(json.dumps(uncaught.to_dict()))


async def test_secret_scrubbed_from_logs_and_stderr(
    toolbox: Toolbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="isobind")
    result = await run_ok(toolbox, "return await tools.leaky.log_token()")
    assert result.result == {"result": "logged"}
    assert_no_secret(json.dumps(result.to_dict()))

    # The stderr relay runs in its own thread, so wait (bounded) for its line;
    # an anyio.Event cannot be set from that thread.
    with anyio.fail_after(5):
        while "using token [REDACTED]" not in caplog.text:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    assert "authenticating with [REDACTED]" in caplog.text
    assert_no_secret(caplog.text)


async def test_secret_absent_from_audit_log(toolbox: Toolbox) -> None:
    await toolbox.execute(
        "const a = await tools.leaky.echo_token();\n"
        "const b = await tools.leaky.echo_encoded();\n"
        "console.log(a, JSON.stringify(b));\n"
        "await tools.leaky.fail_with_token();"
    )
    assert toolbox.audit is not None
    text = toolbox.audit.path.read_text(encoding="utf-8")
    assert "echo_encoded" in text
    assert_no_secret(text)


async def test_secret_echoed_by_input_is_scrubbed(toolbox: Toolbox) -> None:
    # The code cannot know the token, but a result can carry it back as input.
    code = """
const text = await tools.leaky.echo_token();
return await tools.leaky.echo({value: text.result});
"""
    result = await run_ok(toolbox, code)
    assert_no_secret(json.dumps(result.to_dict()))


async def test_audit_record_contents(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        "console.log('audited');\n"
        "return await tools.time.get_current_time({timezone: 'Europe/Paris'})"
    )
    assert toolbox.audit is not None
    lines = toolbox.audit.path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[-1])
    assert record["executionId"] == result.execution_id
    assert "console.log('audited')" in record["code"]
    assert record["logs"] == [{"level": "log", "message": "audited"}]
    assert record["calls"][0]["server"] == "time"
    assert record["calls"][0]["tool"] == "get_current_time"
    assert record["calls"][0]["input"] == {"timezone": "Europe/Paris"}
    assert record["calls"][0]["ok"] is True
    assert record["calls"][0]["durationMs"] >= 0
    assert record["result"]["timezone"] == "Europe/Paris"
    assert record["ok"] is True
    assert record["timings"]["durationMs"] > 0


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("while (true) {}", id="busy-loop"),
        pytest.param("for (;;) { await null; }", id="microtask-loop"),
        pytest.param(
            "for (;;) { await tools.time.get_current_time({timezone: 'Etc/UTC'}); }",
            id="await-tool-in-loop",
        ),
        pytest.param("for (;;) { await new Promise((r) => setTimeout(r, 0)); }", id="timer-loop"),
        pytest.param("try { while (true) {} } finally { while (true) {} }", id="finally-busy-loop"),
    ],
)
async def test_time_limit_stops_loop(toolbox: Toolbox, code: str) -> None:
    result = await toolbox.execute(code, timeout=0.5)
    assert result.error is not None
    assert result.error.name == "TimeLimitExceeded"
    assert result.duration < 5
    after = await toolbox.execute("return 6 * 7")
    assert after.result == 42


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("const a = []; for (;;) a.push({n: Math.random()});", id="heap-objects"),
        pytest.param("let s = 'x'; for (;;) s += s + Math.random();", id="string-doubling"),
        pytest.param(
            "const a = []; for (;;) a.push(new Uint8Array(8 * 1024 * 1024));", id="typed-arrays"
        ),
        pytest.param(
            "const a = []; for (;;) a.push(new ArrayBuffer(8 * 1024 * 1024));", id="arraybuffers"
        ),
    ],
)
async def test_memory_bomb_stopped(toolbox: Toolbox, code: str) -> None:
    result = await toolbox.execute(code, memory_mb=32, timeout=20)
    assert result.error is not None
    assert result.error.name in {"MemoryLimitExceeded", "RangeError"}, result.error
    after = await toolbox.execute("return 'still fine'")
    assert after.result == "still fine"


async def test_memory_error_caught_still_fails_run(toolbox: Toolbox) -> None:
    code = """
try {
  const a = [];
  for (;;) a.push(new Uint8Array(8 * 1024 * 1024));
} catch (error) {
  return "caught";
}
"""
    result = await toolbox.execute(code, memory_mb=32)
    assert result.error is not None
    assert result.error.name == "MemoryLimitExceeded"


async def test_state_not_carried_between_runs(toolbox: Toolbox) -> None:
    first = await run_ok(
        toolbox,
        "globalThis.leftover = 'from run one';\n"
        "Array.prototype.leak = 1;\n"
        "JSON.stringify = () => 'patched';\n"
        "return typeof leftover;",
    )
    assert first.result == "string"
    second = await run_ok(
        toolbox,
        "return [typeof globalThis.leftover, [].leak === undefined, JSON.stringify({a: 1})]",
    )
    assert second.result == ["undefined", True, '{"a":1}']


async def test_patched_builtins_do_not_break_bridge(toolbox: Toolbox) -> None:
    code = """
JSON.stringify = () => { throw new Error("patched"); };
JSON.parse = () => { throw new Error("patched"); };
Array.prototype.push = () => { throw new Error("patched"); };
Promise.prototype.then = function () { throw new Error("patched"); };
Map.prototype.set = () => { throw new Error("patched"); };
const now = await tools.time.get_current_time({timezone: "Europe/Paris"});
return now.timezone;
"""
    result = await toolbox.execute(code)
    # Patching `then` breaks `await` itself, so the run may fail, but with an
    # error from the code, never by reaching the host.
    if result.ok:
        assert result.result == "Europe/Paris"
    else:
        assert result.error is not None
        assert "patched" in result.error.message
    after = await toolbox.execute("return 1")
    assert after.result == 1


async def test_typescript_features_run(toolbox: Toolbox) -> None:
    code = """
interface Reading<T> {
  label: string;
  value: T;
  unit?: string;
}

type Pair<A, B> = [A, B];

function first<T>(items: readonly T[]): T | undefined {
  return items[0];
}

class Box<T> {
  private readonly items: T[] = [];
  add(item: T): this {
    this.items.push(item);
    return this;
  }
  get size(): number {
    return this.items.length;
  }
}

enum Level { Low, High }

const now = (await tools.time.get_current_time({ timezone: "Asia/Tokyo" })) as {
  timezone: string;
};
const readings: Reading<number>[] = [{ label: "a", value: 1 }, { label: "b", value: 2 }];
const pair: Pair<string, number> = ["x", 1];
const box = new Box<Reading<number>>().add(readings[0]!).add(readings[1]!);
const label = first(readings)!.label;
const total = readings.reduce((sum: number, r) => sum + r.value, 0) satisfies number;
return { zone: now.timezone, label, total, size: box.size, pair, level: Level.High };
"""
    result = await run_ok(toolbox, code)
    assert result.result == {
        "zone": "Asia/Tokyo",
        "label": "a",
        "total": 3,
        "size": 2,
        "pair": ["x", 1],
        "level": 1,
    }


async def test_typescript_error_line_as_written(toolbox: Toolbox) -> None:
    code = """interface A {
  x: number;
}
const a: A = { x: 1 };
throw new TypeError(`bad value ${a.x}`);
"""
    result = await toolbox.execute(code)
    assert result.error is not None
    assert result.error.name == "TypeError"
    assert result.error.message == "bad value 1"
    assert result.error.line == 5
    assert result.error.column == 7


async def test_syntax_error_reports_location(toolbox: Toolbox) -> None:
    result = await toolbox.execute("const a = 1;\nconst b = ;\n")
    assert result.error is not None
    assert result.error.name == "SyntaxError"
    assert result.error.line == 2


async def test_console_formats_objects(toolbox: Toolbox) -> None:
    code = """
console.log("text", 1, true, null, undefined);
console.info({a: [1, {b: "c"}], d: new Map([["k", 1]])});
console.warn([1, 2, 3]);
console.error(new Error("shown"));
const circular: any = {name: "loop"};
circular.self = circular;
console.log(circular);
"""
    result = await run_ok(toolbox, code)
    messages = [(entry.level, entry.message) for entry in result.logs]
    assert messages[0] == ("log", "text 1 true null undefined")
    assert messages[1] == ("info", '{ a: [ 1, { b: "c" } ], d: Map(1) { "k" => 1 } }')
    assert messages[2] == ("warn", "[ 1, 2, 3 ]")
    assert messages[3][0] == "error"
    assert messages[3][1].startswith("Error: shown")
    assert messages[4] == ("log", '{ name: "loop", self: [Circular] }')


async def test_concurrent_calls_all_settle(toolbox: Toolbox) -> None:
    code = """
const zones = ["Europe/Paris", "Asia/Tokyo", "America/Lima", "Africa/Nairobi", "Europe/Oslo"];
const times = await Promise.all(zones.map((timezone) => tools.time.get_current_time({timezone})));
return times.map((t) => t.timezone);
"""
    result = await run_ok(toolbox, code)
    assert result.result == [
        "Europe/Paris",
        "Asia/Tokyo",
        "America/Lima",
        "Africa/Nairobi",
        "Europe/Oslo",
    ]
    assert len(result.calls) == 5


async def test_return_undefined_gives_null(toolbox: Toolbox) -> None:
    result = await run_ok(toolbox, "const x = 1;")
    assert result.result is None


async def test_unawaited_promise_is_deadlock(toolbox: Toolbox) -> None:
    result = await toolbox.execute("await new Promise(() => {});")
    assert result.error is not None
    assert result.error.name == "DeadlockError"


async def test_timers_fire_in_order(toolbox: Toolbox) -> None:
    code = """
const order: number[] = [];
setTimeout(() => order.push(2), 20);
setTimeout(() => order.push(1), 5);
const cancelled = setTimeout(() => order.push(99), 10);
clearTimeout(cancelled);
await new Promise((resolve) => setTimeout(resolve, 40));
return order;
"""
    result = await run_ok(toolbox, code)
    assert result.result == [1, 2]


async def test_pagination_and_awkward_names(tmp_path: Path) -> None:
    config = {"mcpServers": {"paged-server": {"command": sys.executable, "args": [str(PAGED)]}}}
    async with Toolbox(parse_config(config)) as toolbox:
        declaration = toolbox.declaration
        assert "namespace tools.paged_server" in declaration
        assert declaration.count("function tool_") == 24
        assert "function delete_(" in declaration
        result = await run_ok(
            toolbox,
            "return [await tools.paged_server.tool_22(), await tools.paged_server.delete_(),"
            " await tools.paged_server.tool_with_dots()]",
        )
    assert result.result == [22, 23, 24]
    assert [call.tool for call in result.calls] == ["tool-22", "delete", "tool.with.dots"]
