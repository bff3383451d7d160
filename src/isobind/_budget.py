"""Call budgets: calls per run, per tool, and per sliding time window across runs."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from ._policy import Denial, RateLimit, ServerPolicy, matching_rules
from ._tools import ToolSpec

__all__ = ["RateWindows", "RunBudget"]


class RateWindows:
    """Timestamps of recent calls per rule, shared by every run of one `Toolbox`.

    NOTE: the windows live in memory, so separate processes (each `isobind exec`)
    do not share them and a window restarts with every process.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._calls: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, limits: list[tuple[str, str, RateLimit]]) -> Denial | None:
        """Count one call against every limit, or return the first limit it would break.

        Each limit is a rule's key path, the name of the window it counts in, and
        the limit. The call is counted only when no limit is broken, so a rejected
        call does not use up the window.
        """
        now = self._clock()
        with self._lock:
            for key, window, limit in limits:
                calls = self._calls.setdefault(window, collections.deque())
                while calls and calls[0] <= now - limit.seconds:
                    calls.popleft()
                if len(calls) >= limit.calls:
                    return Denial(
                        key,
                        f"the rate limit of {limit.calls} calls per {limit.seconds:g} s is used up",
                    )
            for _, window, _ in limits:
                self._calls[window].append(now)
        return None


class RunBudget:
    """Calls counted in one run against the per-run limits of the policies.

    A server's limits count the calls of all its tools together. A ``tools``
    entry's limits count each matching tool on its own, so ``"*"`` with
    ``maxCallsPerRun: 2`` allows two calls of every tool.
    """

    def __init__(self, windows: RateWindows) -> None:
        self._windows = windows
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def spend(self, tool: ToolSpec, policy: ServerPolicy) -> Denial | None:
        """Count one call of `tool`, or return the budget rule that it would break."""
        prefix = f"isobind.servers.{tool.server}"
        # Each limit: the rule's key path, the counter it uses, and the limit.
        per_run: list[tuple[str, tuple[str, str], int]] = []
        windows: list[tuple[str, str, RateLimit]] = []
        if policy.max_calls_per_run is not None:
            key = f"{prefix}.maxCallsPerRun"
            per_run.append((key, (key, ""), policy.max_calls_per_run))
        if policy.rate_limit is not None:
            key = f"{prefix}.rateLimit"
            windows.append((key, key, policy.rate_limit))
        for key, rule in matching_rules(tool, policy):
            if rule.max_calls_per_run is not None:
                run_key = f"{key}.maxCallsPerRun"
                per_run.append((run_key, (run_key, tool.name), rule.max_calls_per_run))
            if rule.rate_limit is not None:
                window_key = f"{key}.rateLimit"
                windows.append((window_key, f"{window_key}\x00{tool.name}", rule.rate_limit))

        for key, counter, limit in per_run:
            if self._counts[counter] >= limit:
                return Denial(key, f"the budget of {limit} calls per run is used up")
        denial = self._windows.check(windows)
        if denial is not None:
            return denial
        for _, counter, _ in per_run:
            self._counts[counter] += 1
        return None
