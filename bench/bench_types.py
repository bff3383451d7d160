"""Size of the TypeScript API against the JSON it comes from, and what search saves.

Run from the repository root (after `pip install -e '.[dev]'`):

    python bench/bench_types.py

Part 1 compares, for each captured tool list in tests/data/tool_lists/, the
`tools/list` result as compact JSON with the declarations `render_api` makes of
it: the full one, which keeps every description, and the compact one that a
model's prompt gets (`Toolbox.compact_declaration`). MCP SDKs send compact
JSON, while the stored files are indented.
The JSON and the full declaration carry the same descriptions, so it also
compares them without description and title text: JSON without those strings
against the full declaration without its JSDoc comments.

Part 2 builds 2,500 synthetic tools on 100 servers and counts what a model
must read before its first call when it uses search instead of the whole
declaration: the declaration of the `isobind` global, one search with
one-line summaries, and the declaration of the tool it picks.

Tokens are counted with OpenAI's o200k_base vocabulary (PyPI `bpe-openai`,
which ships it, in the dev extra). Without that package they are estimated as
characters / 4, and the output prints which. Claude's tokenizer is not available
offline.
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

try:
    import bpe_openai

    _ENCODING: Any = bpe_openai.get_encoding("o200k_base")
    TOKENIZER = "o200k_base (bpe-openai)"
except ImportError:
    _ENCODING = None
    TOKENIZER = f"estimated as characters / {CHARS_PER_TOKEN}"


# bpe-openai rejects longer input, so longer text is counted in pieces that end
# at line ends, which can move a few tokens.
_MAX_PIECE_CHARS = 50_000


def tokens(text: str) -> int:
    if _ENCODING is None:
        return round(len(text) / CHARS_PER_TOKEN)
    count = 0
    while text:
        cut = (
            len(text)
            if len(text) <= _MAX_PIECE_CHARS
            else text.rfind("\n", 0, _MAX_PIECE_CHARS) + 1
        )
        cut = cut or _MAX_PIECE_CHARS
        count += len(_ENCODING.encode(text[:cut]))
        text = text[cut:]
    return count


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
    header = ("server", "JSON", "full TS", "ratio", "compact", "ratio", "bare JSON", "bare TS")
    print(f"{header[0]:20} " + " ".join(f"{title:>9}" for title in header[1:]) + "     ratio")
    listings: list[str] = []
    totals = [0, 0, 0, 0]
    for server in corpus_servers():
        listing = json.loads((TOOL_LISTS / f"{server}.json").read_text())
        listings.append(compact(listing))
        specs = tool_specs(server)
        full = render_api(specs).declaration
        sizes = [
            len(listings[-1]),
            len(full),
            len(compact(without_descriptions(listing))),
            len(strip_comments(full)),
        ]
        short = len(render_api(specs, detail="compact").declaration)
        totals = [total + size for total, size in zip(totals, sizes, strict=True)]
        print(
            f"{server:20} {sizes[0]:9} {sizes[1]:9} {sizes[1] / sizes[0]:9.2f}"
            f" {short:9} {short / sizes[0]:9.2f}"
            f" {sizes[2]:9} {sizes[3]:9} {sizes[3] / sizes[2]:9.2f}"
        )

    specs = [spec for server in corpus_servers() for spec in tool_specs(server)]
    full = render_api(specs).declaration
    short = render_api(specs, detail="compact").declaration
    print(
        f"{'all, one declaration':20} {totals[0]:9} {len(full):9} {len(full) / totals[0]:9.2f}"
        f" {len(short):9} {len(short) / totals[0]:9.2f}"
        f" {totals[2]:9} {totals[3]:9} {totals[3] / totals[2]:9.2f}"
    )

    json_tokens = sum(tokens(text) for text in listings)
    full_tokens, short_tokens = tokens(full), tokens(short)
    print(f"{len(specs)} tools; tokens, {TOKENIZER}:")
    print(
        f"  JSON {json_tokens}, full TS {full_tokens} ({full_tokens / json_tokens:.2f}),"
        f" compact TS {short_tokens} ({short_tokens / json_tokens:.2f})"
    )


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
    full = render_api(specs).declaration
    short = render_api(specs, detail="compact").declaration
    listing = compact({"tools": [_wire(spec) for spec in specs]})

    query = "refund a payment in harbor"
    search = catalog.search_tools(query, detail="summaries", limit=5)
    first = search.splitlines()[0].split(":")[0].removeprefix("tools.")
    describe = catalog.describe_tools([first])
    servers = json.dumps([summary.name for summary in catalog.list_servers()])
    start = DISCOVERY_DECLARATION + search + describe

    rows = [
        ("tools/list JSON", listing),
        ("full declaration", full),
        ("compact declaration", short),
        ("isobind declaration", DISCOVERY_DECLARATION),
        (f"searchTools({query!r}, summaries, 5)", search),
        (f"describeTools([{first!r}])", describe),
        ("to first call: the three above", start),
        ("listServers() names, if also read", servers),
    ]
    print(f"tokens: {TOKENIZER}")
    for label, text in rows:
        print(f"{label:48} {len(text):9} chars {tokens(text):9} tokens")

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


def search_recall() -> None:
    print("\nPart 3: search recall@3 over the corpus, labelled queries")
    specs = [spec for server in corpus_servers() for spec in tool_specs(server)]
    api = render_api(specs)
    servers = [ServerSummary(server, None, None, 0) for server in api.servers]
    catalog = ToolCatalog(dict(api.bindings), servers)
    labelled = json.loads((TOOL_LISTS.parent / "search_queries.json").read_text())
    for query_set in ("queries", "held_out"):
        cases = labelled[query_set]
        hits = 0
        for case in cases:
            found = [f"{server}.{tool}" for server, tool in catalog.search(case["query"], 3)]
            hits += case["expected"] in found
        print(f"{query_set:10} recall@3 = {hits}/{len(cases)} = {hits / len(cases):.3f}")


if __name__ == "__main__":
    corpus_sizes()
    synthetic_sizes()
    search_recall()
