"""Audit records rendered as rich tables for `isobind audit show`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text

__all__ = ["calls_timeline", "executions_table"]

_INPUT_CHARS = 60


def _outcome(record: dict[str, Any]) -> Text:
    if record.get("dryRun") and record.get("type") == "call":
        return Text("dry run", style="yellow")
    if record.get("ok"):
        return Text("ok", style="green")
    error = record.get("error") or {}
    return Text(str(error.get("name", "failed")), style="red")


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
        error = record.get("error") or {}
        timings = record.get("timings") or {}
        table.add_row(
            str(record.get("startedAt", "")),
            str(record.get("executionId", "")),
            _outcome(record),
            str(len(record.get("calls") or [])),
            _milliseconds(timings.get("durationMs")),
            Text(str(error.get("message", ""))[:80]),
        )
    return table


def calls_timeline(records: Iterable[dict[str, Any]], execution_id: str) -> Table:
    """Return the calls of one execution ordered by start time, with input and outcome."""
    calls = [
        record
        for record in records
        if record.get("type") == "call" and record.get("executionId") == execution_id
    ]
    calls.sort(key=lambda record: record.get("startMs") or 0)
    table = Table(title=f"execution {execution_id}")
    for column in ("start ms", "ms", "tool", "input", "outcome", "error"):
        table.add_column(column, justify="right" if column.endswith("ms") else "left")
    for record in calls:
        error = record.get("error") or {}
        shown = json.dumps(record.get("input"), ensure_ascii=False)
        if len(shown) > _INPUT_CHARS:
            shown = shown[:_INPUT_CHARS] + "..."
        table.add_row(
            _milliseconds(record.get("startMs")),
            _milliseconds(record.get("durationMs")),
            Text(f"{record.get('server')}.{record.get('tool')}"),
            Text(shown),
            _outcome(record),
            Text(str(error.get("message", ""))[:80]),
        )
    return table
