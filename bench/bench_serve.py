"""Runs per second through `isobind serve`, against the same calls made directly by the client.

Run from the repository root (after `pip install -e .`):

    python bench/bench_serve.py [--runs N] [--clients 1,8,32]

One "run" is the work of three upstream tool calls: two forecasts and the
city list of the example forecast server, served over streamable HTTP by
examples/servers/forecast_http.py. Through isobind, a client sends one `run_code`
request whose code makes the three calls in sequence (mode "isobind"), or
at once with `Promise.all` (mode "parallel"). `isobind serve` runs over
streamable HTTP and shares one upstream session among all clients.
Directly, a client has its own session with the upstream server and sends
three `tools/call` requests in sequence. Each client is an SDK
`ClientSession` in this process, and N clients run at once.

Both modes run at each level of concurrency, alternating, in one run of
this script, so load from other work on the machine hits both. The clients
share this process's CPU with nothing else but each other; the servers run
in their own processes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

FORECAST_HTTP = Path(__file__).resolve().parent.parent / "examples" / "servers" / "forecast_http.py"

RUN_CODE = """\
const oslo = await tools.forecast.get_forecast({city: "Oslo", days: 2});
const lima = await tools.forecast.get_forecast({city: "Lima", days: 2});
const cities = await tools.forecast.list_cities({});
return {oslo: oslo.result.length, lima: lima.result.length, cities: cities.result.length};
"""

PARALLEL_CODE = """\
const [oslo, lima, cities] = await Promise.all([
  tools.forecast.get_forecast({city: "Oslo", days: 2}),
  tools.forecast.get_forecast({city: "Lima", days: 2}),
  tools.forecast.list_cities({}),
]);
return {oslo: oslo.result.length, lima: lima.result.length, cities: cities.result.length};
"""

Run = Callable[[ClientSession], Awaitable[None]]


async def run_code(session: ClientSession, code: str) -> None:
    result = await session.call_tool("run_code", {"code": code})
    if result.is_error:
        raise RuntimeError(f"run_code failed: {result.content}")


async def run_through_isobind(session: ClientSession) -> None:
    await run_code(session, RUN_CODE)


async def run_parallel_through_isobind(session: ClientSession) -> None:
    await run_code(session, PARALLEL_CODE)


async def run_directly(session: ClientSession) -> None:
    calls = (
        ("get-forecast", {"city": "Oslo", "days": 2}),
        ("get-forecast", {"city": "Lima", "days": 2}),
        ("list-cities", {}),
    )
    for name, arguments in calls:
        result = await session.call_tool(name, arguments)
        if result.is_error:
            raise RuntimeError(f"{name} failed: {result.content}")


@contextlib.contextmanager
def server_process(command: list[str], marker: str) -> Iterator[str]:
    """Start a server process and return the URL it prints after `marker`."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "FORECAST_API_KEY": "bench-key-5e6f7a8b9c"},
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if marker in line:
                yield line.split(marker, 1)[1].strip()
                break
        else:
            raise RuntimeError(f"{command[1]} exited before it was ready")
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


@contextlib.asynccontextmanager
async def open_session(url: str) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(timeout=httpx2.Timeout(60.0))
    async with (
        client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def measure_level(url: str, run: Run, clients: int, runs: int) -> tuple[float, list[float]]:
    """Run `runs` runs spread over `clients` concurrent sessions; return runs/s and latencies."""
    latencies: list[float] = []
    per_client = [
        runs // clients + (1 if index < runs % clients else 0) for index in range(clients)
    ]

    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(open_session(url)) for _ in range(clients)]
        for session in sessions:
            await run(session)

        async def client_loop(session: ClientSession, count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                await run(session)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for session, count in zip(sessions, per_client, strict=True):
                group.start_soon(client_loop, session, count)
        elapsed = time.perf_counter() - started
    return runs / elapsed, latencies


async def measure_breakdown(isobind_url: str, upstream_url: str, runs: int) -> None:
    """Print the median latency of single requests, one client, to locate the overhead."""
    cases: dict[str, tuple[str, str, dict[str, object]]] = {
        "isobind list_servers": (isobind_url, "list_servers", {}),
        "isobind run_code `return 1`": (isobind_url, "run_code", {"code": "return 1"}),
        "isobind run_code, 1 upstream call": (
            isobind_url,
            "run_code",
            {"code": "return await tools.forecast.list_cities({});"},
        ),
        "direct list-cities": (upstream_url, "list-cities", {}),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    async with open_session(isobind_url) as isobind, open_session(upstream_url) as direct:
        sessions = {isobind_url: isobind, upstream_url: direct}
        for _ in range(runs):
            for name, (url, tool, arguments) in cases.items():
                started = time.perf_counter()
                await sessions[url].call_tool(tool, arguments)
                samples[name].append((time.perf_counter() - started) * 1000)
    for name, values in samples.items():
        print(f"{name:36} {statistics.median(values):8.1f} ms median")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


async def measure(levels: list[int], runs: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        upstream_command = [sys.executable, str(FORECAST_HTTP)]
        with server_process(upstream_command, "listening on ") as upstream_url:
            config = Path(directory) / "isobind.json"
            config.write_text(
                json.dumps(
                    {
                        "mcpServers": {"forecast": {"type": "http", "url": upstream_url}},
                        "isobind": {"timeout": 60},
                    }
                ),
                encoding="utf-8",
            )
            serve_command = [
                sys.executable,
                "-m",
                "isobind",
                "serve",
                "--config",
                str(config),
                "--transport",
                "http",
                "--port",
                "0",
            ]
            with server_process(serve_command, "serving MCP at ") as isobind_url:
                await measure_breakdown(isobind_url, upstream_url, runs)
                modes: dict[str, tuple[str, Run]] = {
                    "direct": (upstream_url, run_directly),
                    "isobind": (isobind_url, run_through_isobind),
                    "parallel": (isobind_url, run_parallel_through_isobind),
                }
                print(
                    f"{'clients':>7} {'mode':8} {'runs/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
                    f"{'p99 ms':>8} {'runs':>5}"
                )
                for clients in levels:
                    level_runs = max(runs, 4 * clients)
                    throughput: dict[str, list[float]] = {mode: [] for mode in modes}
                    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
                    for _ in range(rounds):
                        for mode, (url, run) in modes.items():
                            rate, samples = await measure_level(url, run, clients, level_runs)
                            throughput[mode].append(rate)
                            latencies[mode].extend(samples)
                    for mode in modes:
                        values = latencies[mode]
                        print(
                            f"{clients:>7} {mode:8} {statistics.median(throughput[mode]):8.1f} "
                            f"{percentile(values, 0.5):8.1f} {percentile(values, 0.9):8.1f} "
                            f"{percentile(values, 0.99):8.1f} {len(values):>5}"
                        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=200, help="timed runs per mode, level and round"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per level")
    parser.add_argument(
        "--clients", default="1,8,32", help="comma-separated numbers of concurrent clients"
    )
    arguments = parser.parse_args()
    levels = [int(part) for part in arguments.clients.split(",")]
    anyio.run(measure, levels, arguments.runs, arguments.rounds)


if __name__ == "__main__":
    main()
