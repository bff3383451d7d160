"""A streamable-HTTP MCP server that requires OAuth bearer tokens, and their token endpoint.

Both run in one uvicorn server on 127.0.0.1, started in a thread by the tests:
``POST /token`` issues tokens for the client credentials grant (HTTP Basic client
authentication), and ``/mcp`` serves only requests with a valid bearer token.
Each token is accepted for `uses_per_token` requests and then answered with 401,
so that clients must renew tokens while a session is open.
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

CLIENT_ID = "isobind-test-client"


@dataclass
class TokenState:
    client_secret: str
    uses_per_token: int
    issued: list[str] = field(default_factory=list)
    uses: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    last_authorization: str = ""
    bad_client_requests: int = 0


def build_app(state: TokenState) -> Any:
    server = MCPServer("protected")

    @server.tool(name="whoami", annotations={"readOnlyHint": True})
    def whoami() -> dict[str, str]:
        """Return the Authorization header of the request, the way a careless server might."""
        return {"authorization": state.last_authorization, "client": CLIENT_ID}

    @server.tool(name="add")
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    mcp_app = server.streamable_http_app(stateless_http=True, json_response=True)

    async def token_endpoint(request: Request) -> Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{state.client_secret}".encode()).decode()
        form = await request.form()
        if request.headers.get("authorization") != f"Basic {expected}":
            state.bad_client_requests += 1
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        token = f"at-{len(state.issued)}-{secrets.token_hex(16)}"
        state.issued.append(token)
        state.uses[token] = 0
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 60})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await mcp_app(scope, receive, send)
            return
        request = Request(scope, receive)
        if scope["path"] == "/token":
            response = await token_endpoint(request)
            await response(scope, receive, send)
            return
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        if not header.startswith("Bearer ") or token not in state.uses:
            state.rejected += 1
            await JSONResponse({"error": "invalid_token"}, status_code=401)(scope, receive, send)
            return
        if state.uses[token] >= state.uses_per_token:
            state.rejected += 1
            await JSONResponse({"error": "token_expired"}, status_code=401)(scope, receive, send)
            return
        state.uses[token] += 1
        state.last_authorization = header
        await mcp_app(scope, receive, send)

    return app


class ProtectedServer:
    """Runs `build_app` on a loopback port in a background thread."""

    def __init__(self, client_secret: str, uses_per_token: int = 4) -> None:
        self.state = TokenState(client_secret=client_secret, uses_per_token=uses_per_token)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        # Listening before uvicorn starts lets clients connect at once: the kernel
        # queues them until uvicorn has finished its start-up and accepts.
        self._socket.listen(64)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(build_app(self.state), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
