"""The `isobind` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from . import __version__
from ._config import load_config
from ._errors import ApiError, ConfigError, UpstreamError
from ._result import ExecutionResult
from ._sandbox import Limits
from ._search import DETAILS
from ._server import ServeOptions, serve
from ._toolbox import Toolbox

__all__ = ["app", "main"]

EXIT_CODE_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="isobind",
    help="Run TypeScript against MCP tools in a throwaway V8 isolate, with keys kept on the host.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        help="Config file in the mcpServers JSON format (Claude Desktop / Claude Code).",
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log connections and calls to stderr.")
]

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        print(f"isobind {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """isobind: Code Mode for MCP tools, sandboxed in V8."""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail_setup(error: Exception) -> typer.Exit:
    _err.print(f"error: {error}", markup=False)
    return typer.Exit(EXIT_USAGE)


@app.command("exec")
def exec_command(
    file: Annotated[
        Path, typer.Argument(help="TypeScript or JavaScript file to run; - reads stdin.")
    ],
    config: ConfigOption,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: ok, result, logs, calls, error."),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(help="Wall-clock limit for the run, in seconds.", min=0.001),
    ] = None,
    memory_mb: Annotated[
        int | None,
        typer.Option("--memory-mb", help="V8 heap limit for the run, in MiB.", min=1),
    ] = None,
    audit: Annotated[
        Path | None, typer.Option(help="Append an audit record (JSON Lines) to this file.")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Run FILE in a fresh V8 isolate against the tools of the configured servers."""
    _setup_logging(verbose)
    try:
        code = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as error:
        raise _fail_setup(
            OSError(f"cannot read {file}: {error.strerror or error}; check the path")
        ) from error
    try:
        loaded = load_config(config)
    except ConfigError as error:
        raise _fail_setup(error) from error

    limits = Limits(
        timeout=timeout if timeout is not None else loaded.timeout,
        memory_mb=memory_mb if memory_mb is not None else loaded.memory_mb,
    )
    filename = "stdin.ts" if str(file) == "-" else file.name

    async def run() -> ExecutionResult:
        async with Toolbox(loaded, limits=limits, audit=audit) as toolbox:
            return await toolbox.execute(code, filename=filename)

    try:
        result = asyncio.run(run())
    except (ConfigError, ApiError, UpstreamError) as error:
        raise _fail_setup(error) from error

    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print_human(result)
    raise typer.Exit(0 if result.ok else EXIT_CODE_FAILED)


def _print_human(result: ExecutionResult) -> None:
    for entry in result.logs:
        console = _err if entry.level in ("warn", "error") else _out
        console.print(entry.message, markup=False)
    if result.logs_dropped:
        _err.print(f"({result.logs_dropped} console messages dropped: output limit)")
    if result.error is not None:
        error = result.error
        where = f" at line {error.line}, column {error.column}" if error.line else ""
        _err.print(f"{error.name}{where}: {error.message}", markup=False, style="bold red")
        if error.stack:
            frames = [line for line in error.stack.splitlines() if line.lstrip().startswith("at ")]
            for frame in frames:
                _err.print(frame, markup=False)
        return
    if result.result is not None:
        _out.print_json(data=result.result)


@app.command("types")
def types_command(config: ConfigOption, verbose: VerboseOption = False) -> None:
    """Print the TypeScript API of the callable tools of the configured servers."""
    _setup_logging(verbose)
    try:
        loaded = load_config(config)
    except ConfigError as error:
        raise _fail_setup(error) from error

    async def render() -> str:
        async with Toolbox(loaded) as toolbox:
            return toolbox.declaration

    try:
        declaration = asyncio.run(render())
    except (ConfigError, ApiError, UpstreamError) as error:
        raise _fail_setup(error) from error
    print(declaration)


@app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="Words to look for, such as 'current time'.")],
    config: ConfigOption,
    detail: Annotated[
        str,
        typer.Option(help="What to print per tool: names, summaries or declarations."),
    ] = "summaries",
    limit: Annotated[int, typer.Option(help="How many tools to print, best first.")] = 10,
    verbose: VerboseOption = False,
) -> None:
    """Print the callable tools that best match QUERY, as a model would see them."""
    _setup_logging(verbose)
    if detail not in DETAILS:
        raise _fail_setup(ValueError(f"--detail must be one of {', '.join(DETAILS)}"))
    try:
        loaded = load_config(config)
    except ConfigError as error:
        raise _fail_setup(error) from error

    async def search() -> str:
        async with Toolbox(loaded) as toolbox:
            return toolbox.search_tools(query, detail=detail, limit=limit)

    try:
        text = asyncio.run(search())
    except (ConfigError, ApiError, UpstreamError, ValueError) as error:
        raise _fail_setup(error) from error
    print(text, end="")


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `isobind` console script."""
    return app(args=argv)


class Transport(StrEnum):
    STDIO = "stdio"
    HTTP = "http"


_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@app.command("serve")
def serve_command(
    config: ConfigOption,
    transport: Annotated[
        Transport, typer.Option(help="stdio, or streamable HTTP at http://HOST:PORT/mcp.")
    ] = Transport.STDIO,
    host: Annotated[str, typer.Option(help="Address to listen on (HTTP only).")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="TCP port to listen on (HTTP only); 0 picks a free port.", min=0)
    ] = 8000,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            help="Environment variable holding the bearer token HTTP clients must send.",
        ),
    ] = None,
    max_runs: Annotated[
        int,
        typer.Option(
            "--max-runs", help="Runs executing at once over all clients; more wait.", min=1
        ),
    ] = 32,
    audit: Annotated[
        Path | None, typer.Option(help="Append an audit record (JSON Lines) to this file.")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Serve the configured servers' tools to MCP clients as one sandboxed code tool."""
    _setup_logging(verbose)
    try:
        loaded = load_config(config)
    except ConfigError as error:
        raise _fail_setup(error) from error

    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise _fail_setup(
                ValueError(f"--token-env {token_env}: the variable is not set or is empty")
            )
    if transport is Transport.HTTP and token is None and host not in _LOOPBACK_HOSTS:
        logging.getLogger(__name__).warning(
            "serving on %s without --token-env: any host that can reach it can run code", host
        )
    options = ServeOptions(
        transport=transport.value, host=host, port=port, token=token, max_runs=max_runs
    )

    def announce(url: str) -> None:
        print(f"isobind: serving MCP at {url}", file=sys.stderr, flush=True)

    async def run() -> None:
        async with Toolbox(loaded, audit=audit) as toolbox:
            await serve(toolbox, options, on_listening=announce)

    try:
        asyncio.run(run())
    except (ConfigError, ApiError, UpstreamError) as error:
        raise _fail_setup(error) from error
    except OSError as error:
        raise _fail_setup(OSError(f"cannot listen on {host}:{port}: {error}")) from error
    except KeyboardInterrupt:
        pass
