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


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


class Telemetry:
    """Starts the spans of one `Toolbox`; attributes never carry inputs or results."""

    def __init__(self, tracer_provider: Any = None) -> None:
        self._tracer: Any = None
        self._global = tracer_provider is None
        if trace is not None:
            self._tracer = trace.get_tracer("isobind", tracer_provider=tracer_provider)

    def span(
        self, name: str, attributes: Mapping[str, str | int | bool]
    ) -> contextlib.AbstractContextManager[Any]:
        """Open a span as the current one, or yield `None` when no span would be recorded."""
        if self._tracer is None or (self._global and not _global_provider_set()):
            # A span of the API's no-op provider records nothing, but costs
            # about 7 microseconds per call of a tool.
            return _NO_SPAN
        return self._recorded_span(name, attributes)

    @contextlib.contextmanager
    def _recorded_span(
        self, name: str, attributes: Mapping[str, str | int | bool]
    ) -> Iterator[Any]:
        with self._tracer.start_as_current_span(name, attributes=dict(attributes)) as span:
            yield span


def _global_provider_set() -> bool:
    """Return whether a tracer provider that may record spans was set globally."""
    assert trace is not None
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


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
