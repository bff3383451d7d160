"""An MCP server that leaks its credential in every way it can, for the redaction tests.

It reads LEAKY_TOKEN from its environment and sends it back in clear and
encoded forms: in results, in structured content, in tool errors, on stderr
and in MCP log notifications.
"""

from __future__ import annotations

import base64
import os
import sys
import urllib.parse

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("leaky")


def _token() -> str:
    return os.environ["LEAKY_TOKEN"]


@server.tool(name="echo-token")
def echo_token() -> str:
    """Return the token in clear text."""
    return f"the token is {_token()}"


@server.tool(name="echo-encoded")
def echo_encoded() -> dict[str, str]:
    """Return the token base64-, URL- and hex-encoded, inside a larger base64 blob too."""
    token = _token().encode()
    return {
        "base64": base64.b64encode(token).decode(),
        "urlsafe": base64.urlsafe_b64encode(token).decode().rstrip("="),
        "embedded": base64.b64encode(b"xy:" + token + b":z").decode(),
        "url": urllib.parse.quote(f"token={_token()}&x=1", safe=""),
        "hex": token.hex(),
    }


@server.tool(name="fail-with-token")
def fail_with_token() -> str:
    """Fail with an error message that contains the token in clear and base64."""
    encoded = base64.b64encode(_token().encode()).decode()
    raise ToolError(f"upstream rejected key {_token()} (sent as {encoded})")


@server.tool(name="log-token")
async def log_token(ctx: Context) -> str:
    """Write the token to stderr and to an MCP log notification."""
    print(f"debug: using token {_token()}", file=sys.stderr, flush=True)
    await ctx.info(f"authenticating with {_token()}")
    return "logged"


def _encodings() -> dict[str, str]:
    token = _token().encode()
    return {
        "clear": _token(),
        "base64": base64.b64encode(token).decode(),
        "url": urllib.parse.quote(_token(), safe=""),
        "hex": token.hex(),
    }


@server.tool(name="log-every-form")
async def log_every_form(ctx: Context) -> str:
    """Write the token in every encoding to stderr and to log notifications, whole and split."""
    for name, form in _encodings().items():
        middle = len(form) // 2
        print(f"{name}: {form}", file=sys.stderr, flush=True)
        print(f"{name} split: {form[:middle]}", file=sys.stderr, flush=True)
        print(f"{form[middle:]} (end of {name})", file=sys.stderr, flush=True)
        await ctx.info(f"{name}: {form}")
        await ctx.info(f"{name} split: {form[:middle]}")
        await ctx.info(f"{form[middle:]} (end of {name})")
    print("stderr done", file=sys.stderr, flush=True)
    await ctx.info("log done")
    return "logged"


@server.tool(name="fail-every-form")
def fail_every_form() -> str:
    """Fail with the token in every encoding in the error message."""
    raise ToolError(" ".join(f"{name}={form}" for name, form in _encodings().items()))


@server.tool(name="log-shapes")
def log_shapes() -> str:
    """Write credentials that no config names to stderr: key prefixes, a bearer, a private key."""
    lines = [
        "github ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "aws AKIAIOSFODNN7EXAMPLE",
        "slack xoxb-1234567890-abcdefghij",
        "openai sk-proj-abcdefghijklmnopqrstuvwx",
        "header Authorization: Bearer abc.def-ghi_jkl~mno",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAuniquekeybodyline1",
        "uniquekeybodyline2xyz",
        "-----END RSA PRIVATE KEY-----",
        "shapes done",
    ]
    for line in lines:
        print(line, file=sys.stderr, flush=True)
    return "logged"


@server.tool(name="echo")
def echo(value: str) -> str:
    """Return `value` unchanged."""
    return value


if __name__ == "__main__":
    server.run()
