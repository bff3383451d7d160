"""The worker pool under attack: busy runs, closing with runs in flight, hung workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest

from isobind import FunctionTools, SandboxSettings, Toolbox
from isobind._errors import ClosedError
from isobind._result import ExecutionResult
from isobind._sandbox import Limits

from .killed_workers import (  # the fixture is autouse: importing it applies it here
    KILLED_WORKER_MARKS,
    child_pids,
    collect_killed_transports,  # noqa: F401
)

# A worker the pool kills may leave its subprocess transport to the garbage
# collector (test_close_after_kill_reaps_workers checks the processes), so its
# ResourceWarning must not fail the test that caused the kill.
pytestmark = [
    pytest.mark.anyio,
    *KILLED_WORKER_MARKS,
]


async def nap(ms: int) -> int:
    """Sleep for `ms` milliseconds on the host and return `ms`."""
    await asyncio.sleep(ms / 1000)
    return ms


def nap_tools() -> list[FunctionTools]:
    return [FunctionTools("t", [nap], read_only=True)]


async def test_busy_run_starves_other_runs() -> None:
    # One run spinning in its first engine step must not hold back the
    # isolates that other runs on the same worker need.
    settings = SandboxSettings(workers=1)
    async with Toolbox(sandbox=settings, limits=Limits(timeout=30)) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        busy = asyncio.create_task(toolbox.execute("while (true) {}"))
        await asyncio.sleep(0.5)
        try:
            results = await asyncio.gather(
                *(toolbox.execute("return 7", timeout=3) for _ in range(80))
            )
        finally:
            busy.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await busy
        failed = [result.error.name for result in results if result.error is not None]
        assert failed == []
        assert [result.result for result in results] == [7] * 80


def closed_outcome(task: asyncio.Task[ExecutionResult]) -> str:
    """Return the error name a run reported, or the class of the exception it raised."""
    error = task.exception()
    if error is not None:
        return type(error).__name__
    result = task.result()
    return result.error.name if result.error is not None else "ok"


# What a run in flight may report when its Toolbox closes: it finished, it
# received ClosedError or Cancelled, or it lost its worker.
CLOSED_OUTCOMES = {"ok", "ClosedError", "Cancelled", "WorkerCrashedError"}


async def test_close_ends_waiting_runs_at_once() -> None:
    toolbox = Toolbox(sandbox=SandboxSettings(workers=1), limits=Limits(timeout=20))
    await toolbox.open()
    assert (await toolbox.execute("return 0")).ok
    tasks = [asyncio.create_task(toolbox.execute("return 3")) for _ in range(30)]
    await asyncio.sleep(0)
    await toolbox.aclose()

    _, pending = await asyncio.wait(tasks, timeout=5)
    for task in pending:
        task.cancel()
    assert len(pending) == 0, "runs in flight waited for their timeout after the close"
    outcomes = {closed_outcome(task) for task in tasks}
    assert outcomes <= CLOSED_OUTCOMES


async def test_close_busy_run_not_syntax_error() -> None:
    toolbox = Toolbox(sandbox=SandboxSettings(workers=1), limits=Limits(timeout=20))
    await toolbox.open()
    assert (await toolbox.execute("return 0")).ok
    busy = asyncio.create_task(toolbox.execute("while (true) {}"))
    await asyncio.sleep(0.5)
    await toolbox.aclose()

    async with asyncio.timeout(5):
        await asyncio.wait([busy])
    assert closed_outcome(busy) in CLOSED_OUTCOMES


async def test_stopped_worker_fails_next_run() -> None:
    # A worker stopped while its run waits for a tool call: the run ends at
    # its time limit, and the run after it must not inherit the hung worker.
    settings = SandboxSettings(workers=1, kill_grace=1.0)
    async with Toolbox(
        functions=nap_tools(), sandbox=settings, limits=Limits(timeout=2)
    ) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        assert toolbox._pool is not None
        victim = toolbox._pool.worker_pids[0]
        waiting = asyncio.create_task(toolbox.execute("return await tools.t.nap({ms: 5000})"))
        await asyncio.sleep(0.5)
        os.kill(victim, signal.SIGSTOP)
        try:
            stopped = await waiting
            assert stopped.error is not None
            assert stopped.error.name == "TimeLimitExceeded"

            after = await toolbox.execute("return 5")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGCONT)
        assert after.error is None, f"a run of `return 5` failed: {after.error}"
        assert after.result == 5


async def test_cancel_during_start_spares_others() -> None:
    async with Toolbox(sandbox=SandboxSettings(workers=2)) as toolbox:
        assert toolbox._pool is not None
        tasks = [asyncio.create_task(toolbox.execute(f"return {index}")) for index in range(5)]
        for _ in range(10_000):
            if toolbox._pool._starting:
                break
            await asyncio.sleep(0.001)
        assert toolbox._pool._starting, "the pool did not start its workers"
        tasks[0].cancel()
        outcomes = await asyncio.gather(*tasks[1:], return_exceptions=True)

        cancelled = [item for item in outcomes if isinstance(item, asyncio.CancelledError)]
        assert cancelled == [], "runs nobody cancelled were cancelled with the first"
        values = [item.result for item in outcomes if isinstance(item, ExecutionResult)]
        assert values == [1, 2, 3, 4]
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[0]


async def test_execute_after_close_raises() -> None:
    # A control that passes today: a closed Toolbox raises ClosedError for a new run.
    toolbox = Toolbox(sandbox=SandboxSettings(workers=1))
    await toolbox.open()
    await toolbox.aclose()
    with pytest.raises(ClosedError):
        await toolbox.execute("return 1")


async def test_close_after_kill_reaps_workers() -> None:
    # The pool kills a worker whose frame is over the limit and starts a
    # replacement. A close right after must leave no worker process behind.
    toolbox = Toolbox(sandbox=SandboxSettings(workers=1), limits=Limits(timeout=30))
    await toolbox.open()
    assert (await toolbox.execute("return 0")).ok
    result = await toolbox.execute("return '\\u00e9'.repeat(45_000_000)")
    assert result.error is not None
    await toolbox.aclose()

    assert child_pids(b"isobind._worker") == set()


async def test_many_idle_runs_keep_worker() -> None:
    # Each isolate has its own thread with an 8 MiB stack, and the worker's
    # VmData grows by about 10 MB per waiting run, against an RLIMIT_DATA of
    # 2048 MiB over its start-up size. About 210 runs that only wait on a
    # timer make the worker exit with nothing on its stderr.
    code = "await new Promise((resolve) => setTimeout(resolve, 3000)); return 7"
    async with Toolbox(sandbox=SandboxSettings(workers=1), limits=Limits(timeout=30)) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        results = await asyncio.gather(*(toolbox.execute(code) for _ in range(240)))

    failed = {result.error.name for result in results if result.error is not None}
    assert failed == set()
    assert [result.result for result in results] == [7] * 240
