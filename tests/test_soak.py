"""Soak: many executions with binding calls leave file descriptors, threads and memory flat.

The suite runs 10,000 executions after a warm-up of 2,000; `ISOBIND_SOAK_RUNS=N`
changes the count.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import pytest

from isobind import FunctionTools, SandboxSettings, Toolbox

pytestmark = pytest.mark.anyio

RUNS = int(os.environ.get("ISOBIND_SOAK_RUNS", "10000"))
CONCURRENCY = 8
# Growth allowed between the warm-up and the end, in MiB of resident memory:
# allocator caches and V8's code space settle in steps of a few MiB.
MEMORY_SLACK_MIB = 24
# Threads that may appear without a leak: asyncio's default executor grows on
# demand to min(32, CPUs + 4) threads, and an isolate still closing in the
# background, or prepared for the next run, holds one more each.
THREAD_SLACK = min(32, (os.cpu_count() or 1) + 4) + 2


async def double(value: int) -> int:
    """Return twice `value`."""
    # Async, so the host starts no threads for it: a sync tool would run on
    # anyio's worker threads, whose pool grows with load and shrinks when idle.
    return value * 2


@dataclass(frozen=True)
class Usage:
    fds: int
    threads: int
    rss_mib: float


def usage(pid: int) -> Usage:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    rss_kib = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    return Usage(fds, threads, rss_kib / 1024)


async def run_batch(toolbox: Toolbox, count: int) -> None:
    code = (
        "const a = await tools.t.double({value: 21});\n"
        "const [b, c] = await Promise.all([tools.t.double({value: a}), "
        "tools.t.double({value: 1})]);\n"
        "console.log(b, c);\nreturn {a, b, c, text: 'x'.repeat(1000)};"
    )
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with semaphore:
            result = await toolbox.execute(code)
        assert result.ok, result.error
        assert result.result["b"] == 84

    await asyncio.gather(*(one() for _ in range(count)))


# About 100 s on a loaded 2-core machine; the suite's default of 120 s per test is too tight.
@pytest.mark.timeout(900)
async def test_soak_stays_flat() -> None:
    tools = FunctionTools("t", [double], read_only=True)
    async with Toolbox(functions=[tools], sandbox=SandboxSettings(workers=2)) as toolbox:
        assert toolbox._pool is not None
        warm_up = max(100, RUNS // 5)
        await run_batch(toolbox, warm_up)
        pids = [os.getpid(), *toolbox._pool.worker_pids]
        before = {pid: usage(pid) for pid in pids}

        await run_batch(toolbox, RUNS)

        assert toolbox._pool.worker_pids == pids[1:], "a worker was replaced during the soak"
        after = {pid: usage(pid) for pid in pids}
    for pid in pids:
        label = "host" if pid == os.getpid() else f"worker {pid}"
        assert after[pid].fds <= before[pid].fds, f"{label}: {before[pid]} -> {after[pid]}"
        assert after[pid].threads <= before[pid].threads + THREAD_SLACK, (
            f"{label}: {before[pid]} -> {after[pid]}"
        )
        growth = after[pid].rss_mib - before[pid].rss_mib
        assert growth < MEMORY_SLACK_MIB, f"{label}: {before[pid]} -> {after[pid]}"
