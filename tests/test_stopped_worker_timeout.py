"""A run on a stopped worker reports its time limit on time, not `kill_grace` late.

With `Limits(timeout=2)`, a run whose worker is busy in a loop ends with
TimeLimitExceeded at 2 s. When the worker is stopped (by SIGSTOP, a
debugger or a frozen cgroup), the host kills the worker after waiting
`SandboxSettings.kill_grace` more seconds. The caller gets the error at the
time limit, and the kill finishes in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import pytest

from isobind import Limits, SandboxSettings, Toolbox

from .killed_workers import (  # the fixture is autouse: importing it applies it here
    KILLED_WORKER_MARKS,
    collect_killed_transports,  # noqa: F401
)

# The killed worker's transport is left to the garbage collector.
pytestmark = [
    pytest.mark.anyio,
    *KILLED_WORKER_MARKS,
]


async def test_stopped_worker_times_out_on_time() -> None:
    settings = SandboxSettings(workers=1, kill_grace=5)
    async with Toolbox(sandbox=settings, limits=Limits(timeout=2)) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        assert toolbox._pool is not None
        victim = toolbox._pool.worker_pids[0]
        started = time.monotonic()
        run = asyncio.create_task(
            toolbox.execute("await new Promise((resolve) => setTimeout(resolve, 20_000))")
        )
        await asyncio.sleep(0.3)
        os.kill(victim, signal.SIGSTOP)
        try:
            result = await run
        finally:
            # The host may have killed and reaped the worker already.
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGCONT)
        elapsed = time.monotonic() - started

    assert result.error is not None
    assert result.error.name == "TimeLimitExceeded", result.error
    # 2 s of time limit; the 5 s kill_grace would make it 7 s.
    assert elapsed < 4.5, f"the run reported its 2 s time limit after {elapsed:.1f} s"
