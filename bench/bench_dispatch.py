"""The host's own work per binding call, beside the upstream tool's own time.

Run from the repository root (after `pip install -e .`):

    python bench/bench_dispatch.py [--runs N] [--calls N]

Prints medians in microseconds and ratios to the upstream tool's own time:

- the tool function called directly (`FunctionTools.call`), the upstream time;
- `CallDispatcher` called directly with a `CallRequest`: policy, input
  validation, budgets, the call, redaction and the call record, without a
  sandbox, with no secrets configured and with two;
- one sequential call through an in-process run (`mode="inprocess"`): the
  dispatcher plus the engine's round trip, taken as the difference between a
  run of `--calls` sequential calls and a run that makes none, divided by
  `--calls`.

Every figure comes from this one run and the actions take turns, so load on a
shared machine slows them all alike. The dispatcher figures read the private
`Toolbox._require_open` registry, because the public API offers no way to
call the dispatcher without a sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from isobind import FunctionTools, SandboxSettings, Toolbox
from isobind._bindings import CallDispatcher
from isobind._sandbox import CallRequest

# Secrets for the redacting variant. They never occur in the inputs or results.
SECRETS = ("sk-bench-0123456789abcdef", "bench-password-42")
FORECAST_INPUT = {"city": "Paris", "days": 3}
FORECAST_TEXT = '{"city":"Paris","days":3}'


async def ping() -> int:
    """Return 1 at once."""
    return 1


async def forecast(city: str, days: int = 1) -> dict[str, object]:
    """Return a small forecast at once."""
    return {"city": city, "days": days, "summary": "sunny", "highs": [21.5] * days}


Action = Callable[[], Awaitable[object]]


async def interleaved_medians(actions: dict[str, Action], runs: int) -> dict[str, float]:
    """Time every action once per round and return each median in microseconds."""
    samples: dict[str, list[float]] = {name: [] for name in actions}
    warm_up = max(5, runs // 10)
    for round_number in range(runs + warm_up):
        for name, action in actions.items():
            started = time.perf_counter_ns()
            await action()
            elapsed = (time.perf_counter_ns() - started) / 1000
            if round_number >= warm_up:
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


def dispatch_action(box: Toolbox, request: CallRequest, calls_per_dispatcher: int) -> Action:
    """Call a dispatcher directly, starting a new one (a new run) every few calls."""
    registry = box._require_open()
    dispatcher = CallDispatcher(registry)

    async def action() -> None:
        nonlocal dispatcher
        if len(dispatcher.records) >= calls_per_dispatcher:
            dispatcher = CallDispatcher(registry)
        reply = await dispatcher(request)
        assert reply.ok, reply.error_message

    return action


def execute_action(box: Toolbox, code: str) -> Action:
    async def action() -> None:
        result = await box.execute(code)
        assert result.ok, result.error

    return action


async def measure(runs: int, calls: int) -> None:
    tools = FunctionTools("bench", [ping, forecast], read_only=True)
    in_process = SandboxSettings(mode="inprocess")
    call = "await tools.bench.forecast({city: 'Paris', days: 3});"
    sequential = f"for (let i = 0; i < {calls}; i++) {call}"
    ping_request = CallRequest(1, "bench", "ping", "{}")
    forecast_request = CallRequest(2, "bench", "forecast", FORECAST_TEXT)
    async with (
        Toolbox(functions=[tools], sandbox=in_process) as plain,
        Toolbox(functions=[tools], sandbox=in_process, secrets=SECRETS) as redacting,
    ):
        await plain.execute("return 0")

        async def upstream_ping() -> object:
            return await tools.call("ping", {})

        async def upstream_forecast() -> object:
            return await tools.call("forecast", dict(FORECAST_INPUT))

        direct: dict[str, Action] = {
            "upstream ping": upstream_ping,
            "upstream forecast": upstream_forecast,
            "dispatch ping": dispatch_action(plain, ping_request, calls),
            "dispatch forecast": dispatch_action(plain, forecast_request, calls),
            "dispatch forecast, 2 secrets": dispatch_action(redacting, forecast_request, calls),
        }
        # Many rounds, because each sample is a few microseconds.
        medians = await interleaved_medians(direct, runs * 20)
        runs_medians = await interleaved_medians(
            {
                "run without calls": execute_action(plain, "return 1"),
                "run with calls": execute_action(plain, sequential),
            },
            runs,
        )

    in_run = (runs_medians["run with calls"] - runs_medians["run without calls"]) / calls
    upstream = {"ping": medians["upstream ping"], "forecast": medians["upstream forecast"]}
    rows = [
        ("upstream ping (tool's own time)", medians["upstream ping"], upstream["ping"]),
        ("upstream forecast (tool's own time)", medians["upstream forecast"], upstream["forecast"]),
        ("dispatcher, ping", medians["dispatch ping"], upstream["ping"]),
        ("dispatcher, forecast", medians["dispatch forecast"], upstream["forecast"]),
        (
            "dispatcher, forecast, 2 secrets",
            medians["dispatch forecast, 2 secrets"],
            upstream["forecast"],
        ),
        (f"in-process run, forecast, per call of {calls}", in_run, upstream["forecast"]),
    ]
    print(f"{'median per call':46} {'us':>10} {'host us':>10} {'x upstream':>11}")
    for label, figure, own_time in rows:
        host = figure - own_time
        print(f"{label:46} {figure:10.1f} {host:10.1f} {figure / own_time:10.1f}x")
    print(
        f"(runs: {runs_medians['run without calls'] / 1000:.3f} ms without calls, "
        f"{runs_medians['run with calls'] / 1000:.3f} ms with {calls})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=100,
        help="number of timed runs (the direct calls get 20 times as many rounds)",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=100,
        help="number of sequential calls per timed run and per dispatcher",
    )
    arguments = parser.parse_args()
    asyncio.run(measure(arguments.runs, arguments.calls))


if __name__ == "__main__":
    main()
