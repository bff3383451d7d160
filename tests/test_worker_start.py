"""A worker that fails to start: the error's wording and the first run.

When a worker does not report ready within `start_timeout`, the error reads
"did not start: " and stops there, because the text of a `TimeoutError` is
empty. When one of two workers dies while starting, the first `execute`
raises SandboxError although the other worker started and could run it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from isobind import SandboxError, SandboxSettings, Toolbox

from .killed_workers import (  # the fixture is autouse: importing it applies it here
    KILLED_WORKER_MARKS,
    child_pids,
    collect_killed_transports,  # noqa: F401
)

# The killed worker's transport is left to the garbage collector.
pytestmark = [
    pytest.mark.anyio,
    *KILLED_WORKER_MARKS,
]


async def test_start_timeout_message_names_cause() -> None:
    settings = SandboxSettings(workers=1, start_timeout=0.05)
    async with Toolbox(sandbox=settings) as toolbox:
        with pytest.raises(SandboxError) as caught:
            await toolbox.execute("return 1")

    message = str(caught.value)
    assert not message.rstrip().endswith(":"), f"the message has no cause: {message!r}"
    assert "0.05" in message, f"the message does not name the start timeout: {message!r}"


async def test_one_worker_dead_at_start_spares_run() -> None:
    before = child_pids()
    async with Toolbox(sandbox=SandboxSettings(workers=2)) as toolbox:
        first = asyncio.create_task(toolbox.execute("return 'first'"))
        deadline = time.monotonic() + 10
        started: set[int] = set()
        while not started and time.monotonic() < deadline:
            started = child_pids() - before
            await asyncio.sleep(0.001)
        assert started, "no worker process appeared"
        os.kill(min(started), signal.SIGKILL)

        result = await first

    assert result.result == "first", result.error
