"""Audit records rendered as rich tables for `isobind audit show`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text

from ._terminal import printable

__all__ = ["calls_timeline", "executions_table"]

_INPUT_CHARS = 60


def _outcome(record: dict[str, Any]) -> Text:
    if record.get("dryRun") and record.get("type") == "call":
        return Text("dry run", style="yellow")
    if record.get("ok"):
        return Text("ok", style="green")
    error = _mapping(record.get("error"))
    return Text(printable(str(error.get("name", "failed"))), style="red")


def _cell(value: Any, limit: int = 80) -> Text:
    return Text(printable(str(value))[:limit])


def _count(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else ""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _milliseconds_value(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _milliseconds(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else ""


def executions_table(records: Iterable[dict[str, Any]]) -> Table:
    """Return one row per execution record: time, id, outcome, calls, duration, error."""
    table = Table(title="executions")
    for column in ("started at", "execution id", "outcome", "calls", "ms", "error"):
        table.add_column(column, justify="right" if column in ("calls", "ms") else "left")
    for record in records:
        if record.get("type") != "execution":
            continue
        error = _mapping(record.get("error"))
        timings = _mapping(record.get("timings"))
        table.add_row(
            _cell(record.get("startedAt", "")),
            _cell(record.get("executionId", "")),
            _outcome(record),
            _count(record.get("calls")),
            _milliseconds(timings.get("durationMs")),
            _cell(error.get("message", "")),
        )
    return table


def calls_timeline(records: Iterable[dict[str, Any]], execution_id: str) -> Table:
    """Return the calls of one execution ordered by start time, with input and outcome."""
    calls = [
        record
        for record in records
        if record.get("type") == "call" and record.get("executionId") == execution_id
    ]
    calls.sort(key=lambda record: _milliseconds_value(record.get("startMs")))
    table = Table(title=f"execution {execution_id}")
    for column in ("start ms", "ms", "tool", "input", "outcome", "error"):
        table.add_column(column, justify="right" if column.endswith("ms") else "left")
    for record in calls:
        error = _mapping(record.get("error"))
        shown = printable(json.dumps(record.get("input"), ensure_ascii=False))
        if len(shown) > _INPUT_CHARS:
            shown = shown[:_INPUT_CHARS] + "..."
        table.add_row(
            _milliseconds(record.get("startMs")),
            _milliseconds(record.get("durationMs")),
            _cell(f"{record.get('server')}.{record.get('tool')}"),
            Text(shown),
            _outcome(record),
            _cell(error.get("message", "")),
        )
    return table
