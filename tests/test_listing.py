"""Repairing `tools/list` pages tool by tool, and recovering messages nested too deeply."""

from __future__ import annotations

import copy
import json
from typing import Any

import mcp_types as types
import pytest
from pydantic import ValidationError

from isobind._listing import MAX_MESSAGE_DEPTH, clean_tool_page, prune_json, recover_deep_message

from .support import TOOL_LISTS, corpus_servers

VERSION = "2025-11-25"
GOOD = {"name": "good", "inputSchema": {"type": "object", "properties": {"a": {"type": "string"}}}}


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def parse_error(text: str) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        types.jsonrpc_message_adapter.validate_json(text, by_name=False)
    return caught.value


def test_prune_cuts_past_depth() -> None:
    pruned = prune_json(nested(10), 3)
    assert pruned is not None
    value = json.loads(pruned)
    assert isinstance(value["a"]["a"]["a"], str)


def test_prune_keeps_shallow_text() -> None:
    text = '{"a": [1, {"b": "x"}], "c": null}'
    assert prune_json(text, 3) == text


def test_prune_ignores_brackets_in_strings() -> None:
    text = '{"a": "[[[{{{\\"]]", "b": ["}"]}'
    assert prune_json(text, 2) == text


def test_prune_rejects_unbalanced() -> None:
    assert prune_json('{"a": [1]', 5) is None
    assert prune_json('{"a": 1}}', 5) is None


def test_prune_handles_huge_depth() -> None:
    pruned = prune_json(nested(100_000), 50)
    assert pruned is not None
    assert len(pruned) < 1_000


def test_recover_deep_response() -> None:
    schema = '{"type": "object", "properties": {"x": ' * 10_000 + "{}" + "}}" * 10_000
    text = (
        '{"jsonrpc": "2.0", "id": 7, "result": {"tools": ['
        '{"name": "deep", "inputSchema": ' + schema + "}]}}"
    )
    recovered = recover_deep_message(parse_error(text))
    assert recovered is not None
    message = recovered.message
    assert isinstance(message, types.JSONRPCResponse)
    assert message.id == 7
    assert message.result["tools"][0]["name"] == "deep"


def test_recover_ignores_other_errors() -> None:
    assert recover_deep_message(parse_error('{"jsonrpc": "2.0", "id": ')) is None
    assert recover_deep_message(parse_error('{"jsonrpc": "1.0", "id": 1, "result": {}}')) is None
    assert recover_deep_message(ValueError("recursion limit")) is None


def test_deep_tool_repaired() -> None:
    schema = '{"type": "object", "properties": {"x": ' * 200 + "{}" + "}}" * 200
    text = (
        '{"jsonrpc": "2.0", "id": 1, "result": {"tools": ['
        '{"name": "deep", "inputSchema": ' + schema + "}, " + json.dumps(GOOD) + "]}}"
    )
    recovered = recover_deep_message(parse_error(text))
    assert recovered is not None
    assert isinstance(recovered.message, types.JSONRPCResponse)
    result = recovered.message.result
    cleaned = clean_tool_page(result, VERSION)
    assert cleaned.unknown == {"deep"}
    assert cleaned.problems["deep"] == [
        f"inputSchema: nested more than {MAX_MESSAGE_DEPTH} JSON levels deep"
    ]
    assert result["tools"] == [{"name": "deep", "inputSchema": {"type": "object"}}, GOOD]


@pytest.mark.parametrize(
    ("entry", "expected", "unknown", "problem"),
    [
        pytest.param(
            {"name": "t", "inputSchema": "x"},
            {"name": "t", "inputSchema": {"type": "object"}},
            True,
            "inputSchema: Input should be a valid dictionary",
            id="string-input",
        ),
        pytest.param(
            {"name": "t", "inputSchema": {"type": "string"}},
            {"name": "t", "inputSchema": {"type": "object"}},
            True,
            "inputSchema at type: Input should be 'object'",
            id="input-not-object-type",
        ),
        pytest.param(
            {"name": "t"},
            {"name": "t", "inputSchema": {"type": "object"}},
            True,
            "inputSchema: Field required",
            id="no-input",
        ),
        pytest.param(
            {"name": "t", "inputSchema": {"type": "object"}, "outputSchema": [1]},
            {"name": "t", "inputSchema": {"type": "object"}},
            True,
            "outputSchema: Input should be a valid dictionary",
            id="list-output",
        ),
        pytest.param(
            {"name": "t", "description": 5, "title": [], "inputSchema": {"type": "object"}},
            {"name": "t", "inputSchema": {"type": "object"}},
            False,
            "description: Input should be a valid string",
            id="description-and-title",
        ),
    ],
)
def test_invalid_field_repaired(
    entry: dict[str, Any], expected: dict[str, Any], unknown: bool, problem: str
) -> None:
    result = {"tools": [entry, copy.deepcopy(GOOD)]}
    cleaned = clean_tool_page(result, VERSION)
    assert result["tools"] == [expected, GOOD]
    assert (cleaned.unknown == {"t"}) is unknown
    assert any(note.startswith(problem) for note in cleaned.problems["t"]), cleaned.problems
    assert cleaned.skipped == []


@pytest.mark.parametrize(
    ("entry", "sentence"),
    [
        pytest.param(
            {"inputSchema": {"type": "object"}},
            "entry 0 skipped: it has no usable name (name: Field required)",
            id="no-name",
        ),
        pytest.param(
            {"name": 3, "inputSchema": {"type": "object"}},
            "entry 0 skipped: it has no usable name (name: Input should be a valid string)",
            id="number-name",
        ),
        pytest.param(
            {"name": "", "inputSchema": {"type": "object"}},
            "entry 0 skipped: it has no usable name (name: empty)",
            id="empty-name",
        ),
        pytest.param("junk", "entry 0 skipped: it is not an object", id="string"),
        pytest.param(None, "entry 0 skipped: it is not an object", id="null"),
        pytest.param([1], "entry 0 skipped: it is not an object", id="list"),
    ],
)
def test_unnamed_entry_skipped(entry: Any, sentence: str) -> None:
    result = {"tools": [entry, copy.deepcopy(GOOD)]}
    cleaned = clean_tool_page(result, VERSION)
    assert result["tools"] == [GOOD]
    assert cleaned.skipped == [sentence]


@pytest.mark.parametrize("version", [None, "2024-11-05", "2025-06-18", VERSION, "1999-01-01"])
def test_page_valid_for_sdk_after_repair(version: str | None) -> None:
    result: dict[str, Any] = {
        "tools": [
            {"name": "a", "inputSchema": 1, "description": {}, "annotations": "x"},
            {"name": "b", "inputSchema": {"type": "object", "properties": []}},
            copy.deepcopy(GOOD),
        ]
    }
    clean_tool_page(result, version)
    parsed = types.ListToolsResult.model_validate(result, by_name=False)
    assert [tool.name for tool in parsed.tools] == ["a", "b", "good"]


@pytest.mark.parametrize("server", corpus_servers())
def test_corpus_page_unchanged(server: str) -> None:
    listing = json.loads((TOOL_LISTS / f"{server}.json").read_text())
    result = copy.deepcopy(listing)
    cleaned = clean_tool_page(result, VERSION)
    assert result == listing
    assert cleaned.problems == {}
    assert cleaned.skipped == []
