"""Lenient reading of `tools/list` results from servers that may be careless or hostile.

The MCP SDK's client validates a whole `tools/list` page at once. So one
malformed tool would reject every tool of the server: an `inputSchema` that is
not an object, a description that is not a string, a tool without a name.
`clean_tool_page` runs first, on the raw result, and repairs the page tool by
tool:

- an entry that is not an object, or has no usable `name`, is skipped;
- an invalid `inputSchema` is replaced by `{"type": "object"}` and an invalid
  `outputSchema` is removed, and the tool is typed `unknown` with the problem;
- any other invalid field (description, title, annotations) is removed.

The SDK's JSON parser also rejects a message nested about 200 levels deep
(pydantic-core 2.50), and the request that message responds to then never
completes.
`recover_deep_message` parses such a message again with every value past
`MAX_MESSAGE_DEPTH` levels replaced by a marker, and `clean_tool_page` treats a
tool field that contains the marker like an invalid one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp.shared.message import SessionMessage
from mcp_types import methods
from pydantic import ValidationError

__all__ = ["MAX_MESSAGE_DEPTH", "CleanedPage", "clean_tool_page", "recover_deep_message"]

# JSON levels counted from the message itself. The SDK's parser stops at about
# 200, and the TypeScript renderer types any schema nested more than 40 schema
# levels as `unknown`, which is at most about 90 JSON levels of a tool.
MAX_MESSAGE_DEPTH = 128

# Stands in for a value nested past `MAX_MESSAGE_DEPTH`. It contains a NUL, so no
# ordinary text matches it by accident.
_PRUNED = "\x00isobind: nested too deeply"

_MAX_DETAIL_CHARS = 200

# A JSON string (with its escapes) or one bracket. Scanning with it skips brackets
# inside strings, and never recurses.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


@dataclass
class CleanedPage:
    """The changes `clean_tool_page` made to one page of `tools/list`."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    """Per tool name, each invalid field that was replaced or removed, with the reason."""
    unknown: set[str] = field(default_factory=set)
    """Names of the tools whose input or output schema was invalid."""
    skipped: list[str] = field(default_factory=list)
    """One sentence per entry that was left out, which names it by its index in the page."""


def recover_deep_message(error: Exception) -> SessionMessage | None:
    """Parse again a message that the SDK rejected as nested too deeply, or return None.

    pydantic reports the raw JSON text as the input of a `json_invalid` error,
    so nothing else has to keep it.
    """
    if not isinstance(error, ValidationError):
        return None
    details = error.errors(include_url=False)
    if len(details) != 1 or details[0]["type"] != "json_invalid":
        return None
    text = details[0].get("input")
    if not isinstance(text, str) or "recursion limit" not in details[0]["msg"]:
        return None

    pruned = prune_json(text, MAX_MESSAGE_DEPTH)
    if pruned is None:
        return None
    try:
        message = types.jsonrpc_message_adapter.validate_json(pruned, by_name=False)
    except ValidationError:
        return None
    return SessionMessage(message)


def prune_json(text: str, max_depth: int) -> str | None:
    """Replace each array or object nested deeper than `max_depth` levels by a marker string.

    Returns None when the brackets of `text` do not balance. The scan keeps an
    explicit count instead of recursing, so any depth is safe.
    """
    pieces: list[str] = []
    depth = 0
    copied_to = 0
    cut_from: int | None = None
    marker = json.dumps(_PRUNED)
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth == max_depth + 1:
                cut_from = token.start()
        elif bracket in "]}":
            depth -= 1
            if depth < 0:
                return None
            if depth == max_depth and cut_from is not None:
                pieces.extend([text[copied_to:cut_from], marker])
                copied_to = token.end()
                cut_from = None
    if depth != 0:
        return None
    pieces.append(text[copied_to:])
    return "".join(pieces)


def clean_tool_page(result: dict[str, Any], version: str | None) -> CleanedPage:
    """Repair one `tools/list` result in place so that every remaining tool is valid.

    `version` is the negotiated protocol version, whose schema the SDK checks
    the page against. Problems outside the tools (a wrong `nextCursor`) are left
    for the SDK to report.
    """
    cleaned = CleanedPage()
    tools = result.get("tools")
    if not isinstance(tools, list):
        return cleaned

    for _ in range(2):
        faults = _tool_faults(result, version)
        if not faults:
            break
        kept: list[Any] = []
        for index, tool in enumerate(tools):
            problems = faults.get(index)
            if problems is None or _repair(tool, index, problems, cleaned):
                kept.append(tool)
        tools[:] = kept
    else:
        # Still invalid after one repair: leave out every tool that is.
        faults = _tool_faults(result, version)
        for index, tool in enumerate(tools):
            if index in faults:
                name = tool.get("name") if isinstance(tool, dict) else None
                reasons = "; ".join(map(_clip, faults[index].values()))
                cleaned.skipped.append(f"tool {name!r} skipped: {reasons}")
        tools[:] = [tool for index, tool in enumerate(tools) if index not in faults]
    return cleaned


def _tool_faults(result: dict[str, Any], version: str | None) -> dict[int, dict[str, str]]:
    """Return, per tool index, each top-level field of the tool that is invalid, with why."""
    faults: dict[int, dict[str, str]] = {}
    for details in _validation_errors(result, version):
        location = details["loc"]
        if len(location) < 2 or location[0] != "tools" or not isinstance(location[1], int):
            continue
        key = str(location[2]) if len(location) > 2 else ""
        where = "/".join(str(part) for part in location[3:])
        place = f"{key} at {where}" if where else key
        faults.setdefault(location[1], {}).setdefault(key, f"{place}: {details['msg']}")

    for index, tool in enumerate(result["tools"]):
        if isinstance(tool, dict):
            if tool.get("name") == "":
                faults.setdefault(index, {}).setdefault("name", "name: empty")
            for key, value in tool.items():
                if _contains_marker(value):
                    reason = f"{key}: nested more than {MAX_MESSAGE_DEPTH} JSON levels deep"
                    faults.setdefault(index, {}).setdefault(str(key), reason)
    return faults


def _validation_errors(result: dict[str, Any], version: str | None) -> list[Any]:
    """Validate a page as the SDK does: against the version's schema, then its own model."""
    errors: list[Any] = []
    if version is not None:
        try:
            methods.validate_server_result("tools/list", version, result)
        except ValidationError as error:
            errors.extend(error.errors(include_url=False))
        except (KeyError, ValueError):
            pass  # A version this SDK does not know: its own model below still applies.
    try:
        types.ListToolsResult.model_validate(result, by_name=False)
    except ValidationError as error:
        errors.extend(error.errors(include_url=False))
    return errors


def _repair(tool: Any, index: int, problems: dict[str, str], cleaned: CleanedPage) -> bool:
    """Fix the invalid fields of one tool, or return False when it cannot be identified."""
    name = tool.get("name") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or "" in problems:
        cleaned.skipped.append(f"entry {index} skipped: it is not an object")
        return False
    if "name" in problems or not isinstance(name, str) or not name:
        reason = problems.get("name", "name: missing")
        cleaned.skipped.append(f"entry {index} skipped: it has no usable name ({_clip(reason)})")
        return False

    notes = cleaned.problems.setdefault(name, [])
    for key, reason in problems.items():
        notes.append(_clip(reason))
        if key == "inputSchema":
            tool[key] = {"type": "object"}
            cleaned.unknown.add(name)
        elif key == "outputSchema":
            del tool[key]
            cleaned.unknown.add(name)
        else:
            tool.pop(key, None)
    return True


def _contains_marker(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if node == _PRUNED:
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL_CHARS else text[: _MAX_DETAIL_CHARS - 1] + "…"
