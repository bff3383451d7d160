"""Classic tool calling against code mode: model turns and input sent to the model, one task.

Run from the repository root (after `pip install -e '.[dev]'`):

    python bench/bench_agent.py [--cities 3 10]

The task: "Which of these cities has the warmest day in the next three days,
and what is the local time there?", over the example servers (`mcp-server-time`
and `examples/servers/forecast.py`). Both ways are replayed by a scripted
OpenAI-compatible server on 127.0.0.1 that records every request, so the
figures count exactly what a real model would be sent for the same steps:

- classic: every callable tool is a function tool with its JSON Schema, and
  the model makes one tool call per turn (a forecast per city, then the time),
  reading each full tool result in the conversation before the next call;
- code mode: the model gets the TypeScript API in the system prompt and one
  `execute_typescript` tool, writes one run that does every call and returns
  only the answer's data, then replies.

Tool calls really run (through `Toolbox.execute`, against the real servers),
so tool results have their real size. Tokens are an estimate: characters / 4,
the rule of thumb for English text and JSON with GPT-style tokenizers; no
offline tokenizer is used. The model's own output is the same scripted text
in both ways and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.model_servers import ScriptedModelServer, Turn  # noqa: E402

from isobind import Agent, OpenAIProvider, Toolbox, load_config  # noqa: E402
from isobind._providers import FunctionSpec, Message  # noqa: E402

CITIES = {
    "Paris": "Europe/Paris",
    "Tokyo": "Asia/Tokyo",
    "Lima": "America/Lima",
    "Nairobi": "Africa/Nairobi",
    "Oslo": "Europe/Oslo",
    "Sydney": "Australia/Sydney",
    "Cairo": "Africa/Cairo",
    "Denver": "America/Denver",
    "Mumbai": "Asia/Kolkata",
    "Reykjavik": "Atlantic/Reykjavik",
}
DAYS = 3
CHARS_PER_TOKEN = 4
FAKE_KEY = "sk-bench-not-a-real-key"


@dataclass(frozen=True)
class Figures:
    turns: int
    tool_calls: int
    characters: int

    @property
    def estimated_tokens(self) -> int:
        return self.characters // CHARS_PER_TOKEN


def task_text(cities: list[str]) -> str:
    return (
        f"Which of these cities has the warmest day in the next {DAYS} days, and what is "
        f"the local time there? Cities: {', '.join(cities)}."
    )


async def warmest(toolbox: Toolbox, cities: list[str]) -> str:
    """Return the city with the highest forecast temperature, computed ahead for the scripts."""
    best_city, best_high = cities[0], -1000
    for city in cities:
        days = await call_tool(toolbox, "forecast", "get_forecast", {"city": city, "days": DAYS})
        for day in days["result"] if isinstance(days, dict) else days:
            if day["high_c"] > best_high:
                best_city, best_high = city, day["high_c"]
    return best_city


async def call_tool(toolbox: Toolbox, server: str, tool: str, arguments: dict[str, Any]) -> Any:
    result = await toolbox.execute(f"return await tools.{server}.{tool}({json.dumps(arguments)});")
    if not result.ok:
        raise RuntimeError(f"tools.{server}.{tool} failed: {result.error}")
    return result.result


def classic_functions(toolbox: Toolbox) -> list[FunctionSpec]:
    """Return every callable tool as a function tool, named `server__tool`."""
    specs = []
    for server, tool in toolbox.callable_tools:
        spec = toolbox.api.bindings[(server, tool)]
        specs.append(FunctionSpec(f"{server}__{tool}", spec.description, spec.input_schema))
    return specs


async def run_classic(toolbox: Toolbox, cities: list[str], answer: str, best: str) -> Figures:
    steps = [("forecast", "get_forecast", {"city": city, "days": DAYS}) for city in cities]
    steps.append(("time", "get_current_time", {"timezone": CITIES[best]}))
    turns = [Turn(calls=[(f"{server}__{tool}", arguments)]) for server, tool, arguments in steps]
    turns.append(Turn(text=answer))
    functions = classic_functions(toolbox)
    system = "You complete the user's task with the tools you are given."

    with ScriptedModelServer("openai", turns) as server:
        provider = OpenAIProvider("scripted", api_key=FAKE_KEY, base_url=server.base_url)
        messages = [Message("user", task_text(cities))]
        for _ in turns:
            response = await provider.complete(
                system=system, messages=messages, tools=functions, max_tokens=4096
            )
            messages.append(Message("assistant", response.text, response.tool_calls))
            for call in response.tool_calls:
                server_name, tool = call.name.split("__", 1)
                value = await call_tool(toolbox, server_name, tool, json.loads(call.arguments))
                messages.append(Message("tool", json.dumps(value), tool_call_id=call.id))
        await provider.aclose()
    return Figures(len(server.requests), len(steps), sum(len(r.body) for r in server.requests))


CODE = """\
const cities: Record<string, string> = %s;
const forecasts = await Promise.all(
  Object.keys(cities).map(async (city) => {
    const days = await tools.forecast.get_forecast({ city, days: %d });
    const list = Array.isArray(days) ? days : (days as any).result;
    return { city, high: Math.max(...list.map((day: any) => day.high_c)) };
  }),
);
const best = forecasts.reduce((a, b) => (b.high > a.high ? b : a));
const now = await tools.time.get_current_time({ timezone: cities[best.city] });
return { city: best.city, highC: best.high, localTime: now.datetime };"""


async def run_code_mode(toolbox: Toolbox, cities: list[str], answer: str) -> Figures:
    zones = {city: CITIES[city] for city in cities}
    code = CODE % (json.dumps(zones), DAYS)
    turns = [Turn.code(code), Turn(text=answer)]
    with ScriptedModelServer("openai", turns) as server:
        provider = OpenAIProvider("scripted", api_key=FAKE_KEY, base_url=server.base_url)
        result = await Agent(toolbox, provider).run(task_text(cities))
        await provider.aclose()
    run = result.runs[0].result
    if run is None or not run.ok:
        raise RuntimeError(f"the code-mode run failed: {result.runs[0].feedback}")
    calls = len(run.calls)
    return Figures(result.turns, calls, sum(len(r.body) for r in server.requests))


async def main(city_counts: list[int]) -> None:
    config = load_config(ROOT / "examples" / "isobind.json")
    rows = []
    async with Toolbox(config) as toolbox:
        for count in city_counts:
            cities = list(CITIES)[:count]
            best = await warmest(toolbox, cities)
            answer = f"{best} has the warmest day; the scripted reply is the same in both ways."
            classic = await run_classic(toolbox, cities, answer, best)
            code_mode = await run_code_mode(toolbox, cities, answer)
            rows.append((count, classic, code_mode))

    print("| cities | way | model turns | tool calls | characters sent | tokens sent (est.) |")
    print("|---|---|---|---|---|---|")
    for count, classic, code_mode in rows:
        for name, figures in (("classic", classic), ("code mode", code_mode)):
            print(
                f"| {count} | {name} | {figures.turns} | {figures.tool_calls} | "
                f"{figures.characters:,} | {figures.estimated_tokens:,} |"
            )
        ratio = classic.characters / code_mode.characters
        print(f"| {count} | classic / code mode | | | {ratio:.1f}x | {ratio:.1f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cities", type=int, nargs="+", default=[3, 10], help="city counts to compare (1-10)"
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.cities))
