"""CPU per isolate with and without the Web APIs, side by side in one run.

Run from the repository root (after `pip install -e .`):

    python bench/bench_prelude.py [--rounds N] [--cycles N] [--cpu N]

One cycle is the isolate work of one trivial execution: create an
isolate and evaluate `_bootstrap.js` (`create_isolate`), run `return 1` in
it and wait until it has closed. The "bootstrap only" code names no Web API;
the "bootstrap + webapis" code is the same statement with a comment naming
`URL`, so its run also evaluates `_webapis.js`. Each round times a block of
cycles of each kind in turn, so load on a shared machine slows both alike.
The figure is process CPU time per cycle, from `time.process_time`, which
counts all threads and so the isolate's V8 thread too. The script prints the
median over rounds, the difference and the ratio. `--cpu` pins the process
to one CPU.

A second table weighs the fetch implementation (request building, header
checks, the Response-like object) that only hosts with an egress gateway
use. It times a bare isolate evaluating `_bootstrap.js` as shipped against
the same text with those functions replaced by empty ones, create and close
included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from isobind._sandbox import (
    CallReply,
    CallRequest,
    Limits,
    _bootstrap_template,
    _Isolate,
    create_isolate,
    names_web_api,
    run_in_isolate,
    wait_closed,
)

CODES = {
    "bootstrap only": "return 1",
    "bootstrap + webapis": "return 1 // URL",
}


async def no_calls(request: CallRequest) -> CallReply:
    raise AssertionError(f"the benchmark code made a call: {request}")


async def cycle(code: str, limits: Limits) -> None:
    isolate = await create_isolate()
    outcome = await run_in_isolate(code, api={}, handler=no_calls, limits=limits, isolate=isolate)
    assert outcome.error is None, outcome.error
    await wait_closed()


async def block_cpu_ms(code: str, cycles: int, limits: Limits) -> tuple[float, float]:
    """Return the process CPU and wall-clock milliseconds per cycle over `cycles` cycles."""
    cpu_started = time.process_time()
    wall_started = time.perf_counter()
    for _ in range(cycles):
        await cycle(code, limits)
    cpu = (time.process_time() - cpu_started) * 1000 / cycles
    wall = (time.perf_counter() - wall_started) * 1000 / cycles
    return cpu, wall


async def measure(rounds: int, cycles: int) -> dict[str, tuple[float, float]]:
    limits = Limits()
    for name, code in CODES.items():
        expected = name != "bootstrap only"
        if names_web_api(code) != expected:
            raise SystemExit(f"names_web_api({code!r}) is not {expected}; fix CODES")
        # Warm-up: engine start-up, and the first compilation of each script.
        await block_cpu_ms(code, cycles, limits)
    cpu_samples: dict[str, list[float]] = {name: [] for name in CODES}
    wall_samples: dict[str, list[float]] = {name: [] for name in CODES}
    for _ in range(rounds):
        for name, code in CODES.items():
            cpu, wall = await block_cpu_ms(code, cycles, limits)
            cpu_samples[name].append(cpu)
            wall_samples[name].append(wall)
    return {
        name: (statistics.median(cpu_samples[name]), statistics.median(wall_samples[name]))
        for name in CODES
    }


# The fetch implementation is the text from the first marker up to the second.
EGRESS_START = "  function fetchRequest("
EGRESS_END = "  function blockedConstructor("
EGRESS_REPLACEMENT = "  function fetchRequest() {}\n  function makeResponse() {}\n\n"


def bootstrap_without_egress() -> str:
    bootstrap = _bootstrap_template()
    start = bootstrap.find(EGRESS_START)
    end = bootstrap.find(EGRESS_END)
    if start < 0 or end < start:
        raise SystemExit("the fetch implementation was not found in _bootstrap.js; fix the markers")
    return bootstrap[:start] + EGRESS_REPLACEMENT + bootstrap[end:]


async def evaluation_cpu_ms(source: str, cycles: int) -> float:
    """Return the process CPU milliseconds per isolate that is created, evaluates `source`
    and is closed."""
    started = time.process_time()
    for _ in range(cycles):
        isolate = await _Isolate.create()
        try:
            await isolate.eval(source)
        finally:
            await isolate.close()
    return (time.process_time() - started) * 1000 / cycles


async def measure_egress(rounds: int, cycles: int) -> dict[str, float]:
    sources = {
        "as shipped": _bootstrap_template(),
        "without fetch code": bootstrap_without_egress(),
    }
    samples: dict[str, list[float]] = {name: [] for name in sources}
    for source in sources.values():
        await evaluation_cpu_ms(source, cycles)
    for _ in range(rounds):
        for name, source in sources.items():
            samples[name].append(await evaluation_cpu_ms(source, cycles))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed blocks per kind")
    parser.add_argument("--cycles", type=int, default=50, help="cycles per timed block")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    arguments = parser.parse_args()
    if arguments.cpu is not None:
        os.sched_setaffinity(0, {arguments.cpu})
    pinned = f"pinned to CPU {arguments.cpu}" if arguments.cpu is not None else "not pinned"
    print(
        f"{arguments.rounds} rounds of {arguments.cycles} cycles per kind, {pinned}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    figures = asyncio.run(measure(arguments.rounds, arguments.cycles))

    base_cpu = figures["bootstrap only"][0]
    print(f"{'cycle kind':<22}{'CPU ms':>9}{'wall ms':>9}{'CPU ratio':>11}")
    for name, (cpu, wall) in figures.items():
        print(f"{name:<22}{cpu:>9.3f}{wall:>9.3f}{cpu / base_cpu:>11.3f}")
    with_webapis = figures["bootstrap + webapis"][0]
    print(f"Web APIs cost {with_webapis - base_cpu:.3f} ms of CPU per isolate that loads them")

    egress = asyncio.run(measure_egress(arguments.rounds, arguments.cycles))
    shipped = egress["as shipped"]
    cut = len(_bootstrap_template()) - len(bootstrap_without_egress())
    print(f"\nbootstrap evaluation only; the fetch code is {cut} characters")
    print(f"{'bootstrap':<22}{'CPU ms':>9}{'CPU ratio':>11}")
    for name, cpu in egress.items():
        print(f"{name:<22}{cpu:>9.3f}{cpu / shipped:>11.3f}")
    print(f"fetch code costs {shipped - egress['without fetch code']:.3f} ms of CPU per isolate")


if __name__ == "__main__":
    main()
