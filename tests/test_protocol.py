"""The framed-JSON channel: a worker that breaks the protocol cannot hurt the host."""

from __future__ import annotations

import asyncio
import struct

import pytest

from isobind._protocol import ProtocolError, encode_frame, read_frame

pytestmark = pytest.mark.anyio


def reader_with(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_round_trip() -> None:
    messages = [{"op": "ready"}, {"op": "calls", "run": 1, "calls": [[1, "s", "t", "{}"]]}]
    reader = reader_with(b"".join(encode_frame(message) for message in messages))
    assert await read_frame(reader) == messages[0]
    assert await read_frame(reader) == messages[1]
    assert await read_frame(reader) is None


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(struct.pack(">I", 2**31) + b"{}", "over the limit", id="oversized"),
        pytest.param(b"\x00\x00", "inside a frame header", id="truncated-header"),
        pytest.param(struct.pack(">I", 10) + b'{"op"', "inside a frame", id="truncated-body"),
        pytest.param(struct.pack(">I", 3) + b"\xff\xfe{", "not valid JSON", id="invalid-json"),
        pytest.param(struct.pack(">I", 2) + b"[]", "with an `op` key", id="not-an-object"),
        pytest.param(
            struct.pack(">I", 6000) + b"[" * 3000 + b"]" * 3000,
            "not valid JSON",
            id="deeply-nested",
        ),
    ],
)
async def test_malformed_frame_rejected(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        await read_frame(reader_with(data))


async def test_size_limit_checked_before_reading() -> None:
    # Only the header arrives: the limit is enforced before any body is buffered.
    reader = asyncio.StreamReader()
    reader.feed_data(struct.pack(">I", 1_000_001))
    with pytest.raises(ProtocolError, match="over the limit of 1000000"):
        await read_frame(reader, max_bytes=1_000_000)
