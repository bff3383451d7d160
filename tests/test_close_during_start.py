"""Closing a Toolbox while its workers start ends the waiting runs without cancelling them.

A run in flight when the Toolbox closes after start-up returns an
`ExecutionResult` with WorkerCrashedError ("the sandbox pool was closed while
the run was in flight"), and a run after the close raises ClosedError. A run
that waits for the first workers to start must not end with
`asyncio.CancelledError`, because its caller did not cancel it: callers in a
TaskGroup or under `asyncio.timeout` would read it as their own cancellation.
"""

from __future__ import annotations

import asyncio

import pytest

from isobind import ClosedError, ExecutionResult, SandboxSettings, Toolbox

pytestmark = pytest.mark.anyio


async def test_close_during_start_does_not_cancel() -> None:
    toolbox = Toolbox(sandbox=SandboxSettings(workers=1))
    await toolbox.open()
    run = asyncio.create_task(toolbox.execute("return 1"))
    await asyncio.sleep(0)
    await toolbox.aclose()

    outcome = (await asyncio.gather(run, return_exceptions=True))[0]

    assert not run.cancelled(), "closing the Toolbox cancelled a run nobody cancelled"
    assert isinstance(outcome, (ExecutionResult, ClosedError)), repr(outcome)
