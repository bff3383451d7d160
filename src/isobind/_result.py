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
    dry_run: bool = False
    """Whether a dry run refused the call instead of running it."""
    start_ms: float = 0.0
    """When the call arrived, in milliseconds from the start of the execution.

    The execution starts before type erasure and isolate start-up, which the
    run's `duration` leaves out, so `start_ms` can exceed the run's duration.
    """

    def to_dict(self) -> dict[str, Any]:
        data = {
            "server": self.server,
            "tool": self.tool,
            "input": self.input,
            "ok": self.ok,
            "error": self.error,
            "startMs": round(self.start_ms, 3),
            "durationMs": round(self.duration_ms, 3),
        }
        if self.dry_run:
            data["dryRun"] = True
        return data


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
    dry_run: bool = False
    """Whether the run was a dry run, in which writing tools were not called."""

    @property
    def would_call(self) -> list[CallRecord]:
        """The calls a dry run refused, which a real run would have made."""
        return [call for call in self.calls if call.dry_run]

    def to_dict(self) -> dict[str, Any]:
        """Return the `--json` form: `ok`, `result`, `logs`, `calls`, `error` and more.

        A dry run adds ``dryRun: true`` and ``wouldCall``, the server, tool and input
        of each call it refused.
        """
        data = {
            "ok": self.ok,
            "result": self.result,
            "logs": [entry.to_dict() for entry in self.logs],
            "calls": [call.to_dict() for call in self.calls],
            "error": self.error.to_dict() if self.error is not None else None,
            "logsDropped": self.logs_dropped,
            "durationMs": round(self.duration * 1000, 3),
            "executionId": self.execution_id,
        }
        if self.dry_run:
            data["dryRun"] = True
            data["wouldCall"] = [
                {"server": call.server, "tool": call.tool, "input": call.input}
                for call in self.would_call
            ]
        return data
