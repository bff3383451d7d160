"""Render MCP tools as one TypeScript declaration for the model to read.

The declaration gives each server a namespace under one global `tools` object::

    /** Tools of MCP servers, called as `await tools.<server>.<tool>(input)`. ... */
    declare namespace tools.time {
      interface GetCurrentTimeInput {
        /** IANA timezone name (e.g., 'America/New_York', ...). */ timezone: string;
      }
      interface GetCurrentTimeOutput { timezone: string; datetime: string; ... }
      /** Get current time in a specific timezone @readonly */
      function get_current_time(input: GetCurrentTimeInput): Promise<GetCurrentTimeOutput>;
    }

Input types follow the tool's `inputSchema`. The output type follows its
`outputSchema` (the host then returns `structuredContent`) and is `unknown` when
there is none. Server and tool names become identifiers by the rules in
`isobind._naming`, and `Api.bindings` maps them back to the original tools.

Schemas come from servers that may be careless or hostile, so each schema is
rendered under limits on nesting depth, visited nodes and output size. A schema
that breaks a limit is typed `unknown` and logged as a warning. A malformed part
of a schema (say a `properties` that is not an object) is typed `unknown` on its
own, and the rest of the schema keeps its types.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import logging
import math
import re
import urllib.parse
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from ._errors import ApiError
from ._naming import is_identifier_name, to_identifier, to_type_name
from ._tools import ToolAnnotations, ToolSpec
from ._words import tokenize

__all__ = ["DETAILS", "Api", "Detail", "render_api", "render_schema", "type_fallbacks"]

logger = logging.getLogger(__name__)

# Limits per schema (one tool's input or output). Real tool lists are far below
# them. No schema in tests/data/tool_lists/ nests deeper than 5 levels, visits
# more than 16 nodes or renders to more than 1,300 characters.
MAX_DEPTH = 40
MAX_NODES = 20_000
# NOTE: the compact form counts its own, shorter text, so a tool past MAX_CHARS in
# the full form, and typed `unknown` there, can still be typed in the compact form.
MAX_CHARS = 400_000

# Descriptions and titles longer than this are cut, with a note saying how much
# was left out. The longest description in tests/data/tool_lists/ has 2,781
# characters.
MAX_DESCRIPTION_CHARS = 8_000

# JSDoc values (defaults, patterns, examples) and logged paths longer than this
# are cut. Types are never cut.
_MAX_HINT_CHARS = 80
_MAX_PROBLEMS_LOGGED = 3

# Object literals without JSDoc that fit this width stay on one line.
_INLINE_WIDTH = 100
# An index signature that must also admit the declared property types falls back
# to `unknown` past this length, because a long union there helps no reader.
_MAX_INDEX_UNION_CHARS = 120

_INDENT = "  "

_HEADER = (
    "/** Tools of MCP servers, called as `await tools.<server>.<tool>(input)`. A tool typed"
    " `Promise<unknown>` resolves to the JSON parsed from its single text item, else that"
    " text, else its MCP content list. */"
)
_COMPACT_HEADER = _HEADER.removesuffix(" */") + (
    f' A description ending in {"…"!s} is cut: `await isobind.describeTools(["server.tool"])`'
    " returns the tool's whole declaration. */"
)

Detail = Literal["full", "compact"]
"""How much description text a declaration keeps.

`"full"` keeps every description (up to `MAX_DESCRIPTION_CHARS`). `"compact"`
cuts the descriptions of tools and required properties to their first
sentence, marking a cut with `…`. It leaves out the descriptions of optional
properties and those that only restate names (see `_property_doc`), and
inlines types that nothing refers to. Both keep every type, tag and
enum note.
"""
DETAILS: tuple[Detail, ...] = ("full", "compact")

# In compact declarations, a first sentence longer than this is cut at a word.
_MAX_SUMMARY_CHARS = 160
_MAX_PROPERTY_SUMMARY_CHARS = 80
_CUT_MARK = "…"
# A sentence ends at `.`, `!` or `?` before a capital letter or the end, but not
# in the abbreviations "e.g." and "i.e.".
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)[.!?](?=\s+[A-Z]|\s*$)")

_OBJECT_KEYWORDS = ("properties", "additionalProperties", "patternProperties")
_ARRAY_KEYWORDS = ("items", "prefixItems", "additionalItems")
_NUMBER_HINTS = (
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
)
_ENUM_DESCRIPTION_KEYS = ("enumDescriptions", "x-enumDescriptions", "enumNames", "x-enumNames")


@dataclass(frozen=True, slots=True)
class Api:
    """The TypeScript API of a set of tools, and the way back from its names to the tools."""

    declaration: str
    """TypeScript source that declares the global `tools` object."""
    bindings: Mapping[tuple[str, str], ToolSpec]
    """The original tool behind each (server identifier, tool identifier) pair."""
    servers: Mapping[str, str]
    """The configured server name behind each server identifier."""
    fallbacks: tuple[str, ...] = ()
    """Each place typed `unknown` although its schema gave a type, with the tool and the reason.

    A malformed or unresolvable part of a schema, a schema past a size limit and
    an index signature too wide to spell out all end up here. `unknown` for a
    schema that allows anything (`{}`, `true`, a free-form map) does not.
    """


# Operator precedence of a rendered type, so that `(a | b)[]` gets its brackets.
class _Precedence(IntEnum):
    UNION = 0
    INTERSECTION = 1
    ATOM = 2


class _Kind(Enum):
    UNKNOWN = "unknown"
    NEVER = "never"
    OBJECT = "object"
    OTHER = "other"


class _Type(NamedTuple):
    text: str
    precedence: _Precedence = _Precedence.ATOM
    kind: _Kind = _Kind.OTHER
    # The members of a union, kept so that nested unions flatten.
    alternatives: tuple[_Type, ...] = ()


_UNKNOWN = _Type("unknown", kind=_Kind.UNKNOWN)
_NEVER = _Type("never", kind=_Kind.NEVER)
_NULL = _Type("null")
_UNDEFINED = _Type("undefined")


# Numbers for content keys of `$ref` targets that are never shared.
_unique_keys = itertools.count()


class _LimitExceeded(Exception):
    """Raised inside the renderer when a schema breaks a limit, so it falls back to `unknown`."""


def render_api(
    tools: Sequence[ToolSpec],
    *,
    server_descriptions: Mapping[str, str] | None = None,
    log_problems: bool = True,
    detail: Detail = "full",
) -> Api:
    """Render `tools` as one TypeScript declaration with a namespace per server.

    Servers and tools keep their order of first appearance. `server_descriptions`
    maps configured server names to text shown in the namespace's JSDoc. With
    `log_problems=False` schema problems are not logged, for a second rendering
    of tools whose problems were logged when they were first rendered. `detail`
    is `"full"` or `"compact"` (see `Detail`).

    Raises:
        ApiError: two servers, or two tools of one server, map to the same identifier.
    """
    if detail not in DETAILS:
        raise ValueError(f"detail must be 'full' or 'compact', not {detail!r}")
    servers, tools_by_server = _bind_names(tools)
    descriptions = server_descriptions or {}
    compact = detail == "compact"

    blocks = [_COMPACT_HEADER if compact else _HEADER]
    bindings: dict[tuple[str, str], ToolSpec] = {}
    fallbacks: list[str] = []
    for server_id, server_name in servers.items():
        scope = _TypeScope(
            indent=_INDENT, log_problems=log_problems, fallbacks=fallbacks, compact=compact
        )
        description = descriptions.get(server_name)
        if compact:
            # Code reaches a server by its identifier, so compact leaves out its original name.
            lines = _doc_lines(_summary(_clean_text(description)), [], "")
        else:
            lines = _namespace_doc(server_id, server_name, description)
        lines.append(f"declare namespace tools.{server_id} {{")
        for tool_id, spec in tools_by_server[server_id].items():
            lines.extend(_render_tool(scope, tool_id, spec))
            bindings[(server_id, tool_id)] = spec
        lines.append("}")
        blocks.append("\n".join(lines))

    if not servers:
        blocks.append("declare const tools: {};")

    return Api(
        declaration="\n".join(blocks) + "\n",
        bindings=MappingProxyType(bindings),
        servers=MappingProxyType(servers),
        fallbacks=tuple(fallbacks),
    )


def type_fallbacks(tools: Sequence[ToolSpec]) -> tuple[str, ...]:
    """Return each place in the API of `tools` typed `unknown` although its schema gave a type.

    Each entry names the server, the tool, the schema and the JSON Pointer of
    the place, and gives the reason. The rendering behind it logs nothing.
    """
    return render_api(tools, log_problems=False).fallbacks


def render_schema(schema: dict[str, Any] | bool, *, name: str = "Schema") -> str:
    """Render one JSON Schema as TypeScript declarations of the type `name`.

    The result declares `name` (as an interface when the schema is a plain
    object type, else as a type alias) after one alias per local `$ref` target.
    A schema that breaks a limit becomes `type <name> = unknown;` and is logged.
    """
    scope = _TypeScope(indent="")
    type_name = scope.allocate(to_identifier(name))
    rendered = _render_document(scope, schema, type_name, context=f"schema {name!r}")
    if rendered is None:
        return f"type {type_name} = unknown;"

    root, declarations, _ = rendered
    declarations.append(_declare(type_name, root, _schema_doc(schema), indent=""))
    return "\n".join(declarations)


def _bind_names(
    tools: Sequence[ToolSpec],
) -> tuple[dict[str, str], dict[str, dict[str, ToolSpec]]]:
    """Map servers and tools to identifiers, raising `ApiError` on any collision."""
    servers: dict[str, str] = {}
    tools_by_server: dict[str, dict[str, ToolSpec]] = {}
    for spec in tools:
        server_id = to_identifier(spec.server)
        other_server = servers.setdefault(server_id, spec.server)
        if other_server != spec.server:
            raise ApiError(
                f"MCP servers {other_server!r} and {spec.server!r} both map to the namespace "
                f"`tools.{server_id}`. Rename one of them in the config."
            )

        tool_id = to_identifier(spec.name)
        server_tools = tools_by_server.setdefault(server_id, {})
        other_tool = server_tools.get(tool_id)
        if other_tool is not None:
            if other_tool.name == spec.name:
                problem = f"lists the tool {spec.name!r} twice"
            else:
                problem = (
                    f"has tools {other_tool.name!r} and {spec.name!r} that both map to "
                    f"`tools.{server_id}.{tool_id}`"
                )
            raise ApiError(f"MCP server {spec.server!r} {problem}. Deny one of them in the config.")

        server_tools[tool_id] = spec

    return servers, tools_by_server


def _namespace_doc(server_id: str, server_name: str, description: str | None) -> list[str]:
    text = _clean_text(description)
    if text is None and server_id == server_name:
        return []

    head = _comment_text(f"MCP server {_string_literal(server_name)}.")
    return _doc_lines(f"{head} {text}" if text else head, [], "")


def _render_tool(scope: _TypeScope, tool_id: str, spec: ToolSpec) -> list[str]:
    """Render the types and the function declaration of one tool."""
    lines: list[str] = []
    context = f"MCP server {spec.server!r}, tool {spec.name!r}"
    description_chars = len(spec.description or "")
    if description_chars > MAX_DESCRIPTION_CHARS and scope.log_problems:
        logger.warning(
            "%s: description of %d characters cut to %d",
            context,
            description_chars,
            MAX_DESCRIPTION_CHARS,
        )
    if spec.schema_problem is not None:
        # The source replaced the invalid schema (see `isobind._listing`), so the
        # input is any object, or the output `unknown`.
        scope.fallbacks.append(f"{context}: invalid schema, {spec.schema_problem}")
        if scope.log_problems:
            logger.warning("%s: invalid schema typed as unknown: %s", context, spec.schema_problem)
    type_base = to_type_name(tool_id)
    if scope.compact:
        scope.tool_words = frozenset(tokenize(spec.name))

    input_type, input_optional = _render_root(
        scope, spec.input_schema, type_base + "Input", f"{context}, input schema", lines
    )
    output_type = "unknown"
    if spec.output_schema is not None:
        output_type, _ = _render_root(
            scope, spec.output_schema, type_base + "Output", f"{context}, output schema", lines
        )

    text = _tool_text(spec)
    if scope.compact:
        text = _summary(text)
    lines.extend(_doc_lines(text, _annotation_tags(spec.annotations), _INDENT))
    parameter = "input?" if input_optional else "input"
    lines.append(f"{_INDENT}function {tool_id}({parameter}: {input_type}): Promise<{output_type}>;")
    return lines


def _render_root(
    scope: _TypeScope, schema: Any, type_name: str, context: str, lines: list[str]
) -> tuple[str, bool]:
    """Render an input or output schema, appending its declarations to `lines`.

    Returns the type to use in the signature and whether the input may be
    omitted. `unknown` and a plain object type without properties stay inline,
    and any other type gets the name `type_name`. A compact declaration also
    inlines a type that nothing refers to and that has no JSDoc of its own.
    """
    name = scope.allocate(type_name)
    rendered = _render_document(scope, schema, name, context=context)
    if rendered is None:
        scope.release(name)
        return "unknown", True

    root, declarations, root_referenced = rendered
    lines.extend(declarations)
    if root.kind is _Kind.UNKNOWN and not root_referenced:
        scope.release(name)
        return root.text, True

    optional = root.kind is _Kind.OBJECT and not _required_names(schema)
    properties = schema.get("properties") if isinstance(schema, dict) else None
    has_properties = isinstance(properties, dict) and bool(properties)
    if root.kind is _Kind.OBJECT and not has_properties and not root_referenced:
        scope.release(name)
        return root.text, optional

    doc = _schema_doc(schema, scope.compact)
    if scope.compact and not root_referenced and doc == (None, []):
        scope.release(name)
        return root.text, optional

    lines.append(_declare(name, root, doc, indent=scope.indent))
    return name, optional


def _render_document(
    scope: _TypeScope, schema: Any, root_name: str, *, context: str
) -> tuple[_Type, list[str], bool] | None:
    """Render a schema document in `scope`, or return None after logging why it failed.

    On success returns the root type, the declarations of the `$ref` targets it
    needs, and whether the root itself is the target of a `$ref`.
    """
    snapshot = scope.snapshot()
    renderer = _Renderer(scope, schema, root_name)
    try:
        root = renderer.render_root()
    except (_LimitExceeded, RecursionError) as error:
        scope.restore(snapshot)
        reason = _log_text(str(error)) if isinstance(error, _LimitExceeded) else "too deeply nested"
        scope.fallbacks.append(f"{context}: whole schema, {reason}")
        if scope.log_problems:
            logger.warning("%s: typed as unknown because it is %s", context, reason)
        return None

    scope.fallbacks.extend(f"{context}: {_log_text(place)}" for place in renderer.fallbacks)

    if renderer.problems and scope.log_problems:
        shown = "; ".join(
            _log_text(problem) for problem in renderer.problems[:_MAX_PROBLEMS_LOGGED]
        )
        more = len(renderer.problems) - _MAX_PROBLEMS_LOGGED
        suffix = f" (and {more} more)" if more > 0 else ""
        logger.warning("%s: parts typed as unknown: %s%s", context, shown, suffix)

    return root, renderer.declarations, renderer.root_referenced


class _TypeScope:
    """Type names of one namespace, shared by the schemas of all its tools.

    Identical `$defs` entries of different tools share one alias, because
    `by_key` maps a definition's name and content to the alias that declares it.
    """

    # `Promise` is used in every signature, so no local type may shadow it.
    _RESERVED = frozenset({"Promise"})

    def __init__(
        self,
        *,
        indent: str,
        log_problems: bool = True,
        fallbacks: list[str] | None = None,
        compact: bool = False,
    ) -> None:
        self.indent = indent
        self.log_problems = log_problems
        self.compact = compact
        # Compact declarations describe a property once per namespace: a later
        # property with the same name and description gets only its tags.
        self.property_docs: set[tuple[str, str]] = set()
        # Stems of the name of the tool being rendered, for compact declarations.
        self.tool_words: frozenset[str] = frozenset()
        self.fallbacks = fallbacks if fallbacks is not None else []
        self.names: set[str] = set(self._RESERVED)
        self.by_key: dict[tuple[str, str, str], str] = {}

    def allocate(self, base: str) -> str:
        name = base
        number = 2
        while name in self.names:
            name = f"{base}{number}"
            number += 1
        self.names.add(name)
        return name

    def release(self, name: str) -> None:
        self.names.discard(name)

    def snapshot(self) -> tuple[set[str], dict[tuple[str, str, str], str]]:
        return set(self.names), dict(self.by_key)

    def restore(self, snapshot: tuple[set[str], dict[tuple[str, str, str], str]]) -> None:
        self.names, self.by_key = snapshot


class _State(Enum):
    QUEUED = 1
    IN_PROGRESS = 2
    DONE = 3


class _Renderer:
    """Render one schema document (a root schema and what its `$ref`s point to).

    Every `$ref` target becomes a named alias, which makes recursive schemas
    finite. TypeScript rejects an alias that refers to itself through unions or
    intersections alone (`type A = A | string`), but accepts a reference inside
    an object member, array or tuple. References in the first kind of position
    are "direct": a direct reference renders its target at once, and one to a
    target still being rendered directly becomes `unknown`. So every alias is
    finished before any alias that refers to it directly, and the direct
    references form no cycle.
    """

    def __init__(self, scope: _TypeScope, root: Any, root_name: str) -> None:
        self.scope = scope
        self.root = root
        self.root_name = root_name
        self.problems: list[str] = []
        # Places typed `unknown` although the schema gave a type: every problem,
        # and index signatures too wide to spell out.
        self.fallbacks: list[str] = []
        self.declarations: list[str] = []
        self.root_referenced = False
        self._nodes = 0
        self._chars = 0
        self._names_by_pointer: dict[str, str] = {"": root_name}
        self._states: dict[str, _State] = {root_name: _State.IN_PROGRESS}
        self._queue: deque[tuple[str, Any, str]] = deque()
        self._digest: str | None = None

    def render_root(self) -> _Type:
        root = self._render(self.root, "#", depth=0, deferred=False, indent=self.scope.indent)
        self._states[self.root_name] = _State.DONE
        while self._queue:
            name, schema, path = self._queue.popleft()
            if self._states[name] is _State.QUEUED:
                self._render_alias(name, schema, path, depth=0)

        self._count_chars(len(root.text))
        return root

    # Counting work

    def _visit(self, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _LimitExceeded(f"nested more than {MAX_DEPTH} levels deep at {_clip_path(path)}")

        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _LimitExceeded(f"larger than {MAX_NODES} schema nodes")

    def _count_chars(self, count: int) -> None:
        self._chars += count
        if self._chars > MAX_CHARS:
            raise _LimitExceeded(f"longer than {MAX_CHARS} characters once rendered")

    def _problem(self, path: str, message: str) -> _Type:
        self.problems.append(f"{_clip_path(path)}: {message}")
        self.fallbacks.append(self.problems[-1])
        return _UNKNOWN

    # Schemas

    def _render(self, schema: Any, path: str, *, depth: int, deferred: bool, indent: str) -> _Type:
        self._visit(path, depth)
        if schema is True:
            return _UNKNOWN
        if schema is False:
            return _NEVER
        if not isinstance(schema, dict):
            return self._problem(
                path, f"a schema must be an object or boolean, not {_json_type(schema)}"
            )

        parts: list[_Type] = []
        if "$ref" in schema:
            parts.append(self._reference(schema["$ref"], f"{path}/$ref", depth, deferred))

        core = self._core(schema, path, depth, deferred, indent)
        if core is not None:
            parts.append(core)

        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                # An empty list is invalid JSON Schema, and is skipped rather than typed never.
                members = self._subschemas(schema, keyword, path, depth, deferred, indent)
                if members:
                    parts.append(_union(members))

        if "allOf" in schema:
            parts.extend(self._subschemas(schema, "allOf", path, depth, deferred, indent))

        if "if" in schema and ("then" in schema or "else" in schema):
            parts.append(self._conditional(schema, path, depth, deferred, indent))

        result = _intersection(parts)
        if schema.get("nullable") is True:
            result = _union([result, _NULL])
        return result

    def _conditional(
        self, schema: dict[str, Any], path: str, depth: int, deferred: bool, indent: str
    ) -> _Type:
        """Render `if`/`then`/`else` as `(If & Then) | Else`.

        TypeScript cannot express "does not match If", so the `else` branch admits
        some values the schema rejects, but every valid value type-checks. A
        missing `then` or `else` allows anything.
        """
        branches: dict[str, _Type] = {}
        for keyword in ("if", "then", "else"):
            if keyword in schema:
                branches[keyword] = self._render(
                    schema[keyword],
                    f"{path}/{keyword}",
                    depth=depth + 1,
                    deferred=deferred,
                    indent=indent,
                )
        matched = _intersection([branches["if"], branches.get("then", _UNKNOWN)])
        return _union([matched, branches.get("else", _UNKNOWN)])

    def _subschemas(
        self,
        schema: dict[str, Any],
        keyword: str,
        path: str,
        depth: int,
        deferred: bool,
        indent: str,
    ) -> list[_Type]:
        subschemas = schema[keyword]
        if not isinstance(subschemas, list):
            return [self._problem(f"{path}/{keyword}", "must be an array")]

        return [
            self._render(
                subschema,
                f"{path}/{keyword}/{index}",
                depth=depth + 1,
                deferred=deferred,
                indent=indent,
            )
            for index, subschema in enumerate(subschemas)
        ]

    def _core(
        self, schema: dict[str, Any], path: str, depth: int, deferred: bool, indent: str
    ) -> _Type | None:
        """Render `const`, `enum` or `type` with its keywords, or None when none applies.

        A `$ref` with a sibling `type` (as in `{"$ref": ..., "type": "object"}`)
        takes its type from the reference alone.
        """
        types = None if "$ref" in schema else _declared_types(schema)
        if "const" in schema:
            return self._literal(schema["const"], f"{path}/const", depth)

        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            values = enum
            if types is not None:
                # Every integer is a number too.
                allowed = {*types, "integer"} if "number" in types else set(types)
                values = [value for value in enum if _json_type(value) in allowed] or enum
            return _union([self._literal(value, f"{path}/enum", depth) for value in values])

        if types is None:
            types = _implied_types(schema)
            if not types:
                return None

        rendered = [self._typed(name, schema, path, depth, deferred, indent) for name in types]
        return _union(rendered)

    def _typed(
        self,
        type_name: str,
        schema: dict[str, Any],
        path: str,
        depth: int,
        deferred: bool,
        indent: str,
    ) -> _Type:
        if type_name == "string":
            return _Type("string")
        if type_name in ("number", "integer"):
            return _Type("number")
        if type_name == "boolean":
            return _Type("boolean")
        if type_name == "null":
            return _NULL
        if type_name == "object":
            return self._object(schema, path, depth, indent)
        if type_name == "array":
            return self._array(schema, path, depth, indent)
        return self._problem(f"{path}/type", f"unknown type {type_name!r}")

    def _object(self, schema: dict[str, Any], path: str, depth: int, indent: str) -> _Type:
        member_indent = indent + _INDENT
        properties = schema.get("properties", {})
        declares_properties = isinstance(properties, dict) and "properties" in schema
        if not isinstance(properties, dict):
            self._problem(f"{path}/properties", "must be an object")
            properties = {}

        required = _required_names(schema)
        members: list[tuple[list[str], str]] = []
        property_types: list[_Type] = []
        for raw_key, subschema in properties.items():
            key = str(raw_key)
            subpath = f"{path}/properties/{_pointer_token(key)}"
            value = self._render(
                subschema, subpath, depth=depth + 1, deferred=True, indent=member_indent
            )
            property_types.append(value)
            mark = "" if key in required else "?"
            doc = _property_doc(key, subschema, member_indent, self.scope, not mark)
            members.append((doc, f"{_property_key(key)}{mark}: {value.text}"))
            self._count_chars(len(key) + len(value.text) + sum(map(len, doc)))

        index = self._index_signature(schema, path, depth, member_indent, declares_properties)
        if index is not None:
            doc, value = index
            if property_types and value.kind is not _Kind.UNKNOWN:
                # TypeScript requires every property type, `undefined` of an optional
                # one included, to be assignable to the index signature's type.
                any_optional = any(str(key) not in required for key in properties)
                optional = [_UNDEFINED] if any_optional else []
                value = _union([value, *property_types, *optional])
                if len(value.text) > _MAX_INDEX_UNION_CHARS or "\n" in value.text:
                    value = _UNKNOWN
                    self.fallbacks.append(
                        f"{_clip_path(path)}: index signature too wide to spell out"
                    )
            members.append((doc, f"[key: string]: {value.text}"))

        return _Type(_object_literal(members, indent), kind=_Kind.OBJECT)

    def _index_signature(
        self, schema: dict[str, Any], path: str, depth: int, indent: str, declares_properties: bool
    ) -> tuple[list[str], _Type] | None:
        """Render `patternProperties` and `additionalProperties` as one index signature.

        An object schema that declares no properties at all is a free-form map. One
        that declares properties but has no `additionalProperties` is rendered
        closed, because tools rarely mean to accept arbitrary keys and TypeScript
        then catches misspelt ones.
        """
        values: list[_Type] = []
        patterns: list[str] = []
        pattern_properties = schema.get("patternProperties")
        if isinstance(pattern_properties, dict):
            for raw_pattern, subschema in pattern_properties.items():
                pattern = str(raw_pattern)
                subpath = f"{path}/patternProperties/{_pointer_token(pattern)}"
                values.append(
                    self._render(subschema, subpath, depth=depth + 1, deferred=True, indent=indent)
                )
                patterns.append(pattern)
        elif pattern_properties is not None:
            self._problem(f"{path}/patternProperties", "must be an object")

        additional = schema.get("additionalProperties")
        if additional is None:
            if not declares_properties and not patterns:
                values.append(_UNKNOWN)
        elif isinstance(additional, dict | bool):
            subpath = f"{path}/additionalProperties"
            if additional is not False:
                values.append(
                    self._render(additional, subpath, depth=depth + 1, deferred=True, indent=indent)
                )
        else:
            values.append(self._problem(f"{path}/additionalProperties", "must be a schema"))

        if not values:
            return None

        doc: list[str] = []
        if patterns:
            listed = ", ".join(_comment_text(_clip(pattern)) for pattern in patterns)
            doc = _doc_lines(f"Keys matching {listed}", [], indent)
        return doc, _union(values)

    def _array(self, schema: dict[str, Any], path: str, depth: int, indent: str) -> _Type:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        rest: Any = items
        rest_keyword = "items"
        if prefix is None and isinstance(items, list):
            # Before draft 2020-12, `items` as an array is the tuple form.
            prefix, rest, rest_keyword = items, schema.get("additionalItems"), "additionalItems"

        if prefix is None:
            if items is None:
                return _Type("unknown[]")
            element = self._render(
                items, f"{path}/items", depth=depth + 1, deferred=True, indent=indent
            )
            return _Type(f"{_operand(element, _Precedence.ATOM)}[]")

        if not isinstance(prefix, list):
            return self._problem(f"{path}/prefixItems", "must be an array")

        return self._tuple(schema, prefix, rest, rest_keyword, path, depth, indent)

    def _tuple(
        self,
        schema: dict[str, Any],
        prefix: list[Any],
        rest: Any,
        rest_keyword: str,
        path: str,
        depth: int,
        indent: str,
    ) -> _Type:
        """Render a tuple whose elements past `minItems` are optional, as in JSON Schema."""
        prefix_keyword = "prefixItems" if "prefixItems" in schema else "items"
        required_count = _count(schema.get("minItems")) or 0
        elements: list[str] = []
        for index, subschema in enumerate(prefix):
            subpath = f"{path}/{prefix_keyword}/{index}"
            element = self._render(
                subschema, subpath, depth=depth + 1, deferred=True, indent=indent
            )
            if index < required_count:
                elements.append(element.text)
            else:
                elements.append(f"{_operand(element, _Precedence.ATOM)}?")

        max_items = _count(schema.get("maxItems"))
        closed = rest is False or (max_items is not None and max_items <= len(prefix))
        if not closed:
            if rest is None or rest is True:
                element = _UNKNOWN
            else:
                subpath = f"{path}/{rest_keyword}"
                element = self._render(rest, subpath, depth=depth + 1, deferred=True, indent=indent)
            elements.append(f"...{_operand(element, _Precedence.ATOM)}[]")

        return _Type(f"[{', '.join(elements)}]")

    def _literal(self, value: Any, path: str, depth: int) -> _Type:
        """Render a JSON value of `const` or `enum` as a literal type."""
        self._visit(path, depth)
        if value is None:
            return _NULL
        if isinstance(value, bool):
            return _Type("true" if value else "false")
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                return _Type("number")
            text = repr(value)
            # `-1[]` is not an array of -1, so a negative literal binds like an operator.
            return _Type(
                text, _Precedence.INTERSECTION if text.startswith("-") else _Precedence.ATOM
            )
        if isinstance(value, str):
            self._count_chars(len(value))
            return _Type(_string_literal(value))
        if isinstance(value, list):
            elements = [self._literal(item, path, depth + 1).text for item in value]
            return _Type(f"[{', '.join(elements)}]")
        if isinstance(value, dict):
            members = [
                f"{_property_key(str(key))}: {self._literal(item, path, depth + 1).text}"
                for key, item in value.items()
            ]
            return _Type(f"{{ {'; '.join(members)} }}" if members else "{}")
        return self._problem(path, f"{type(value).__name__} is not a JSON value")

    # References

    def _reference(self, reference: Any, path: str, depth: int, deferred: bool) -> _Type:
        if not isinstance(reference, str):
            return self._problem(path, "must be a string")
        if not reference.startswith("#/") and reference != "#":
            # Remote references and `$anchor` names would need other documents or an index.
            self.problems.append(f"{_clip_path(path)}: cannot resolve {_clip(reference)!r}")
            self.fallbacks.append(self.problems[-1])
            return _Type(
                f"unknown /* $ref {_comment_text(_clip(reference))} */", kind=_Kind.UNKNOWN
            )

        pointer = reference[1:]
        name = self._names_by_pointer.get(pointer)
        if name is None:
            target = _resolve_pointer(self.root, pointer)
            if target is None:
                return self._problem(path, f"{_clip(reference)!r} is not found")
            name = self._name_target(pointer, target)
        if name == self.root_name:
            self.root_referenced = True

        state = self._states[name]
        if deferred or state is _State.DONE:
            return _Type(name)
        if state is _State.IN_PROGRESS:
            return self._problem(
                path, f"{_clip(reference)!r} refers to itself through unions alone"
            )

        target = _resolve_pointer(self.root, pointer)
        self._render_alias(name, target, f"#{pointer}", depth + 1)
        return _Type(name)

    def _name_target(self, pointer: str, target: Any) -> str:
        """Return the alias for a `$ref` target, reusing an identical one from another tool."""
        tokens = pointer.split("/")
        base = to_type_name(_unescape_token(tokens[-1])) if tokens[-1] else "Def"
        key = (base, *self._content_key(target))
        name = self.scope.by_key.get(key)
        if name is not None:
            self._states.setdefault(name, _State.DONE)
        else:
            name = self.scope.allocate(base)
            self.scope.by_key[key] = name
            self._states[name] = _State.QUEUED
            self._queue.append((name, target, f"#{pointer}"))

        self._names_by_pointer[pointer] = name
        return name

    def _content_key(self, target: Any) -> tuple[str, str]:
        """Return what makes two `$ref` targets render alike.

        That is their JSON and, when they contain a `$ref`, the document it
        resolves in. A target too large to serialise gets a key of its own.
        """
        text = _canonical_json(target, MAX_NODES)
        if text is None:
            return (f"unique:{next(_unique_keys)}", "")
        if '"$ref"' not in text:
            return (text, "")
        if self._digest is None:
            document = _canonical_json(self.root, 10 * MAX_NODES)
            if document is None:
                document = f"unique:{next(_unique_keys)}"
            self._digest = hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()
        return (text, self._digest)

    def _render_alias(self, name: str, schema: Any, path: str, depth: int) -> None:
        self._states[name] = _State.IN_PROGRESS
        indent = self.scope.indent
        rendered = self._render(schema, path, depth=depth, deferred=False, indent=indent)
        self._states[name] = _State.DONE
        declaration = _declare(
            name, rendered, _schema_doc(schema, self.scope.compact), indent=indent
        )
        self._count_chars(len(declaration))
        self.declarations.append(declaration)


# Type algebra


def _union(members: Sequence[_Type]) -> _Type:
    unique: list[_Type] = []
    seen: set[str] = set()
    flat = [alternative for member in members for alternative in member.alternatives or (member,)]
    for member in flat:
        if member.kind is _Kind.UNKNOWN:
            return member
        if member.kind is _Kind.NEVER or member.text in seen:
            continue
        seen.add(member.text)
        unique.append(member)

    if not unique:
        return _NEVER
    if len(unique) == 1:
        return unique[0]
    text = " | ".join(_operand(member, _Precedence.INTERSECTION) for member in unique)
    return _Type(text, _Precedence.UNION, alternatives=tuple(unique))


def _intersection(members: Sequence[_Type]) -> _Type:
    unique: list[_Type] = []
    seen: set[str] = set()
    for member in members:
        if member.kind is _Kind.NEVER:
            return member
        if member.kind is _Kind.UNKNOWN or member.text in seen:
            continue
        seen.add(member.text)
        unique.append(member)

    if not unique:
        # Keep the comment of an unresolved `$ref`, if that is all there is.
        return next((member for member in members if member.kind is _Kind.UNKNOWN), _UNKNOWN)
    if len(unique) == 1:
        return unique[0]
    text = " & ".join(_operand(member, _Precedence.ATOM) for member in unique)
    return _Type(text, _Precedence.INTERSECTION)


def _operand(member: _Type, minimum: _Precedence) -> str:
    """Return the text of `member`, bracketed when it binds looser than `minimum`."""
    return member.text if member.precedence >= minimum else f"({member.text})"


def _object_literal(members: list[tuple[list[str], str]], indent: str) -> str:
    if not members:
        return "{}"

    if all(not doc for doc, _ in members):
        inline = "{ " + "; ".join(text for _, text in members) + " }"
        if "\n" not in inline and len(inline) + len(indent) <= _INLINE_WIDTH:
            return inline

    member_indent = indent + _INDENT
    lines = ["{"]
    for doc, text in members:
        if len(doc) == 1:
            lines.append(f"{member_indent}{doc[0].lstrip()} {text};")
        else:
            lines.extend(doc)
            lines.append(f"{member_indent}{text};")
    lines.append(indent + "}")
    return "\n".join(lines)


def _declare(name: str, rendered: _Type, doc: tuple[str | None, list[str]], *, indent: str) -> str:
    text, tags = doc
    lines = _doc_lines(text, tags, indent)
    if rendered.kind is _Kind.OBJECT:
        lines.append(f"{indent}interface {name} {rendered.text}")
    else:
        lines.append(f"{indent}type {name} = {rendered.text};")
    return "\n".join(lines)


# Schema facts


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _declared_types(schema: dict[str, Any]) -> list[str] | None:
    """Return the type names of the `type` keyword in their order, or None without one."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list) and declared:
        names = list(dict.fromkeys(name for name in declared if isinstance(name, str)))
        return names or None
    return None


def _implied_types(schema: dict[str, Any]) -> list[str]:
    implied = []
    if any(keyword in schema for keyword in _OBJECT_KEYWORDS):
        implied.append("object")
    if any(keyword in schema for keyword in _ARRAY_KEYWORDS):
        implied.append("array")
    return implied


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _required_names(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    required = schema.get("required")
    if not isinstance(required, list):
        return set()
    return {name for name in required if isinstance(name, str)}


def _resolve_pointer(root: Any, pointer: str) -> Any:
    """Resolve a JSON Pointer (RFC 6901) in `root`, or return None when nothing is there."""
    node = root
    if not pointer:
        return node
    for raw_token in pointer[1:].split("/"):
        token = _unescape_token(raw_token)
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif (
            isinstance(node, list)
            and token.isascii()
            and token.isdigit()
            and int(token) < len(node)
        ):
            node = node[int(token)]
        else:
            return None
    return node


class _TooLarge(Exception):
    pass


def _canonical_json(value: Any, max_nodes: int, *, sort_keys: bool = True) -> str | None:
    """Serialise `value` as JSON, or return None past `max_nodes` nodes.

    `json.dumps` has no such limit, and a schema built in Python (not parsed)
    can share dicts so that its JSON text is exponentially long.
    """
    count = 0

    def encode(node: Any, depth: int) -> str:
        nonlocal count
        count += 1
        if count > max_nodes or depth > 4 * MAX_DEPTH:
            raise _TooLarge
        if isinstance(node, dict):
            items = [(str(key), item) for key, item in node.items()]
            if sort_keys:
                items.sort(key=lambda pair: pair[0])
            encoded = (
                f"{json.dumps(key, ensure_ascii=False)}:{encode(item, depth + 1)}"
                for key, item in items
            )
            return "{" + ",".join(encoded) + "}"
        if isinstance(node, list):
            return "[" + ",".join(encode(item, depth + 1) for item in node) + "]"
        return json.dumps(node, ensure_ascii=False)

    try:
        return encode(value, 0)
    except (_TooLarge, TypeError, ValueError, RecursionError):
        return None


def _unescape_token(token: str) -> str:
    return urllib.parse.unquote(token).replace("~1", "/").replace("~0", "~")


def _pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


# Text


def _string_literal(value: str) -> str:
    """Return `value` as a double-quoted TypeScript string literal."""
    text = json.dumps(value, ensure_ascii=False)
    # JSON leaves these raw, but a lone surrogate cannot be written as UTF-8, and
    # U+2028 and U+2029 end lines in older JavaScript parsers.
    return "".join(
        f"\\u{ord(char):04x}" if "\ud800" <= char <= "\udfff" or char in "\u2028\u2029" else char
        for char in text
    )


def _property_key(key: str) -> str:
    return key if is_identifier_name(key) else _string_literal(key)


def _comment_text(text: str) -> str:
    """Make `text` safe inside a block comment, so that nothing in it can end the comment."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n")
    return "".join(map(_comment_char, text)).replace("*/", "*\\/")


def _comment_char(char: str) -> str:
    """Replace a control character by a space, and a lone surrogate (not UTF-8) by U+FFFD."""
    if (char < " " and char not in "\n\t") or char == "\x7f":
        return " "
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    return char


def _clean_text(text: Any) -> str | None:
    """Return a description without indentation, blank lines or trailing spaces, or None.

    Text past `MAX_DESCRIPTION_CHARS` is cut first, so that a megabyte of
    description costs no more to clean than the limit.
    """
    if not isinstance(text, str):
        return None
    cut = len(text) - MAX_DESCRIPTION_CHARS
    if cut > 0:
        text = text[:MAX_DESCRIPTION_CHARS]
    lines = [line.rstrip() for line in inspect.cleandoc(_comment_text(text)).split("\n")]
    cleaned = "\n".join(line for line in lines if line.strip())
    if cut > 0:
        cleaned += f" [{cut} more characters cut]"
    return cleaned or None


def _log_text(text: str) -> str:
    """Escape control characters so that a schema cannot forge log lines."""
    return "".join(repr(char)[1:-1] if char < " " or char == "\x7f" else char for char in text)


def _clip_path(path: str) -> str:
    return path if len(path) <= _MAX_HINT_CHARS else "…" + path[1 - _MAX_HINT_CHARS :]


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_HINT_CHARS else text[: _MAX_HINT_CHARS - 1] + "…"


def _doc_lines(text: str | None, tags: list[str], indent: str) -> list[str]:
    """Format a JSDoc comment: one line when the text has one line, else a block."""
    body = text.split("\n") if text else []
    if len(body) <= 1:
        line = " ".join([*body, *tags])
        return [f"{indent}/** {line} */"] if line else []

    return [f"{indent}/**", *(f"{indent} * {line}" for line in [*body, *tags]), f"{indent} */"]


def _json_hint(value: Any) -> str:
    text = _canonical_json(value, _MAX_HINT_CHARS, sort_keys=False)
    return _comment_text(_clip(text if text is not None else "…"))


def _hint_tags(schema: dict[str, Any]) -> list[str]:
    """Return JSDoc tags for the validation keywords a TypeScript type cannot show."""
    tags: list[str] = []
    if schema.get("deprecated") is True:
        tags.append("@deprecated")
    if "default" in schema:
        tags.append(f"@default {_json_hint(schema['default'])}")

    # TypeScript has one number type, so only the comment can state "whole numbers".
    types = _declared_types(schema) or []
    if "integer" in types and "number" not in types:
        tags.append("@integer")

    for keyword in _NUMBER_HINTS:
        value = schema.get(keyword)
        if isinstance(value, int | float) and not isinstance(value, bool):
            tags.append(f"@{keyword} {_json_hint(value)}")
        elif value is True and keyword.startswith("exclusive"):
            # Draft 4 states exclusiveness as a boolean beside minimum or maximum.
            bound = schema.get(keyword.removeprefix("exclusive").lower())
            if isinstance(bound, int | float) and not isinstance(bound, bool):
                tags.append(f"@{keyword} {_json_hint(bound)}")

    for keyword in ("pattern", "format"):
        value = schema.get(keyword)
        if isinstance(value, str):
            tags.append(f"@{keyword} {_comment_text(_clip(value))}")

    # A type cannot exclude what `not` excludes, so the comment states it.
    if "not" in schema:
        tags.append(f"@not {_json_hint(schema['not'])}")

    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        tags.append(f"@example {_json_hint(examples[0])}")
    elif "example" in schema:
        tags.append(f"@example {_json_hint(schema['example'])}")

    return tags


def _enum_notes(schema: dict[str, Any]) -> list[str]:
    """Return `value: description` lines from the common enum description extensions."""
    enum = schema.get("enum")
    if not isinstance(enum, list):
        return []
    for keyword in _ENUM_DESCRIPTION_KEYS:
        descriptions = schema.get(keyword)
        if isinstance(descriptions, list) and len(descriptions) == len(enum):
            return [
                f"{_json_hint(value)}: {_comment_text(_clip(description))}"
                for value, description in zip(enum, descriptions, strict=True)
                if isinstance(description, str) and description
            ]
    return []


def _single_branch(schema: dict[str, Any]) -> dict[str, Any] | None:
    """Return the one non-null branch of an `anyOf`/`oneOf`, as in `Optional[int]`."""
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if not isinstance(branches, list):
            continue
        non_null = [
            branch
            for branch in branches
            if not (isinstance(branch, dict) and branch.get("type") == "null")
        ]
        if len(non_null) == 1 and isinstance(non_null[0], dict):
            return non_null[0]
    return None


def _schema_doc(
    schema: Any, compact: bool = False, *, describe: bool = True
) -> tuple[str | None, list[str]]:
    """Return the JSDoc text and tags of a schema: its description and validation hints.

    A `@default` that the description already states is left out. With
    `compact` the description is cut to its first sentence, and without
    `describe` it is left out (enum notes stay).
    """
    if not isinstance(schema, dict):
        return None, []

    text = _clean_text(schema.get("description"))
    tags = _hint_tags(schema)
    notes = _enum_notes(schema)
    branch = _single_branch(schema)
    if branch is not None:
        if text is None:
            text = _clean_text(branch.get("description"))
        present = {tag.split(" ", 1)[0] for tag in tags}
        tags.extend(tag for tag in _hint_tags(branch) if tag.split(" ", 1)[0] not in present)
        notes = notes or _enum_notes(branch)

    if text is not None:
        tags = [tag for tag in tags if not _states_default(text, tag)]
    if compact:
        text = _summary(text, _MAX_PROPERTY_SUMMARY_CHARS) if describe else None
    if notes:
        text = "\n".join([text or "Values:", *notes])
    return text, tags


def _property_doc(
    key: str, schema: Any, indent: str, scope: _TypeScope, required: bool
) -> list[str]:
    """Return the JSDoc lines of a property, with its title only when that adds to the key.

    A compact declaration describes only required properties, each once per
    namespace and only when the description adds a word to the property's and
    the tool's names ("Path of the file to read" adds none to `path` of
    `read_file`). It keeps the tags and enum notes of every property.
    """
    text, tags = _schema_doc(schema, scope.compact, describe=required or not scope.compact)
    if text is None and isinstance(schema, dict) and (required or not scope.compact):
        title = _clean_text(schema.get("title"))
        if title is not None and _loose(title) != _loose(key):
            text = title
    if scope.compact and text is not None:
        words = set(tokenize(text))
        if words <= set(tokenize(key)) | scope.tool_words or (key, text) in scope.property_docs:
            text = None
        else:
            scope.property_docs.add((key, text))
    return _doc_lines(text, tags, indent)


def _states_default(text: str, tag: str) -> bool:
    """Tell whether `text` states the default value that `tag` (an `@default` tag) gives.

    "Number of results (1-20, default 10)" states `@default 10`, and so does
    "Defaults to 'Text'" for `@default "Text"`.
    """
    if not tag.startswith("@default "):
        return False
    value = tag.removeprefix("@default ")
    if value.endswith("…"):
        return False
    bare = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    pattern = (
        r"\bdefaults?(?:\s+(?:is|to|value|of))?\s*[:=]?\s*[\"'`]?" + re.escape(bare) + r"(?![\w.-])"
    )
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def _summary(text: str | None, max_chars: int = _MAX_SUMMARY_CHARS) -> str | None:
    """Cut `text` to its first sentence, at most `max_chars` long, marking a cut."""
    if text is None:
        return None
    first = text.split("\n", 1)[0]
    match = _SENTENCE_END.search(first)
    if match is not None:
        first = first[: match.end()]
    if len(first) > max_chars:
        first = first[:max_chars].rsplit(" ", 1)[0].rstrip(",;:")
    if first == text:
        return text
    return f"{first} {_CUT_MARK}"


def _loose(text: str) -> str:
    return "".join(char for char in text.lower() if char.isalnum())


def _tool_text(spec: ToolSpec) -> str | None:
    """Return the tool's title and description. A title that only restates the name is dropped."""
    description = _clean_text(spec.description)
    title = _clean_text(spec.title)
    if title is None or _loose(title) == _loose(spec.name):
        return description
    if description is None:
        return title
    if _loose(description).startswith(_loose(title)):
        return description
    separator = " " if title.endswith((".", "!", "?", ":")) else ": "
    return f"{title}{separator}{description}"


def _annotation_tags(annotations: ToolAnnotations) -> list[str]:
    """Mark read-only and destructive tools.

    Per the MCP `ToolAnnotations` definition, `destructiveHint` defaults to true
    and matters only when `readOnlyHint` is false, so a tool explicitly not
    read-only is destructive unless `destructiveHint` is false. A server that
    sent no hints gets no tag.
    """
    if annotations.read_only is True:
        return ["@readonly"]
    if annotations.destructive is True or (
        annotations.read_only is False and annotations.destructive is None
    ):
        return ["@destructive"]
    return []
