"""Framed JSON messages between the host and a sandbox worker process.

Each frame is a 4-byte big-endian length followed by that many bytes of UTF-8
JSON text holding one object with an `op` key. Both sides read frames with a
size limit, so a compromised worker cannot make the host buffer without bound.

Host to worker:
    {"op": "run", "run": id, "code", "api", "limits", "filename"}
    {"op": "replies", "run": id, "replies": [[call id, ok, value text or {name, message}]]}

Worker to host:
    {"op": "ready", "lockdown": {...}}   once, after the worker is locked down
    {"op": "calls", "run": id, "calls": [[call id, server, tool, input text]]}
    {"op": "done", "run": id, "outcome": {...}}
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

__all__ = ["MAX_FRAME_BYTES", "ProtocolError", "encode_frame", "read_frame"]

_HEADER = struct.Struct(">I")

# A run's result is capped at 16 M characters of JSON by default, and JSON
# escapes can grow text up to six times; 256 MiB leaves room for both.
MAX_FRAME_BYTES = 256 * 1024 * 1024


class ProtocolError(Exception):
    """Raised when a peer sends a frame that is too large or is not a JSON object."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """Return `message` as one frame: length header and JSON body."""
    body = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


async def read_frame(
    reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES
) -> dict[str, Any] | None:
    """Read one message, or return `None` when the peer closed the stream between frames."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise ProtocolError("the stream ended inside a frame header") from error
        return None
    (length,) = _HEADER.unpack(header)
    if length > max_bytes:
        raise ProtocolError(f"a frame of {length} bytes is over the limit of {max_bytes}")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError as error:
        raise ProtocolError("the stream ended inside a frame") from error
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ProtocolError("a frame is not valid JSON") from error
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError("a frame is not a JSON object with an `op` key")
    return message
