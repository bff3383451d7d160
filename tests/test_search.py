"""Tests for tool discovery: the BM25F search, the catalog, and `isobind.*` in the sandbox.

The ranking is measured on a labelled set of plain-language queries over the
captured tool lists (tests/data/search_queries.json). The Toolbox tests start
real MCP servers over stdio and run the discovery calls in real V8 isolates.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import isobind
from isobind import ServerSummary, Toolbox, load_config
from isobind._search import (
    DISCOVERY_DECLARATION,
    DISCOVERY_SERVER,
    SearchIndex,
    ToolCatalog,
    discovery_reply,
    tokenize,
)
from isobind._tools import ToolSpec
from isobind._typescript import render_api

from .conftest import EXAMPLES, write_config
from .support import (
    TESTS,
    assert_compiles,
    corpus_servers,
    in_async_function,
    needs_tsc,
    tool_specs,
)

LABELLED = json.loads((TESTS / "data" / "search_queries.json").read_text())

# recall@3 when these floors were set: 63/66 on the queries seen while building
# the search, 16/20 on the held-out ones.
RECALL_AT_3_FLOORS = {"queries": 0.9, "held_out": 0.75}


def corpus_catalog() -> ToolCatalog:
    specs = [spec for server in corpus_servers() for spec in tool_specs(server)]
    api = render_api(specs)
    servers = [ServerSummary(server, None, None, 0) for server in api.servers]
    return ToolCatalog(dict(api.bindings), servers)


@pytest.fixture(scope="module")
def catalog() -> ToolCatalog:
    return corpus_catalog()


# Tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("get_current_time", ["get", "current", "time"], id="snake_case"),
        pytest.param("readTextFile", ["read", "text", "file"], id="camelCase"),
        pytest.param("get-resource-links", ["get", "resourc", "link"], id="dashes"),
        pytest.param("HTTPServer", ["http", "server"], id="acronym"),
        pytest.param("base64 utf8", ["base", "64", "utf", "8"], id="digits"),
        pytest.param("What is the time in Tokyo?", ["time", "tokyo"], id="stop words"),
        pytest.param("Branches", ["branch"], id="stemmed"),
        pytest.param("", [], id="empty"),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


# Ranking


def test_name_outweighs_description() -> None:
    index = SearchIndex(
        [
            {"name": "echo", "description": "Returns the time given, unchanged"},
            {"name": "get_time", "description": "Returns a value"},
        ]
    )
    assert index.search("time", 2) == [1, 0]


def test_rare_word_outweighs_common() -> None:
    index = SearchIndex(
        [
            {"name": "list_files", "description": "List files"},
            {"name": "list_branches", "description": "List branches"},
            {"name": "list_tags", "description": "List tags"},
        ]
    )
    assert index.search("list branches", 3)[0] == 1


def test_prefix_matches_unknown_word() -> None:
    index = SearchIndex([{"name": "list_files"}, {"name": "list_repositories"}])
    assert index.search("repos", 2) == [1]


def test_short_word_never_prefix_matches() -> None:
    index = SearchIndex([{"name": "list_repositories"}])
    assert index.search("re", 2) == []


def test_related_word_matches() -> None:
    index = SearchIndex([{"name": "edit_file"}, {"name": "create_directory"}])
    assert index.search("folder", 2) == [1]


def test_exact_word_outranks_related() -> None:
    index = SearchIndex([{"name": "delete_entity"}, {"name": "remove_entity"}])
    assert index.search("remove", 2) == [1, 0]


def test_unmatched_query_returns_nothing() -> None:
    index = SearchIndex([{"name": "get_time", "description": "Returns the time"}])
    assert index.search("zebra", 5) == []


def test_empty_index_searches() -> None:
    assert SearchIndex([]).search("time", 5) == []


@pytest.mark.parametrize("query_set", sorted(RECALL_AT_3_FLOORS))
def test_recall_at_3(catalog: ToolCatalog, query_set: str) -> None:
    cases = LABELLED[query_set]
    misses = []
    for case in cases:
        found = [f"{server}.{tool}" for server, tool in catalog.search(case["query"], 3)]
        if case["expected"] not in found:
            misses.append(f"{case['query']!r}: expected {case['expected']}, got {found}")

    recall = 1 - len(misses) / len(cases)
    print(f"{query_set}: recall@3 = {len(cases) - len(misses)}/{len(cases)} = {recall:.3f}")
    assert recall >= RECALL_AT_3_FLOORS[query_set], "\n".join(misses)


@pytest.mark.parametrize("query_set", sorted(RECALL_AT_3_FLOORS))
def test_query_set_names_real_tools(catalog: ToolCatalog, query_set: str) -> None:
    for case in LABELLED[query_set]:
        tool = case["expected"].split(".")[1]
        assert catalog.describe_tools([case["expected"]]).count(f"function {tool}(") == 1


# Text for the model


def test_search_names_one_per_line(catalog: ToolCatalog) -> None:
    text = catalog.search_tools("commit logs", detail="names", limit=3)
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0] == "tools.git.git_log"
    assert all(line.startswith("tools.") for line in lines)


def test_search_summaries_one_line_each(catalog: ToolCatalog) -> None:
    text = catalog.search_tools("current time in a timezone", limit=2)
    lines = text.splitlines()
    assert lines[0] == "tools.time.get_current_time: Get current time in a specific timezone"
    assert len(lines) == 2


def test_summary_keeps_first_sentence(catalog: ToolCatalog) -> None:
    text = catalog.search_tools("read_file deprecated", limit=1)
    assert text == "tools.filesystem.read_file: Read the complete contents of a file as text.\n"


def test_search_declarations_self_contained(catalog: ToolCatalog) -> None:
    text = catalog.search_tools("edit lines in a file", detail="declarations", limit=2)
    assert "declare namespace tools.filesystem {" in text
    assert "function edit_file(" in text
    assert "interface EditFileInput" in text


def test_search_limit_respected(catalog: ToolCatalog) -> None:
    assert len(catalog.search_tools("file", detail="names", limit=4).splitlines()) == 4


def test_search_without_match_lists_servers(catalog: ToolCatalog) -> None:
    text = catalog.search_tools("zebra")
    assert text.startswith("No callable tool matches 'zebra'.")
    assert "tools.git" in text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({"detail": "full"}, "detail must be one of", id="detail"),
        pytest.param({"limit": 0}, "limit must be an integer from 1 to 100", id="limit zero"),
        pytest.param({"limit": True}, "limit must be an integer", id="limit bool"),
        pytest.param({"limit": 101}, "limit must be an integer from 1 to 100", id="limit high"),
    ],
)
def test_search_rejects_bad_options(
    catalog: ToolCatalog, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        catalog.search_tools("time", **arguments)


def test_search_rejects_long_query(catalog: ToolCatalog) -> None:
    with pytest.raises(ValueError, match="characters long"):
        catalog.search_tools("time " * 1000)


def test_describe_accepts_both_forms(catalog: ToolCatalog) -> None:
    short = catalog.describe_tools(["time.get_current_time"])
    long = catalog.describe_tools(["tools.time.get_current_time"])
    assert short == long
    assert "function get_current_time(" in short
    assert "convert_time" not in short


def test_describe_accepts_original_name() -> None:
    specs = [ToolSpec(server="my-server", name="get-forecast")]
    catalog = ToolCatalog(dict(render_api(specs).bindings), [])
    assert "function get_forecast(" in catalog.describe_tools(["my-server.get-forecast"])
    assert "function get_forecast(" in catalog.describe_tools(["my_server.get_forecast"])


def test_describe_groups_by_server(catalog: ToolCatalog) -> None:
    text = catalog.describe_tools(["time.convert_time", "git.git_log", "time.get_current_time"])
    assert text.count("declare namespace tools.time {") == 1
    assert text.count("declare namespace tools.git {") == 1


def test_describe_unknown_suggests_closest(catalog: ToolCatalog) -> None:
    with pytest.raises(
        ValueError, match=re.escape("'git.gitlog' is not a callable tool")
    ) as raised:
        catalog.describe_tools(["git.gitlog", "time.get_current_time"])
    assert "did you mean 'git.git_log'" in str(raised.value)


def test_describe_unknown_without_neighbour(catalog: ToolCatalog) -> None:
    with pytest.raises(ValueError, match=re.escape('names take the form "server.tool"')):
        catalog.describe_tools(["zzzzzz"])


def test_describe_lists_every_unknown(catalog: ToolCatalog) -> None:
    with pytest.raises(ValueError, match=r"'a\.b'.*'c\.d'"):
        catalog.describe_tools(["a.b", "c.d"])


@pytest.mark.parametrize(
    "names",
    [pytest.param([], id="empty"), pytest.param("time.convert_time", id="string")],
)
def test_describe_rejects_bad_names(catalog: ToolCatalog, names: Any) -> None:
    with pytest.raises(ValueError, match="names"):
        catalog.describe_tools(names)


@needs_tsc
def test_described_corpus_compiles(tmp_path: Path, catalog: ToolCatalog) -> None:
    picks = ["memory.create_entities", "filesystem.edit_file", "time.get_current_time"]
    source = catalog.describe_tools(picks) + in_async_function(
        """
  const now = await tools.time.get_current_time({ timezone: "Asia/Tokyo" });
  const zone: string = now.timezone;
  await tools.filesystem.edit_file({ path: "a", edits: [{ oldText: "x", newText: "y" }] });"""
    )
    assert_compiles(tmp_path, source)


@needs_tsc
def test_discovery_declaration_compiles(tmp_path: Path) -> None:
    source = DISCOVERY_DECLARATION + in_async_function(
        """
  const servers = await isobind.listServers();
  const count: number = servers[0].toolCount;
  const text: string = await isobind.searchTools("time", { detail: "names", limit: 3 });
  const more: string = await isobind.searchTools("time");
  const declaration: string = await isobind.describeTools(["time.get_current_time"]);"""
    )
    assert_compiles(tmp_path, source)


def test_discovery_declaration_exported() -> None:
    assert isobind.DISCOVERY_DECLARATION is DISCOVERY_DECLARATION
    assert "DISCOVERY_DECLARATION" in isobind.__all__


def test_bootstrap_uses_discovery_server() -> None:
    bootstrap = (TESTS.parent / "src" / "isobind" / "_bootstrap.js").read_text()
    assert f'const DISCOVERY_SERVER = "{DISCOVERY_SERVER}";' in bootstrap


@pytest.mark.parametrize(
    ("function", "input_text", "message"),
    [
        pytest.param("searchTools", "[]", "must be an object", id="not an object"),
        pytest.param("searchTools", "{", "not valid JSON", id="invalid JSON"),
        pytest.param("searchTools", '{"query": 5}', "query must be a string", id="query type"),
        pytest.param(
            "searchTools",
            '{"query": {}}',
            "query must be a string, not an object",
            id="query object",
        ),
        pytest.param(
            "searchTools",
            '{"query": "x", "limit": true}',
            "from 1 to 100, not true",
            id="limit shown as JSON",
        ),
        pytest.param("describeTools", '{"names": [1]}', "names must be strings", id="name type"),
        pytest.param("searchTools", " " * 100_001, "too long", id="too long"),
    ],
)
def test_discovery_reply_rejects_bad_input(
    catalog: ToolCatalog, function: str, input_text: str, message: str
) -> None:
    reply = discovery_reply(catalog, function, input_text)
    assert not reply.ok
    assert reply.error_name == "ToolInputError"
    assert message in reply.error_message


def test_discovery_reply_unknown_function(catalog: ToolCatalog) -> None:
    reply = discovery_reply(catalog, "deleteEverything", "{}")
    assert reply.error_name == "ToolError"
    assert "isobind.deleteEverything is not a function" in reply.error_message


# Through Toolbox, with real servers


@pytest.fixture(scope="module")
async def toolbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Toolbox]:
    data = {
        "mcpServers": {
            "time": {"command": "mcp-server-time", "args": ["--local-timezone", "Etc/UTC"]},
            "forecast": {
                "command": sys.executable,
                "args": [str(EXAMPLES / "servers" / "forecast.py")],
                "env": {"FORECAST_API_KEY": "forecast-key-0a1b2c3d4e"},
            },
        },
        "isobind": {"timeout": 5, "servers": {"time": {"deny": ["convert_*"]}}},
    }
    path = write_config(tmp_path_factory.mktemp("config"), data)
    async with Toolbox(load_config(path, environ={"PATH": ""})) as opened:
        yield opened


@pytest.mark.anyio
async def test_toolbox_lists_servers(toolbox: Toolbox) -> None:
    servers = {server.name: server for server in toolbox.list_servers()}
    assert list(servers) == ["time", "forecast"]
    assert servers["time"].tool_count == 1
    assert servers["forecast"].tool_count == 2
    forecast = servers["forecast"].description
    assert forecast is not None
    assert forecast.startswith("Made-up weather forecasts")


@pytest.mark.anyio
async def test_toolbox_search_skips_denied(toolbox: Toolbox) -> None:
    text = toolbox.search_tools("convert time between timezones", detail="names")
    assert "tools.time.get_current_time" in text
    assert "convert_time" not in text


@pytest.mark.anyio
async def test_toolbox_describe_denied_is_unknown(toolbox: Toolbox) -> None:
    with pytest.raises(ValueError, match=re.escape("'time.convert_time' is not a callable tool")):
        toolbox.describe_tools(["time.convert_time"])


@pytest.mark.anyio
async def test_toolbox_describe_sanitised_name(toolbox: Toolbox) -> None:
    text = toolbox.describe_tools(["forecast.get_forecast"])
    assert "function get_forecast(" in text


@pytest.mark.anyio
async def test_sandbox_search_tools(toolbox: Toolbox) -> None:
    result = await toolbox.execute(
        'return await isobind.searchTools("forecast for the next days", '
        '{detail: "names", limit: 1});'
    )
    assert result.ok, result.error
    assert result.result == "tools.forecast.get_forecast\n"


@pytest.mark.anyio
async def test_sandbox_list_servers(toolbox: Toolbox) -> None:
    result = await toolbox.execute("return await isobind.listServers();")
    assert result.ok, result.error
    assert [server["name"] for server in result.result] == ["time", "forecast"]
    assert result.result[0]["toolCount"] == 1


@pytest.mark.anyio
async def test_sandbox_describe_then_call(toolbox: Toolbox) -> None:
    code = """
const text = await isobind.describeTools(["tools.forecast.get_forecast"]);
const days = await tools.forecast.get_forecast({city: "Oslo", days: 1});
return [text.includes("function get_forecast("), JSON.stringify(days).includes("Oslo")];
"""
    result = await toolbox.execute(code)
    assert result.ok, result.error
    assert result.result == [True, True]


@pytest.mark.anyio
async def test_sandbox_describe_unknown_throws(toolbox: Toolbox) -> None:
    code = """
try {
  await isobind.describeTools(["forecast.get_forcast"]);
} catch (error) {
  return [error.name, error.message];
}
"""
    result = await toolbox.execute(code)
    assert result.ok, result.error
    name, message = result.result
    assert name == "ToolInputError"
    assert "did you mean 'forecast.get_forecast'" in message


@pytest.mark.anyio
async def test_sandbox_discovery_global_frozen(toolbox: Toolbox) -> None:
    code = """
"use strict";
try { isobind.searchTools = () => "patched"; } catch (error) { return error.name; }
return "assigned";
"""
    result = await toolbox.execute(code)
    assert result.ok, result.error
    assert result.result == "TypeError"


@pytest.mark.anyio
async def test_sandbox_discovery_not_a_tool_namespace(toolbox: Toolbox) -> None:
    result = await toolbox.execute(f"return Object.keys(tools).includes({DISCOVERY_SERVER!r});")
    assert result.ok, result.error
    assert result.result is False


def test_describe_keeps_declaration_order() -> None:
    specs = [ToolSpec(server="s", name=name) for name in ("b_tool", "a_tool")]
    catalog = ToolCatalog(dict(render_api(specs).bindings), [])
    text = catalog.describe_tools(["s.a_tool", "s.b_tool"])
    assert text.index("function b_tool(") < text.index("function a_tool(")


# Command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isobind", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def time_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    server = {"command": "mcp-server-time", "args": ["--local-timezone", "Etc/UTC"]}
    return write_config(tmp_path_factory.mktemp("cli"), {"mcpServers": {"time": {**server}}})


def test_cli_search_prints_names(time_config: Path) -> None:
    result = run_cli(
        "search", "convert between timezones", "-c", str(time_config), "--detail", "names"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "tools.time.convert_time"


def test_cli_search_rejects_bad_detail(time_config: Path) -> None:
    result = run_cli("search", "time", "-c", str(time_config), "--detail", "everything")
    assert result.returncode == 2
    assert "--detail must be one of names, summaries, declarations" in result.stderr
