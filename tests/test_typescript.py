"""Tests for the naming rules and the JSON Schema to TypeScript renderer.

The compile tests run the real TypeScript compiler from tests/node in strict
mode. They check that every declaration compiles, and that a wrong call does
not, so that the types are not vacuous.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isobind._errors import ApiError
from isobind._naming import is_identifier, is_identifier_name, to_identifier, to_type_name
from isobind._tools import ToolAnnotations, ToolSpec
from isobind._typescript import MAX_DEPTH, render_api, render_schema, type_fallbacks

from .support import (
    assert_compiles,
    compile_typescript,
    corpus_servers,
    in_async_function,
    needs_tsc,
    tool_specs,
)

# One call per captured server, using the declared input and output types.
USAGE = {
    "time": """
  const now = await tools.time.get_current_time({ timezone: "Europe/Paris" });
  const day: string = now.day_of_week;
  const converted = await tools.time.convert_time({
    source_timezone: "Europe/Paris", time: "12:00", target_timezone: "Asia/Tokyo" });
  const dst: boolean = converted.target.is_dst;""",
    "git": """
  const status: unknown = await tools.git.git_status({ repo_path: "." });
  await tools.git.git_log({ repo_path: ".", max_count: 3, start_timestamp: null });""",
    "everything": """
  const sum: unknown = await tools.everything.get_sum({ a: 1, b: 2 });
  await tools.everything.get_env();
  const weather = await tools.everything.get_structured_content({ location: "Chicago" });
  const celsius: number = weather.temperature;""",
    "filesystem": """
  const file = await tools.filesystem.read_text_file({ path: "/tmp/a.txt", head: 5 });
  const text: string = file.content;
  const edits = [{ oldText: "a", newText: "b" }];
  await tools.filesystem.edit_file({ path: "/tmp/a.txt", edits });""",
    "github": """
  const found: unknown = await tools.github.search_repositories({ query: "isobind", perPage: 5 });
  await tools.github.push_files({
    owner: "o", repo: "r", branch: "main", message: "m",
    files: [{ path: "a", content: "b" }] });""",
    "sequential-thinking": """
  const step = await tools.sequential_thinking.sequentialthinking({
    thought: "t", nextThoughtNeeded: true, thoughtNumber: 1, totalThoughts: 2 });
  const history: number = step.thoughtHistoryLength;""",
    "memory": """
  await tools.memory.create_entities({
    entities: [{ name: "Ada", entityType: "person", observations: ["wrote code"] }] });
  const graph = await tools.memory.read_graph();
  const names: string[] = graph.entities.map((entity) => entity.name);""",
}


def tool(name: str, input_schema: Any, *, server: str = "s", **fields: Any) -> ToolSpec:
    return ToolSpec(server=server, name=name, input_schema=input_schema, **fields)


# Naming


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("get_weather", "get_weather"),
        ("get-weather", "get_weather"),
        ("get.weather", "get_weather"),
        ("a -- b", "a_b"),
        ("2fa", "_2fa"),
        ("-x-", "_x_"),
        ("", "_"),
        ("🙂", "_"),
        ("delete", "delete_"),
        ("let", "let_"),
        ("yield", "yield_"),
        ("eval", "eval_"),
        ("__proto__", "__proto___"),
        ("café", "café"),
        ("日本語", "日本語"),
        ("$ref", "$ref"),
        ("Delete", "Delete"),
    ],
    ids=[
        "valid",
        "dash",
        "dot",
        "run of invalid",
        "leading digit",
        "edges",
        "empty",
        "emoji only",
        "reserved",
        "strict reserved",
        "strict reserved yield",
        "eval",
        "proto",
        "accented",
        "cjk",
        "dollar",
        "case sensitive",
    ],
)
def test_to_identifier(name: str, expected: str) -> None:
    assert to_identifier(name) == expected


@pytest.mark.parametrize(
    ("name", "identifier", "identifier_name"),
    [
        ("tools", True, True),
        ("delete", False, True),
        ("arguments", False, True),
        ("a-b", False, False),
        ("1a", False, False),
        ("", False, False),
        ("a\u200db", True, True),
        ("$", True, True),
    ],
    ids=["plain", "reserved", "avoided", "dash", "digit", "empty", "zero width joiner", "dollar"],
)
def test_is_identifier(name: str, identifier: bool, identifier_name: bool) -> None:
    assert is_identifier(name) is identifier
    assert is_identifier_name(name) is identifier_name


@given(st.text())
def test_to_identifier_always_valid(name: str) -> None:
    identifier = to_identifier(name)
    assert is_identifier(identifier)
    assert to_identifier(identifier) == identifier


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [
        ("get_current_time", "Input", "GetCurrentTimeInput"),
        ("get-sum", "Output", "GetSumOutput"),
        ("TimeResult", "", "TimeResult"),
        ("2fa", "Input", "_2faInput"),
        ("", "", "Type"),
        ("a b/c", "", "ABC"),
    ],
    ids=["snake", "kebab", "pascal kept", "leading digit", "empty", "separators"],
)
def test_to_type_name(name: str, suffix: str, expected: str) -> None:
    assert to_type_name(name, suffix) == expected


@needs_tsc
def test_sanitised_names_compile(tmp_path: Path) -> None:
    names = ["delete", "get-weather", "2fa", "café", "a b", "", "enum", "__proto__", "$x"]
    names += ["Promise", "tools", "string", "undefined"]
    specs = [tool(name, {"type": "object"}, server=name or "empty") for name in names]
    api = render_api(specs)
    calls = "".join(f"\n  await tools.{server}.{name}();" for server, name in api.bindings)
    assert_compiles(tmp_path, api.declaration + in_async_function(calls))


# Single schemas

SCHEMA_CASES = [
    ({"type": "string"}, "type T = string;"),
    ({"type": "integer"}, "/** @integer */\ntype T = number;"),
    ({"type": ["string", "null"]}, "type T = string | null;"),
    ({"type": ["number", "integer"]}, "type T = number;"),
    ({}, "type T = unknown;"),
    (True, "type T = unknown;"),
    (False, "type T = never;"),
    ({"enum": ["a", 1, 2.5, True, None]}, 'type T = "a" | 1 | 2.5 | true | null;'),
    ({"type": "string", "enum": ["a", "b", None]}, 'type T = "a" | "b";'),
    ({"const": {"k": [1, "x"], "a b": False}}, 'type T = { k: [1, "x"]; "a b": false };'),
    ({"const": -3}, "type T = -3;"),
    ({"type": "string", "nullable": True}, "type T = string | null;"),
    ({"anyOf": [{"type": "string"}, {"type": "number"}]}, "type T = string | number;"),
    (
        {"oneOf": [{"const": "a"}, {"anyOf": [{"const": "b"}, {"const": "a"}]}]},
        'type T = "a" | "b";',
    ),
    (
        {"allOf": [{"$ref": "#/$defs/A"}, {"properties": {"b": {"type": "number"}}}]}
        | {"$defs": {"A": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "interface A { a?: string }\ntype T = A & { b?: number };",
    ),
    (
        {"type": "array", "items": {"type": ["string", "number"]}},
        "type T = (string | number)[];",
    ),
    ({"type": "array", "items": {"const": -1}}, "type T = (-1)[];"),
    ({"type": "array"}, "type T = unknown[];"),
    (
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}], "minItems": 1},
        "/** @minItems 1 */\ntype T = [string, number?, ...unknown[]];",
    ),
    (
        {"type": "array", "items": [{"type": "string"}, {"type": "boolean"}], "minItems": 2}
        | {"additionalItems": False},
        "/** @minItems 2 */\ntype T = [string, boolean];",
    ),
    (
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        "interface T { a: string }",
    ),
    ({"type": "object", "properties": {}}, "interface T {}"),
    ({"type": "object"}, "interface T { [key: string]: unknown }"),
    (
        {"type": "object", "additionalProperties": {"type": "number"}},
        "interface T { [key: string]: number }",
    ),
    (
        {"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "number"}},
        "interface T { a?: string; [key: string]: number | string | undefined }",
    ),
    (
        {"properties": {"a": {"type": "string"}}, "required": ["a"]}
        | {"additionalProperties": True},
        "interface T { a: string; [key: string]: unknown }",
    ),
    (
        {"patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False},
        "interface T {\n  /** Keys matching ^x- */ [key: string]: string;\n}",
    ),
    (
        {"properties": {"a": {"type": "string"}}, "required": ["a"]}
        | {"patternProperties": {"^n_": {"type": "number"}}},
        "interface T {\n  a: string;\n"
        "  /** Keys matching ^n_ */ [key: string]: number | string;\n}",
    ),
    (
        {"type": "object", "nullable": True, "properties": {"a": {"type": "string"}}},
        "type T = { a?: string } | null;",
    ),
    (
        {"properties": {"a-b": {}, "delete": {}, "0": {}, "": {}}},
        'interface T { "a-b"?: unknown; delete?: unknown; "0"?: unknown; ""?: unknown }',
    ),
    (
        {"properties": {"n": {"$ref": "#/$defs/Node"}}}
        | {
            "$defs": {
                "Node": {"properties": {"next": {"$ref": "#/$defs/Node"}, "v": {"type": "string"}}}
            }
        },
        "interface Node { next?: Node; v?: string }\ninterface T { n?: Node }",
    ),
    (
        {"$ref": "#/definitions/a-b", "definitions": {"a-b": {"type": "string"}}},
        "type AB = string;\ntype T = AB;",
    ),
    (
        {"type": "object", "properties": {"child": {"$ref": "#"}}},
        "interface T { child?: T }",
    ),
    (
        {"properties": {"tree": {"$ref": "#/$defs/Tree"}}}
        | {"$defs": {"Tree": {"anyOf": [{"type": "string"}, {"items": {"$ref": "#/$defs/Tree"}}]}}},
        "type Tree = string | Tree[];\ninterface T { tree?: Tree }",
    ),
    (
        {"$ref": "#/$defs/A"}
        | {"$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "string"}]}}},
        "type A = unknown;\ntype T = A;",
    ),
    (
        {"properties": {"r": {"$ref": "https://example.com/s.json"}}},
        "interface T { r?: unknown /* $ref https://example.com/s.json */ }",
    ),
    ({"$ref": "#/$defs/Missing"}, "type T = unknown;"),
    (
        {"$ref": "#/$defs/A", "type": "object", "$defs": {"A": {"type": "string"}}},
        "type A = string;\ntype T = A;",
    ),
    (
        {"description": "Root.", "type": "object", "properties": {"a": {"type": "string"}}},
        "/** Root. */\ninterface T { a?: string }",
    ),
    (
        {
            "properties": {
                "n": {
                    "type": "integer",
                    "description": "Count.",
                    "default": 3,
                    "minimum": 1,
                    "exclusiveMaximum": 10,
                }
            }
        },
        "interface T {\n"
        "  /** Count. @default 3 @integer @minimum 1 @exclusiveMaximum 10 */ n?: number;\n}",
    ),
    (
        {
            "properties": {
                "s": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 9,
                    "pattern": "^a+$",
                    "format": "email",
                    "deprecated": True,
                }
            }
        },
        "interface T {\n"
        "  /** @deprecated @minLength 1 @maxLength 9 @pattern ^a+$ @format email */ s?: string;\n"
        "}",
    ),
    (
        {"properties": {"a": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}}},
        "interface T {\n  /** @integer @minimum 0 */ a?: number | null;\n}",
    ),
    (
        {"properties": {"d": {"default": {"é": [1, None]}, "examples": ["*/"], "format": "x"}}},
        'interface T {\n  /** @default {"é":[1,null]} @format x @example "*\\/" */ d?: unknown;\n}',
    ),
    (
        {"properties": {"c": {"enum": ["r", "g"], "enumDescriptions": ["Red", "Green"]}}},
        'interface T {\n  /**\n   * Values:\n   * "r": Red\n   * "g": Green\n   */\n'
        '  c?: "r" | "g";\n}',
    ),
    (
        {"properties": {"repo_path": {"title": "Repo Path"}, "n": {"title": "Number of lines"}}},
        "interface T {\n  repo_path?: unknown;\n  /** Number of lines */ n?: unknown;\n}",
    ),
    (
        {"properties": {"d": {"description": "First.\n\n    Second, */ closed?"}}},
        "interface T {\n  /**\n   * First.\n   * Second, *\\/ closed?\n   */\n  d?: unknown;\n}",
    ),
    (
        {
            "type": "object",
            "properties": {"kind": {"type": "string"}},
            "if": {"properties": {"kind": {"const": "file"}}, "required": ["kind"]},
            "then": {"properties": {"path": {"type": "string"}}, "required": ["path"]},
            "else": {"properties": {"url": {"type": "string"}}, "required": ["url"]},
        },
        'type T = { kind?: string } & ({ kind: "file" } & { path: string } | { url: string });',
    ),
    (
        {"if": {"type": "string"}, "then": {"minLength": 1}},
        "type T = unknown;",
    ),
    (
        {"properties": {"n": {"type": "string", "not": {"const": ""}}}},
        'interface T {\n  /** @not {"const":""} */ n?: string;\n}',
    ),
    ({"type": ["integer", "null"]}, "/** @integer */\ntype T = number | null;"),
]


@pytest.mark.parametrize(
    ("schema", "expected"),
    SCHEMA_CASES,
    ids=[
        "string",
        "integer",
        "type array",
        "number and integer",
        "empty schema",
        "true",
        "false",
        "enum mixed",
        "enum filtered by type",
        "const object",
        "const negative",
        "nullable",
        "anyOf",
        "oneOf nested",
        "allOf with ref",
        "array of union",
        "array of negative",
        "array without items",
        "prefixItems",
        "items array form",
        "required property",
        "empty properties",
        "free-form object",
        "additionalProperties only",
        "additionalProperties with properties",
        "additionalProperties true",
        "patternProperties",
        "patternProperties beside properties",
        "nullable object",
        "quoted keys",
        "recursive defs",
        "definitions",
        "root reference",
        "recursion through array",
        "direct self reference",
        "remote ref",
        "missing ref",
        "ref with sibling type",
        "root description",
        "number hints",
        "string hints",
        "hints from optional branch",
        "default and example",
        "enum descriptions",
        "titles",
        "comment end escaped",
        "if then else",
        "if then without type",
        "not",
        "integer or null",
    ],
)
def test_render_schema(schema: Any, expected: str) -> None:
    assert render_schema(schema, name="T") == expected


@needs_tsc
def test_render_schema_compiles(tmp_path: Path) -> None:
    # One namespace per case, so that one compiler run checks them all.
    source = "".join(
        f"namespace case{index} {{\n{render_schema(schema, name='T')}\n}}\n"
        for index, (schema, _) in enumerate(SCHEMA_CASES)
    )
    assert_compiles(tmp_path, source)


@needs_tsc
def test_conditional_accepts_both_branches(tmp_path: Path) -> None:
    schema, _ = SCHEMA_CASES[-4]
    source = render_schema(schema, name="T") + (
        '\nconst file: T = { kind: "file", path: "/a" };\n'
        'const link: T = { kind: "link", url: "https://example.com" };\n'
        "// @ts-expect-error: a file needs a path or a url\n"
        'const neither: T = { kind: "file" };\n'
    )
    assert_compiles(tmp_path, source)


# Whole APIs


def test_corpus_has_usage_servers() -> None:
    assert set(USAGE) <= set(corpus_servers())


@pytest.mark.parametrize("server", corpus_servers(), ids=corpus_servers())
def test_real_tool_list_renders(server: str) -> None:
    specs = tool_specs(server)
    api = render_api(specs)
    server_id = to_identifier(server)
    assert len(api.bindings) == len(specs)
    assert api.servers == {server_id: server}
    assert f"declare namespace tools.{server_id} {{" in api.declaration


@needs_tsc
@pytest.mark.parametrize("server", sorted(USAGE), ids=sorted(USAGE))
def test_real_tool_list_compiles(tmp_path: Path, server: str) -> None:
    api = render_api(tool_specs(server))
    assert_compiles(tmp_path, api.declaration + in_async_function(USAGE[server]))


@needs_tsc
def test_all_servers_compile_together(tmp_path: Path) -> None:
    specs = [spec for server in corpus_servers() for spec in tool_specs(server)]
    api = render_api(specs)
    assert_compiles(tmp_path, api.declaration + in_async_function("".join(USAGE.values())))


def test_time_server_declaration() -> None:
    api = render_api(tool_specs("time"))
    namespace = api.declaration.split("\n", 1)[1]
    assert namespace.startswith("declare namespace tools.time {\n  interface GetCurrentTimeInput {")
    assert "  interface TimeResult { timezone: string; datetime: string;" in namespace
    assert "source: TimeResult; target: TimeResult; time_difference: string }" in namespace
    assert "  /** Get current time in a specific timezone @readonly */\n" in namespace
    assert (
        "  function get_current_time(input: GetCurrentTimeInput): Promise<GetCurrentTimeOutput>;"
        in namespace
    )


EDGE_SCHEMAS = {
    "no properties": {"type": "object", "properties": {}},
    "pattern beside required properties": {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "patternProperties": {"^n_": {"type": "number"}},
        "required": ["a"],
    },
    "nullable object and property": {
        "type": "object",
        "nullable": True,
        "properties": {"a": {"type": "string", "nullable": True}},
    },
    "tuple with rest": {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "number"}],
        "items": {"type": "boolean"},
        "minItems": 1,
    },
    "free-form": {"type": "object"},
    "not an object": {"type": "string"},
    "union root": {"anyOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {}]},
    "recursive root": {"properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}},
    "mutual recursion": {
        "$ref": "#/$defs/A",
        "$defs": {
            "A": {"anyOf": [{"$ref": "#/$defs/B"}, {"properties": {"b": {"$ref": "#/$defs/B"}}}]},
            "B": {
                "anyOf": [{"$ref": "#/$defs/A"}, {"type": "array", "items": {"$ref": "#/$defs/A"}}]
            },
        },
    },
    "alias chain": {
        "$ref": "#/$defs/A",
        "$defs": {
            "A": {"$ref": "#/$defs/B"},
            "B": {"$ref": "#/$defs/C"},
            "C": {"$ref": "#/$defs/A"},
        },
    },
    "ref to property": {
        "properties": {"a": {"type": "string"}, "b": {"$ref": "#/properties/a"}},
    },
    "pointer escapes": {
        "properties": {"x": {"$ref": "#/$defs/a~1b%20c~0d"}},
        "$defs": {"a/b c~d": {"type": "number"}},
    },
    "index with optional properties": {
        "properties": {"a": {"type": "string"}, "b": {"type": "object"}},
        "patternProperties": {"^x": {"type": "boolean"}},
        "additionalProperties": {"type": "integer"},
    },
    "index too wide": {
        "properties": {f"p{i}": {"enum": [f"value-{i}-{j}" for j in range(5)]} for i in range(9)},
        "additionalProperties": {"type": "number"},
    },
    "intersection of unions": {
        "anyOf": [{"type": "string"}, {"type": "number"}],
        "oneOf": [{"const": "a"}, {"const": 1}],
    },
    "nested objects": {
        "properties": {
            "a": {
                "description": "Outer.",
                "properties": {
                    "b": {"description": "Inner.", "properties": {"c": {"type": "string"}}}
                },
            }
        },
    },
    "tuple of unions": {
        "type": "array",
        "prefixItems": [{"type": ["string", "null"]}],
        "items": {"anyOf": [{"type": "number"}, {"type": "boolean"}]},
    },
    "const array of objects": {"const": [{"a": None}, [], {}]},
    "huge numbers": {"enum": [10**400, -(10**400), 1e308, float("inf")]},
    "unicode keys": {"properties": {"clé": {}, "a\u2028b": {}, "\ud800": {}}},
    "hostile text": {
        "description": "*/ declare const leaked: number; /*",
        "properties": {
            '"; } declare const y: 1; {': {"description": "*/\u2028declare const z: 1;\r/*"},
            "p": {"default": "*/", "pattern": "a*/", "examples": ["*/"]},
        },
    },
    "malformed keywords": {
        "type": 5,
        "properties": {"a": 7, "b": {"items": "x", "anyOf": {}, "required": "b"}},
        "required": None,
        "enum": [],
    },
    "unknown type name": {"properties": {"f": {"type": "file"}}},
    "non-ASCII digit in pointer": {"properties": {"a": {"$ref": "#/prefixItems/²"}}},
    "non-string keys": {"properties": {1: {}}, "patternProperties": {2: {}}, "required": [1]},
    "both defs spellings": {
        "properties": {"a": {"$ref": "#/$defs/X"}, "b": {"$ref": "#/definitions/X"}},
        "$defs": {"X": {"type": "string"}},
        "definitions": {"X": {"type": "number"}},
    },
}


@needs_tsc
def test_edge_schemas_compile(tmp_path: Path) -> None:
    # A server (so a namespace) per schema, so that one compiler run checks them all.
    tools = []
    for index, schema in enumerate(EDGE_SCHEMAS.values()):
        server = f"case{index}"
        description = "*/ declare const hidden: 1; /*"
        tools.append(tool("in", schema, server=server, description=description))
        tools.append(tool("out", {"type": "object"}, server=server, output_schema=schema))
    # An injected declaration would clash with these and fail to compile.
    clashes = "declare const hidden: string, leaked: string, y: string, z: string;\n"
    assert_compiles(tmp_path, render_api(tools).declaration + clashes)


@needs_tsc
def test_edge_schemas_share_namespace(tmp_path: Path) -> None:
    specs = [tool(f"t{index}", schema) for index, schema in enumerate(EDGE_SCHEMAS.values())]
    assert_compiles(tmp_path, render_api(specs).declaration)


WRONG_CALLS = {
    "number for string": (
        "time",
        "await tools.time.get_current_time({ timezone: 5 });",
        "TS2322",
    ),
    "missing required": ("time", "await tools.time.get_current_time({});", "TS2741"),
    "missing input": ("time", "await tools.time.get_current_time();", "TS2554"),
    "misspelt property": (
        "time",
        'await tools.time.get_current_time({ timezone: "UTC", tz: "UTC" });',
        "TS2353",
    ),
    "output field type": (
        "time",
        'const n: number = (await tools.time.get_current_time({ timezone: "UTC" })).datetime;',
        "TS2322",
    ),
    "unknown output used": (
        "git",
        'const s: string = await tools.git.git_status({ repo_path: "." });',
        "TS2322",
    ),
    "enum literal": (
        "everything",
        'await tools.everything.get_structured_content({ location: "Paris" });',
        "TS2322",
    ),
    "array element": (
        "memory",
        "await tools.memory.open_nodes({ names: [1] });",
        "TS2322",
    ),
    "nested object": (
        "filesystem",
        'await tools.filesystem.edit_file({ path: "a", edits: [{ oldText: "a" }] });',
        "TS2741",
    ),
    "unknown tool": ("time", "await tools.time.get_time();", "TS2339"),
    "original dashed name": (
        "everything",
        'await tools.everything["get-sum"]({ a: 1, b: 2 });',
        "TS2551",
    ),
}


@pytest.fixture(scope="module")
def wrong_call_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Compile every wrong call in one run and return the error codes reported for each."""
    servers = sorted({server for server, _, _ in WRONG_CALLS.values()})
    source = render_api([spec for server in servers for spec in tool_specs(server)]).declaration
    lines = {}
    for number, (name, (_, call, _)) in enumerate(WRONG_CALLS.items()):
        source += f"async function case{number}(): Promise<void> {{\n"
        lines[source.count("\n") + 1] = name
        source += f"  {call}\n}}\n"

    result = compile_typescript(tmp_path_factory.mktemp("wrong"), source)
    errors: dict[str, list[str]] = {name: [] for name in WRONG_CALLS}
    for match in re.finditer(r"check\.ts\((\d+),\d+\): error (TS\d+)", result.stdout):
        name = lines.get(int(match.group(1)), "elsewhere")
        errors.setdefault(name, []).append(match.group(2))
    return errors


@needs_tsc
def test_wrong_calls_only_errors(wrong_call_errors: dict[str, list[str]]) -> None:
    assert "elsewhere" not in wrong_call_errors


@needs_tsc
@pytest.mark.parametrize(("server", "call", "code"), WRONG_CALLS.values(), ids=WRONG_CALLS.keys())
def test_wrong_call_rejected(
    wrong_call_errors: dict[str, list[str]], server: str, call: str, code: str
) -> None:
    name = next(name for name, case in WRONG_CALLS.items() if case == (server, call, code))
    assert code in wrong_call_errors[name], f"tsc reported {wrong_call_errors[name]} for {call}"


# API structure


def test_dashed_tool_binds_to_original() -> None:
    api = render_api(tool_specs("everything"))
    spec = api.bindings[("everything", "get_sum")]
    assert spec.name == "get-sum"
    assert "function get_sum(input: GetSumInput): Promise<unknown>;" in api.declaration


def test_server_identifier_maps_to_configured_name() -> None:
    api = render_api([tool("get-x", {}, server="my-server")])
    assert api.servers == {"my_server": "my-server"}
    assert api.bindings[("my_server", "get_x")].server == "my-server"
    assert '/** MCP server "my-server". */\ndeclare namespace tools.my_server {' in api.declaration


def test_api_is_read_only() -> None:
    api = render_api([tool("a", {})])
    with pytest.raises(dataclasses.FrozenInstanceError):
        api.declaration = ""  # type: ignore[misc]
    with pytest.raises(TypeError):
        api.bindings[("s", "b")] = tool("b", {})  # type: ignore[index]


def test_tool_collision_error_names_both() -> None:
    with pytest.raises(ApiError) as caught:
        render_api([tool("get-weather", {}), tool("get_weather", {})])
    message = str(caught.value)
    assert "'get-weather'" in message
    assert "'get_weather'" in message
    assert "tools.s.get_weather" in message
    assert "Deny one of them" in message


def test_duplicate_tool_error() -> None:
    with pytest.raises(ApiError, match=r"lists the tool 'a' twice\. Deny one"):
        render_api([tool("a", {}), tool("a", {})])


def test_server_collision_error_names_both() -> None:
    with pytest.raises(ApiError) as caught:
        render_api([tool("a", {}, server="my-server"), tool("b", {}, server="my.server")])
    message = str(caught.value)
    assert "'my-server'" in message
    assert "'my.server'" in message
    assert "tools.my_server" in message
    assert "Rename one of them" in message


def test_server_description_in_namespace_doc() -> None:
    api = render_api(
        [tool("a", {}, server="time")], server_descriptions={"time": "Clock.\n\nUse */ UTC."}
    )
    assert '/**\n * MCP server "time". Clock.\n * Use *\\/ UTC.\n */' in api.declaration


def test_no_tools_declares_empty_object() -> None:
    assert render_api([]).declaration.endswith("\ndeclare const tools: {};\n")


@pytest.mark.parametrize(
    ("schema", "signature"),
    [
        ({"type": "object", "properties": {}}, "function t(input?: {}): Promise<unknown>;"),
        (
            {"type": "object"},
            "function t(input?: { [key: string]: unknown }): Promise<unknown>;",
        ),
        (
            {"properties": {"a": {"type": "string"}}},
            "function t(input?: TInput): Promise<unknown>;",
        ),
        (
            {"properties": {"a": {"type": "string"}}, "required": ["a"]},
            "function t(input: TInput): Promise<unknown>;",
        ),
        ({"anyOf": [{"type": "object"}, {"type": "null"}]}, "function t(input: TInput)"),
        ({"type": "object", "properties": "bad"}, "function t(input?: { [key: string]: unknown })"),
        ({}, "function t(input?: unknown): Promise<unknown>;"),
    ],
    ids=[
        "no properties",
        "free-form",
        "optional properties",
        "required property",
        "union",
        "malformed properties",
        "empty schema",
    ],
)
def test_input_parameter(schema: Any, signature: str) -> None:
    assert signature in render_api([tool("t", schema)]).declaration


def test_output_schema_types_result() -> None:
    spec = tool("t", {}, output_schema={"properties": {"n": {"type": "number"}}})
    declaration = render_api([spec]).declaration
    assert "  interface TOutput { n?: number }\n" in declaration
    assert "function t(input?: unknown): Promise<TOutput>;" in declaration


@pytest.mark.parametrize(
    ("annotations", "tag"),
    [
        (ToolAnnotations(read_only=True, destructive=True), "@readonly"),
        (ToolAnnotations(read_only=False), "@destructive"),
        (ToolAnnotations(destructive=True), "@destructive"),
        (ToolAnnotations(read_only=False, destructive=False), None),
        (ToolAnnotations(), None),
    ],
    ids=["read-only", "spec default", "destructive", "additive", "no hints"],
)
def test_annotation_tag(annotations: ToolAnnotations, tag: str | None) -> None:
    spec = tool("t", {}, description="Do it.", annotations=annotations)
    doc = f"/** Do it. {tag} */" if tag else "/** Do it. */"
    assert f"  {doc}\n  function t(" in render_api([spec]).declaration


@pytest.mark.parametrize(
    ("title", "description", "doc"),
    [
        ("Echo Tool", "Echoes the input", "/** Echo Tool: Echoes the input */"),
        ("Echo", "Echoes the input", "/** Echoes the input */"),
        ("Get Sum", "Get sum of two numbers", "/** Get sum of two numbers */"),
        ("Echo Tool", None, "/** Echo Tool */"),
        ("Read (Deprecated).", "Reads.", "/** Read (Deprecated). Reads. */"),
        (None, "Line one.\n\n   Line two.  ", "/**\n   * Line one.\n   * Line two.\n   */"),
    ],
    ids=[
        "title and text",
        "title is name",
        "text repeats title",
        "title only",
        "title ends",
        "multi-line",
    ],
)
def test_tool_doc(title: str | None, description: str | None, doc: str) -> None:
    spec = tool("echo", {}, title=title, description=description)
    assert f"  {doc}\n  function echo(" in render_api([spec]).declaration


def test_identical_defs_share_alias() -> None:
    defs = {"$defs": {"Item": {"type": "object", "properties": {"id": {"type": "string"}}}}}
    uses_item = {"properties": {"item": {"$ref": "#/$defs/Item"}}} | defs
    other_item = {"properties": {"item": {"$ref": "#/$defs/Item"}}} | {
        "$defs": {"Item": {"type": "number"}}
    }
    api = render_api([tool("a", uses_item), tool("b", uses_item), tool("c", other_item)])
    assert api.declaration.count("interface Item {") == 1
    assert "  type Item2 = number;\n" in api.declaration
    assert "interface CInput { item?: Item2 }" in api.declaration


def test_type_names_do_not_collide() -> None:
    api = render_api(
        [
            tool("get_x", {"properties": {"a": {}}}),
            tool("getX", {"properties": {"b": {}}}),
            tool("promise", {"$ref": "#/$defs/Promise", "$defs": {"Promise": {"type": "string"}}}),
        ]
    )
    assert "interface GetXInput { a?: unknown }" in api.declaration
    assert "interface GetXInput2 { b?: unknown }" in api.declaration
    assert "type Promise2 = string;" in api.declaration


# Hostile schemas


def nested_arrays(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


def shared_branches(levels: int) -> dict[str, Any]:
    """Return a schema whose dicts are shared, so that it is 2**levels nodes as a tree."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"anyOf": [schema, schema], "properties": {"a": schema, "b": schema}}
    return schema


HOSTILE_SCHEMAS = {
    "deep nesting": nested_arrays(10_000),
    "shared branches": shared_branches(200),
    "huge enum": {"enum": list(range(200_000))},
    "huge text": {"properties": {f"p{i}": {"description": "x" * 10_000} for i in range(100)}},
    "long direct ref chain": {
        "$ref": "#/$defs/D0",
        "$defs": {
            f"D{i}": {"anyOf": [{"$ref": f"#/$defs/D{i + 1}"}, {"type": "null"}]}
            for i in range(500)
        },
    },
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("schema", HOSTILE_SCHEMAS.values(), ids=HOSTILE_SCHEMAS.keys())
def test_hostile_schema_falls_back(caplog: pytest.LogCaptureFixture, schema: Any) -> None:
    spec = tool("bad tool", schema, server="evil", output_schema=schema)
    with caplog.at_level(logging.WARNING, logger="isobind._typescript"):
        api = render_api([spec, tool("good", {"properties": {"a": {"type": "string"}}})])
    assert "function bad_tool(input?: unknown): Promise<unknown>;" in api.declaration
    assert "interface GoodInput { a?: string }" in api.declaration
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith(
        "MCP server 'evil', tool 'bad tool', input schema: typed as unknown"
    )
    assert messages[1].startswith(
        "MCP server 'evil', tool 'bad tool', output schema: typed as unknown"
    )


def test_depth_limit_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="isobind._typescript"):
        assert render_schema(nested_arrays(MAX_DEPTH + 1), name="T") == "type T = unknown;"
    assert f"nested more than {MAX_DEPTH} levels deep" in caplog.text


def test_nesting_within_limit_renders() -> None:
    assert render_schema(nested_arrays(MAX_DEPTH - 1), name="T").endswith(
        "string" + "[]" * 39 + ";"
    )


def test_failed_schema_leaves_no_types(caplog: pytest.LogCaptureFixture) -> None:
    defs = {"$defs": {"Item": {"type": "string"}}}
    bad = {"properties": {"a": {"$ref": "#/$defs/Item"}, "b": nested_arrays(100)}} | defs
    good = {"properties": {"a": {"$ref": "#/$defs/Item"}}} | defs
    with caplog.at_level(logging.WARNING, logger="isobind._typescript"):
        declaration = render_api([tool("bad", bad), tool("good", good)]).declaration
    assert "  type Item = string;\n  interface GoodInput { a?: Item }\n" in declaration
    assert "Item2" not in declaration


def test_malformed_parts_logged(caplog: pytest.LogCaptureFixture) -> None:
    schema = {"properties": {"a": 7, "b": {"type": "file"}, "c": {"$ref": "#/nope"}, "d": []}}
    with caplog.at_level(logging.WARNING, logger="isobind._typescript"):
        declaration = render_api([tool("t", schema)]).declaration
    assert "interface TInput { a?: unknown; b?: unknown; c?: unknown; d?: unknown }" in declaration
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("MCP server 's', tool 't', input schema: parts typed as unknown: ")
    assert "#/properties/a: a schema must be an object or boolean, not integer" in message
    assert "#/properties/b/type: unknown type 'file'" in message
    assert "(and 1 more)" in message


def test_control_characters_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="isobind._typescript"):
        render_schema({"properties": {"a\nFORGED": 1}}, name="T")
    assert "\n" not in caplog.records[0].getMessage()


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
SCHEMA_KEYWORDS = st.sampled_from(
    [
        "type", "enum", "const", "properties", "required", "items", "prefixItems",
        "additionalItems", "additionalProperties", "patternProperties", "anyOf", "oneOf",
        "allOf", "$ref", "$defs", "definitions", "nullable", "description", "default",
        "minimum", "exclusiveMinimum", "pattern", "format", "deprecated", "minItems",
    ]
)  # fmt: skip
SCHEMA_VALUES = st.recursive(
    JSON_SCALARS
    | st.sampled_from(["#", "#/$defs/a", "#/definitions/b", "#/properties/x", "object", "array"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(SCHEMA_KEYWORDS | st.sampled_from(["a", "b", "x"]), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMA_VALUES)
def test_arbitrary_schema_never_raises(schema: Any) -> None:
    logging.getLogger("isobind._typescript").disabled = True
    try:
        api = render_api([tool("t", schema, output_schema=schema)])
    finally:
        logging.getLogger("isobind._typescript").disabled = False
    assert "function t(" in api.declaration


# Precision


def test_corpus_has_no_fallbacks() -> None:
    specs = [spec for server in corpus_servers() for spec in tool_specs(server)]
    assert type_fallbacks(specs) == ()


def test_corpus_declares_no_any() -> None:
    specs = [spec for server in corpus_servers() for spec in tool_specs(server)]
    code = re.sub(r"/\*.*?\*/", "", render_api(specs).declaration, flags=re.DOTALL)
    assert re.search(r"\bany\b", code) is None


FALLBACK_CASES = {
    "empty schema": ({"properties": {"a": {}}}, 0),
    "true schema": ({"properties": {"a": True}}, 0),
    "free-form map": ({"properties": {"a": {"type": "object"}}}, 0),
    "array without items": ({"properties": {"a": {"type": "array"}}}, 0),
    "any of with anything": ({"properties": {"a": {"anyOf": [{"type": "string"}, {}]}}}, 0),
    "remote ref": ({"properties": {"a": {"$ref": "https://example.com/s.json"}}}, 1),
    "missing ref": ({"properties": {"a": {"$ref": "#/$defs/nothing"}}}, 1),
    "unknown type name": ({"properties": {"a": {"type": "decimal"}}}, 1),
    "schema not an object": ({"properties": {"a": 5, "b": "x"}}, 2),
    "properties not an object": ({"properties": []}, 1),
    "index too wide": (
        {
            "properties": {f"p{n}": {"enum": [f"value number {n}"]} for n in range(8)},
            "additionalProperties": {"type": "boolean"},
        },
        1,
    ),
    "too deep": ({"properties": {"a": nested_arrays(MAX_DEPTH + 5)}}, 1),
}


@pytest.mark.parametrize(("schema", "expected"), FALLBACK_CASES.values(), ids=FALLBACK_CASES.keys())
def test_fallbacks_counted(schema: Any, expected: int) -> None:
    fallbacks = type_fallbacks([tool("t", schema)])
    assert len(fallbacks) == expected, fallbacks


def test_fallback_names_tool_and_place() -> None:
    schema = {"properties": {"a": {"$ref": "https://example.com/s.json"}}}
    (fallback,) = type_fallbacks([tool("fetch-it", schema, server="web")])
    assert fallback.startswith("MCP server 'web', tool 'fetch-it', input schema: ")
    assert "#/properties/a/$ref" in fallback
