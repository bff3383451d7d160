"""The description of one tool, whatever its source (MCP server or Python function)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ToolAnnotations", "ToolSpec"]


@dataclass(frozen=True, slots=True)
class ToolAnnotations:
    """Behaviour hints from the MCP `ToolAnnotations`; `None` means the server did not say."""

    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One callable tool as listed by its source.

    `server` is the configured server name and `name` the tool's original name;
    both may be invalid JavaScript identifiers; the API layer sanitises them.
    """

    server: str
    name: str
    description: str | None = None
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    output_schema: dict[str, Any] | None = None
    title: str | None = None
    annotations: ToolAnnotations = field(default_factory=ToolAnnotations)
    schema_problem: str | None = None
    """The reason the input or output schema the source listed was invalid and replaced.

    The API then types the replaced side loosely (any object, or `unknown`).
    """
