"""Serve the example forecast server over streamable HTTP on 127.0.0.1.

Prints `listening on URL` to stdout once the socket is bound; port 0 picks a
free port. The benchmark and the tests use it as an HTTP upstream server.

    python examples/servers/forecast_http.py [--port N]
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import sys
from pathlib import Path

import anyio
import uvicorn

FORECAST = Path(__file__).resolve().parent / "forecast.py"


def load_forecast_server() -> object:
    spec = importlib.util.spec_from_file_location("forecast_example", FORECAST)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # pydantic resolves the tools' postponed annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.server


async def serve(port: int) -> None:
    server = load_forecast_server()
    app = server.streamable_http_app(host="127.0.0.1")  # type: ignore[attr-defined]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    # Listen before announcing the URL, so that a client connecting at once
    # is queued rather than refused while uvicorn starts.
    sock.listen(128)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    arguments = parser.parse_args()
    try:
        anyio.run(serve, arguments.port)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
