"""Progressive disclosure: list servers, search tools and describe them on demand.

With many servers the whole TypeScript API does not fit a prompt, so a model
starts from a short list of servers, searches the callable tools in plain
words and reads the declarations of the few tools it will call. `ToolCatalog`
serves those three requests for `Toolbox` and for the sandboxed code, which
reaches it as the global `isobind` (see `DISCOVERY_DECLARATION`) through the
ordinary host-call bridge under the server name `DISCOVERY_SERVER`.

The ranking is BM25F, the field-weighted form of BM25. A query word's
frequency in a tool is the weighted sum of its frequencies in the tool's
fields (name, title, parameter names, server name, description), each
normalised by the field's average length. BM25 then saturates that sum and
weights it by the word's inverse document frequency. So a hit in a tool's name
counts more than one in its description, which BM25 over one bag of words per
tool cannot express. The scorer is written here, a few dozen lines over dicts,
because `rank-bm25` and `bm25s` index one token list per document and have
no field weights.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._inputs import json_type_name, show_value
from ._sandbox import CallReply
from ._tools import ToolSpec
from ._typescript import MAX_DESCRIPTION_CHARS, render_api
from ._words import stem_word, tokenize

__all__ = [
    "DISCOVERY_DECLARATION",
    "DISCOVERY_SERVER",
    "Detail",
    "SearchIndex",
    "ServerSummary",
    "ToolCatalog",
    "tokenize",
]

Detail = Literal["names", "summaries", "declarations"]
DETAILS: tuple[Detail, ...] = ("names", "summaries", "declarations")

# The server name under which the sandbox's `isobind.*` calls reach the host.
# Server identifiers are JavaScript identifiers, which cannot contain `#`, so no
# configured server can take this name. `_bootstrap.js` uses the same string.
DISCOVERY_SERVER = "#isobind"

DISCOVERY_DECLARATION = """\
/** Find tools without reading the whole API. Every call is a host call, like `tools.*`. */
declare namespace isobind {
  /** Servers that have callable tools, each reached as `tools.<name>`. */
  function listServers(): Promise<
    { name: string; title?: string; description?: string; toolCount: number }[]
  >;
  /**
   * Rank the callable tools by how well their names, descriptions and parameter
   * names match `query`, and return text to read: `"names"` gives one
   * `tools.server.tool` per line, `"summaries"` (the default) adds a one-line
   * description, `"declarations"` gives their TypeScript.
   */
  function searchTools(
    query: string,
    options?: { detail?: "names" | "summaries" | "declarations"; limit?: number },
  ): Promise<string>;
  /** Return the TypeScript declarations of tools named `"server.tool"`. */
  function describeTools(names: string[]): Promise<string>;
}
"""

# Field weights and BM25 constants. k1 and b are the usual BM25 defaults. The
# weights are a judgement (a name says more than prose) and were not tuned on
# the labelled queries, so the recall measured on those is not fitted to them.
_FIELD_WEIGHTS: Mapping[str, float] = {
    "name": 3.0,
    "title": 2.0,
    "parameters": 1.0,
    "server": 1.0,
    "description": 1.0,
}
_K1 = 1.2
_B = 0.75

MAX_LIMIT = 100
_MAX_QUERY_CHARS = 1_000
_MAX_NAMES = 100
# Discovery requests come from sandboxed code; anything longer is rejected unread.
_MAX_REQUEST_CHARS = 100_000
_SUMMARY_CHARS = 120

# Groups of words that a user and a tool author may use for one thing. A query
# word also matches the other words of its groups, at a lower weight. The groups
# are general software and everyday vocabulary, not a list of tool names.
_RELATED_GROUPS = (
    "folder directory dir",
    "repo repository project",
    "bug issue ticket",
    "pr pull merge",
    "history log",
    "download fetch url",
    "webpage website page url",
    "delete remove erase forget",
    "create make new",
    "find search look lookup query",
    "show display view read",
    "run execute",
    "send post",
    "route directions navigate",
    "height elevation altitude",
    "coordinates latitude longitude geocode",
    "rename move",
    "edit modify change update replace",
    "user person people account member",
    "picture image photo",
    "compare diff difference",
    "save write store",
    "database db sql table",
    "remember memory note",
    "comment reply",
)
_RELATED_WEIGHT = 0.5
# Query words shorter than this never match by prefix, because `a` would match everything.
_MIN_PREFIX = 3


def _related_stems() -> dict[str, frozenset[str]]:
    related: dict[str, set[str]] = {}
    for group in _RELATED_GROUPS:
        stems = set(map(stem_word, group.split()))
        for stem in stems:
            related.setdefault(stem, set()).update(stems - {stem})
    return {stem: frozenset(others) for stem, others in related.items()}


_RELATED_STEMS = _related_stems()


@dataclass(frozen=True, slots=True)
class ServerSummary:
    """A server with callable tools, as `list_servers` reports it."""

    name: str
    """The server identifier, as in `tools.<name>`."""
    title: str | None
    """The server's human-readable title, if it sent one."""
    description: str | None
    """The server's description of itself, if it sent one."""
    tool_count: int
    """How many of its tools the policy allows."""


class SearchIndex:
    """A BM25F index over tools: names, titles, descriptions, parameter names, server names."""

    def __init__(self, documents: Sequence[Mapping[str, str]]) -> None:
        """Index `documents`, each a map from field name (a key of the field weights) to text."""
        tokenized = [
            {field: Counter(tokenize(document.get(field, ""))) for field in _FIELD_WEIGHTS}
            for document in documents
        ]
        count = len(documents)
        average = {
            field: sum(sum(fields[field].values()) for fields in tokenized) / count
            if count
            else 0.0
            for field in _FIELD_WEIGHTS
        }

        # For each term, the documents that contain it and its BM25F pseudo-frequency
        # there: the sum over fields of weight * frequency / length normalisation.
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for position, fields in enumerate(tokenized):
            frequencies: dict[str, float] = {}
            for field, counts in fields.items():
                length = sum(counts.values())
                norm = 1 - _B + _B * length / (average[field] or 1.0)
                for term, frequency in counts.items():
                    frequencies[term] = (
                        frequencies.get(term, 0.0) + _FIELD_WEIGHTS[field] * frequency / norm
                    )
            for term, pseudo_frequency in frequencies.items():
                self._postings.setdefault(term, []).append((position, pseudo_frequency))

        # The BM25 idf with 1 added inside the log, so that it never goes negative.
        self._idf = {
            term: math.log(1 + (count - len(postings) + 0.5) / (len(postings) + 0.5))
            for term, postings in self._postings.items()
        }

    def search(self, query: str, limit: int) -> list[int]:
        """Return the positions of the best matching documents, best first.

        Only documents that share a word (or a related word) with the query are
        returned. Ties keep the documents' order.
        """
        scores: dict[int, float] = {}
        for term, query_weight in self._query_weights(query).items():
            idf = self._idf[term]
            for position, frequency in self._postings[term]:
                gain = query_weight * idf * frequency / (_K1 + frequency)
                scores[position] = scores.get(position, 0.0) + gain

        ranked = sorted((-score, position) for position, score in scores.items() if score > 0)
        return [position for _, position in ranked[:limit]]

    def _query_weights(self, query: str) -> dict[str, float]:
        """Weigh the query's words 1, and the related words they bring in less.

        A word gets its synonyms from `_RELATED_GROUPS`, and a word the index does
        not contain also matches the indexed words it starts (`repo` matches
        `repositori`), both at `_RELATED_WEIGHT`.
        """
        weights: dict[str, float] = {}
        for term in tokenize(query):
            weights[term] = 1.0
            related = list(_RELATED_STEMS.get(term, ()))
            if term not in self._idf and len(term) >= _MIN_PREFIX:
                related.extend(word for word in self._idf if word.startswith(term))
            for word in related:
                weights.setdefault(word, _RELATED_WEIGHT)
        return {term: weight for term, weight in weights.items() if term in self._idf}


class ToolCatalog:
    """The callable tools of a toolbox, searchable and describable by identifier.

    `tools` maps `(server identifier, tool identifier)` to the tool, in the
    order of the full declaration; only tools the policy allows belong here.
    """

    def __init__(
        self,
        tools: Mapping[tuple[str, str], ToolSpec],
        servers: Sequence[ServerSummary],
    ) -> None:
        self._keys = list(tools)
        self._tools = dict(tools)
        self._servers = list(servers)
        # Original names (`forecast.get-forecast`) resolve too, unless one is taken
        # by an identifier.
        self._by_name = {f"{spec.server}.{spec.name}": key for key, spec in self._tools.items()}
        self._by_name.update({f"{server}.{tool}": (server, tool) for server, tool in self._keys})
        self._index = SearchIndex([_document(key, self._tools[key]) for key in self._keys])

    def list_servers(self) -> list[ServerSummary]:
        return list(self._servers)

    def search(self, query: str, limit: int) -> list[tuple[str, str]]:
        """Return the identifiers of the best matching tools, best first."""
        return [self._keys[position] for position in self._index.search(query, limit)]

    def search_tools(self, query: str, *, detail: Detail = "summaries", limit: int = 10) -> str:
        if detail not in DETAILS:
            raise ValueError(
                f"detail must be one of {', '.join(map(repr, DETAILS))}, not {show_value(detail)}"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(
                f"limit must be an integer from 1 to {MAX_LIMIT}, not {show_value(limit)}"
            )
        if not isinstance(query, str):
            raise ValueError(f"query must be a string, not {json_type_name(query)}")
        if len(query) > _MAX_QUERY_CHARS:
            raise ValueError(
                f"query is {len(query)} characters long; the limit is {_MAX_QUERY_CHARS}"
            )

        keys = self.search(query, limit)
        if not keys:
            servers = ", ".join(f"tools.{server.name}" for server in self._servers) or "none"
            return f"No callable tool matches {query!r}. Servers: {servers}."
        if detail == "names":
            return "".join(f"tools.{server}.{tool}\n" for server, tool in keys)
        if detail == "summaries":
            return "".join(self._summary_line(key) for key in keys)
        return self._declarations(keys)

    def describe_tools(self, names: Sequence[str]) -> str:
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ValueError('names must be a list of tool names such as ["time.get_current_time"]')
        if not names:
            raise ValueError('names is empty; give tool names such as ["time.get_current_time"]')
        if len(names) > _MAX_NAMES:
            raise ValueError(f"{len(names)} names given; the limit is {_MAX_NAMES} per request")

        for name in names:
            if not isinstance(name, str):
                raise ValueError(
                    f"names must be strings such as 'time.get_current_time', not {show_value(name)}"
                )

        keys: list[tuple[str, str]] = []
        unknown: list[str] = []
        for name in names:
            key = self._by_name.get(name.removeprefix("tools."))
            if key is None:
                unknown.append(name)
            elif key not in keys:
                keys.append(key)
        if unknown:
            raise ValueError("; ".join(self._unknown_message(name) for name in unknown))
        return self._declarations(keys)

    def _unknown_message(self, name: str) -> str:
        candidates = difflib.get_close_matches(
            name.removeprefix("tools."), list(self._by_name), n=3, cutoff=0.5
        )
        message = f"{name!r} is not a callable tool"
        if candidates:
            message += "; did you mean " + " or ".join(repr(c) for c in candidates) + "?"
        else:
            message += '; names take the form "server.tool", as listed by searchTools'
        return message

    def _summary_line(self, key: tuple[str, str]) -> str:
        spec = self._tools[key]
        summary = _one_line(spec.title, spec.description)
        label = f"tools.{key[0]}.{key[1]}"
        return f"{label}: {summary}\n" if summary else f"{label}\n"

    def _declarations(self, keys: Sequence[tuple[str, str]]) -> str:
        # Grouped by server in declaration order, so each server gets one namespace.
        ordered = sorted(keys, key=self._keys.index)
        return render_api([self._tools[key] for key in ordered], log_problems=False).declaration


def _document(key: tuple[str, str], spec: ToolSpec) -> dict[str, str]:
    properties = (
        spec.input_schema.get("properties") if isinstance(spec.input_schema, dict) else None
    )
    parameters = " ".join(map(str, properties)) if isinstance(properties, dict) else ""
    # Only the text that the declaration shows is indexed, so that a server's
    # megabyte of description cannot stall loading (stemming is pure Python).
    limit = MAX_DESCRIPTION_CHARS
    return {
        "name": key[1][:limit],
        "title": (spec.title or "")[:limit],
        "parameters": parameters[:limit],
        "server": key[0][:limit],
        "description": (spec.description or "")[:limit],
    }


def _one_line(title: str | None, description: str | None) -> str:
    """Return the first sentence of the description (else the title), cut to one short line."""
    text = " ".join((description or title or "").split())
    match = re.search(r"[.!?](\s|$)", text)
    if match is not None:
        text = text[: match.start() + 1]
    if len(text) > _SUMMARY_CHARS:
        text = text[: _SUMMARY_CHARS - 1].rstrip() + "…"
    return text


def discovery_reply(catalog: ToolCatalog, function: str, input_text: str) -> CallReply:
    """Run one `isobind.*` call from the sandbox. Invalid input becomes a `ToolInputError`."""
    label = f"isobind.{function}"
    if len(input_text) > _MAX_REQUEST_CHARS:
        return CallReply.failure("ToolInputError", f"{label}: the request is too long")
    try:
        arguments: Any = json.loads(input_text)
    except (ValueError, RecursionError):
        return CallReply.failure("ToolInputError", f"{label}: the request is not valid JSON")
    if not isinstance(arguments, dict):
        return CallReply.failure("ToolInputError", f"{label}: the request must be an object")

    try:
        value: Any
        if function == "listServers":
            value = [_server_json(server) for server in catalog.list_servers()]
        elif function == "searchTools":
            value = catalog.search_tools(
                arguments.get("query", ""),
                detail=arguments.get("detail", "summaries"),
                limit=arguments.get("limit", 10),
            )
        elif function == "describeTools":
            value = catalog.describe_tools(arguments.get("names", []))
        else:
            return CallReply.failure("ToolError", f"{label} is not a function")
    except ValueError as error:
        return CallReply.failure("ToolInputError", f"{label}: {error}")
    return CallReply.success(json.dumps(value, ensure_ascii=False))


def _server_json(server: ServerSummary) -> dict[str, Any]:
    value: dict[str, Any] = {"name": server.name}
    if server.title is not None:
        value["title"] = server.title
    if server.description is not None:
        value["description"] = server.description
    value["toolCount"] = server.tool_count
    return value
