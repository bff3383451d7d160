"""A large result under a large heap limit ends its own run, not its worker.

`Limits.memory_mb` (and `isobind exec --memory-mb`, which takes up to
65536) sets the V8 heap limit, but the worker process is capped by
`SandboxSettings.worker_memory_mb` (RLIMIT_DATA, 2048 MiB by default).
Returning a 300 MB string is within a 1 GiB heap, but serialising it for the
host (far past `max_result_bytes`) could make V8 fail to allocate outside
its heap, which aborts the worker. The prelude checks a string's size before
serialising it, so the run ends with ResultTooLargeError and the other runs
on the worker go on.
"""

from __future__ import annotations

import asyncio

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

NEIGHBOUR = "await new Promise((resolve) => setTimeout(resolve, 3000)); return 'neighbour';"


@pytest.mark.parametrize("memory_mb", [1024, 4096])
async def test_large_heap_result_spares_worker(memory_mb: int) -> None:
    limits = Limits(timeout=60, memory_mb=memory_mb)
    async with Toolbox(sandbox=SandboxSettings(workers=1), limits=limits) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        neighbour = asyncio.create_task(toolbox.execute(NEIGHBOUR))
        await asyncio.sleep(0.3)

        result = await toolbox.execute("return 'x'.repeat(300_000_000)")
        other = await neighbour
        after = await toolbox.execute("return 'next'")

    assert result.error is not None
    assert result.error.name in ("ResultTooLargeError", "MemoryLimitExceeded"), result.error
    assert other.error is None, f"the other run on the worker failed: {other.error}"
    assert after.result == "next"
