"""The outcome of a run as a model reads it: structured content and a compact text rendering."""

from __future__ import annotations

import json
from typing import Any

from ._result import ExecutionResult

__all__ = ["render_run_text", "run_to_structured"]

# The text rendering lists at most this many calls, and the longest log lines
# are cut, because a model re-reads this text on every later turn.
_MAX_CALLS_LISTED = 20
_MAX_LOG_LINE_CHARS = 2_000


def run_to_structured(result: ExecutionResult) -> dict[str, Any]:
    """Return the structured content of `run_code`: ok, result, logs, calls, error."""
    error = None
    if result.error is not None:
        error = result.error.to_dict()
    return {
        "ok": result.ok,
        "result": result.result,
        "logs": [entry.to_dict() for entry in result.logs],
        "calls": [
            {
                "tool": f"{call.server}.{call.tool}",
                "ok": call.ok,
                "error": _call_error(call.error),
                "durationMs": round(call.duration_ms, 3),
            }
            for call in result.calls
        ],
        "error": error,
        "durationMs": round(result.duration * 1000, 3),
    }


def _call_error(error: dict[str, str] | None) -> str | None:
    if error is None:
        return None
    return f"{error.get('name', 'Error')}: {error.get('message', '')}"


def render_run_text(result: ExecutionResult, code: str) -> str:
    """Render a run as short text: the error with its line of code, or the result, then logs.

    For example::

        TypeError at line 3, column 7: city.toUpperCase is not a function
          3 | const name = city.toUpperCase();
        logs:
          [log] starting
        calls: 1 (forecast.get-forecast ok)
    """
    parts: list[str] = []
    error = result.error
    if error is not None:
        where = ""
        if error.line is not None:
            where = f" at line {error.line}"
            if error.column is not None:
                where += f", column {error.column}"
        parts.append(f"{error.name}{where}: {error.message}")
        source = _source_line(code, error.line)
        if source is not None:
            parts.append(f"  {error.line} | {source}")
    elif result.result is None:
        parts.append("ok (no return value)")
    else:
        parts.append(json.dumps(result.result, ensure_ascii=False, indent=None))

    if result.logs:
        parts.append("logs:")
        for entry in result.logs:
            message = entry.message
            if len(message) > _MAX_LOG_LINE_CHARS:
                cut = len(message) - _MAX_LOG_LINE_CHARS
                message = f"{message[:_MAX_LOG_LINE_CHARS]}... [{cut} more characters]"
            parts.append(f"  [{entry.level}] {message}")
    if result.logs_dropped:
        parts.append(f"  ({result.logs_dropped} console messages dropped: output limit)")

    if result.calls:
        parts.append(_render_calls(result))
    return "\n".join(parts)


def _render_calls(result: ExecutionResult) -> str:
    listed = []
    for call in result.calls[:_MAX_CALLS_LISTED]:
        outcome = "ok"
        if not call.ok:
            outcome = (call.error or {}).get("name", "failed")
        listed.append(f"{call.server}.{call.tool} {outcome}")
    more = len(result.calls) - _MAX_CALLS_LISTED
    suffix = f", and {more} more" if more > 0 else ""
    return f"calls: {len(result.calls)} ({', '.join(listed)}{suffix})"


def _source_line(code: str, line: int | None) -> str | None:
    if line is None or line < 1:
        return None
    lines = code.splitlines()
    if line > len(lines):
        return None
    return lines[line - 1].strip()
