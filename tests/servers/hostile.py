"""An MCP server that publishes malformed, enormous and hostile input schemas.

Each tool but `ping` has a schema built to hang, crash or flood a client that
renders it: deep nesting, `$ref` cycles, 10,000 properties, megabyte
descriptions, and text that tries to close a comment and inject declarations.
`ping` is ordinary, so a test can check that it still loads and runs. Calls to
any tool return the name of the tool called.

It speaks JSON-RPC over stdio by hand, because the MCP SDK's server validates
its own results and will not send a malformed schema.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# Over twice isobind's depth limit, but below the nesting at which the MCP SDK's
# client fails to parse the message (about 240 JSON levels with mcp 2.3, where
# tools/list then never completes).
DEPTH = int(os.environ.get("HOSTILE_DEPTH", "90"))
WIDTH = 10_000
MEGABYTE = 1_000_000


def nested_objects(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"inner": schema}}
    return schema


SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "deep": (
        "Nested 90 objects deep.",
        {"type": "object", "properties": {"a": nested_objects(DEPTH)}},
    ),
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
    # The MCP SDK's client rejects a whole tools/list whose `properties` is not
    # an object, so the malformed parts sit one level down.
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
    "ping": (
        "Return pong.",
        {"type": "object", "properties": {"message": {"type": "string"}}},
    ),
}


def tools() -> list[dict[str, Any]]:
    return [
        {"name": name, "description": description, "inputSchema": schema}
        for name, (description, schema) in SCHEMAS.items()
    ]


def result_for(method: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """Return the result of a request, or None for a method this server lacks."""
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile", "version": "1.0.0"},
        }
    if method == "tools/list":
        return {"tools": tools()}
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
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
