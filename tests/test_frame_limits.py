"""Text that grows past the channel's frame limit: only its own run fails.

A result or tool reply travels as JSON inside JSON, so escaping can make its
frame several times its length. A run's own limits (heap, result size) allow
text whose frame passes `MAX_FRAME_BYTES`. That run must fail with a named
error, and the other runs on its worker must go on.
"""

from __future__ import annotations

import asyncio

import pytest

from isobind import FunctionTools, SandboxSettings, Toolbox
from isobind._sandbox import Limits

from .killed_workers import (  # the fixture is autouse: importing it applies it here
    KILLED_WORKER_MARKS,
    collect_killed_transports,  # noqa: F401
)

# A worker the pool kills may leave its subprocess transport to the garbage
# collector, so its ResourceWarning must not fail the test that caused the
# kill. test_close_after_kill_reaps_workers in test_pool_faults.py checks
# that no worker process is left behind.
pytestmark = [
    pytest.mark.anyio,
    *KILLED_WORKER_MARKS,
]


NEIGHBOUR = "await new Promise((resolve) => setTimeout(resolve, 3000)); return 'neighbour';"


def accented(count: int) -> str:
    """Return `count` copies of U+00E9, one byte each in V8 and in Python."""
    return "\u00e9" * count


async def test_large_result_is_result_too_large() -> None:
    # 45 M characters of JSON is over the 16 M result limit, and one byte
    # each in the isolate, but 270 MB in the frame that carries the poll.
    async with Toolbox(sandbox=SandboxSettings(workers=1), limits=Limits(timeout=30)) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        neighbour = asyncio.create_task(toolbox.execute(NEIGHBOUR))
        await asyncio.sleep(0.3)
        result = await toolbox.execute("return '\\u00e9'.repeat(45_000_000)")
        other = await neighbour

    assert result.error is not None
    assert result.error.name == "ResultTooLargeError"
    assert other.error is None, f"the other run on the worker failed: {other.error}"
    assert other.result == "neighbour"


async def test_large_tool_reply_spares_worker() -> None:
    # A reply of 22 M characters fits the 128 MiB heap, but its deliver frame is 13 bytes
    # per character, over the worker's 256 MiB frame limit.
    tools = FunctionTools("t", [accented], read_only=True)
    settings = SandboxSettings(workers=1)
    async with Toolbox(functions=[tools], sandbox=settings, limits=Limits(timeout=30)) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        neighbour = asyncio.create_task(toolbox.execute(NEIGHBOUR))
        await asyncio.sleep(0.3)
        result = await toolbox.execute(
            "const text = await tools.t.accented({count: 22_000_000}); return text.length"
        )
        other = await neighbour

    assert result.error is None or result.error.name != "WorkerCrashedError", result.error
    assert other.error is None, f"the other run on the worker failed: {other.error}"
    assert other.result == "neighbour"


async def test_large_code_spares_worker() -> None:
    # 46 M characters of code in a comment: 6 bytes each once escaped in the
    # batch frame, so 276 MB, and the worker exits on its frame limit.
    code = "// " + accented(46_000_000) + "\nreturn 1"
    async with Toolbox(sandbox=SandboxSettings(workers=1), limits=Limits(timeout=30)) as toolbox:
        assert (await toolbox.execute("return 0")).ok
        neighbour = asyncio.create_task(toolbox.execute(NEIGHBOUR))
        await asyncio.sleep(0.3)
        result = await toolbox.execute(code)
        other = await neighbour

    assert result.error is None or result.error.name != "WorkerCrashedError", result.error
    assert other.error is None, f"the other run on the worker failed: {other.error}"
    assert other.result == "neighbour"
