"""An MCP server that publishes malformed, enormous and hostile tools.

Each tool but `ping` is built to hang, crash or flood a client that loads it:
deep nesting (90 schema levels, and 10,000), `$ref` cycles, 10,000 properties,
megabyte descriptions, text that tries to close a comment and inject
declarations, and `tools/list` entries that break the MCP schema itself (no
name, a schema that is a string, a description that is a number, junk values).
`ping` is ordinary, so a test can check that it still loads and runs. Calls to
any tool return the name of the tool called. `tools/list` has two pages, the
second starting at `PAGE_SIZE`.

It speaks JSON-RPC over stdio by hand, because the MCP SDK's server validates
its own results and will not send any of this.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# Past the schema depth limit of the TypeScript renderer (40), not the message
# depth limit of isobind._listing (128 JSON levels).
DEPTH = 60
# Far past what the SDK's JSON parser accepts (about 200 JSON levels), so the
# whole message has to be recovered. `json.dumps` cannot nest this deep, so the
# schema is spliced into the reply as text.
HUGE_DEPTH = 10_000
WIDTH = 10_000
MEGABYTE = 1_000_000
PAGE_SIZE = 8
_SPLICE = "@@very-deep@@"


def nested_objects(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"inner": schema}}
    return schema


def nested_text(depth: int) -> str:
    opening = '{"type": "object", "properties": {"inner": ' * depth
    return opening + '{"type": "string"}' + "}}" * depth


SCHEMAS: dict[str, tuple[str, Any]] = {
    "deep": (
        "Nested 60 objects deep.",
        {"type": "object", "properties": {"a": nested_objects(DEPTH)}},
    ),
    "very-deep": ("Nested 10,000 objects deep.", _SPLICE),
    "cycle": (
        "Two definitions that refer to each other through unions alone.",
        {
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/first"}},
            "$defs": {
                "first": {"anyOf": [{"$ref": "#/$defs/second"}, {"type": "string"}]},
                "second": {"anyOf": [{"$ref": "#/$defs/first"}, {"type": "number"}]},
            },
        },
    ),
    "wide": (
        "Ten thousand properties.",
        {
            "type": "object",
            "properties": {f"field_{n}": {"type": "string"} for n in range(WIDTH)},
        },
    ),
    "long-description": (
        "x" * MEGABYTE,
        {
            "type": "object",
            "properties": {"a": {"type": "string", "description": "y" * MEGABYTE}},
        },
    ),
    # Valid for MCP, which checks only the top of an input schema.
    "malformed": (
        "Subschemas of the wrong JSON types.",
        {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": "x"},
                "type": {"type": 7},
                "ref": {"$ref": 5},
                "remote": {"$ref": "https://127.0.0.1:9/schema.json"},
            },
        },
    ),
    "injection": (
        "Ends the comment */ declare const stolen: string; /* and more",
        {
            "type": "object",
            "properties": {
                "*/ x": {"type": "string", "description": "*/ } declare const y: 1; /**"},
            },
        },
    ),
    # Invalid for MCP: the SDK's client rejects a whole page with any of these.
    "string-schema": ("An input schema that is a string.", "not a schema"),
    "list-properties": (
        "Properties given as a list.",
        {"type": "object", "properties": ["a", "b"]},
    ),
    "ping": (
        "Return pong.",
        {"type": "object", "properties": {"message": {"type": "string"}}},
    ),
}

# Entries past the MCP schema beyond the input schema.
OTHER_ENTRIES: list[Any] = [
    {"name": "number-description", "description": 42, "inputSchema": {"type": "object"}},
    {
        "name": "list-output",
        "description": "An output schema that is a list.",
        "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "outputSchema": [1, 2],
    },
    {"description": "A tool without a name.", "inputSchema": {"type": "object"}},
    {"name": 7, "inputSchema": {"type": "object"}},
    "junk",
    None,
]


def tools() -> list[Any]:
    listed: list[Any] = [
        {"name": name, "description": description, "inputSchema": schema}
        for name, (description, schema) in SCHEMAS.items()
    ]
    return listed + OTHER_ENTRIES


def encode(reply: dict[str, Any]) -> str:
    return json.dumps(reply).replace(json.dumps(_SPLICE), nested_text(HUGE_DEPTH))


def result_for(method: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """Return the result of a request, or None for a method this server lacks."""
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile", "version": "1.0.0"},
        }
    if method == "tools/list":
        if params.get("cursor") == "second":
            return {"tools": tools()[PAGE_SIZE:]}
        return {"tools": tools()[:PAGE_SIZE], "nextCursor": "second"}
    if method == "tools/call":
        return {"content": [{"type": "text", "text": str(params.get("name"))}]}
    if method == "ping":
        return {}
    return None


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        if "id" not in message:
            continue  # a notification, such as notifications/initialized
        result = result_for(message.get("method", ""), message.get("params") or {})
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        if result is None:
            reply["error"] = {"code": -32601, "message": "method not found"}
        else:
            reply["result"] = result
        sys.stdout.write(encode(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
