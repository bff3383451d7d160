"""A worker that fails to start: the error's wording and the first run.

When a worker does not report ready within `start_timeout`, the error reads
"did not start: " and stops there, because the text of a `TimeoutError` is
empty. When one of two workers dies while starting, the first `execute`
raises SandboxError although the other worker started and could run it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from isobind import SandboxError, SandboxSettings, Toolbox

# The killed worker's transport is left to the garbage collector.
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def collect_killed_transports() -> Iterator[None]:
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def child_pids() -> set[int]:
    """Return the ids of this process's child processes, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(entry.name))
    return found


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
