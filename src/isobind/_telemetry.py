"""OpenTelemetry spans for executions and tool calls, when the optional extra is installed.

Spans go to the tracer provider given to `Toolbox`, else to the global one. Without
``opentelemetry-api`` installed, or without a configured SDK provider, no span is
recorded and the cost is one no-op call per span.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Telemetry", "finish_span"]

try:
    from opentelemetry import trace
except ImportError:  # the optional "otel" extra is not installed
    trace = None  # type: ignore[assignment]


class Telemetry:
    """Starts the spans of one `Toolbox`; attributes never carry inputs or results."""

    def __init__(self, tracer_provider: Any = None) -> None:
        self._tracer: Any = None
        if trace is not None:
            self._tracer = trace.get_tracer("isobind", tracer_provider=tracer_provider)

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, str | int | bool]) -> Iterator[Any]:
        """Open a span as the current one, or yield `None` without OpenTelemetry."""
        if self._tracer is None:
            yield None
            return
        with self._tracer.start_as_current_span(name, attributes=dict(attributes)) as span:
            yield span


def finish_span(span: Any, *, ok: bool, error_name: str | None, **attributes: Any) -> None:
    """Record the outcome on `span`: attributes, and an error status when not `ok`."""
    if span is None or trace is None:
        return
    span.set_attribute("isobind.ok", ok)
    for key, value in attributes.items():
        span.set_attribute(f"isobind.{key}", value)
    if not ok:
        span.set_attribute("error.type", error_name or "Error")
        span.set_status(trace.Status(trace.StatusCode.ERROR, error_name or "Error"))
