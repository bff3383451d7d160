"""The worker process from the host's side: framed engine tasks in, results out.

These tests speak the protocol to a real worker process by hand, so they
cover what `WorkerPool` never sends: batches for isolates that do not exist
or are closed, and a close whose confirmation the host requests.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import isobind
from isobind._protocol import ProtocolError, encode_frame, read_frame_from
from isobind._sandbox import Limits, _render_configure, configuration_of, wrap_code
from isobind._worker import WORKER_LAUNCHER

TOKEN = "0123456789abcdef0123456789abcdef"


class WorkerSession:
    def __init__(self, process: subprocess.Popen[bytes]):
        self.process = process

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(encode_frame(message))
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        message = read_frame_from(self.process.stdout)
        assert message is not None, "the worker closed its channel"
        return message


@pytest.fixture
def worker() -> Iterator[WorkerSession]:
    settings = {
        "cpu": None,
        "netns": False,
        "data_budget_mb": 512,
        "max_open_files": 64,
        "stack_kb": 984,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-c",
            WORKER_LAUNCHER,
            str(Path(isobind.__file__).parent),
            json.dumps(settings),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={},
    )
    session = WorkerSession(process)
    try:
        assert session.receive()["op"] == "ready"
        yield session
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
        assert process.stdout is not None
        process.stdout.close()


def begin_batch(iso: int, code: str) -> dict[str, Any]:
    configuration = configuration_of({"s": ["t"]}, Limits())
    sources = [
        _render_configure(configuration, TOKEN),
        wrap_code(code, "code.ts"),
        f'__isobind.poll("{TOKEN}")',
    ]
    return {"op": "batch", "iso": iso, "batch": 1, "sources": sources, "notify": 0}


def test_prepared_isolate_runs_a_batch(worker: WorkerSession) -> None:
    worker.send({"op": "prepare", "iso": 1, "token": TOKEN, "configuration": None})
    worker.send(begin_batch(1, "return 6 * 7"))
    reply = worker.receive()
    assert reply["op"] == "result"
    assert reply["notified"] == [True, None]
    assert isinstance(reply["at"], float)
    code_result, poll = reply["results"]
    assert code_result == [True, None]
    assert poll[0] is True
    assert json.loads(poll[1])["result"] == "42"
    assert reply["memoryHit"] is False


def test_batch_for_unknown_isolate_fails(worker: WorkerSession) -> None:
    worker.send(begin_batch(99, "return 1"))
    reply = worker.receive()
    assert reply["notified"][0] is False
    assert all(result[0] is False for result in reply["results"])
    assert "never prepared" in reply["results"][0][2]


def test_confirmed_close_then_batch_fails(worker: WorkerSession) -> None:
    worker.send({"op": "prepare", "iso": 1, "token": TOKEN, "configuration": None})
    worker.send({"op": "close", "iso": 1, "confirm": True})
    assert worker.receive() == {"op": "closed", "iso": 1}
    worker.send(begin_batch(1, "return 1"))
    reply = worker.receive()
    assert reply["results"][0][0] is False


def test_code_error_arrives_by_class_name(worker: WorkerSession) -> None:
    worker.send({"op": "prepare", "iso": 1, "token": TOKEN, "configuration": None})
    worker.send(begin_batch(1, "return ("))
    code_result, _ = worker.receive()["results"]
    assert code_result[0] is False
    assert code_result[1] == "JSParseException"
    assert "SyntaxError" in code_result[2]


def test_blocking_reader_rejects_truncated_frames() -> None:
    whole = encode_frame({"op": "ready"})
    assert read_frame_from(io.BytesIO(whole)) == {"op": "ready"}
    assert read_frame_from(io.BytesIO(b"")) is None
    with pytest.raises(ProtocolError, match="inside a frame header"):
        read_frame_from(io.BytesIO(whole[:2]))
    with pytest.raises(ProtocolError, match="inside a frame"):
        read_frame_from(io.BytesIO(whole[:-1]))
    with pytest.raises(ProtocolError, match="over the limit"):
        read_frame_from(io.BytesIO(struct.pack(">I", 100) + b"{}"), max_bytes=10)
