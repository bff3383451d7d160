"""isobind: run model-written TypeScript against MCP tools in throwaway V8 isolates.

Credentials stay on the host; the only way out of an isolate is a call on the
`tools` global, which the host checks, performs and records.
"""

from __future__ import annotations

from ._agent import Agent, AgentEvents, AgentLimits, AgentResult, CodeRun
from ._approval import ApprovalRequest, Approver, TerminalApprover
from ._audit import AuditLog, ChainError, verify_log
from ._config import Config, HttpServer, StdioServer, load_config, parse_config
from ._errors import (
    ApiError,
    ClosedError,
    ConfigError,
    IsobindError,
    ModelError,
    SandboxError,
    UpstreamError,
)
from ._functions import FunctionTools
from ._policy import ServerPolicy
from ._pool import SandboxSettings
from ._providers import AnthropicProvider, OpenAIProvider
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
    "InputTooLargeError",
    "LimitExceededError",
    "WorkerCrashedError",
    "CpuTimeLimitExceeded",
    "StackLimitExceeded",
    "SandboxError",
    "SyntaxError",
)
"""Names that `ExecutionResult.error.name` takes for isobind's own errors.

Any other name is an error the code itself threw (`TypeError`, `Error`, ...).
The code can catch and rethrow `ToolError`, `ToolInputError`,
`PermissionDeniedError`, `NetworkAccessError`, `LimitExceededError` and
`SyntaxError`. The other names are the host's alone: an error the code throws
under one of them is reported as `Error`, with a message naming the borrowed name.
"""

__all__ = [
    "DISCOVERY_DECLARATION",
    "SANDBOX_ERROR_NAMES",
    "Agent",
    "AgentEvents",
    "AgentLimits",
    "AgentResult",
    "AnthropicProvider",
    "ApiError",
    "ApprovalRequest",
    "Approver",
    "AuditLog",
    "CallRecord",
    "ChainError",
    "ClosedError",
    "CodeRun",
    "Config",
    "ConfigError",
    "ExecutionError",
    "ExecutionResult",
    "FunctionTools",
    "HttpServer",
    "IsobindError",
    "Limits",
    "LogEntry",
    "ModelError",
    "OpenAIProvider",
    "SandboxError",
    "SandboxSettings",
    "ServerPolicy",
    "ServerSummary",
    "StdioServer",
    "TerminalApprover",
    "ToolAnnotations",
    "ToolSpec",
    "Toolbox",
    "UpstreamError",
    "__version__",
    "load_config",
    "parse_config",
    "verify_log",
]
