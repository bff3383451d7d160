"""Sandbox figures through the public API, side by side with raw mini-racer in one run.

Run from the repository root (after `pip install -e .`):

    python bench/bench_sandbox.py [--runs N] [--workers N] [--no-pin]

Prints medians and ratios. Every figure comes from this one run, so load on
a shared machine slows the baseline and isobind alike; compare the ratios.
The tools are Python functions that return at once, so a binding call's
figure is isobind's own overhead. "Request to first statement" reads the
worker's CLOCK_MONOTONIC stamp from the private `WorkerPool.run`, because
the public result does not carry it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from py_mini_racer import MiniRacer

from isobind import FunctionTools, Limits, SandboxSettings, Toolbox
from isobind._sandbox import CallReply, CallRequest

SEQUENTIAL_CALLS = 20
CONCURRENT_CALLS = 1000
TRIVIAL_EXECUTIONS = 400
IDLE_ISOLATES = 40
# Seconds between requests for the spaced "first statement" figure: the
# preparation of two isolates takes about 6 ms of CPU on the 2-core machine.
FIRST_STATEMENT_GAP = 0.02


async def ping() -> int:
    """Return 1 at once."""
    return 1


def raw_cycle() -> None:
    with MiniRacer() as racer:
        racer.eval("1")


Action = Callable[[], Awaitable[object]]


async def interleaved_medians(actions: dict[str, Action], runs: int) -> dict[str, float]:
    """Time every action once per round, so that machine load hits them all alike."""
    samples: dict[str, list[float]] = {name: [] for name in actions}
    warm_up = max(5, runs // 10)
    for round_number in range(runs + warm_up):
        for name, action in actions.items():
            started = time.perf_counter()
            await action()
            elapsed = (time.perf_counter() - started) * 1000
            if round_number >= warm_up:
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


async def first_statement_ms(box: Toolbox, runs: int, gap: float = 0.0) -> float:
    """Median milliseconds from the host's request to the code reaching the engine.

    With a `gap` (seconds) before each request, the worker has finished
    preparing its next isolates, as between the turns of a model. Without it,
    each request competes with the preparation the previous run started.
    """
    pool = box._pool
    assert pool is not None

    async def no_calls(request: CallRequest) -> CallReply:
        raise AssertionError(request)

    samples = []
    for _ in range(runs):
        if gap:
            await asyncio.sleep(gap)
        requested = time.monotonic()
        outcome = await pool.run("return 1", api={}, handler=no_calls, limits=Limits())
        assert outcome.code_started is not None
        samples.append((outcome.code_started - requested) * 1000)
    return statistics.median(samples)


async def executions_per_second(box: Toolbox, count: int, concurrency: int) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            result = await box.execute("return 1")
            assert result.ok, result.error

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - started)


IDLE_SCRIPT = """
import asyncio, contextlib, json, sys
from py_mini_racer import MiniRacer
from isobind._sandbox import create_isolate

def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:")) * 1024

async def main(count):
    # One of each first, so that one-off engine start-up is not counted.
    first = await create_isolate()
    raw_first = MiniRacer(); raw_first.eval("1")
    before = rss()
    raws = []
    for _ in range(count):
        racer = MiniRacer(); racer.eval("1"); raws.append(racer)
    raw = (rss() - before) / count
    before = rss()
    prepared = [await create_isolate() for _ in range(count)]
    ours = (rss() - before) / count
    print(json.dumps({"raw": raw, "prepared": ours}))
    for isolate in [first, *prepared]:
        await isolate.close()
    for racer in [raw_first, *raws]:
        racer.close()

asyncio.run(main(int(sys.argv[1])))
"""


def idle_isolate_bytes(count: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", IDLE_SCRIPT, str(count)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(output)
    return figures


async def measure(runs: int, workers: int, *, pin_cpus: bool = True) -> None:
    tools = FunctionTools("bench", [ping], read_only=True)
    sequential = f"for (let i = 0; i < {SEQUENTIAL_CALLS}; i++) await tools.bench.ping();"
    concurrent = (
        f"const calls = []; for (let i = 0; i < {CONCURRENT_CALLS}; i++) "
        "calls.push(tools.bench.ping()); await Promise.all(calls);"
    )
    limits = Limits(max_concurrent_calls=CONCURRENT_CALLS)
    in_workers = SandboxSettings(workers=workers, pin_cpus=pin_cpus)
    in_process = SandboxSettings(mode="inprocess")
    async with (
        Toolbox(functions=[tools], limits=limits, sandbox=in_workers) as pool,
        Toolbox(functions=[tools], limits=limits, sandbox=in_process) as local,
    ):
        await pool.execute("return 0")
        await local.execute("return 0")

        async def raw() -> None:
            raw_cycle()

        def execute(box: Toolbox, code: str) -> Action:
            async def action() -> None:
                result = await box.execute(code)
                assert result.ok, result.error

            return action

        async def upstream() -> Any:
            return await tools.call("ping", {})

        actions: dict[str, Action] = {
            "raw": raw,
            "workers return 1": execute(pool, "return 1"),
            "inprocess return 1": execute(local, "return 1"),
            "workers sequential": execute(pool, sequential),
            "workers concurrent": execute(pool, concurrent),
            "upstream": upstream,
        }
        medians = await interleaved_medians(actions, runs)
        first = await first_statement_ms(pool, runs)
        first_spaced = await first_statement_ms(pool, runs, gap=FIRST_STATEMENT_GAP)
        per_second = await executions_per_second(pool, TRIVIAL_EXECUTIONS, 4 * workers)
    idle = idle_isolate_bytes(IDLE_ISOLATES)

    raw_ms = medians["raw"]
    cold = medians["workers return 1"]
    per_call = (medians["workers sequential"] - cold) / SEQUENTIAL_CALLS
    calls_per_second = CONCURRENT_CALLS / (medians["workers concurrent"] / 1000)
    rows = [
        ("raw mini-racer: create, eval('1'), close", f"{raw_ms:.3f} ms", "1.00x"),
        ("execute('return 1'), workers", f"{cold:.3f} ms", f"{cold / raw_ms:.2f}x"),
        (
            "execute('return 1'), inprocess",
            f"{medians['inprocess return 1']:.3f} ms",
            f"{medians['inprocess return 1'] / raw_ms:.2f}x",
        ),
        ("request to first statement, back to back", f"{first:.3f} ms", ""),
        (
            f"request to first statement, {FIRST_STATEMENT_GAP * 1000:g} ms apart",
            f"{first_spaced:.3f} ms",
            "",
        ),
        ("upstream call's own time", f"{medians['upstream']:.3f} ms", ""),
        (
            "one sequential binding call",
            f"{per_call:.3f} ms",
            f"+{per_call - medians['upstream']:.3f} ms over upstream",
        ),
        (f"{CONCURRENT_CALLS} concurrent calls in one run", f"{calls_per_second:,.0f} calls/s", ""),
        (f"trivial executions, {4 * workers} at a time", f"{per_second:,.0f} /s", ""),
        ("idle raw isolate", f"{idle['raw'] / 2**20:.2f} MiB", "1.00x"),
        (
            "idle prepared isolate (prelude loaded)",
            f"{idle['prepared'] / 2**20:.2f} MiB",
            f"{idle['prepared'] / idle['raw']:.2f}x",
        ),
    ]
    for label, figure, ratio in rows:
        print(f"{label:44} {figure:>18}   {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per figure")
    parser.add_argument("--workers", type=int, default=2, help="worker processes in the pool")
    parser.add_argument(
        "--no-pin", action="store_true", help="let the workers run on any CPU (pin_cpus=False)"
    )
    arguments = parser.parse_args()
    asyncio.run(measure(arguments.runs, arguments.workers, pin_cpus=not arguments.no_pin))


if __name__ == "__main__":
    main()
