"""Cost of an execution and of a binding call, side by side with raw mini-racer.

Run from the repository root (after `pip install -e .`):

    python bench/bench_execute.py [--runs N]

Prints medians in milliseconds and ratios. Every figure comes from this one
run, so a busy machine slows the baseline and isobind alike; compare ratios,
not absolute times. The tools are Python functions (`FunctionTools`) that
return at once, so a binding call's figure is isobind's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from py_mini_racer import MiniRacer

from isobind import FunctionTools, Toolbox

SEQUENTIAL_CALLS = 20


def ping() -> int:
    """Return 1 at once."""
    return 1


def make_tools(count: int) -> FunctionTools:
    functions: list[Callable[[], int]] = []
    for index in range(count):

        def tool() -> int:
            return 1

        tool.__name__ = f"tool_{index:03d}"
        tool.__doc__ = f"Synthetic tool number {index}."
        functions.append(tool)
    functions.append(ping)
    return FunctionTools("bench", functions, read_only=True)


def raw_cycle() -> None:
    with MiniRacer() as racer:
        racer.eval("1")


Action = Callable[[], Awaitable[object]]


async def interleaved_medians(actions: dict[str, Action], runs: int) -> dict[str, float]:
    """Time every action once per round, so that machine load hits them all alike."""
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for round_number in range(runs + max(5, runs // 10)):
        for name, action in actions.items():
            started = time.perf_counter()
            await action()
            elapsed = (time.perf_counter() - started) * 1000
            if round_number >= max(5, runs // 10):
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


async def measure(runs: int) -> None:
    calls_code = f"for (let i = 0; i < {SEQUENTIAL_CALLS}; i++) await tools.bench.ping();"

    async def raw() -> None:
        raw_cycle()

    actions: dict[str, Action] = {"raw": raw}
    async with (
        Toolbox(functions=[make_tools(0)]) as small,
        Toolbox(functions=[make_tools(99)]) as large,
    ):
        for label, box in (("1 tool", small), ("100 tools", large)):

            async def execute_return_one(box: Toolbox = box) -> None:
                result = await box.execute("return 1")
                assert result.ok, result.error

            async def execute_calls(box: Toolbox = box) -> None:
                result = await box.execute(calls_code)
                assert result.ok, result.error

            actions[f"return 1, {label}"] = execute_return_one
            actions[f"{SEQUENTIAL_CALLS} calls, {label}"] = execute_calls

        # The first execution initialises V8 with isobind's flags; the raw
        # isolates then run under the same flags.
        await small.execute("return 0")
        medians = await interleaved_medians(actions, runs)

    raw_ms = medians["raw"]
    print(f"{'raw mini-racer create+eval+close':40} {raw_ms:8.3f} ms   1.00x")
    for label in ("1 tool", "100 tools"):
        cold_ms = medians[f"return 1, {label}"]
        per_call = (medians[f"{SEQUENTIAL_CALLS} calls, {label}"] - cold_ms) / SEQUENTIAL_CALLS
        ratio = cold_ms / raw_ms
        print(f"{'isobind execute return 1, ' + label:40} {cold_ms:8.3f} ms {ratio:6.2f}x")
        print(f"{'  one sequential binding call, ' + label:40} {per_call:8.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed runs per figure")
    arguments = parser.parse_args()
    asyncio.run(measure(arguments.runs))


if __name__ == "__main__":
    main()
