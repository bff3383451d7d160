"""The egress gateway: `fetch` through the host to a loopback HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from isobind import ConfigError, FunctionTools, Toolbox, load_config

from .conftest import write_config

pytestmark = pytest.mark.anyio

API_KEY = "egress-api-key-3c2b1a0f9e8d"


class EchoHandler(BaseHTTPRequestHandler):
    """Responds to every request with JSON describing it; /big returns 64 KiB of text."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = raw.decode("utf-8", errors="replace")
        seen = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "headers": {name.lower(): value for name, value in self.headers.items()},
        }
        EchoHandler.requests.append(seen)
        content_type = "application/json"
        if self.path == "/big":
            payload = b"x" * 65536
        elif self.path == "/binary":
            # Every byte value, then the credential the host sent, inside binary data.
            payload = bytes(range(256)) + self.headers.get("authorization", "").encode()
            content_type = "application/octet-stream"
        elif self.path == "/echo-bytes":
            payload = raw
            content_type = "application/octet-stream"
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            payload = json.dumps(seen).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Echo", "yes")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def silent_server() -> Iterator[str]:
    """A socket that accepts connections but never responds (the kernel queues them)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture(scope="module")
async def toolbox(
    tmp_path_factory: pytest.TempPathFactory, echo_server: str, silent_server: str
) -> AsyncIterator[Toolbox]:
    data = {
        "mcpServers": {},
        "isobind": {
            "egress": {
                "allow": [
                    {
                        "origin": echo_server,
                        "methods": ["GET", "POST"],
                        "headers": {"Authorization": "Bearer ${secret:env:EGRESS_KEY}"},
                    },
                    {"origin": silent_server},
                ],
                "maxResponseBytes": 4096,
                "timeout": 0.5,
            }
        },
    }
    path = write_config(tmp_path_factory.mktemp("egress"), data)
    config = load_config(path, environ={"EGRESS_KEY": API_KEY})
    async with Toolbox(config, functions=[FunctionTools("none", [])]) as opened:
        yield opened


async def run(toolbox: Toolbox, expression: str, **options: Any) -> Any:
    code = f"""
try {{ return ["ok", await (async () => {{ {expression} }})()]; }}
catch (error) {{ return [error.name, error.message]; }}
"""
    result = await toolbox.execute(code, **options)
    assert result.ok, result.error
    return result


async def test_get_allowed_origin(toolbox: Toolbox, echo_server: str) -> None:
    result = await run(
        toolbox,
        f"""const response = await fetch("{echo_server}/items?q=1");
        const seen = await response.json();
        return {{status: response.status, ok: response.ok, echo: response.headers.get("x-echo"),
                 seen}};""",
    )
    outcome, value = result.result
    assert outcome == "ok"
    assert value["status"] == 200
    assert value["ok"] is True
    assert value["echo"] == "yes"
    assert value["seen"]["path"] == "/items?q=1"
    # The host added the credential, and it was scrubbed from what the code saw.
    assert EchoHandler.requests[-1]["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert value["seen"]["headers"]["authorization"] == "Bearer [REDACTED]"
    assert API_KEY not in json.dumps(result.to_dict())
    [call] = result.calls
    assert (call.server, call.tool, call.ok) == ("fetch", "GET", True)
    assert call.input == {"url": f"{echo_server}/items?q=1", "method": "GET"}


async def test_post_with_body_and_headers(toolbox: Toolbox, echo_server: str) -> None:
    result = await run(
        toolbox,
        f"""const response = await fetch("{echo_server}/submit", {{method: "POST",
          headers: {{"Content-Type": "application/json", "Authorization": "Bearer forged"}},
          body: JSON.stringify({{a: 1}})}});
        return [response.status, await response.text()];""",
    )
    outcome, (status, text) = result.result
    assert outcome == "ok"
    assert status == 201
    seen = EchoHandler.requests[-1]
    assert seen["body"] == '{"a":1}'
    assert seen["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert "forged" not in text


@pytest.mark.parametrize(
    ("url", "method", "needle"),
    [
        pytest.param(
            "http://127.0.0.2:1/x", "GET", "origin http://127.0.0.2:1 is not in", id="origin"
        ),
        pytest.param("{echo}/x", "DELETE", "method DELETE is not allowed", id="method"),
        pytest.param("file:///etc/passwd", "GET", "only http and https", id="scheme"),
        pytest.param("{echo_https}/x", "GET", "is not in isobind.egress.allow", id="other-scheme"),
    ],
)
async def test_refused_request_names_origin(
    toolbox: Toolbox, echo_server: str, url: str, method: str, needle: str
) -> None:
    before = len(EchoHandler.requests)
    target = url.format(echo=echo_server, echo_https=echo_server.replace("http:", "https:"))
    result = await run(toolbox, f'return await fetch("{target}", {{method: "{method}"}});')
    name, message = result.result
    assert name == "NetworkAccessError"
    assert needle in message
    assert len(EchoHandler.requests) == before
    assert result.calls[0].error is not None


async def test_response_size_limit(toolbox: Toolbox, echo_server: str) -> None:
    result = await run(toolbox, f'return await fetch("{echo_server}/big");')
    name, message = result.result
    assert name == "LimitExceededError"
    assert "larger than 4096 bytes" in message


async def test_time_limit(toolbox: Toolbox, silent_server: str) -> None:
    result = await run(toolbox, f'return await fetch("{silent_server}/x");')
    name, message = result.result
    assert name == "NetworkAccessError"
    assert "timed out after 0.5 s" in message


async def test_redirect_not_followed(toolbox: Toolbox, echo_server: str) -> None:
    result = await run(
        toolbox,
        f"""const response = await fetch("{echo_server}/redirect");
        return [response.status, response.headers.get("location")];""",
    )
    assert result.result == ["ok", [302, "http://127.0.0.1:9/elsewhere"]]


async def test_dry_run_refuses_post(toolbox: Toolbox, echo_server: str) -> None:
    before = len(EchoHandler.requests)
    result = await run(
        toolbox,
        f'return await fetch("{echo_server}/x", {{method: "POST", body: "x"}});',
        dry_run=True,
    )
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "dry run" in message
    assert len(EchoHandler.requests) == before
    assert [call.tool for call in result.would_call] == ["POST"]


async def test_fetch_blocked_without_egress(tmp_path: Path) -> None:
    async with Toolbox(functions=[FunctionTools("none", [])]) as toolbox:
        result = await run(toolbox, 'return await fetch("http://127.0.0.1:9/x");')
    name, message = result.result
    assert name == "NetworkAccessError"
    assert "no network access" in message


def test_egress_origin_with_path_rejected(tmp_path: Path) -> None:
    data = {"mcpServers": {}, "isobind": {"egress": {"allow": [{"origin": "http://a.test/x"}]}}}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, data), environ={})
    assert caught.value.key == "isobind.egress.allow[0].origin"


async def test_binary_response_bytes_exact(toolbox: Toolbox, echo_server: str) -> None:
    result = await run(
        toolbox,
        f"""const response = await fetch("{echo_server}/binary");
        const bytes = new Uint8Array(await response.arrayBuffer());
        const again = await response.bytes();
        return {{first: Array.from(bytes.slice(0, 256)), tail: Array.from(bytes.slice(256)),
                 same: again.length === bytes.length}};""",
    )
    outcome, value = result.result
    assert outcome == "ok"
    assert value["first"] == list(range(256))
    assert bytes(value["tail"]) == b"Bearer [REDACTED]"
    assert value["same"] is True
    assert API_KEY not in json.dumps(result.to_dict())


async def test_binary_request_body_sent(toolbox: Toolbox, echo_server: str) -> None:
    result = await run(
        toolbox,
        f"""const sent = new Uint8Array([0, 1, 200, 255, 128]);
        const viaView = await fetch("{echo_server}/echo-bytes", {{method: "POST", body: sent}});
        const viaBuffer = await fetch("{echo_server}/echo-bytes",
          {{method: "POST", body: sent.buffer}});
        return [Array.from(await viaView.bytes()), Array.from(await viaBuffer.bytes())];""",
    )
    outcome, value = result.result
    assert outcome == "ok"
    assert value == [[0, 1, 200, 255, 128], [0, 1, 200, 255, 128]]


async def test_text_response_as_bytes(toolbox: Toolbox, echo_server: str) -> None:
    result = await run(
        toolbox,
        f"""const response = await fetch("{echo_server}/echo-bytes",
          {{method: "POST", body: "héllo €"}});
        return Array.from(await response.bytes());""",
    )
    outcome, value = result.result
    assert outcome == "ok"
    assert bytes(value) == "héllo €".encode()


async def test_object_body_rejected(toolbox: Toolbox, echo_server: str) -> None:
    result = await run(
        toolbox, f'return await fetch("{echo_server}/x", {{method: "POST", body: {{a: 1}}}});'
    )
    outcome, message = result.result
    assert outcome == "TypeError"
    assert "use JSON.stringify" in message


@pytest.mark.parametrize(
    "headers",
    [
        '{"X-A": "one\\r\\nX-Injected: two"}',
        '{"Bad Name": "x"}',
        '{"X-A": "nul\\u0000"}',
        '{"X-A": "\\u00e9\\u0100"}',
    ],
    ids=["crlf value", "space in name", "nul value", "beyond latin-1"],
)
async def test_invalid_header_rejected(toolbox: Toolbox, echo_server: str, headers: str) -> None:
    before = len(EchoHandler.requests)
    result = await run(toolbox, f'return await fetch("{echo_server}/x", {{headers: {headers}}});')
    outcome, message = result.result
    assert outcome == "TypeError"
    assert "is invalid" in message
    assert len(EchoHandler.requests) == before


async def test_host_rejects_invalid_header(toolbox: Toolbox, echo_server: str) -> None:
    # The sandbox's fetch rejects these first; the host checks again, as a request
    # crosses the boundary.
    gateway = toolbox._egress
    assert gateway is not None
    before = len(EchoHandler.requests)
    reply = await gateway.fetch(
        {"url": f"{echo_server}/x", "method": "GET", "headers": {"X-A": "a\r\nX-B: b"}}
    )
    assert not reply.ok
    assert reply.error_name == "ToolInputError"
    assert "is invalid" in reply.error_message
    reply = await gateway.fetch(
        {"url": f"{echo_server}/x", "method": "GET", "headers": {"X-A": "\u0100"}}
    )
    assert reply.error_name == "ToolInputError"
    reply = await gateway.fetch({"url": f"{echo_server}/x", "method": "POST", "bodyBase64": "!!"})
    assert reply.error_name == "ToolInputError"
    assert "not valid base64" in reply.error_message
    assert len(EchoHandler.requests) == before
