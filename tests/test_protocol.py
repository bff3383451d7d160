"""The framed-JSON channel and the host's own checks of what a worker sends.

Once code runs in a worker, the worker is untrusted: these are the checks that
hold even if an isolate escape took it over.
"""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from isobind import Limits
from isobind._errors import SandboxError
from isobind._protocol import ProtocolError, encode_frame, read_frame
from isobind._sandbox import CallReply, CallRequest, LocalCalls, _Isolate, _Run

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


def poll_text(**fields: object) -> str:
    poll: dict[str, object] = {
        "calls": [],
        "logs": [],
        "done": False,
        "result": None,
        "error": None,
        "bufferLimitHit": False,
        "logsDropped": 0,
        "pendingCalls": 0,
        "nextTimer": None,
    }
    poll.update(fields)
    return json.dumps(poll)


async def no_calls(request: CallRequest) -> CallReply:
    raise AssertionError(f"the call {request} should not reach the handler")


async def forged_poll_run(limits: Limits) -> _Run:
    # A worker that escaped its isolate can send any poll text; the host reads
    # it with `_Run.read_poll`, so the test hands it forged text directly.
    isolate = await _Isolate.create()
    await isolate.close()
    return _Run(isolate, LocalCalls(no_calls), limits, "code.ts")


async def test_host_caps_calls_from_worker() -> None:
    run = await forged_poll_run(Limits(max_calls=2))
    calls = [[i, "s", "t", "{}"] for i in range(1, 6)]
    run.read_poll(poll_text(calls=calls))
    assert [request.id for request in run.waiting] == [1, 2]
    rejected = {call_id: payload for call_id, ok, payload in run.replies if not ok}
    assert sorted(rejected) == [3, 4, 5]
    assert all("CallLimitExceeded" in payload["message"] for payload in rejected.values())


async def test_host_trims_log_flood_from_worker() -> None:
    run = await forged_poll_run(Limits(max_log_bytes=100))
    logs = [{"level": "log", "message": "y" * 60}] * 10
    run.read_poll(poll_text(logs=logs))
    # Each entry costs its 60 characters plus 32 of overhead; the host allows
    # the limit plus 64 characters of slack, so one entry fits.
    assert len(run.outcome.logs) == 1
    assert run.outcome.logs_dropped == 9


async def test_host_rejects_oversized_result_from_worker() -> None:
    run = await forged_poll_run(Limits(max_result_bytes=10))
    message = run.read_poll(poll_text(done=True, result='"' + "x" * 20 + '"'))
    run._finish(message)
    assert run.outcome.error is not None
    assert run.outcome.error["name"] == "ResultTooLargeError"
    assert run.outcome.result_text is None


@pytest.mark.parametrize(
    "forged",
    [
        "[]",
        poll_text(calls=[[1, "s", "t"]]),
        poll_text(calls=[["1", "s", "t", "{}"]]),
        poll_text(logs=[{"level": "log"}]),
        poll_text(result={"not": "text"}),
        poll_text(error="boom"),
        poll_text(nextTimer="soon"),
        "[" * 100_000,
    ],
    ids=[
        "not-object",
        "short-call",
        "text-id",
        "log-without-message",
        "object-result",
        "text-error",
        "text-timer",
        "deep",
    ],
)
async def test_host_rejects_malformed_poll(forged: str) -> None:
    run = await forged_poll_run(Limits())
    with pytest.raises(SandboxError, match="malformed poll"):
        run.read_poll(forged)
