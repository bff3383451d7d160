"""Framed JSON messages between the host and a sandbox worker process.

Each frame is a 4-byte big-endian length followed by that many bytes of UTF-8
JSON text holding one object with an `op` key. Both sides read frames with a
size limit, so a compromised worker cannot make the host buffer without bound.

The host drives each isolate of a worker; the worker only runs engine tasks.
A result is `[true, value]`, where a value is text, a number, a boolean or
null (anything else reads as null), or `[false, error class, message]`.

Host to worker:
    {"op": "prepare", "iso": id, "token", "configuration": [api, limits] or null}
    {"op": "batch", "iso": id, "batch": id, "sources": [...], "notify": index or null,
     "memory": V8 heap limit in bytes (optional)}
    {"op": "close", "iso": id, "confirm": whether to answer `closed`}
    {"op": "cpu", "iso": id}

Worker to host:
    {"op": "ready", "lockdown": {...}}   once, after the worker is locked down
    {"op": "result", "iso": id, "batch": id, "results": [result of every task but `notify`],
     "notified": result of the `notify` task, "at": CLOCK_MONOTONIC seconds when it ended,
     "memoryHit": whether the isolate reached its heap limit,
     "cpu": CPU seconds the isolate's thread has used since its preparation}
    {"op": "cpu", "iso": id, "cpu": the same, now, or null}
    {"op": "closed", "iso": id}
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, BinaryIO

__all__ = ["MAX_FRAME_BYTES", "ProtocolError", "encode_frame", "read_frame", "read_frame_from"]

_HEADER = struct.Struct(">I")

# A run's result is capped at 16 M characters of JSON by default, and JSON
# escapes can grow text up to six times; 256 MiB leaves room for both.
MAX_FRAME_BYTES = 256 * 1024 * 1024


class ProtocolError(Exception):
    """Raised when a peer sends a frame that is too large or is not a JSON object."""


# One encoder for every frame: `json.dumps` with options builds a new one each call.
# UTF-8 rather than \u escapes, so that non-ASCII text takes two or three bytes, not six.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_frame(message: dict[str, Any]) -> bytes:
    """Return `message` as one frame: length header and JSON body."""
    body = _ENCODER.encode(message).encode()
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
    return _decode(body)


def read_frame_from(stream: BinaryIO, max_bytes: int = MAX_FRAME_BYTES) -> dict[str, Any] | None:
    """Like `read_frame`, from a blocking binary stream."""
    header = stream.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise ProtocolError("the stream ended inside a frame header")
    (length,) = _HEADER.unpack(header)
    if length > max_bytes:
        raise ProtocolError(f"a frame of {length} bytes is over the limit of {max_bytes}")
    body = stream.read(length)
    if len(body) < length:
        raise ProtocolError("the stream ended inside a frame")
    return _decode(body)


def _decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ProtocolError("a frame is not valid JSON") from error
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError("a frame is not a JSON object with an `op` key")
    return message
