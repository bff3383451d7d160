"""The outcome of one execution, as the Python caller, the CLI and the audit log get it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallRecord", "ExecutionError", "ExecutionResult", "LogEntry"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One console call of the sandboxed code, formatted as text."""

    level: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "message": self.message}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One tool call made by the sandboxed code, with its input already redacted."""

    server: str
    """The configured server name (or function group)."""
    tool: str
    """The tool's original name, before sanitising."""
    input: Any
    ok: bool
    error: dict[str, str] | None
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "tool": self.tool,
            "input": self.input,
            "ok": self.ok,
            "error": self.error,
            "durationMs": round(self.duration_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class ExecutionError:
    """Why an execution failed: a JavaScript error name, the message and where."""

    name: str
    message: str
    stack: str | None = None
    line: int | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "message": self.message}
        for key in ("stack", "line", "column"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """The outcome of `Toolbox.execute`; `result` is the code's return value as JSON data."""

    ok: bool
    result: Any = None
    logs: list[LogEntry] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    error: ExecutionError | None = None
    duration: float = 0.0
    """Wall-clock seconds from the request to the result."""
    execution_id: str = ""
    logs_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the `--json` form: `ok`, `result`, `logs`, `calls`, `error` and more."""
        return {
            "ok": self.ok,
            "result": self.result,
            "logs": [entry.to_dict() for entry in self.logs],
            "calls": [call.to_dict() for call in self.calls],
            "error": self.error.to_dict() if self.error is not None else None,
            "logsDropped": self.logs_dropped,
            "durationMs": round(self.duration * 1000, 3),
            "executionId": self.execution_id,
        }
