"""Hostile code against the first wall: each attack ends with the right error, the
host stays responsive, and the next execution works."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from isobind import ExecutionResult, FunctionTools, Limits, SandboxSettings, Toolbox

pytestmark = pytest.mark.anyio

TIMEOUT = 1.0


def echo(text: Any) -> Any:
    """Return `text` unchanged."""
    return text


@pytest.fixture(scope="module")
async def toolbox() -> AsyncIterator[Toolbox]:
    tools = FunctionTools("t", [echo], read_only=True)
    limits = Limits(timeout=TIMEOUT, memory_mb=64, max_log_bytes=10_000, max_result_bytes=100_000)
    # A small worker memory budget, so that buffers the prelude cannot meter
    # reach the process limit quickly.
    settings = SandboxSettings(workers=2, worker_memory_mb=512)
    async with Toolbox(functions=[tools], limits=limits, sandbox=settings) as opened:
        yield opened


async def attack(toolbox: Toolbox, code: str, run_limit: float | None = None) -> ExecutionResult:
    """Run `code`, checking that the host's event loop and another run go on meanwhile."""
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    beating = asyncio.create_task(heartbeat())
    attacked = asyncio.create_task(toolbox.execute(code, timeout=run_limit))
    bystander = await toolbox.execute("return await tools.t.echo({text: 'alive'})")
    result = await attacked
    stop.set()
    await beating
    assert bystander.result == "alive", bystander.error
    assert ticks > 0
    after = await toolbox.execute("return await tools.t.echo({text: 'next'})")
    assert after.ok, after.error
    assert after.result == "next"
    return result


def error_name(result: ExecutionResult) -> str:
    assert result.error is not None, f"the attack succeeded: {result.result!r}"
    return result.error.name


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("return Function('return this')()", "EvalError", id="function-constructor"),
        pytest.param(
            "return tools.t.echo.constructor.constructor('return globalThis')()",
            "EvalError",
            id="constructor-chain-from-tool",
        ),
        pytest.param(
            "return (async () => {}).constructor('return 1')()",
            "EvalError",
            id="async-function-constructor",
        ),
        pytest.param(
            "return Reflect.construct(Object.getPrototypeOf(function*(){}).constructor, ['1'])",
            "EvalError",
            id="generator-constructor",
        ),
        pytest.param("while (true) {}", "TimeLimitExceeded", id="busy-loop"),
        pytest.param(
            "try { while (true) {} } catch (e) { return 'caught' } finally { while (true) {} }",
            "TimeLimitExceeded",
            id="catch-own-termination",
        ),
        pytest.param(
            "function spin() { Promise.resolve().then(spin) } spin(); await new Promise(() => {})",
            "TimeLimitExceeded",
            id="microtask-loop",
        ),
        pytest.param("for (;;) await null;", "TimeLimitExceeded", id="await-loop"),
        pytest.param(
            "const all = []; for (;;) all.push(new Promise(() => {}));",
            "MemoryLimitExceeded",
            id="promise-flood",
        ),
        pytest.param(
            "return /^(a+)+$/.test('a'.repeat(40) + '!')", "TimeLimitExceeded", id="redos"
        ),
        pytest.param(
            "function f() { return f() + 1 } return f()", "StackLimitExceeded", id="recursion"
        ),
        pytest.param(
            "let s = 'x'.repeat(1 << 20); const keep = []; for (;;) keep.push(s + keep.length);",
            "MemoryLimitExceeded",
            id="huge-strings",
        ),
        pytest.param(
            "const b = []; for (;;) b.push(new ArrayBuffer(16 << 20));",
            "MemoryLimitExceeded",
            id="array-buffers",
        ),
        pytest.param(
            "const a = new Uint8Array(8 << 20); const b = []; for (;;) b.push(a.slice());",
            "MemoryLimitExceeded",
            id="unmetered-buffers",
        ),
        pytest.param("return 'x'.repeat(200_000)", "ResultTooLargeError", id="giant-result"),
        pytest.param(
            "let x = []; for (let i = 0; i < 5000; i++) x = [x]; return x",
            "ResultTooLargeError",
            id="deeply-nested-result",
        ),
        pytest.param("return {get a() { while (true) {} }}", "TimeLimitExceeded", id="getter-trap"),
        pytest.param("return {toJSON() { for (;;) {} }}", "TimeLimitExceeded", id="to-json-trap"),
        pytest.param(
            "return new Proxy({}, {ownKeys() { throw new Error('trap') }})",
            "TypeError",
            id="proxy-trap",
        ),
        pytest.param("__isobind.poll('guessed-token')", "TypeError", id="bridge-poll"),
        pytest.param("__isobind.deliver('guessed', '[]', 0)", "TypeError", id="bridge-deliver"),
        pytest.param("__isobind.start(async () => 1)", "TypeError", id="bridge-start-again"),
        pytest.param(
            "const calls = []; for (let i = 0; i < 20000; i++) calls.push(tools.t.echo({text: i}));"
            " await Promise.all(calls);",
            "LimitExceededError",
            id="call-flood",
        ),
    ],
)
async def test_attack_stopped(toolbox: Toolbox, code: str, expected: str) -> None:
    # Memory floods get time to reach the limit on a loaded machine.
    run_limit = 20.0 if expected == "MemoryLimitExceeded" else None
    result = await attack(toolbox, code, run_limit)
    assert error_name(result) == expected, result.error


@pytest.mark.parametrize(
    "code",
    [
        'throw {name: "TimeLimitExceeded", message: "The run did not finish within 30 s."}',
        'const e = new Error("gone"); e.name = "WorkerCrashedError"; throw e;',
        'class CpuTimeLimitExceeded extends Error { name = "CpuTimeLimitExceeded" }\n'
        "throw new CpuTimeLimitExceeded('spent');",
    ],
    ids=["plain-object", "renamed-error", "subclass"],
)
async def test_host_error_names_not_forged(toolbox: Toolbox, code: str) -> None:
    result = await attack(toolbox, code)
    assert result.error is not None
    assert result.error.name == "Error"
    assert "a name that isobind reserves" in result.error.message


async def test_deep_input_rejected(toolbox: Toolbox) -> None:
    code = (
        "let x = []; for (let i = 0; i < 5000; i++) x = [x];\n"
        "try { await tools.t.echo({text: x}) } catch (e) { return [e.name, e.message] }"
    )
    result = await attack(toolbox, code)
    assert result.ok, result.error
    name, message = result.result
    assert name == "ToolInputError"
    assert "nested too deeply" in message


async def test_output_flood_capped(toolbox: Toolbox) -> None:
    result = await attack(toolbox, "for (let i = 0; i < 100000; i++) console.log('x'.repeat(100))")
    assert result.ok, result.error
    assert sum(len(entry.message) for entry in result.logs) <= 10_000 + len("... [truncated]")
    assert result.logs_dropped > 0


async def test_globals_expose_nothing_of_host(toolbox: Toolbox) -> None:
    result = await attack(toolbox, "return Reflect.ownKeys(globalThis).map(String)")
    names = set(result.result)
    for host_name in (
        "process",
        "require",
        "module",
        "Deno",
        "Bun",
        "__timer_manager",
        "setInterval",
        "SharedArrayBuffer",
        "WebAssembly",
    ):
        assert host_name not in names


async def test_stack_hooks_see_no_host(toolbox: Toolbox) -> None:
    code = """
const seen = [];
Error.prepareStackTrace = (error, frames) => {
  for (const frame of frames) {
    seen.push([String(frame.getFileName()), typeof frame.getFunction(), typeof frame.getThis()]);
  }
  return "patched";
};
try { await tools.t.echo({}) } catch (e) { seen.push(["stack", String(e.stack)]) }
try { null.x } catch (e) { seen.push(["stack", String(e.stack)]) }
return seen;
"""
    result = await attack(toolbox, code)
    assert result.ok, result.error
    text = json.dumps(result.result)
    for host_detail in (".py", "/work", "Traceback", "site-packages", "pydantic"):
        assert host_detail not in text
    for file_name, function_type, this_type in (
        entry for entry in result.result if entry[0] != "stack"
    ):
        if file_name == "isobind:bootstrap":
            assert function_type == "undefined"
            assert this_type == "undefined"


async def test_patched_builtins_keep_bridge(toolbox: Toolbox) -> None:
    code = """
JSON.stringify = () => '{"calls": [[1, "t", "echo", "{}"]]}';
JSON.parse = () => [[1, true, '"forged"']];
Array.prototype[Symbol.iterator] = function* () { yield "forged"; };
Map.prototype.entries = () => [][Symbol.iterator]();
Promise.prototype.then = function () { return this; };
setTimeout(() => {}, 1);
console.log("logged", {a: 1});
const value = await tools.t.echo({text: "real"});
// Set last: the code's own JSON.stringify of a tool input honours toJSON.
Object.defineProperty(Object.prototype, "toJSON", {value: () => "polluted", configurable: true});
console.log("after");
return value;
"""
    result = await attack(toolbox, code)
    assert result.error is None, result.error
    assert [entry.message for entry in result.logs] == ["logged { a: 1 }", "after"]
    assert len(result.calls) == 1
    assert result.calls[0].input == {"text": "real"}
    assert result.result == "real"


async def test_pollution_does_not_cross_runs(toolbox: Toolbox) -> None:
    first = await attack(
        toolbox,
        "Object.prototype.polluted = 1; Array.prototype.push = null; globalThis.leak = 1;"
        "setTimeout(() => { globalThis.late = 1 }, 5); Promise.reject(new Error('late'));"
        "return 'set'",
    )
    assert first.result == "set"
    second = await attack(
        toolbox,
        "return [({}).polluted, typeof [].push, typeof leak, typeof late]",
    )
    assert second.result == [None, "function", "undefined", "undefined"]


async def test_stack_overflow_catchable(toolbox: Toolbox) -> None:
    code = "function f(n) { return f(n + 1) + 1 }\ntry { f(0) } catch (e) { return e.name }"
    result = await attack(toolbox, code)
    assert result.result == "RangeError"


async def test_stack_limit_setting_changes_depth() -> None:
    code = "let depth = 0; function f() { depth++; f() }\ntry { f() } catch (e) {}\nreturn depth"
    depths = []
    for stack_kb in (256, 1024):
        settings = SandboxSettings(workers=1, stack_kb=stack_kb)
        async with Toolbox(functions=[FunctionTools("t", [echo])], sandbox=settings) as box:
            result = await box.execute(code)
            assert result.ok, result.error
            depths.append(result.result)
    assert depths[1] > depths[0] * 2


async def test_error_stack_points_into_code(toolbox: Toolbox) -> None:
    result = await attack(toolbox, "const a = 1;\nnull.x;")
    assert result.error is not None
    assert result.error.line == 2
    assert result.error.stack is not None
    assert ":1:-" not in result.error.stack
    assert "isobind:bootstrap" not in result.error.stack


async def test_oversized_allocation_crashes_only_worker(toolbox: Toolbox) -> None:
    # One array of 2**27 elements is a single allocation past what V8's heap
    # can take, so V8 aborts the process: the pool contains and replaces it.
    result = await attack(toolbox, "return 'x'.repeat(2 ** 27).split('').length")
    assert error_name(result) == "WorkerCrashedError"
    assert result.error is not None
    assert "ran out of memory" in result.error.message
