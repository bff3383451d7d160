"""Scripted model servers: real HTTP on 127.0.0.1 that replay model turns.

`ScriptedModelServer` speaks either the OpenAI chat completions format
(`POST /v1/chat/completions`) or the Anthropic Messages format
(`POST /v1/messages`), streamed as server-sent events when the request asks
for a stream and as one JSON body otherwise. Each request gets the next
scripted turn, whatever it contains, and is recorded with its headers and body
so that tests can check what the model was sent.

Token counts in the responses are estimates: a quarter of the characters of
the request body (input) and of the turn's text and code (output).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Kind = Literal["openai", "anthropic"]

# Size of the pieces a streamed text or JSON argument is cut into.
_CHUNK_CHARS = 24


@dataclass(frozen=True)
class Turn:
    """One scripted model turn: text, then zero or more function calls."""

    text: str = ""
    calls: Sequence[tuple[str, dict[str, Any]]] = ()
    """(function name, arguments) pairs."""

    @classmethod
    def code(cls, code: str, text: str = "") -> Turn:
        """A turn that runs `code` through the code tool."""
        return cls(text=text, calls=[("execute_typescript", {"code": code})])


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedModelServer:
    """A model API server that responds to request N with turn N of the script."""

    kind: Kind
    turns: list[Turn]
    repeat_tool_names: bool = False
    """Send the function name in every streamed chunk of a call (OpenAI format only)."""
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> ScriptedModelServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        """The base URL to give the SDK: with `/v1` for OpenAI, without for Anthropic."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        root = f"http://{host}:{port}"
        return f"{root}/v1" if self.kind == "openai" else root

    def next_turn(self, request: RecordedRequest) -> tuple[int, Turn | None]:
        with self._lock:
            self.requests.append(request)
            index = len(self.requests) - 1
        return index, self.turns[index] if index < len(self.turns) else None


def _handler_for(server: ScriptedModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            request = RecordedRequest(self.path, headers, body)
            index, turn = server.next_turn(request)
            if turn is None:
                self._send_json(500, {"error": {"message": "the script has no more turns"}})
                return
            payload = json.loads(body)
            input_tokens = len(body) // 4
            if server.kind == "openai":
                events = _openai_events(
                    turn, index, payload["model"], input_tokens, server.repeat_tool_names
                )
            else:
                events = _anthropic_events(turn, index, payload["model"], input_tokens)
            if payload.get("stream"):
                self._send_stream(events)
            else:
                self._send_json(200, _collapse(server.kind, turn, index, payload, input_tokens))

        def _send_json(self, status: int, data: Any) -> None:
            encoded = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def _send_stream(self, events: Iterator[tuple[str | None, Any]]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for name, data in events:
                text = data if isinstance(data, str) else json.dumps(data)
                prefix = f"event: {name}\n" if name else ""
                self.wfile.write(f"{prefix}data: {text}\n\n".encode())
                self.wfile.flush()
            self.close_connection = True

    return Handler


def _pieces(text: str) -> list[str]:
    return [text[start : start + _CHUNK_CHARS] for start in range(0, len(text), _CHUNK_CHARS)]


def _output_tokens(turn: Turn) -> int:
    characters = len(turn.text) + sum(len(json.dumps(arguments)) for _, arguments in turn.calls)
    return max(1, characters // 4)


def _openai_events(
    turn: Turn, index: int, model: str, input_tokens: int, repeat_names: bool
) -> Iterator[tuple[str | None, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{index}",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield None, chunk({"role": "assistant", "content": ""})
    for piece in _pieces(turn.text):
        yield None, chunk({"content": piece})
    for number, (name, arguments) in enumerate(turn.calls):
        start = {
            "index": number,
            "id": f"call_{index}_{number}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        yield None, chunk({"tool_calls": [start]})
        for piece in _pieces(json.dumps(arguments)):
            function = {"arguments": piece}
            if repeat_names:
                function["name"] = name
            yield None, chunk({"tool_calls": [{"index": number, "function": function}]})
    yield None, chunk({}, "tool_calls" if turn.calls else "stop")
    usage = {
        "prompt_tokens": input_tokens,
        "completion_tokens": _output_tokens(turn),
        "total_tokens": input_tokens + _output_tokens(turn),
    }
    yield (
        None,
        {
            "id": f"chatcmpl-{index}",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": usage,
        },
    )
    yield None, "[DONE]"


def _anthropic_events(
    turn: Turn, index: int, model: str, input_tokens: int
) -> Iterator[tuple[str | None, Any]]:
    message = {
        "id": f"msg_{index}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    yield "message_start", {"type": "message_start", "message": message}
    block = 0
    if turn.text:
        start = {"type": "text", "text": ""}
        event = {"type": "content_block_start", "index": 0, "content_block": start}
        yield "content_block_start", event
        for piece in _pieces(turn.text):
            delta = {"type": "text_delta", "text": piece}
            yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        block = 1
    for number, (name, arguments) in enumerate(turn.calls, start=block):
        start = {"type": "tool_use", "id": f"toolu_{index}_{number}", "name": name, "input": {}}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": number, "content_block": start},
        )
        for piece in _pieces(json.dumps(arguments)):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": number, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": number}
    stop = "tool_use" if turn.calls else "end_turn"
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": _output_tokens(turn)},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _collapse(
    kind: Kind, turn: Turn, index: int, payload: dict[str, Any], input_tokens: int
) -> dict[str, Any]:
    """Return the whole response of a request that did not ask for a stream."""
    model = payload["model"]
    if kind == "openai":
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
        if turn.calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{index}_{number}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
                for number, (name, arguments) in enumerate(turn.calls)
            ]
        return {
            "id": f"chatcmpl-{index}",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if turn.calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": _output_tokens(turn),
                "total_tokens": input_tokens + _output_tokens(turn),
            },
        }
    content: list[dict[str, Any]] = []
    if turn.text:
        content.append({"type": "text", "text": turn.text})
    for number, (name, arguments) in enumerate(turn.calls):
        content.append(
            {"type": "tool_use", "id": f"toolu_{index}_{number}", "name": name, "input": arguments}
        )
    return {
        "id": f"msg_{index}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if turn.calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": _output_tokens(turn)},
    }
