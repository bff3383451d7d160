"""The policy check that decides, on the host, whether the code may call a tool."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from ._config import ServerPolicy
from ._tools import ToolSpec

__all__ = ["Denial", "check_tool"]


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a tool may not be called: the rule (a config key path) and the reason."""

    rule: str
    reason: str

    def message(self, tool: ToolSpec) -> str:
        return (
            f"Calling tool {tool.name!r} of server {tool.server!r} is not permitted: "
            f"{self.reason} (rule {self.rule})."
        )


def check_tool(tool: ToolSpec, policy: ServerPolicy) -> Denial | None:
    """Return the first rule that denies `tool`, or `None` when it may be called.

    Deny globs win over allow globs. Read-only mode admits only tools annotated
    `readOnlyHint: true`, so a tool without annotations counts as one that writes.
    """
    prefix = f"isobind.servers.{tool.server}"
    for pattern in policy.deny:
        if fnmatchcase(tool.name, pattern):
            return Denial(f"{prefix}.deny", f"the name matches the deny pattern {pattern!r}")
    if policy.allow is not None and not any(
        fnmatchcase(tool.name, pattern) for pattern in policy.allow
    ):
        patterns = ", ".join(repr(pattern) for pattern in policy.allow) or "(none)"
        return Denial(f"{prefix}.allow", f"the name matches none of the allow patterns {patterns}")
    if policy.read_only and tool.annotations.read_only is not True:
        return Denial(
            f"{prefix}.readOnly",
            "the server is read-only and the tool is not annotated readOnlyHint: true",
        )
    return None
