"""The worker pool: runs in worker processes, crashes and kills fail only their runs."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest

from isobind import FunctionTools, SandboxSettings, Toolbox

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
