"""Which calls the sandboxed code may make, decided on the host before any upstream call.

A server's policy comes from its entry under ``isobind.servers`` in the config file.
It is checked in two stages:

- `check_tool` looks only at the tool: its name against the ``allow``, ``deny`` and
  ``tools`` globs, and its MCP annotations against ``readOnly`` and
  ``denyDestructive``. A tool it rejects is left out of the TypeScript declaration.
- `check_arguments` looks at one call's input against the argument constraints of
  every ``tools`` entry whose glob matches the tool name.

Budgets and approval are kept by the caller (`_bindings`), because they depend on
the calls made before.

A server's policy lists what is allowed ("deny by default") when its entry has an
``allow`` list or a ``tools`` map, or when ``isobind.defaultPolicy`` is ``"deny"``.
Then a tool is callable only when its name matches an ``allow`` glob or, for an
entry without ``allow``, a ``tools`` key. With ``allow`` present, ``tools`` entries
only add constraints, so ``"*"`` under ``tools`` cannot widen the allow list.
Otherwise every tool that no other rule rejects is callable.

A glob matches a tool by its original name or by the identifier that the
TypeScript API shows for it (``delete-file`` is also ``delete_file``), so that a
pattern written from either view applies.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._naming import to_identifier
from ._tools import ToolSpec

__all__ = [
    "ArgumentRule",
    "Denial",
    "RateLimit",
    "ServerPolicy",
    "ToolRule",
    "check_arguments",
    "check_rule_arguments",
    "check_tool",
    "matching_rules",
    "name_matches",
]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `calls` calls in any sliding window of `seconds` seconds."""

    calls: int
    seconds: float


@dataclass(frozen=True, slots=True)
class ArgumentRule:
    """Constraints on one argument of a tool's input; `None` leaves a check out.

    `within` contains absolute, resolved directories: a path argument (or each
    string of an array argument) must resolve to one of them or below. `one_of`
    contains the allowed JSON values. `minimum` and `maximum` are inclusive bounds
    for a number. `pattern` is a regular expression that must match the whole string.
    """

    within: tuple[Path, ...] | None = None
    one_of: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class ToolRule:
    """Settings for the tools whose names match one glob under a server's ``tools`` key."""

    arguments: Mapping[str, ArgumentRule] = field(default_factory=lambda: MappingProxyType({}))
    approve: bool = False
    max_calls_per_run: int | None = None
    rate_limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    """The policy of one server, as set in the config file.

    `allow`, `deny` and `approve` contain fnmatch-style globs over the server's
    tool names, and so do the keys of `tools`. `allow=None` means the file set no
    allow list. `deny_by_default` is true when only tools matched by `allow` or
    `tools` may be called. This class only stores the settings.
    """

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()
    read_only: bool = False
    deny_destructive: bool = False
    approve: tuple[str, ...] = ()
    max_calls_per_run: int | None = None
    rate_limit: RateLimit | None = None
    tools: Mapping[str, ToolRule] = field(default_factory=lambda: MappingProxyType({}))
    deny_by_default: bool = False

    @classmethod
    def default(cls) -> ServerPolicy:
        """Return the policy of a server that has no entry under ``isobind.servers``."""
        return cls()


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a call is rejected: the rule (a config key path) and the reason."""

    rule: str
    reason: str

    def message(self, tool: ToolSpec) -> str:
        return (
            f"Calling tool {tool.name!r} of server {tool.server!r} is not permitted: "
            f"{self.reason} (rule {self.rule})."
        )


def _prefix(tool: ToolSpec) -> str:
    return f"isobind.servers.{tool.server}"


def name_matches(tool: ToolSpec, pattern: str) -> bool:
    """Return whether `pattern` matches the tool's original name or its API identifier."""
    return fnmatchcase(tool.name, pattern) or fnmatchcase(to_identifier(tool.name), pattern)


def matching_rules(tool: ToolSpec, policy: ServerPolicy) -> list[tuple[str, ToolRule]]:
    """Return each ``tools`` entry whose glob matches the tool name, with its key path."""
    return [
        (f"{_prefix(tool)}.tools.{pattern}", rule)
        for pattern, rule in policy.tools.items()
        if name_matches(tool, pattern)
    ]


def check_tool(tool: ToolSpec, policy: ServerPolicy) -> Denial | None:
    """Return the first rule that rejects `tool` whatever its input, or `None`.

    Deny globs win over allow globs. Read-only mode admits only tools annotated
    ``readOnlyHint: true`` and not ``destructiveHint: true``, so a tool without
    annotations is treated as one that writes. ``denyDestructive`` also admits
    tools that write but are annotated ``destructiveHint: false``, because the MCP
    specification makes ``true`` the default of that hint.
    """
    prefix = _prefix(tool)
    for pattern in policy.deny:
        if name_matches(tool, pattern):
            return Denial(f"{prefix}.deny", f"the name matches the deny pattern {pattern!r}")

    if policy.deny_by_default or policy.allow is not None or policy.tools:
        # With an allow list, only it admits tools; `tools` keys admit only without one.
        if policy.allow is not None:
            patterns, rule = list(policy.allow), f"{prefix}.allow"
        elif policy.tools:
            patterns, rule = list(policy.tools), f"{prefix}.tools"
        else:
            patterns, rule = [], "isobind.defaultPolicy"
        if not any(name_matches(tool, pattern) for pattern in patterns):
            shown = ", ".join(repr(pattern) for pattern in patterns) or "(none)"
            return Denial(rule, f"the name matches none of the allowed patterns {shown}")

    annotations = tool.annotations
    reads_only = annotations.read_only is True and annotations.destructive is not True
    if policy.read_only and not reads_only:
        return Denial(
            f"{prefix}.readOnly",
            "the server is read-only and the tool is not annotated readOnlyHint: true",
        )
    if policy.deny_destructive and not reads_only and annotations.destructive is not False:
        return Denial(
            f"{prefix}.denyDestructive",
            "the tool may be destructive: it is not annotated destructiveHint: false",
        )
    return None


def check_arguments(
    tool: ToolSpec, policy: ServerPolicy, arguments: Mapping[str, Any]
) -> Denial | None:
    """Return the first argument constraint that `arguments` breaks, or `None`.

    A constrained argument that is absent from the input passes, because the
    tool's JSON Schema decides whether it is required.
    """
    return check_rule_arguments(matching_rules(tool, policy), arguments)


def check_rule_arguments(
    rules: Sequence[tuple[str, ToolRule]], arguments: Mapping[str, Any]
) -> Denial | None:
    """Return the first constraint in `rules` that `arguments` breaks, or `None`.

    `rules` is what `matching_rules` returns for the tool, which the host lists
    once per tool instead of once per call.
    """
    for rule_key, rule in rules:
        for name, constraint in rule.arguments.items():
            if name not in arguments:
                continue
            key = f"{rule_key}.arguments.{name}"
            denial = _check_argument(key, name, constraint, arguments[name])
            if denial is not None:
                return denial
    return None


def _check_argument(key: str, name: str, rule: ArgumentRule, value: Any) -> Denial | None:
    if rule.within is not None:
        denial = _check_paths(f"{key}.within", name, rule.within, value)
        if denial is not None:
            return denial
    if rule.one_of is not None and not any(_same_json(value, item) for item in rule.one_of):
        return Denial(f"{key}.oneOf", f"argument {name!r} is not one of the allowed values")
    if rule.minimum is not None or rule.maximum is not None:
        denial = _check_range(key, name, rule, value)
        if denial is not None:
            return denial
    pattern = rule.pattern
    if pattern is not None and (not isinstance(value, str) or pattern.fullmatch(value) is None):
        return Denial(
            f"{key}.pattern",
            f"argument {name!r} does not match the pattern {pattern.pattern!r}",
        )
    return None


def _same_json(left: Any, right: Any) -> bool:
    # In JSON, true is not 1, although Python's True == 1.
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return bool(left == right)


def _check_range(key: str, name: str, rule: ArgumentRule, value: Any) -> Denial | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return Denial(f"{key}.minimum", f"argument {name!r} must be a finite number")
    if rule.minimum is not None and value < rule.minimum:
        return Denial(f"{key}.minimum", f"argument {name!r} is below {rule.minimum:g}")
    if rule.maximum is not None and value > rule.maximum:
        return Denial(f"{key}.maximum", f"argument {name!r} is above {rule.maximum:g}")
    return None


def _check_paths(key: str, name: str, roots: tuple[Path, ...], value: Any) -> Denial | None:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if not isinstance(item, str) or not item:
            return Denial(key, f"argument {name!r} must be a path string or an array of them")
        if "\x00" in item:
            return Denial(key, f"argument {name!r} contains a NUL character")
        if not os.path.isabs(item):
            return Denial(key, f"argument {name!r} must be an absolute path")
        # realpath resolves `..` and every symlink that exists now, so a link inside
        # an allowed directory that points outside it is rejected.
        # NOTE: a symlink created between this check and the server's own access
        # is not seen, so the server's own confinement must stay in place too.
        resolved = Path(os.path.realpath(item))
        if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
            shown = ", ".join(str(root) for root in roots)
            return Denial(key, f"argument {name!r} resolves to a path outside {shown}")
    return None
