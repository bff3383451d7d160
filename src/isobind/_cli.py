"""The `isobind` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO, cast

import typer
from rich.console import Console

from . import __version__
from ._agent import Agent, AgentEvents, AgentLimits, AgentResult
from ._approval import TerminalApprover
from ._audit import ChainError, read_records, verify_log
from ._audit_view import calls_timeline, executions_table
from ._codemode import MAX_FULL_API_CHARS, ApiMode
from ._config import Config, load_config
from ._display import TerminalEvents, print_answer
from ._errors import ApiError, ConfigError, ModelError, SandboxError, UpstreamError
from ._lockdown import LockdownReport
from ._log_scrub import hide_pydantic_inputs, scrub_credential_shapes
from ._pool import SandboxSettings, WorkerPool
from ._providers import AnthropicProvider, OpenAIProvider, Provider
from ._redact import Redactor, Scrubber
from ._result import ExecutionResult
from ._search import DETAILS
from ._server import ServeOptions, serve
from ._terminal import printable
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


def _setup_logging(verbose: bool, redactor: Redactor | None = None) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if redactor is not None:
        _log_scrubbers.append(redactor)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter(tracebacks=verbose))


# Scrubbers of the log filter: the secrets known at start, each config's secrets, and
# each toolbox's live redactor, which also learns OAuth tokens as they arrive.
_log_scrubbers: list[Scrubber] = []


def _new_toolbox(config: Config, **options: Any) -> Toolbox:
    """Create a toolbox whose redactor also scrubs the log, before it connects."""
    toolbox = Toolbox(config, **options)
    _log_scrubbers.append(toolbox.redactor)
    return toolbox


def _load(config: Path) -> Config:
    """Load the config file, and scrub its secrets from the log from now on."""
    loaded = load_config(config)
    _log_scrubbers.append(Redactor(loaded.secrets))
    return loaded


class _RedactingFilter(logging.Filter):
    """Scrubs secrets from log records, because SDK debug logs may print requests.

    A record's traceback is scrubbed too, or, without `tracebacks`, cut to the
    exception's own message: the SDKs log expected failures (a server printing
    to stdout, for one) with `logger.exception`.
    """

    def __init__(self, *, tracebacks: bool):
        super().__init__()
        self.tracebacks = tracebacks

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            if self.tracebacks:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            else:
                error = record.exc_info[1]
                summary = str(error).split("\n")
                # A pydantic error's first line names the model; the second names the failure.
                detail = summary[1].strip() if len(summary) > 1 else summary[0]
                message += f": {type(error).__name__}: {detail[:300]}"
        message = hide_pydantic_inputs(message)
        for scrubber in _log_scrubbers:
            message = scrubber.scrub_text(message)
        record.msg = scrub_credential_shapes(printable(message))
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def _fail_setup(error: Exception) -> typer.Exit:
    _err.print(f"error: {error}", markup=False)
    return typer.Exit(EXIT_USAGE)


class SandboxMode(StrEnum):
    WORKERS = "workers"
    INPROCESS = "inprocess"


SandboxOption = Annotated[
    SandboxMode | None,
    typer.Option(
        "--sandbox",
        help=(
            "Where isolates run: 'workers' (locked-down worker processes, the default) "
            "or 'inprocess' (this process, for development only). Overrides isobind.sandbox.mode."
        ),
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help=(
            "Number of sandbox worker processes (default: one per CPU). "
            "Overrides isobind.sandbox.workers."
        ),
        min=1,
        max=1024,
    ),
]


def _sandbox_settings(
    config: Config, mode: SandboxMode | None, workers: int | None
) -> SandboxSettings | None:
    """Return the config's sandbox settings with the command line's options applied."""
    if mode is None and workers is None:
        return config.sandbox
    settings = config.sandbox if config.sandbox is not None else SandboxSettings()
    if mode is not None:
        settings = dataclasses.replace(settings, mode=mode.value)
    if workers is not None:
        settings = dataclasses.replace(settings, workers=workers)
    return settings


def _timeout_option(what: str) -> Any:
    """Return the `--timeout` option, whose help names `what` it limits."""
    return typer.Option(
        help=(
            f"Wall-clock limit for {what}, in seconds (at most one day); also the "
            "engine-time limit when longer than 10 s, unless the config sets cpuTime."
        ),
        min=0.001,
        max=86_400,
    )


def _memory_option(what: str) -> Any:
    """Return the `--memory-mb` option, whose help names `what` it limits."""
    return typer.Option(
        "--memory-mb",
        help=f"V8 heap limit for {what}, in MiB (1 to 65536); ArrayBuffers get as much again.",
        min=1,
        max=65_536,
    )


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
    timeout: Annotated[float | None, _timeout_option("the run")] = None,
    memory_mb: Annotated[int | None, _memory_option("the run")] = None,
    audit: Annotated[
        Path | None, typer.Option(help="Append an audit record (JSON Lines) to this file.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Reject every call of a tool not annotated read-only, and list those calls.",
        ),
    ] = False,
    approve: Annotated[
        bool,
        typer.Option(
            "--approve",
            help="Ask on the terminal before every call of a tool not annotated read-only.",
        ),
    ] = False,
    sandbox: SandboxOption = None,
    workers: WorkersOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Run FILE in a fresh V8 isolate against the tools of the configured servers.

    Calls that need approval (by a rule in the config, or every writing tool with
    --approve) are asked on stderr and answered with y or n on stdin, or on the
    terminal when the code itself comes from stdin.
    """
    _setup_logging(verbose)
    try:
        code = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as error:
        raise _fail_setup(
            OSError(f"cannot read {file}: {error.strerror or error}. Check the path")
        ) from error
    except UnicodeDecodeError as error:
        raise _fail_setup(
            ValueError(
                f"cannot read {file}: it is not UTF-8 text ({error.reason} at byte "
                f"{error.start}). Save it as UTF-8"
            )
        ) from error
    try:
        loaded = _load(config)
    except ConfigError as error:
        raise _fail_setup(error) from error

    limits = loaded.run_limits(timeout=timeout, memory_mb=memory_mb)
    filename = "stdin.ts" if str(file) == "-" else file.name

    answers = _open_answers(from_stdin=str(file) == "-")

    async def run() -> ExecutionResult:
        async with _new_toolbox(
            loaded,
            limits=limits,
            sandbox=_sandbox_settings(loaded, sandbox, workers),
            audit=audit,
            approve=None if answers is None else TerminalApprover(answers, sys.stderr),
            approve_writes=True if approve else None,
        ) as toolbox:
            return await toolbox.execute(code, filename=filename, dry_run=dry_run)

    try:
        result = asyncio.run(run())
    except (ConfigError, ApiError, UpstreamError) as error:
        raise _fail_setup(error) from error
    finally:
        if answers is not None and answers is not sys.stdin:
            answers.close()

    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print_human(result)
    raise typer.Exit(0 if result.ok else EXIT_CODE_FAILED)


def _open_answers(*, from_stdin: bool) -> TextIO | None:
    """Return where approval answers are read: stdin, or the terminal when stdin has code."""
    if not from_stdin:
        return sys.stdin
    try:
        return open("/dev/tty", encoding="utf-8")
    except OSError:
        # No controlling terminal: calls that need approval are rejected.
        return None


def _print_human(result: ExecutionResult) -> None:
    for entry in result.logs:
        console = _err if entry.level in ("warn", "error") else _out
        console.print(printable(entry.message), markup=False)
    if result.logs_dropped:
        _err.print(f"({result.logs_dropped} console messages dropped: output limit)")
    if result.dry_run:
        _err.print(f"dry run: {len(result.would_call)} calls were not made", markup=False)
        for call in result.would_call:
            shown = json.dumps(call.input, ensure_ascii=False)
            _err.print(f"  tools.{call.server}.{call.tool}({shown})", markup=False)
    if result.error is not None:
        error = result.error
        where = f" at line {error.line}, column {error.column}" if error.line else ""
        headline = printable(f"{error.name}{where}: {error.message}")
        _err.print(headline, markup=False, style="bold red")
        if error.stack:
            frames = [line for line in error.stack.splitlines() if line.lstrip().startswith("at ")]
            for frame in frames:
                _err.print(printable(frame), markup=False)
        return
    if result.result is not None:
        _out.print_json(data=result.result)


_DEFAULT_AGENT_LIMITS = AgentLimits()

DEFAULT_KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}

# Sent as the API key to a local server (given by --base-url) when the key's
# variable is unset: vLLM, llama.cpp and Ollama accept any key by default, but
# the OpenAI SDK requires one.
_LOCAL_PLACEHOLDER_KEY = "isobind-no-key"


@app.command("run")
def run_command(
    task: Annotated[str, typer.Argument(help="The task for the model, in plain words.")],
    config: ConfigOption,
    model: Annotated[str, typer.Option(help="Model name, such as gpt-4.1 or claude-sonnet-4-5.")],
    provider: Annotated[
        str | None,
        typer.Option(
            help="API to use: openai (any chat-completions server) or anthropic. "
            "Default: anthropic for models named claude-*, else openai."
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Base URL of the API, for a proxy, vLLM, llama.cpp or Ollama (whose "
            "OpenAI-compatible API is at port 11434, path /v1).",
        ),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="Environment variable that contains the API key. "
            "Default: OPENAI_API_KEY or ANTHROPIC_API_KEY.",
        ),
    ] = None,
    max_turns: Annotated[
        int, typer.Option("--max-turns", help="Model responses per session.", min=1)
    ] = _DEFAULT_AGENT_LIMITS.max_turns,
    max_tokens: Annotated[
        int,
        typer.Option(
            "--max-tokens",
            help="Input plus output tokens per session, as the provider counts them.",
            min=1,
        ),
    ] = _DEFAULT_AGENT_LIMITS.max_tokens,
    max_output_tokens: Annotated[
        int,
        typer.Option("--max-output-tokens", help="Output tokens per model response.", min=1),
    ] = _DEFAULT_AGENT_LIMITS.max_output_tokens,
    api: Annotated[
        str,
        typer.Option(
            help="How the prompt gives the API: full (every declaration), search (servers "
            "and the isobind.searchTools helpers) or auto "
            f"(search past {MAX_FULL_API_CHARS:,} characters of declaration)."
        ),
    ] = "auto",
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help=(
                "Print one JSON object: provider, model, status, answer, turns, usage, runs, "
                "conversation, sessionId, durationMs. Credentials are scrubbed from it, as in "
                "the audit log."
            ),
        ),
    ] = False,
    timeout: Annotated[float | None, _timeout_option("each code run")] = None,
    memory_mb: Annotated[int | None, _memory_option("each code run")] = None,
    audit: Annotated[
        Path | None,
        typer.Option(help="Append each code run and the session (JSON Lines) to this file."),
    ] = None,
    sandbox: SandboxOption = None,
    workers: WorkersOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Let a model do TASK by writing code against the tools of the configured servers."""
    provider_name = provider or ("anthropic" if model.startswith("claude") else "openai")
    if api not in ("full", "search", "auto"):
        _setup_logging(verbose)
        raise _fail_setup(ValueError(f"unknown --api {api!r}; use full, search or auto"))
    if provider_name not in DEFAULT_KEY_VARIABLES:
        _setup_logging(verbose)
        raise _fail_setup(
            ValueError(f"unknown provider {provider_name!r}; use openai or anthropic")
        )
    variable = api_key_env or DEFAULT_KEY_VARIABLES[provider_name]
    api_key = os.environ.get(variable, "")
    if not api_key and base_url is None:
        _setup_logging(verbose)
        raise _fail_setup(
            ValueError(f"{variable} is not set; export the {provider_name} API key in it")
        )
    secrets = [api_key] if api_key else []
    _setup_logging(verbose, Redactor(secrets))
    try:
        loaded = _load(config)
    except ConfigError as error:
        raise _fail_setup(error) from error

    limits = AgentLimits(
        max_turns=max_turns, max_tokens=max_tokens, max_output_tokens=max_output_tokens
    )
    model_provider = _build_provider(provider_name, model, api_key, base_url)
    events = AgentEvents() if as_json else TerminalEvents(_err)

    async def run() -> AgentResult:
        try:
            settings = _sandbox_settings(loaded, sandbox, workers)
            async with _run_toolbox(
                loaded, timeout, memory_mb, audit, secrets, settings
            ) as toolbox:
                agent = Agent(
                    toolbox, model_provider, limits=limits, events=events, api=cast(ApiMode, api)
                )
                result = await agent.run(task)
                if as_json:
                    data = {"provider": provider_name, "model": model, **result.to_dict()}
                    text = toolbox.redactor.scrub_text(json.dumps(data, ensure_ascii=False))
                    # The model's code and messages may hold a credential that no config
                    # names, such as one it guessed; the audit log scrubs those shapes too.
                    print(scrub_credential_shapes(text, json_text=True))
                return result
        finally:
            await model_provider.aclose()

    try:
        result = asyncio.run(run())
    except (ConfigError, ApiError, UpstreamError, ModelError) as error:
        raise _fail_setup(RuntimeError(Redactor(secrets).scrub_text(str(error)))) from error

    if not as_json:
        print_answer(_out, _err, result)
    raise typer.Exit(0 if result.status == "answered" else EXIT_CODE_FAILED)


def _build_provider(name: str, model: str, api_key: str, base_url: str | None) -> Provider:
    key = api_key or _LOCAL_PLACEHOLDER_KEY
    if name == "anthropic":
        return AnthropicProvider(model, api_key=key, base_url=base_url)
    return OpenAIProvider(model, api_key=key, base_url=base_url)


def _run_toolbox(
    config: Config,
    timeout: float | None,
    memory_mb: int | None,
    audit: Path | None,
    secrets: list[str],
    sandbox: SandboxSettings | None,
) -> Toolbox:
    limits = config.run_limits(timeout=timeout, memory_mb=memory_mb)
    return _new_toolbox(config, limits=limits, sandbox=sandbox, audit=audit, secrets=secrets)


@app.command("types")
def types_command(
    config: ConfigOption,
    verbose: VerboseOption = False,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact",
            help="Cut each description to its first sentence, as in a model's prompt.",
        ),
    ] = False,
) -> None:
    """Print the TypeScript API of the callable tools of the configured servers."""
    _setup_logging(verbose)
    try:
        loaded = _load(config)
    except ConfigError as error:
        raise _fail_setup(error) from error

    async def render() -> str:
        async with _new_toolbox(loaded) as toolbox:
            return toolbox.compact_declaration if compact else toolbox.declaration

    try:
        declaration = asyncio.run(render())
    except (ConfigError, ApiError, UpstreamError) as error:
        raise _fail_setup(error) from error
    print(declaration)


audit_app = typer.Typer(
    help="Verify and read audit logs.", no_args_is_help=True, add_completion=False
)
app.add_typer(audit_app, name="audit")

AuditFile = Annotated[Path, typer.Argument(help="Audit log (JSON Lines) written by isobind.")]


@audit_app.command("verify")
def audit_verify(file: AuditFile) -> None:
    """Check the hash chain of FILE; exit 1 naming the first bad line."""
    try:
        summary = verify_log(file)
    except OSError as error:
        raise _fail_setup(OSError(f"cannot read {file}: {error.strerror or error}")) from error
    except ChainError as error:
        _err.print(f"{file}: {error}", markup=False)
        raise typer.Exit(EXIT_CODE_FAILED) from error
    print(f"{file}: {summary.records} records, chain intact, head {summary.head}")


@audit_app.command("show")
def audit_show(
    file: AuditFile,
    execution: Annotated[
        str | None,
        typer.Option(
            "--execution", "-e", help="Show the calls of this execution id (or unique prefix)."
        ),
    ] = None,
) -> None:
    """Print FILE as a table of executions, or one execution as a timeline of its calls.

    The hash chain is checked first; a broken chain is reported on stderr, and the
    records are still shown.
    """
    try:
        records = list(read_records(file))
    except OSError as error:
        raise _fail_setup(OSError(f"cannot read {file}: {error.strerror or error}")) from error
    except UnicodeDecodeError as error:
        raise _fail_setup(
            ValueError(
                f"cannot read {file}: byte {error.start} is not UTF-8, so this is not an "
                "audit log written by isobind"
            )
        ) from error
    try:
        verify_log(file)
    except ChainError as error:
        _err.print(
            printable(f"warning: {file}: {error}. The records may have been altered."),
            markup=False,
        )
    if execution is None:
        _out.print(executions_table(records))
        return

    ids = {str(r.get("executionId")) for r in records if r.get("type") == "execution"}
    matches = sorted(found for found in ids if found.startswith(execution))
    if len(matches) != 1:
        problem = "no execution" if not matches else f"{len(matches)} executions"
        raise _fail_setup(ValueError(f"{problem} in {file} match the id {execution!r}"))
    _out.print(calls_timeline(records, matches[0]))


@app.command("doctor")
def doctor_command(verbose: VerboseOption = False) -> None:
    """Start one sandbox worker and print the lockdown level this machine allows.

    Exits with 1 when any part of the lockdown is missing.
    """
    _setup_logging(verbose)

    async def probe() -> LockdownReport | None:
        pool = WorkerPool(SandboxSettings(workers=1))
        try:
            await pool.start()
            return pool.lockdown
        finally:
            await pool.aclose()

    try:
        report = asyncio.run(probe())
    except SandboxError as error:
        _err.print(f"error: the sandbox worker did not start: {error}", markup=False)
        raise typer.Exit(EXIT_CODE_FAILED) from error
    assert report is not None
    checks = [
        ("network namespace", report.network_namespace),
        ("seccomp filter (no sockets, files, processes)", report.seccomp),
        ("RLIMIT_DATA (memory outside the V8 heap)", report.data_limit_bytes is not None),
        ("RLIMIT_NOFILE", report.open_files_limit is not None),
        ("core dumps off", not report.core_dumps),
    ]
    for label, ok in checks:
        _out.print(f"{'ok     ' if ok else 'MISSING'} {label}", markup=False)
    _out.print(f"worker environment: {', '.join(report.environment_keys) or '(empty)'}")
    for missing in report.missing:
        _err.print(f"missing: {missing}", markup=False)
    raise typer.Exit(0 if report.complete else EXIT_CODE_FAILED)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `isobind` console script."""
    return app(args=argv)


class Transport(StrEnum):
    STDIO = "stdio"
    HTTP = "http"


_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="Words to look for, such as 'current time'.")],
    config: ConfigOption,
    detail: Annotated[
        str,
        typer.Option(help="What to print per tool: names, summaries or declarations."),
    ] = "summaries",
    limit: Annotated[
        int, typer.Option(help="How many tools to print, best first.", min=1, max=1000)
    ] = 10,
    verbose: VerboseOption = False,
) -> None:
    """Print the callable tools that best match QUERY, as a model would see them."""
    _setup_logging(verbose)
    if detail not in DETAILS:
        raise _fail_setup(ValueError(f"--detail must be one of {', '.join(DETAILS)}"))
    try:
        loaded = _load(config)
    except ConfigError as error:
        raise _fail_setup(error) from error

    async def search() -> str:
        async with _new_toolbox(loaded) as toolbox:
            return toolbox.search_tools(query, detail=detail, limit=limit)

    try:
        text = asyncio.run(search())
    except (ConfigError, ApiError, UpstreamError, ValueError) as error:
        raise _fail_setup(error) from error
    print(text, end="")


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
    timeout: Annotated[float | None, _timeout_option("each code run")] = None,
    memory_mb: Annotated[int | None, _memory_option("each code run")] = None,
    audit: Annotated[
        Path | None, typer.Option(help="Append an audit record (JSON Lines) to this file.")
    ] = None,
    sandbox: SandboxOption = None,
    workers: WorkersOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Serve the configured servers' tools to MCP clients as one sandboxed code tool."""
    _setup_logging(verbose)
    try:
        loaded = _load(config)
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

    limits = loaded.run_limits(timeout=timeout, memory_mb=memory_mb)

    async def run() -> None:
        settings = _sandbox_settings(loaded, sandbox, workers)
        async with _new_toolbox(loaded, sandbox=settings, audit=audit, limits=limits) as toolbox:
            await serve(toolbox, options, on_listening=announce)

    try:
        asyncio.run(run())
    except (ConfigError, ApiError, UpstreamError) as error:
        raise _fail_setup(error) from error
    except OSError as error:
        raise _fail_setup(OSError(f"cannot listen on {host}:{port}: {error}")) from error
    except KeyboardInterrupt:
        pass
