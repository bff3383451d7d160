"""isobind: run model-written TypeScript against MCP tools in throwaway V8 isolates.

Credentials stay on the host; the only way out of an isolate is a call on the
`tools` global, which the host checks, performs and records.
"""

from __future__ import annotations

from ._audit import AuditLog
from ._config import Config, HttpServer, ServerPolicy, StdioServer, load_config
from ._errors import (
    ApiError,
    ClosedError,
    ConfigError,
    IsobindError,
    SandboxError,
    UpstreamError,
)
from ._functions import FunctionTools
from ._result import CallRecord, ExecutionError, ExecutionResult, LogEntry
from ._sandbox import Limits
from ._search import DISCOVERY_DECLARATION, ServerSummary
from ._toolbox import Toolbox
from ._tools import ToolAnnotations, ToolSpec

__version__ = "0.1.0"

SANDBOX_ERROR_NAMES = (
    "ToolError",
    "ToolInputError",
    "PermissionDeniedError",
    "NetworkAccessError",
    "TimeLimitExceeded",
    "MemoryLimitExceeded",
    "DeadlockError",
    "ResultTooLargeError",
    "LimitExceededError",
    "SyntaxError",
)
"""Names that `ExecutionResult.error.name` takes for isobind's own errors.

Any other name is an error the code itself threw (`TypeError`, `Error`, ...).
"""

__all__ = [
    "DISCOVERY_DECLARATION",
    "SANDBOX_ERROR_NAMES",
    "ApiError",
    "AuditLog",
    "CallRecord",
    "ClosedError",
    "Config",
    "ConfigError",
    "ExecutionError",
    "ExecutionResult",
    "FunctionTools",
    "HttpServer",
    "IsobindError",
    "Limits",
    "LogEntry",
    "SandboxError",
    "ServerPolicy",
    "ServerSummary",
    "StdioServer",
    "ToolAnnotations",
    "ToolSpec",
    "Toolbox",
    "UpstreamError",
    "__version__",
    "load_config",
]
