"""Exceptions raised by isobind to the Python caller.

Errors raised by the sandboxed code never appear here: they come back as data in
`ExecutionResult.error`, under the JavaScript error names listed in
`isobind.SANDBOX_ERROR_NAMES`. The Python exceptions split by who must act::

    IsobindError
    ├── ConfigError          the developer: the config file is invalid
    ├── ApiError             the developer: the tools cannot form one API
    ├── UpstreamError        run time: an MCP server failed to start or answer
    ├── SandboxError         run time: the V8 engine failed outside the code
    ├── ModelError           run time: the model provider rejected or failed a request
    └── ClosedError          the developer: an object was used after close
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ClosedError",
    "ConfigError",
    "IsobindError",
    "ModelError",
    "SandboxError",
    "UpstreamError",
]


class IsobindError(Exception):
    """Base class of every exception that isobind raises."""


class ConfigError(IsobindError):
    """Raised when a config file is missing, is not valid JSON or breaks the schema.

    The message names the file, the key path inside it and what to change.
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path = path
        self.key = key
        parts = [part for part in (path, key) if part]
        where = ": ".join(parts)
        super().__init__(f"{where}: {message}" if where else message)


class ApiError(IsobindError):
    """Raised when the loaded tools cannot form one TypeScript API.

    For example two tool names that sanitise to the same identifier.
    """


class UpstreamError(IsobindError):
    """Raised when an MCP server cannot be started, connected to or listed."""

    def __init__(self, message: str, *, server: str | None):
        self.server = server
        super().__init__(f"MCP server {server!r}: {message}" if server else message)


class SandboxError(IsobindError):
    """Raised when the V8 engine fails in a way that is not the sandboxed code's fault."""


class ModelError(IsobindError):
    """Raised when the model provider rejects a request or cannot be reached.

    The message names the model and the provider's reason, such as an invalid
    API key or an unknown model name.
    """


class ClosedError(IsobindError):
    """Raised when a closed `Toolbox` or sandbox is used again."""


def describe_exception(error: BaseException, *, type_names: bool) -> str:
    """Return the text of `error`, and of each member of an exception group, joined by "; ".

    With `type_names`, each text starts with its exception's type name. A member
    without text is shown by its type name either way.
    """
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(
            describe_exception(inner, type_names=type_names) for inner in error.exceptions
        )
    text = str(error)
    if not text:
        return type(error).__name__
    return f"{type(error).__name__}: {text}" if type_names else text
