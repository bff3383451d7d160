"""A worker killed by a signal is reported with the signal, not as if it had exited.

When a worker dies during a run, the run's WorkerCrashedError and the pool's
log give the reason "it exited", whatever ended the process. An operator
cannot tell a worker that the kernel's OOM killer or an administrator ended
with SIGKILL from one that exited by itself. The reason should name the
signal (or the exit status).
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from isobind import SandboxSettings, Toolbox

from .killed_workers import (  # the fixture is autouse: importing it applies it here
    KILLED_WORKER_MARKS,
    collect_killed_transports,  # noqa: F401
)

# The killed worker's transport is left to the garbage collector.
pytestmark = [
    pytest.mark.anyio,
    *KILLED_WORKER_MARKS,
]


async def test_sigkill_named_in_crash_error() -> None:
    async with Toolbox(sandbox=SandboxSettings(workers=1)) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        assert toolbox._pool is not None
        victim = toolbox._pool.worker_pids[0]
        run = asyncio.create_task(
            toolbox.execute("await new Promise((resolve) => setTimeout(resolve, 3000))")
        )
        await asyncio.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        result = await run

    assert result.error is not None
    assert result.error.name == "WorkerCrashedError", result.error
    message = result.error.message
    assert "SIGKILL" in message or "signal 9" in message, message
