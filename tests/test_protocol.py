"""The framed-JSON channel and the host's own checks of what a worker sends.

Once code runs in a worker, the worker is untrusted: these are the checks that
hold even if an isolate escape took it over.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from isobind import Limits
from isobind._pool import _check_call_limits, _check_outcome_limits, _PendingRun
from isobind._protocol import ProtocolError, encode_frame, read_frame
from isobind._sandbox import CallReply, CallRequest, SandboxOutcome

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


def outcome_with(result_text: str | None, messages: list[str]) -> SandboxOutcome:
    logs = [{"level": "log", "message": message} for message in messages]
    return SandboxOutcome.from_dict({"result_text": result_text, "logs": logs})


def test_host_rejects_oversized_result_from_worker() -> None:
    limits = Limits(max_result_bytes=10)
    checked = _check_outcome_limits(outcome_with('"' + "x" * 20 + '"', []), limits)
    assert checked.error is not None
    assert checked.error["name"] == "ResultTooLargeError"
    assert checked.result_text is None


def test_host_trims_log_flood_from_worker() -> None:
    limits = Limits(max_log_bytes=100)
    checked = _check_outcome_limits(outcome_with("1", ["y" * 60] * 10), limits)
    assert checked.error is None
    # Each entry costs its 60 characters plus 32 of overhead; the host allows
    # the limit plus 64 characters of slack, so one entry fits.
    assert len(checked.logs) == 1
    assert checked.logs_dropped == 9


def test_host_caps_calls_from_worker() -> None:
    loop = asyncio.new_event_loop()
    try:

        async def handler(request: CallRequest) -> CallReply:
            return CallReply.success("1")

        pending = _PendingRun(handler, Limits(max_calls=2), loop.create_future())
        assert _check_call_limits(pending) is None
        pending.calls_started = 2
        refusal = _check_call_limits(pending)
        assert refusal is not None
        assert refusal[0] == "LimitExceededError"
        assert "CallLimitExceeded" in refusal[1]
    finally:
        loop.close()
