"""Size of the TypeScript API against the JSON it comes from, and what search saves.

Run from the repository root (after `pip install -e '.[dev]'`):

    python bench/bench_types.py

Part 1 compares, for each captured tool list in tests/data/tool_lists/, the
`tools/list` result as compact JSON with the declaration `render_api` makes of
it, in characters. MCP SDKs send compact JSON, while the stored files are
indented.
Both carry the same descriptions, so it also compares them without
description and title text: JSON without those strings against the
declaration without its JSDoc comments.

Part 2 builds 2,500 synthetic tools on 100 servers and counts what a model
must read before its first call when it uses search instead of the whole
declaration: the declaration of the `isobind` global, one search with
one-line summaries, and the declaration of the tool it picks.

Token counts are estimates: characters / 4. No tokenizer that works offline is
installed (tiktoken downloads its vocabularies on first use).
"""

from __future__ import annotations

import json
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from isobind._search import DISCOVERY_DECLARATION, ServerSummary, ToolCatalog
from isobind._tools import ToolSpec
from isobind._typescript import render_api

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import TOOL_LISTS, corpus_servers, tool_specs  # noqa: E402

CHARS_PER_TOKEN = 4
SYNTHETIC_SERVERS = 100
TOOLS_PER_SERVER = 25


def tokens(chars: int) -> int:
    return round(chars / CHARS_PER_TOKEN)


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: without_descriptions(value)
            for key, value in node.items()
            if not (key in ("description", "title") and isinstance(value, str))
        }
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    return node


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def strip_comments(declaration: str) -> str:
    return re.sub(r"[ \t]*/\*.*?\*/[ \t]*\n?", "", declaration, flags=re.DOTALL)


def corpus_sizes() -> None:
    print("Part 1: captured tool lists, characters")
    header = ("server", "JSON", "TS", "TS/JSON", "bare JSON", "bare TS", "ratio")
    print(f"{header[0]:22} " + " ".join(f"{title:>9}" for title in header[1:]))
    totals = [0, 0, 0, 0]
    for server in corpus_servers():
        listing = json.loads((TOOL_LISTS / f"{server}.json").read_text())
        declaration = render_api(tool_specs(server)).declaration
        sizes = [
            len(compact(listing)),
            len(declaration),
            len(compact(without_descriptions(listing))),
            len(strip_comments(declaration)),
        ]
        totals = [total + size for total, size in zip(totals, sizes, strict=True)]
        print(
            f"{server:22} {sizes[0]:9} {sizes[1]:9} {sizes[1] / sizes[0]:9.2f}"
            f" {sizes[2]:9} {sizes[3]:9} {sizes[3] / sizes[2]:9.2f}"
        )

    specs = [spec for server in corpus_servers() for spec in tool_specs(server)]
    together = len(render_api(specs).declaration)
    print(
        f"{'all, one declaration':22} {totals[0]:9} {together:9} {together / totals[0]:9.2f}"
        f" {totals[2]:9} {totals[3]:9} {totals[3] / totals[2]:9.2f}"
    )
    print(f"{len(specs)} tools; tokens estimated: JSON {tokens(totals[0])}, TS {tokens(together)}")


NOUNS = tuple(
    [
        "invoice",
        "customer",
        "order",
        "ticket",
        "project",
        "branch",
        "commit",
        "issue",
        "file",
        "folder",
        "report",
        "metric",
        "alert",
        "dashboard",
        "user",
        "team",
        "channel",
        "message",
        "calendar",
        "event",
        "contact",
        "deal",
        "campaign",
        "invoice",
        "payment",
        "refund",
        "shipment",
        "product",
        "inventory",
        "warehouse",
        "employee",
        "timesheet",
        "document",
        "page",
    ]
)
VERBS = tuple(
    [
        "get",
        "list",
        "create",
        "update",
        "delete",
        "search",
        "archive",
        "export",
        "import",
        "sync",
        "approve",
        "assign",
    ]
)
SERVICES = tuple(
    [
        "acme",
        "atlas",
        "beacon",
        "cobalt",
        "delta",
        "ember",
        "falcon",
        "garnet",
        "harbor",
        "iris",
        "juniper",
        "kestrel",
        "lumen",
        "meridian",
        "nova",
        "onyx",
        "pulse",
        "quartz",
        "raven",
        "sierra",
    ]
)


def synthetic_tool(server: str, rng: random.Random, used: set[str]) -> ToolSpec:
    while True:
        verb, noun = rng.choice(VERBS), rng.choice(NOUNS)
        name = f"{verb}_{noun}{'s' if verb in ('list', 'search', 'export') else ''}"
        if name not in used:
            used.add(name)
            break
        name = f"{name}_{len(used)}"
        if name not in used:
            used.add(name)
            break

    properties: dict[str, Any] = {
        f"{noun}_id": {"type": "string", "description": f"Identifier of the {noun}."}
    }
    for _ in range(rng.randint(1, 4)):
        field = rng.choice(NOUNS)
        kind = rng.choice(["string", "integer", "boolean", "enum"])
        schema: dict[str, Any] = {"description": f"The {field} to {verb} with."}
        if kind == "enum":
            schema["enum"] = ["open", "closed", "pending"]
        else:
            schema["type"] = kind
        properties[field] = schema
    return ToolSpec(
        server=server,
        name=name,
        description=f"{verb.capitalize()} a {noun} in {server.title()}, with filters and paging.",
        input_schema={"type": "object", "properties": properties, "required": [f"{noun}_id"]},
    )


def synthetic_catalog() -> tuple[list[ToolSpec], ToolCatalog]:
    rng = random.Random(2500)
    specs: list[ToolSpec] = []
    for number in range(SYNTHETIC_SERVERS):
        server = f"{SERVICES[number % len(SERVICES)]}{number // len(SERVICES) or ''}"
        used: set[str] = set()
        specs.extend(synthetic_tool(server, rng, used) for _ in range(TOOLS_PER_SERVER))

    api = render_api(specs)
    counts: dict[str, int] = {}
    for server_id, _ in api.bindings:
        counts[server_id] = counts.get(server_id, 0) + 1
    summaries = [ServerSummary(server, None, None, count) for server, count in counts.items()]
    return specs, ToolCatalog(dict(api.bindings), summaries)


def synthetic_sizes() -> None:
    print(f"\nPart 2: {SYNTHETIC_SERVERS * TOOLS_PER_SERVER} synthetic tools, characters")
    specs, catalog = synthetic_catalog()
    full = len(render_api(specs).declaration)
    listing = len(compact({"tools": [_wire(spec) for spec in specs]}))

    query = "refund a payment in harbor"
    search = catalog.search_tools(query, detail="summaries", limit=5)
    first = search.splitlines()[0].split(":")[0].removeprefix("tools.")
    describe = catalog.describe_tools([first])
    servers = json.dumps([summary.name for summary in catalog.list_servers()])
    start = len(DISCOVERY_DECLARATION) + len(search) + len(describe)

    rows = [
        ("tools/list JSON", listing),
        ("full declaration", full),
        ("isobind declaration", len(DISCOVERY_DECLARATION)),
        (f"searchTools({query!r}, summaries, 5)", len(search)),
        (f"describeTools([{first!r}])", len(describe)),
        ("to first call: the three above", start),
        ("listServers() names, if also read", len(servers)),
    ]
    for label, chars in rows:
        print(f"{label:48} {chars:9} chars  ~{tokens(chars):7} tokens")

    timings = []
    for _ in range(20):
        began = time.perf_counter()
        catalog.search("export customer invoices as csv", 10)
        timings.append((time.perf_counter() - began) * 1000)
    began = time.perf_counter()
    synthetic_catalog()
    built = time.perf_counter() - began
    print(f"search over 2,500 tools: median {statistics.median(timings):.1f} ms")
    print(f"render and index 2,500 tools: {built:.2f} s")


def _wire(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "inputSchema": spec.input_schema}


if __name__ == "__main__":
    corpus_sizes()
    synthetic_sizes()
