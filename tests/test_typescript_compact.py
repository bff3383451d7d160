"""The compact declaration: first sentences only, and every type of the full one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from isobind._naming import to_identifier
from isobind._tools import ToolSpec
from isobind._typescript import _states_default, _summary, render_api

from .support import assert_compiles, corpus_servers, in_async_function, needs_tsc, tool_specs
from .test_typescript import EDGE_SCHEMAS, USAGE


def tool(
    name: str,
    schema: Any,
    *,
    description: str | None = None,
    output_schema: dict[str, Any] | None = None,
) -> ToolSpec:
    return ToolSpec(
        server="s",
        name=name,
        description=description,
        input_schema=schema,
        output_schema=output_schema,
    )


def all_specs() -> list[ToolSpec]:
    return [spec for server in corpus_servers() for spec in tool_specs(server)]


@needs_tsc
def test_compact_corpus_compiles(tmp_path: Path) -> None:
    declaration = render_api(all_specs(), detail="compact").declaration
    assert_compiles(tmp_path, declaration + in_async_function("".join(USAGE.values())))


@needs_tsc
def test_compact_edge_schemas_compile(tmp_path: Path) -> None:
    tools = []
    for index, schema in enumerate(EDGE_SCHEMAS.values()):
        description = "Ends */ declare const hidden: 1; /* here. And more."
        tools.append(tool(f"in{index}", schema, description=description))
        tools.append(tool(f"out{index}", {"type": "object"}, output_schema=schema))
    clashes = "declare const hidden: string;\n"
    assert_compiles(tmp_path, render_api(tools, detail="compact").declaration + clashes)


@needs_tsc
def test_compact_keeps_every_type(tmp_path: Path) -> None:
    # Both forms side by side, the compact one under another global, and for
    # every tool its parameter and result types must be mutually assignable.
    specs = all_specs()
    full = render_api(specs)
    compact = render_api(specs, detail="compact").declaration
    compact = compact.replace("declare namespace tools.", "declare namespace compact.")
    checks = ["type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;"]
    for number, (server, name) in enumerate(full.bindings):
        for part in ("Parameters", "ReturnType"):
            left = f"{part}<typeof tools.{server}.{name}>"
            right = f"{part}<typeof compact.{server}.{name}>"
            checks.append(f"const same{part}{number}: Same<{left}, {right}> = true;")
    assert len(checks) == 1 + 2 * len(specs)
    assert_compiles(tmp_path, full.declaration + compact + "\n".join(checks) + "\n")


def test_compact_under_full_size() -> None:
    specs = all_specs()
    full = render_api(specs).declaration
    compact = render_api(specs, detail="compact").declaration
    assert len(compact) < 0.6 * len(full)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Get the time.", "Get the time.", id="one-sentence"),
        pytest.param("Get the time. Use a zone.", "Get the time. …", id="two-sentences"),
        pytest.param("Get the time\nin a zone.", "Get the time …", id="two-lines"),
        pytest.param(
            "Pick one (e.g. Tokyo) of them. More.", "Pick one (e.g. Tokyo) of them. …", id="eg"
        ),
        pytest.param("Version 1.2 of it. More.", "Version 1.2 of it. …", id="number"),
        pytest.param("word " * 50, ("word " * 32).rstrip() + " …", id="long"),
        pytest.param(None, None, id="none"),
    ],
)
def test_summary(text: str | None, expected: str | None) -> None:
    assert _summary(text) == expected


@pytest.mark.parametrize(
    ("text", "tag", "stated"),
    [
        pytest.param("Number of results (1-20, default 10)", "@default 10", True, id="paren"),
        pytest.param("Page number (default: 1)", "@default 1", True, id="colon"),
        pytest.param("Defaults to 'Text'.", '@default "Text"', True, id="quoted-string"),
        pytest.param("The default is false", "@default false", True, id="is"),
        pytest.param("Results, default 10", "@default 1", False, id="prefix-number"),
        pytest.param("Number of results", "@default 10", False, id="unstated"),
        pytest.param("Default 10", "@minimum 10", False, id="other-tag"),
    ],
)
def test_states_default(text: str, tag: str, stated: bool) -> None:
    assert _states_default(text, tag) is stated


def test_stated_default_tag_dropped() -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "number", "description": "Results (default 10)", "default": 10},
            "page": {"type": "number", "description": "Page number", "default": 1},
        },
    }
    declaration = render_api([tool("t", schema)]).declaration
    assert "/** Results (default 10) */ count?: number;" in declaration
    assert "/** Page number @default 1 */ page?: number;" in declaration


def test_compact_describes_required_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "zone": {"type": "string", "description": "IANA zone name. Such as UTC."},
            "limit": {"type": "integer", "description": "How many.", "maximum": 5},
            "mode": {
                "enum": ["a", "b"],
                "description": "Mode.",
                "enumDescriptions": ["first", "second"],
            },
        },
        "required": ["zone"],
    }
    declaration = render_api([tool("t", schema)], detail="compact").declaration
    assert "/** IANA zone name. … */ zone: string;" in declaration
    assert "/** @integer @maximum 5 */ limit?: number;" in declaration
    assert '"a": first' in declaration
    assert '"b": second' in declaration
    assert "How many" not in declaration


def test_compact_repeated_property_described_once() -> None:
    schema = {
        "type": "object",
        "properties": {"owner": {"type": "string", "description": "Repository owner"}},
        "required": ["owner"],
    }
    declaration = render_api([tool("a", schema), tool("b", schema)], detail="compact").declaration
    assert declaration.count("Repository owner") == 1
    assert "function b(input: { owner: string }): Promise<unknown>;" in declaration


def test_compact_drops_description_restating_names() -> None:
    schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Path of the file to read"},
            "encoding": {"type": "string", "description": "Text encoding, such as utf-8"},
        },
        "required": ["path", "encoding"],
    }
    declaration = render_api([tool("read_file", schema)], detail="compact").declaration
    assert "Path of the file" not in declaration
    assert "/** Text encoding, such as utf-8 */ encoding: string;" in declaration


def test_compact_inlines_unreferenced_types() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    output = {"type": "object", "properties": {"n": {"type": "number"}}}
    declaration = render_api([tool("t", schema, output_schema=output)], detail="compact")
    signature = "function t(input: { a: string }): Promise<{ n?: number }>;"
    assert signature in declaration.declaration


def test_compact_tool_description_cut() -> None:
    spec = tool("t", {"type": "object"}, description="Fetch a page. Then convert it.")
    full = render_api([spec]).declaration
    compact = render_api([spec], detail="compact").declaration
    assert "/** Fetch a page. Then convert it. */" in full
    assert "/** Fetch a page. … */" in compact
    assert "describeTools" in compact.splitlines()[0]


def test_compact_server_names_left_out() -> None:
    specs = [ToolSpec(server="my-server", name="t")]
    compact = render_api(specs, detail="compact").declaration
    assert 'MCP server "my-server"' not in compact
    assert f"declare namespace tools.{to_identifier('my-server')} {{" in compact


def test_unknown_detail_rejected() -> None:
    with pytest.raises(ValueError, match="detail must be 'full' or 'compact', not 'short'"):
        render_api([], detail="short")  # type: ignore[arg-type]
