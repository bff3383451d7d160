"""Load and validate the JSON config file that names the MCP servers.

The file uses the ``mcpServers`` format of Claude Desktop and Claude Code, so one file
can serve those clients and isobind. isobind's own settings sit under a top-level
``isobind`` key, and every other top-level key is ignored::

    {
      "mcpServers": {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]},
        "remote": {"type": "http", "url": "https://example.com/mcp",
                   "headers": {"Authorization": "Bearer ${TOKEN}"}}
      },
      "isobind": {"timeout": 30, "memoryMb": 128, "audit": "audit.jsonl",
                  "sandbox": {"mode": "workers", "workers": 2},
                  "servers": {"time": {"allow": ["get_*"], "readOnly": true}}}
    }

``${VAR}`` and ``${VAR:-default}`` in a server's command, args, env values, cwd, url
and header values are replaced from the host environment, and ``$$`` is a literal
``$``. Every substituted value is stored in `Config.secrets` so that callers can
redact it. Error messages never quote a substituted value.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from isobind._egress import EgressOrigin, EgressPolicy, normalize_origin
from isobind._errors import ConfigError
from isobind._oauth import ClientCredentials
from isobind._policy import ArgumentRule, RateLimit, ServerPolicy, ToolRule
from isobind._pool import SandboxSettings
from isobind._sandbox import Limits

logger = logging.getLogger(__name__)

__all__ = [
    "Config",
    "HttpServer",
    "StdioServer",
    "load_config",
    "parse_config",
]

_DEFAULT_TIMEOUT = 30.0
_DEFAULT_MEMORY_MB = 128
# `Limits` fields that the `isobind` key sets besides `timeout` and `memoryMb`.
_LIMIT_KEYS = ("cpu_time", "max_log_bytes", "max_result_bytes", "max_calls", "max_concurrent_calls")

# Values of a server's `type` key, as Claude Desktop and Claude Code write them.
_SERVER_TYPES: Mapping[str, Literal["stdio", "http"]] = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamableHttp": "http",
}


def _empty_mapping() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StdioServer:
    """An MCP server that runs as a subprocess and talks over stdin and stdout.

    `cwd` is `None` to inherit the working directory. Every field except
    `name` may contain substituted secrets, so `repr` shows only the name.
    """

    name: str
    command: str = field(repr=False)
    args: tuple[str, ...] = field(default=(), repr=False)
    env: Mapping[str, str] = field(default_factory=_empty_mapping, repr=False)
    cwd: Path | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class HttpServer:
    """An MCP server reached over streamable HTTP.

    `url` and `headers` may contain substituted secrets, so `repr` shows only the name.
    """

    name: str
    url: str = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=_empty_mapping, repr=False)
    oauth: ClientCredentials | None = field(default=None, repr=False)
    """OAuth client credentials, from ``isobind.servers.<name>.oauth``."""


@dataclass(frozen=True, slots=True)
class Config:
    """A validated config file.

    `servers` keeps the file's order and leaves out disabled servers. `policies` has
    an entry for every server in `servers`. `secrets` contains every non-empty value
    that an environment variable substitution produced. `timeout` is in seconds.
    `path`, `audit` and each server's `cwd` are absolute paths.
    """

    path: Path | None
    servers: Mapping[str, StdioServer | HttpServer]
    policies: Mapping[str, ServerPolicy]
    secrets: frozenset[str] = field(repr=False)
    timeout: float
    memory_mb: int
    audit: Path | None
    approve_writes: bool = False
    """Whether every tool not annotated read-only needs approval before it runs."""
    rate_limit_store: Path | None = None
    """The SQLite file in which processes that share it count rate-limit windows."""
    egress: EgressPolicy | None = field(default=None, repr=False)
    """The origins that `fetch` in the sandbox may reach; `None` blocks `fetch`."""
    sandbox: SandboxSettings | None = None
    """The settings of ``isobind.sandbox``, or `None` when the file has none."""
    limit_settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """The other `Limits` fields the file sets (``cpuTime``, ``maxCalls``...), by field name."""

    def run_limits(self, *, timeout: float | None = None, memory_mb: int | None = None) -> Limits:
        """Return the limits of a run, with `timeout` and `memory_mb` overriding the file's.

        Unless the file sets ``cpuTime``, the engine-time budget (10 s by default) is
        raised to the timeout, so that a longer timeout also allows longer computation.
        """
        timeout = self.timeout if timeout is None else timeout
        memory_mb = self.memory_mb if memory_mb is None else memory_mb
        settings = dict(self.limit_settings)
        settings.setdefault("cpu_time", max(Limits().cpu_time, timeout))
        return Limits(timeout=timeout, memory_mb=memory_mb, **settings)


# The pydantic models below check only the JSON types. A key set to null counts as
# omitted. Rules that span keys, and substitution, run after validation.


class _ServerEntry(BaseModel):
    # Other clients' keys (autoApprove, timeout, ...) are kept aside and not used;
    # one that looks like a misspelt key of ours gets a warning.
    model_config = ConfigDict(strict=True, extra="allow")

    type: str | None = None
    command: str | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    disabled: bool | None = None


class _RateLimitEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    calls: Annotated[int, Field(ge=0)]
    seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _ArgumentEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    within: list[str] | None = None
    one_of: list[Any] | None = Field(default=None, alias="oneOf")
    minimum: Annotated[float, Field(allow_inf_nan=False)] | None = None
    maximum: Annotated[float, Field(allow_inf_nan=False)] | None = None
    pattern: str | None = None


class _ToolEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    arguments: dict[str, _ArgumentEntry] | None = None
    approve: bool | None = None
    max_calls_per_run: Annotated[int, Field(ge=0)] | None = Field(
        default=None, alias="maxCallsPerRun"
    )
    rate_limit: _RateLimitEntry | None = Field(default=None, alias="rateLimit")


class _OAuthEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    token_url: str = Field(alias="tokenUrl")
    client_id: str = Field(alias="clientId")
    client_secret: str = Field(alias="clientSecret")
    scope: str | None = None
    audience: str | None = None


class _PolicyEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    oauth: _OAuthEntry | None = None

    allow: list[str] | None = None
    deny: list[str] | None = None
    read_only: bool | None = Field(default=None, alias="readOnly")
    deny_destructive: bool | None = Field(default=None, alias="denyDestructive")
    approve: list[str] | None = None
    max_calls_per_run: Annotated[int, Field(ge=0)] | None = Field(
        default=None, alias="maxCallsPerRun"
    )
    rate_limit: _RateLimitEntry | None = Field(default=None, alias="rateLimit")
    tools: dict[str, _ToolEntry] | None = None


class _EgressOriginEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    origin: str
    methods: list[str] | None = None
    headers: dict[str, str] | None = None


class _EgressEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    allow: list[_EgressOriginEntry]
    max_response_bytes: Annotated[int, Field(gt=0)] | None = Field(
        default=None, alias="maxResponseBytes"
    )
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None


class _SandboxEntry(BaseModel):
    # The bounds repeat those of `SandboxSettings`, so that errors name the key.
    model_config = ConfigDict(strict=True, extra="forbid")

    mode: Literal["workers", "inprocess"] | None = None
    workers: Annotated[int, Field(ge=1)] | None = None
    start_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        default=None, alias="startTimeout"
    )
    kill_grace: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        default=None, alias="killGrace"
    )
    worker_memory_mb: Annotated[int, Field(ge=64)] | None = Field(
        default=None, alias="workerMemoryMb"
    )
    max_open_files: Annotated[int, Field(ge=16)] | None = Field(default=None, alias="maxOpenFiles")
    network_namespace: bool | None = Field(default=None, alias="networkNamespace")
    pin_cpus: bool | None = Field(default=None, alias="pinCpus")
    stack_kb: Annotated[int, Field(ge=64, le=2048)] | None = Field(default=None, alias="stackKb")


class _IsobindSection(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    memory_mb: Annotated[int, Field(gt=0)] | None = Field(default=None, alias="memoryMb")
    cpu_time: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        default=None, alias="cpuTime"
    )
    max_log_bytes: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="maxLogBytes")
    max_result_bytes: Annotated[int, Field(gt=0)] | None = Field(
        default=None, alias="maxResultBytes"
    )
    max_calls: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="maxCalls")
    max_concurrent_calls: Annotated[int, Field(gt=0)] | None = Field(
        default=None, alias="maxConcurrentCalls"
    )
    audit: str | None = None
    rate_limit_store: str | None = Field(default=None, alias="rateLimitStore")
    default_policy: Literal["allow", "deny"] | None = Field(default=None, alias="defaultPolicy")
    approve_writes: bool | None = Field(default=None, alias="approveWrites")
    egress: _EgressEntry | None = None
    sandbox: _SandboxEntry | None = None
    servers: dict[str, _PolicyEntry] | None = None


class _ConfigFile(BaseModel):
    # Other top-level keys belong to other clients.
    model_config = ConfigDict(strict=True, extra="ignore")

    mcp_servers: dict[str, _ServerEntry] = Field(alias="mcpServers")
    isobind: _IsobindSection | None = None


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read the config file at `path` and validate it with `parse_config`.

    The file must be UTF-8 JSON, and a leading byte order mark is skipped.

    Raises:
        ConfigError: when the file cannot be read, is not valid JSON or breaks a rule
            of `parse_config`.
    """
    file = Path(path)
    text = _read_text(file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        message = (
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}. "
            "Fix the syntax at that position"
        )
        raise ConfigError(message, path=str(file)) from exc

    return parse_config(data, path=file, environ=environ)


def parse_config(
    data: object, *, path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate decoded JSON `data` and substitute environment variables into it.

    `path` is the file the data came from. Error messages name it, and a relative
    `cwd` or `audit` path is resolved against its directory. Without `path`, they
    are resolved against the current working directory. `environ` defaults to
    `os.environ`.

    Raises:
        ConfigError: naming the key path and the problem, but never a substituted value.
    """
    file = None if path is None else str(path)
    if not isinstance(data, dict):
        message = (
            f"the top level must be a JSON object with an mcpServers key, "
            f"not {_describe_value(data)}"
        )
        raise ConfigError(message, path=file)

    try:
        document = _ConfigFile.model_validate(data)
    except ValidationError as exc:
        # `from None` keeps pydantic's report, which quotes input values, out of tracebacks.
        raise _translate_validation_error(exc, file) from None

    base_dir = Path.cwd() if path is None else path.absolute().parent
    resolver = _Resolver(os.environ if environ is None else environ, file, base_dir)
    servers: dict[str, StdioServer | HttpServer] = {}
    disabled: set[str] = set()
    for name, entry in document.mcp_servers.items():
        if not name:
            message = "a server has an empty name. Give every server a non-empty name"
            raise ConfigError(message, path=file, key="mcpServers")
        _warn_misspelt_keys(name, entry, file)
        if entry.disabled:
            disabled.add(name)
            continue
        servers[name] = _build_server(name, entry, resolver, base_dir)

    section = document.isobind or _IsobindSection()
    for name, settings in (section.servers or {}).items():
        if settings.oauth is not None and name in servers:
            servers[name] = _with_oauth(servers[name], settings.oauth, resolver)
    policies = _build_policies(
        section.servers or {},
        servers,
        disabled,
        _PolicyContext(file, base_dir, deny_by_default=section.default_policy == "deny"),
    )
    # Built before `Config`, so that the secrets it substitutes are in `resolver.secrets`.
    egress = _build_egress(section.egress, resolver)
    return Config(
        path=None if path is None else path.absolute(),
        servers=MappingProxyType(servers),
        policies=MappingProxyType(policies),
        secrets=frozenset(resolver.secrets),
        timeout=_DEFAULT_TIMEOUT if section.timeout is None else float(section.timeout),
        memory_mb=_DEFAULT_MEMORY_MB if section.memory_mb is None else section.memory_mb,
        audit=_resolve_path(section.audit, base_dir, file, "isobind.audit"),
        approve_writes=bool(section.approve_writes),
        rate_limit_store=_resolve_path(
            section.rate_limit_store, base_dir, file, "isobind.rateLimitStore"
        ),
        egress=egress,
        sandbox=_build_sandbox(section.sandbox, file),
        limit_settings=MappingProxyType(
            {
                name: getattr(section, name)
                for name in _LIMIT_KEYS
                if getattr(section, name) is not None
            }
        ),
    )


def _warn_misspelt_keys(name: str, entry: _ServerEntry, file: str | None) -> None:
    known = list(_ServerEntry.model_fields)
    for key in entry.model_extra or {}:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if close and close[0] not in entry.model_fields_set:
            logger.warning(
                "%s: mcpServers.%s.%s is not a key isobind reads, so it is ignored "
                "(did you mean %r?)",
                file or "config",
                name,
                key,
                close[0],
            )


def _build_sandbox(entry: _SandboxEntry | None, file: str | None) -> SandboxSettings | None:
    if entry is None:
        return None
    # Keys left out (or null) keep the defaults of `SandboxSettings`.
    given = {name: value for name, value in entry if value is not None}
    try:
        return SandboxSettings(**given)
    except ValueError as error:
        raise ConfigError(str(error), path=file, key="isobind.sandbox") from None


def _read_text(file: Path) -> str:
    where = str(file)
    try:
        return file.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        message = "config file not found. Check the path, or create the file"
        raise ConfigError(message, path=where) from exc
    except IsADirectoryError as exc:
        message = "the path is a directory. Give the path of the JSON config file"
        raise ConfigError(message, path=where) from exc
    except PermissionError as exc:
        message = "permission denied while reading the config file. Check its permissions"
        raise ConfigError(message, path=where) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", path=where) from exc
    except UnicodeDecodeError as exc:
        message = (
            f"the file is not valid UTF-8 (invalid byte at offset {exc.start}). Save it as UTF-8"
        )
        raise ConfigError(message, path=where) from exc


class _Resolver:
    """Environment variable substitution for config strings, with a record of each value used."""

    def __init__(self, environ: Mapping[str, str], file: str | None, base_dir: Path) -> None:
        self.environ = environ
        self.file = file
        self.base_dir = base_dir
        self.secrets: set[str] = set()

    def error(self, message: str, key: str) -> ConfigError:
        return ConfigError(message, path=self.file, key=key)

    def substitute(self, text: str, key: str) -> str:
        """Replace ``${NAME}``, ``${NAME:-default}`` and ``$$`` in `text`, recording each value.

        A ``$`` followed by anything else is kept as it is, like ``$HOME``.
        """
        parts: list[str] = []
        position = 0
        while (dollar := text.find("$", position)) >= 0:
            parts.append(text[position:dollar])
            following = text[dollar + 1 : dollar + 2]
            if following == "$":
                parts.append("$")
                position = dollar + 2
            elif following == "{":
                close = text.find("}", dollar + 2)
                if close < 0:
                    message = "a '${' has no closing '}'. " + _SUBSTITUTION_HELP
                    raise self.error(message, key)
                parts.append(self._lookup(text[dollar + 2 : close], key))
                position = close + 1
            else:
                parts.append("$")
                position = dollar + 1

        parts.append(text[position:])
        return "".join(parts)

    def _lookup(self, reference: str, key: str) -> str:
        if reference.startswith("secret:"):
            secret = _read_secret(reference.removeprefix("secret:"), key, self)
            self.secrets.add(secret)
            return secret

        # The default is literal text up to the first '}', with no nested substitution.
        name, separator, default = reference.partition(":-")
        if not name.isidentifier() or not name.isascii():
            message = f"invalid substitution '${{{reference}}}'. " + _SUBSTITUTION_HELP
            raise self.error(message, key)

        # As in the shell, ${NAME:-default} also replaces a variable set to "".
        if separator and not self.environ.get(name):
            value = default
        elif name in self.environ:
            value = self.environ[name]
        else:
            message = (
                f"environment variable {name} is not set. "
                f"Set it, or give a default as ${{{name}:-default}}"
            )
            raise self.error(message, key)

        if value:
            self.secrets.add(value)
        return value


_SUBSTITUTION_HELP = (
    "Write ${NAME} or ${NAME:-default}, ${secret:env:NAME}, ${secret:file:PATH} or "
    "${secret:keyring:SERVICE/USER}, and $$ for a literal $"
)


def _read_secret(source: str, key: str, resolver: _Resolver) -> str:
    """Return the secret that a ``${secret:KIND:WHERE}`` reference names.

    The value is never part of an error message, and neither is the reference,
    which names only where the secret is kept.
    """
    kind, _, where = source.partition(":")
    if kind == "env":
        value = resolver.environ.get(where)
        if value is None:
            message = f"environment variable {where} is not set. Set it on the host"
            raise resolver.error(message, key)
    elif kind == "file":
        value = _read_secret_file(resolver.base_dir / where, key, resolver)
    elif kind == "keyring":
        value = _read_keyring(where, key, resolver)
    else:
        message = f"unknown secret source {kind!r}. Use env, file or keyring"
        raise resolver.error(message, key)

    if not value.strip():
        raise resolver.error(f"the secret from {kind} {where!r} is empty", key)
    return value


def _read_secret_file(file: Path, key: str, resolver: _Resolver) -> str:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise resolver.error(f"secret file {str(file)!r} not found", key) from None
    except OSError as exc:
        message = f"cannot read secret file {str(file)!r}: {exc.strerror or type(exc).__name__}"
        raise resolver.error(message, key) from None
    except UnicodeDecodeError:
        raise resolver.error(f"secret file {str(file)!r} is not UTF-8", key) from None
    # One final line feed is what editors and `echo` add; it is not part of the secret.
    return text.removesuffix("\n").removesuffix("\r")


def _read_keyring(where: str, key: str, resolver: _Resolver) -> str:
    service, slash, user = where.rpartition("/")
    if not slash or not service or not user:
        message = f"invalid keyring reference {where!r}. Write keyring:SERVICE/USER"
        raise resolver.error(message, key)
    import keyring  # imported here: finding a keyring backend takes time at import
    import keyring.errors

    try:
        value = keyring.get_password(service, user)
    except keyring.errors.NoKeyringError:
        message = (
            f"no system keyring is available to read service {service!r}. Install and "
            "unlock one (Secret Service, KWallet, macOS Keychain), or use "
            "${secret:env:NAME} or ${secret:file:PATH} instead"
        )
        raise resolver.error(message, key) from None
    except keyring.errors.KeyringError as exc:
        message = (
            f"the system keyring failed ({type(exc).__name__}) for service {service!r}. "
            "Check that it is unlocked"
        )
        raise resolver.error(message, key) from None
    if value is None:
        message = f"no keyring entry for service {service!r} and user {user!r}"
        raise resolver.error(message, key)
    return value


def _build_egress(entry: _EgressEntry | None, resolver: _Resolver) -> EgressPolicy | None:
    if entry is None:
        return None
    origins: dict[str, EgressOrigin] = {}
    for index, item in enumerate(entry.allow):
        key = f"isobind.egress.allow[{index}]"
        origin = normalize_origin(item.origin)
        if origin is None or urlsplit(item.origin).path not in ("", "/"):
            message = "origin must be scheme://host[:port] with http or https and no path"
            raise resolver.error(message, f"{key}.origin")
        headers = {
            name: resolver.substitute(value, f"{key}.headers.{name}")
            for name, value in (item.headers or {}).items()
        }
        methods = frozenset(method.upper() for method in (item.methods or ["GET"]))
        origins[origin] = EgressOrigin(origin, methods, MappingProxyType(headers))

    policy = EgressPolicy(origins=MappingProxyType(origins))
    if entry.max_response_bytes is not None:
        policy = dataclasses.replace(policy, max_response_bytes=entry.max_response_bytes)
    if entry.timeout is not None:
        policy = dataclasses.replace(policy, timeout=float(entry.timeout))
    return policy


def _substitute_optional(text: str | None, key: str, resolver: _Resolver) -> str | None:
    return None if text is None else resolver.substitute(text, key)


def _with_oauth(
    server: StdioServer | HttpServer, entry: _OAuthEntry, resolver: _Resolver
) -> HttpServer:
    key = f"isobind.servers.{server.name}.oauth"
    if not isinstance(server, HttpServer):
        message = "oauth applies only to HTTP servers, and this server has a command"
        raise resolver.error(message, key)

    token_url = resolver.substitute(entry.token_url, f"{key}.tokenUrl")
    if urlsplit(token_url).scheme not in ("http", "https"):
        raise resolver.error("tokenUrl must be an http:// or https:// URL", f"{key}.tokenUrl")
    credentials = ClientCredentials(
        token_url=token_url,
        client_id=resolver.substitute(entry.client_id, f"{key}.clientId"),
        client_secret=resolver.substitute(entry.client_secret, f"{key}.clientSecret"),
        scope=_substitute_optional(entry.scope, f"{key}.scope", resolver),
        audience=(
            None
            if entry.audience is None
            else resolver.substitute(entry.audience, f"{key}.audience")
        ),
    )
    # The client secret is scrubbed even when the file writes it without ${...}.
    resolver.secrets.add(credentials.client_secret)
    return dataclasses.replace(server, oauth=credentials)


def _build_server(
    name: str, entry: _ServerEntry, resolver: _Resolver, base_dir: Path
) -> StdioServer | HttpServer:
    key = f"mcpServers.{name}"
    if _server_kind(key, entry, resolver) == "stdio":
        return _build_stdio_server(name, entry, resolver, base_dir)
    return _build_http_server(name, entry, resolver)


def _server_kind(key: str, entry: _ServerEntry, resolver: _Resolver) -> Literal["stdio", "http"]:
    """Decide from `type`, `command` and `url` whether the server is stdio or HTTP."""
    declared: Literal["stdio", "http"] | None = None
    if entry.type == "sse":
        message = (
            "type 'sse' is not supported because isobind supports only stdio and "
            "streamable HTTP servers. Use type 'http' if the server supports streamable HTTP"
        )
        raise resolver.error(message, f"{key}.type")
    if entry.type is not None:
        declared = _SERVER_TYPES.get(entry.type)
        if declared is None:
            valid = ", ".join(_SERVER_TYPES)
            message = f"unknown server type {entry.type!r}. Valid types are {valid}"
            raise resolver.error(message, f"{key}.type")

    if entry.command is not None and entry.url is not None:
        message = (
            "the server has both command and url. Keep command for a stdio server "
            "or url for an HTTP server"
        )
        raise resolver.error(message, key)
    if entry.command is None and entry.url is None:
        message = (
            "the server has neither command nor url. Add command for a stdio server "
            "or url for an HTTP server"
        )
        raise resolver.error(message, key)

    kind: Literal["stdio", "http"] = "stdio" if entry.command is not None else "http"
    if declared is not None and declared != kind:
        present = "command" if kind == "stdio" else "url"
        message = (
            f"type {entry.type!r} does not match the server's {present}. A stdio server "
            "needs a command and an HTTP server needs a url"
        )
        raise resolver.error(message, f"{key}.type")

    # Keys of the other kind would be silently unused, such as an API key in env
    # for an HTTP server, so they are rejected.
    misplaced = ["headers"] if kind == "stdio" else ["args", "env", "cwd"]
    for other in misplaced:
        if getattr(entry, other) is None:
            continue
        if kind == "stdio":
            message = f"{other} applies only to HTTP servers, and this server has a command"
        else:
            message = f"{other} applies only to stdio servers, and this server has a url"
        raise resolver.error(f"{message}. Remove {other}", f"{key}.{other}")

    return kind


def _build_stdio_server(
    name: str, entry: _ServerEntry, resolver: _Resolver, base_dir: Path
) -> StdioServer:
    key = f"mcpServers.{name}"
    assert entry.command is not None  # checked by _server_kind
    command = resolver.substitute(entry.command, f"{key}.command")
    if not command.strip():
        message = "the command is empty. Give the program that starts the server"
        raise resolver.error(message, f"{key}.command")

    args = tuple(
        resolver.substitute(argument, f"{key}.args[{index}]")
        for index, argument in enumerate(entry.args or [])
    )
    env = {
        variable: resolver.substitute(value, f"{key}.env.{variable}")
        for variable, value in (entry.env or {}).items()
    }

    cwd = None
    if entry.cwd is not None:
        resolved = resolver.substitute(entry.cwd, f"{key}.cwd")
        if not resolved:
            message = "cwd is empty. Give a directory, or remove the key to inherit one"
            raise resolver.error(message, f"{key}.cwd")
        cwd = base_dir / resolved

    return StdioServer(name=name, command=command, args=args, env=MappingProxyType(env), cwd=cwd)


def _build_http_server(name: str, entry: _ServerEntry, resolver: _Resolver) -> HttpServer:
    key = f"mcpServers.{name}"
    assert entry.url is not None  # checked by _server_kind
    url = resolver.substitute(entry.url, f"{key}.url")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # such as an unclosed IPv6 bracket
        valid = False
    if not valid:
        # The URL itself is not quoted because it may contain a substituted secret.
        message = (
            "the url is not an http:// or https:// URL with a host. "
            "Give the server's streamable HTTP endpoint, such as http://127.0.0.1:8000/mcp"
        )
        raise resolver.error(message, f"{key}.url")

    headers = {
        header: resolver.substitute(value, f"{key}.headers.{header}")
        for header, value in (entry.headers or {}).items()
    }
    return HttpServer(name=name, url=url, headers=MappingProxyType(headers))


@dataclass(frozen=True, slots=True)
class _PolicyContext:
    file: str | None
    base_dir: Path
    deny_by_default: bool


def _build_policies(
    entries: Mapping[str, _PolicyEntry],
    servers: Mapping[str, StdioServer | HttpServer],
    disabled: set[str],
    context: _PolicyContext,
) -> dict[str, ServerPolicy]:
    default = ServerPolicy(deny_by_default=context.deny_by_default)
    policies = dict.fromkeys(servers, default)
    for name, entry in entries.items():
        # A policy may outlive a server switched off with "disabled": true.
        if name in disabled:
            continue
        if name not in servers:
            known = ", ".join(servers) or "none"
            message = (
                f"no server named {name!r} in mcpServers{_suggest(name, servers)}. "
                f"Known servers: {known}"
            )
            raise ConfigError(message, path=context.file, key=f"isobind.servers.{name}")

        key = f"isobind.servers.{name}"
        tools = {
            pattern: _build_tool_rule(tool, f"{key}.tools.{pattern}", context)
            for pattern, tool in (entry.tools or {}).items()
        }
        policies[name] = ServerPolicy(
            allow=None if entry.allow is None else tuple(entry.allow),
            deny=tuple(entry.deny or ()),
            read_only=bool(entry.read_only),
            deny_destructive=bool(entry.deny_destructive),
            approve=tuple(entry.approve or ()),
            max_calls_per_run=entry.max_calls_per_run,
            rate_limit=_build_rate_limit(entry.rate_limit),
            tools=MappingProxyType(tools),
            deny_by_default=context.deny_by_default,
        )
    return policies


def _build_rate_limit(entry: _RateLimitEntry | None) -> RateLimit | None:
    return None if entry is None else RateLimit(calls=entry.calls, seconds=entry.seconds)


def _build_tool_rule(entry: _ToolEntry, key: str, context: _PolicyContext) -> ToolRule:
    arguments = {
        name: _build_argument_rule(argument, f"{key}.arguments.{name}", context)
        for name, argument in (entry.arguments or {}).items()
    }
    return ToolRule(
        arguments=MappingProxyType(arguments),
        approve=bool(entry.approve),
        max_calls_per_run=entry.max_calls_per_run,
        rate_limit=_build_rate_limit(entry.rate_limit),
    )


def _build_argument_rule(entry: _ArgumentEntry, key: str, context: _PolicyContext) -> ArgumentRule:
    within = None
    if entry.within is not None:
        if not entry.within:
            message = "within is empty, so no path could pass. Give at least one directory"
            raise ConfigError(message, path=context.file, key=f"{key}.within")
        # Resolved once here, symlinks included, so that a checked argument is
        # compared with the directory the server really sees.
        within = tuple(
            Path(os.path.realpath(context.base_dir / directory)) for directory in entry.within
        )

    pattern = None
    if entry.pattern is not None:
        try:
            pattern = re.compile(entry.pattern)
        except re.error as exc:
            message = f"invalid regular expression: {exc}. Write a Python re pattern"
            raise ConfigError(message, path=context.file, key=f"{key}.pattern") from exc

    if entry.minimum is not None and entry.maximum is not None and entry.minimum > entry.maximum:
        message = "minimum is greater than maximum, so no number could pass"
        raise ConfigError(message, path=context.file, key=key)

    return ArgumentRule(
        within=within,
        one_of=None if entry.one_of is None else tuple(entry.one_of),
        minimum=entry.minimum,
        maximum=entry.maximum,
        pattern=pattern,
    )


def _resolve_path(value: str | None, base_dir: Path, file: str | None, key: str) -> Path | None:
    if value is None:
        return None
    if not value:
        name = key.rsplit(".", 1)[-1]
        message = f"{name} is empty. Give a file path, or remove the key to turn it off"
        raise ConfigError(message, path=file, key=key)
    return base_dir / value


# Error translation. Pydantic's own messages quote input values, which are not shown.

_EXPECTED_TYPES = {
    "string_type": "a string",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
}


def _translate_validation_error(error: ValidationError, file: str | None) -> ConfigError:
    """Turn the first of pydantic's errors into a ConfigError with a key path."""
    details = error.errors(include_url=False)
    first = details[0]
    message = _describe_error(first)
    remaining = len(details) - 1
    if remaining:
        message += f" ({remaining} more {'error' if remaining == 1 else 'errors'} in this file)"
    return ConfigError(message, path=file, key=_key_path(first["loc"]))


def _describe_error(error: ErrorDetails) -> str:
    kind = error["type"]
    value = error["input"]
    if kind in _EXPECTED_TYPES:
        return f"must be {_EXPECTED_TYPES[kind]}, not {_describe_value(value)}"
    if kind == "greater_than":
        limit = error.get("ctx", {}).get("gt", 0)
        return f"must be greater than {limit:g}, not {_describe_value(value)}"
    if kind == "greater_than_equal":
        limit = error.get("ctx", {}).get("ge", 0)
        return f"must be at least {limit:g}, not {_describe_value(value)}"
    if kind == "less_than_equal":
        limit = error.get("ctx", {}).get("le", 0)
        return f"must be at most {limit:g}, not {_describe_value(value)}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        # The fixed choices are names such as "workers", never secrets: show the value.
        given = json.dumps(value[:80]) if isinstance(value, str) else _describe_value(value)
        return f"must be one of {expected}, not {given}"
    if kind == "finite_number":
        return f"must be a finite number, not {_describe_value(value)}"
    if kind == "missing":
        if tuple(error["loc"]) == ("mcpServers",):
            return (
                "required key is missing. Add an object that maps each server name to its settings"
            )
        return "required key is missing"
    if kind == "extra_forbidden":
        unknown = str(error["loc"][-1])
        valid = _valid_keys(error["loc"][:-1])
        return (
            f"unknown key {unknown!r}{_suggest(unknown, valid)}. "
            f"Valid keys are {', '.join(sorted(valid))}"
        )
    # Pydantic's own wording, for error kinds that the models above do not produce today.
    return f"invalid value: {error['msg']}"


def _describe_value(value: object) -> str:
    """Name the JSON type of a value. Only numbers, booleans and null show the value."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return type(value).__name__


def _valid_keys(parent: tuple[int | str, ...]) -> list[str]:
    """Return the keys of the model at `parent`, walking the isobind section's models."""
    model: type[BaseModel] = _IsobindSection
    # The location alternates field names and free keys (server names, tool globs).
    children: dict[str, type[BaseModel]] = {
        "servers": _PolicyEntry,
        "tools": _ToolEntry,
        "arguments": _ArgumentEntry,
        "rateLimit": _RateLimitEntry,
        "oauth": _OAuthEntry,
        "egress": _EgressEntry,
        "allow": _EgressOriginEntry,
        "sandbox": _SandboxEntry,
    }
    parts = list(parent[1:])
    while parts:
        part = str(parts.pop(0))
        child = children.get(part)
        if child is None:
            break
        model = child
        if part not in ("rateLimit", "oauth", "egress", "sandbox") and parts:
            parts.pop(0)
    return [info.alias or name for name, info in model.model_fields.items()]


def _suggest(name: str, choices: Iterable[str]) -> str:
    """Return a ' (did you mean ...?)' hint when `name` is close to one of `choices`."""
    candidates = list(choices)

    def normalize(text: str) -> str:
        return text.lower().replace("_", "").replace("-", "")

    matches = [choice for choice in candidates if normalize(choice) == normalize(name)]
    matches = matches or difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _key_path(location: tuple[int | str, ...]) -> str:
    """Join a pydantic location into a key path such as ``mcpServers.time.args[1]``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path
