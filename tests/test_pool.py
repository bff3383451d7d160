"""The worker pool: runs in worker processes, crashes and kills fail only their runs."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from isobind import FunctionTools, SandboxSettings, Toolbox
from isobind._audit import read_records, verify_log
from isobind._sandbox import CallReply, CallRequest, Limits, run_in_isolate, wait_closed

pytestmark = pytest.mark.anyio


def echo(text: str) -> str:
    """Return `text` unchanged."""
    return text


RELEASE = asyncio.Event()
ALL_WAITING = asyncio.Event()
STARTED = asyncio.Event()
WAITING = [0]
BLOCKED_RUNS = 4


async def wait_for_call() -> str:
    """Wait until the test releases it, so a run stays in flight."""
    WAITING[0] += 1
    if WAITING[0] == BLOCKED_RUNS:
        ALL_WAITING.set()
    await RELEASE.wait()
    return "released"


async def mark_started() -> str:
    """Signal the test that the run has started."""
    STARTED.set()
    return "marked"


@pytest.fixture
async def toolbox() -> AsyncIterator[Toolbox]:
    tools = FunctionTools("t", [echo, wait_for_call, mark_started], read_only=True)
    async with Toolbox(functions=[tools], sandbox=SandboxSettings(workers=2)) as opened:
        yield opened


def pool_pids(toolbox: Toolbox) -> list[int]:
    assert toolbox._pool is not None
    return toolbox._pool.worker_pids


async def test_runs_outside_host_process(toolbox: Toolbox) -> None:
    result = await toolbox.execute("return 40 + 2")
    assert result.ok, result.error
    assert result.result == 42
    pids = pool_pids(toolbox)
    assert len(pids) == 2
    assert os.getpid() not in pids


async def test_binding_calls_cross_process(toolbox: Toolbox) -> None:
    code = "const xs = await Promise.all([1, 2, 3].map(i => tools.t.echo({text: `v${i}`})));\n"
    code += "console.log(xs.join());\nreturn xs;"
    result = await toolbox.execute(code)
    assert result.ok, result.error
    assert result.result == ["v1", "v2", "v3"]
    assert [entry.message for entry in result.logs] == ["v1,v2,v3"]
    assert len(result.calls) == 3


async def test_concurrent_runs_share_workers(toolbox: Toolbox) -> None:
    codes = [f"await tools.t.echo({{text: 'x'}}); return {i}" for i in range(12)]
    results = await asyncio.gather(*(toolbox.execute(code) for code in codes))
    assert [result.result for result in results] == list(range(12))


async def test_killed_worker_fails_only_its_runs(toolbox: Toolbox) -> None:
    RELEASE.clear()
    ALL_WAITING.clear()
    WAITING[0] = 0
    await toolbox.execute("return 0")
    assert toolbox._pool is not None
    victim = pool_pids(toolbox)[0]
    blocked = [
        asyncio.create_task(toolbox.execute("return await tools.t.wait_for_call()"))
        for _ in range(BLOCKED_RUNS)
    ]
    async with asyncio.timeout(10):
        await ALL_WAITING.wait()

    os.kill(victim, signal.SIGKILL)
    # The runs on the killed worker end without the release; the others wait.
    crashed_tasks, _ = await asyncio.wait(blocked, timeout=10, return_when="FIRST_COMPLETED")
    assert crashed_tasks, "no run ended after its worker was killed"
    assert victim not in pool_pids(toolbox)
    RELEASE.set()
    results = await asyncio.gather(*blocked)

    crashed = [result for result in results if not result.ok]
    survived = [result for result in results if result.ok]
    assert crashed, "no run was on the killed worker"
    assert survived, "runs on the other worker failed too"
    for result in crashed:
        assert result.error is not None
        assert result.error.name == "WorkerCrashedError"
        assert "stopped before the run finished" in result.error.message
    for result in survived:
        assert result.result == "released"

    after = await toolbox.execute("return 'healed'")
    assert after.result == "healed"
    async with asyncio.timeout(30):
        await toolbox._pool.start()
    assert len(pool_pids(toolbox)) == 2
    assert victim not in pool_pids(toolbox)


async def test_busy_loop_stopped_by_worker(toolbox: Toolbox) -> None:
    pids = pool_pids(toolbox) or []
    result = await toolbox.execute("while (true) {}", timeout=0.3)
    assert result.error is not None
    assert result.error.name == "TimeLimitExceeded"
    for pid in pids:
        assert pid in pool_pids(toolbox)
    again = await toolbox.execute("return 1")
    assert again.result == 1


async def test_inprocess_mode_runs_in_host() -> None:
    settings = SandboxSettings(mode="inprocess")
    async with Toolbox(functions=[FunctionTools("t", [echo])], sandbox=settings) as box:
        result = await box.execute("return await tools.t.echo({text: 'here'})")
        assert result.result == "here"
        assert box._pool is None


def test_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="mode"):
        SandboxSettings(mode="elsewhere")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers"):
        SandboxSettings(workers=0)


async def test_cancelled_execution_stops_in_worker(toolbox: Toolbox) -> None:
    await toolbox.execute("return 0")
    pids = pool_pids(toolbox)
    STARTED.clear()
    code = "await tools.t.mark_started(); while (true) {}"
    busy = asyncio.create_task(toolbox.execute(code, timeout=60))
    async with asyncio.timeout(10):
        await STARTED.wait()
    busy.cancel()
    with pytest.raises(asyncio.CancelledError):
        await busy
    # Both workers still serve runs: the cancelled isolate was closed, not left spinning.
    results = await asyncio.gather(*(toolbox.execute("return 7") for _ in range(4)))
    assert [result.result for result in results] == [7, 7, 7, 7]
    assert pool_pids(toolbox) == pids


MODES = [pytest.param("workers", id="workers"), pytest.param("inprocess", id="inprocess")]


@pytest.fixture(params=MODES)
async def any_mode(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Toolbox]:
    # A real fault, not a mock: the redactor scrubs discovery replies as JSON
    # text, so this secret turns the reply of `isobind.listServers()` into
    # invalid JSON, and the prelude's deliver step throws a SyntaxError.
    tools = FunctionTools("t", [echo], read_only=True)
    settings = SandboxSettings(mode=request.param, workers=1)
    async with Toolbox(
        functions=[tools],
        sandbox=settings,
        secrets=['"toolCount": 1'],
        audit=tmp_path / "audit.jsonl",
    ) as opened:
        yield opened


async def test_bridge_failure_is_run_error(any_mode: Toolbox) -> None:
    result = await any_mode.execute("return await isobind.listServers()")

    assert not result.ok
    assert result.error is not None
    assert result.error.name == "SandboxError"
    assert "failed outside the code" in result.error.message
    again = await any_mode.execute("return await tools.t.echo({text: 'next'})")
    assert again.result == "next"


async def test_bridge_failure_is_audited(any_mode: Toolbox) -> None:
    result = await any_mode.execute("return await isobind.listServers()")

    assert any_mode.audit is not None
    records = list(read_records(any_mode.audit.path))
    assert verify_log(any_mode.audit.path).records == len(records)
    executions = [record for record in records if record["type"] == "execution"]
    assert len(executions) == 1
    assert executions[0]["executionId"] == result.execution_id
    assert executions[0]["ok"] is False
    assert executions[0]["error"]["name"] == "SandboxError"


async def test_script_level_throw_is_code_error() -> None:
    # Code that closes its wrapper early runs at the script's top level. The
    # TypeScript eraser rejects such code, so the engine is called directly.
    async def no_calls(request: CallRequest) -> CallReply:
        raise AssertionError(request)

    code = "}); throw new RangeError('outside main'); (async function () {"

    outcome = await run_in_isolate(code, api={}, handler=no_calls, limits=Limits())
    # The isolate closes in the background; the test's event loop must outlive that.
    await wait_closed()

    assert outcome.error is not None
    assert outcome.error["name"] == "RangeError"
    assert outcome.error["message"] == "outside main"
    assert outcome.error["line"] == 1


UNSENDABLE_RESULTS = [
    pytest.param("return Symbol('tag')", 'a symbol ("tag")', id="symbol"),
    pytest.param("return Symbol()", "a symbol,", id="symbol-without-description"),
    pytest.param("return function helper() {}", 'a function ("helper")', id="function"),
    pytest.param(
        "return {toJSON() { return undefined; }}",
        "an object whose toJSON method returned no JSON value",
        id="toJSON-undefined",
    ),
]


@pytest.mark.parametrize(("code", "described"), UNSENDABLE_RESULTS)
async def test_unsendable_result_is_named(any_mode: Toolbox, code: str, described: str) -> None:
    result = await any_mode.execute(code)

    assert not result.ok
    assert result.error is not None
    assert result.error.name == "TypeError"
    assert f"The returned value is {described}" in result.error.message
    assert "cannot be sent as JSON data" in result.error.message
    assert "Return a string, number, boolean, null, array or plain object" in (result.error.message)


async def test_undefined_result_stays_null(any_mode: Toolbox) -> None:
    result = await any_mode.execute("return undefined")

    assert result.ok
    assert result.result is None


async def test_changed_limits_reach_prepared_isolates(toolbox: Toolbox) -> None:
    # Workers configure their next isolates with the last run's limits; a run
    # with other limits must not get one of those.
    allocate = "return new ArrayBuffer(48 * 1024 * 1024).byteLength"
    for _ in range(3):
        result = await toolbox.execute(allocate)
        assert result.ok, result.error
    for _ in range(3):
        result = await toolbox.execute(allocate, memory_mb=32)
        assert result.error is not None
        assert result.error.name == "MemoryLimitExceeded"
    result = await toolbox.execute(allocate)
    assert result.ok, result.error
    assert result.result == 48 * 1024 * 1024


async def test_preconfigured_isolate_needs_same_configuration() -> None:
    from isobind._sandbox import configuration_of, create_isolate

    async def no_calls(request: CallRequest) -> CallReply:
        raise AssertionError(request)

    api = {"t": ["echo"]}
    same = await create_isolate(configuration_of(api, Limits()))
    outcome = await run_in_isolate(
        "return typeof tools.t.echo", api=api, handler=no_calls, limits=Limits(), isolate=same
    )
    assert outcome.ok, outcome.error
    assert outcome.result_text == '"function"'
    assert outcome.code_started is not None

    other = await create_isolate(configuration_of(api, Limits()))
    outcome = await run_in_isolate(
        "return 1", api={"u": ["echo"]}, handler=no_calls, limits=Limits(), isolate=other
    )
    assert outcome.error is not None
    assert outcome.error["name"] == "SandboxError"
    await wait_closed()


async def test_closing_pool_ends_runs_in_flight() -> None:
    started = asyncio.Event()

    async def signal_start() -> str:
        """Tell the test that the run has started."""
        started.set()
        return "started"

    tools = FunctionTools("t", [signal_start], read_only=True)
    box = Toolbox(functions=[tools], sandbox=SandboxSettings(workers=1))
    await box.__aenter__()
    code = "await tools.t.signal_start(); while (true) {}"
    run = asyncio.create_task(box.execute(code, timeout=60))
    async with asyncio.timeout(10):
        await started.wait()
    await asyncio.sleep(0.05)

    async with asyncio.timeout(10):
        await box.__aexit__(None, None, None)
        result = await run

    assert result.error is not None
    assert result.error.name == "WorkerCrashedError"
    assert "pool was closed" in result.error.message
