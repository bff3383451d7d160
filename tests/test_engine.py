"""Engine batches: results in order with one wake-up, and abandoning a busy isolate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from py_mini_racer import JSEvalException, JSParseException

from isobind._errors import SandboxError
from isobind._sandbox import _Isolate

pytestmark = pytest.mark.anyio


@pytest.fixture
async def isolate() -> AsyncIterator[_Isolate]:
    created = await _Isolate.create()
    try:
        yield created
    finally:
        await created.close()


async def test_batch_returns_last_result(isolate: _Isolate) -> None:
    batch = isolate.submit(["globalThis.x = 20", "x += 1", "x * 2"])
    assert await batch.last == 42
    assert [(index, value, error) for index, value, error in batch.quiet_results()] == [
        (0, 20, None),
        (1, 21, None),
    ]


async def test_batch_sources_see_earlier_microtasks(isolate: _Isolate) -> None:
    batch = isolate.submit(
        ["globalThis.seen = []; Promise.resolve().then(() => seen.push(1))", "seen.length"]
    )
    assert await batch.last == 1


async def test_batch_reports_quiet_failures_in_order(isolate: _Isolate) -> None:
    batch = isolate.submit(["throw new Error('first')", "1 +", "3"])
    assert await batch.last == 3
    results = batch.quiet_results()
    assert [index for index, _, _ in results] == [0, 1]
    assert isinstance(results[0][2], JSEvalException)
    assert "first" in str(results[0][2])
    assert isinstance(results[1][2], JSParseException)


async def test_batch_notifies_chosen_task(isolate: _Isolate) -> None:
    batch = isolate.submit(["'configured'", "'code'", "'poll'"], notify_index=0)
    assert batch.notified is not None
    assert await batch.notified == "configured"
    assert await batch.last == "poll"
    assert [index for index, _, _ in batch.quiet_results()] == [1]


async def test_batch_last_failure_raises(isolate: _Isolate) -> None:
    batch = isolate.submit(["1", "throw new TypeError('last')"])
    with pytest.raises(JSEvalException, match="last"):
        await batch.last


async def test_abandoned_batch_breaks_isolate(isolate: _Isolate) -> None:
    batch = isolate.submit(["for (;;) {}", "1"])
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await asyncio.shield(batch.last)
    isolate.abandon(batch)
    assert batch.last.cancelled()
    with pytest.raises(SandboxError, match="abandoned"):
        isolate.submit(["1"])


async def test_empty_batch_rejected(isolate: _Isolate) -> None:
    with pytest.raises(ValueError, match="at least one source"):
        isolate.submit([])
