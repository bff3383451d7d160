"""Call budgets: calls per run, per tool, and per sliding time window across runs."""

from __future__ import annotations

import collections
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._policy import Denial, RateLimit, ServerPolicy, matching_rules
from ._tools import ToolSpec

__all__ = ["BudgetLimits", "RateWindows", "RunBudget"]

logger = logging.getLogger(__name__)

# Seconds a call waits for another process that holds the store's write lock. The
# check runs on the event loop, so this also bounds how long it can stall.
_STORE_LOCK_TIMEOUT = 5.0


class RateWindows:
    """Timestamps of recent calls per rule, shared by every run of one `Toolbox`.

    Without a `store`, the windows live in memory: separate processes (each
    `isobind exec`) do not share them, and a window restarts with every process.
    With a `store` (an SQLite file), every process that uses the same file counts
    its calls in the same windows, by wall-clock time. A store that cannot be
    read or written rejects the call, because a rate limit must not fail open.
    """

    def __init__(self, store: Path | None = None, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self._clock = clock or (time.monotonic if store is None else time.time)
        self._calls: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def check(self, limits: list[tuple[str, str, RateLimit]]) -> Denial | None:
        """Count one call against every limit, or return the first limit it would break.

        Each limit is a rule's key path, the name of the window it counts in, and
        the limit. The call is counted only when no limit is broken, so a rejected
        call does not use up the window.
        """
        if not limits:
            return None
        now = self._clock()
        with self._lock:
            if self.store is None:
                return self._check_memory(limits, now)
            try:
                return self._check_store(limits, now)
            except sqlite3.Error as error:
                logger.error("rate-limit store %s failed: %s", self.store, error)
                return Denial(
                    limits[0][0],
                    f"the rate-limit store {self.store} failed ({error}); check that the "
                    "file is writable and not used by another program",
                )

    def close(self) -> None:
        """Close the store's connection, if one is open."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _check_memory(self, limits: list[tuple[str, str, RateLimit]], now: float) -> Denial | None:
        for key, window, limit in limits:
            calls = self._calls.setdefault(window, collections.deque())
            while calls and calls[0] <= now - limit.seconds:
                calls.popleft()
            if len(calls) >= limit.calls:
                return _used_up(key, limit)
        for _, window, _ in limits:
            self._calls[window].append(now)
        return None

    def _check_store(self, limits: list[tuple[str, str, RateLimit]], now: float) -> Denial | None:
        connection = self._connect()
        # BEGIN IMMEDIATE takes the file's write lock, so that two processes cannot
        # both count the last call of a window.
        connection.execute("BEGIN IMMEDIATE")
        # Another config may share the store with a rule of the same name but another
        # limit. Each limit counts in its own window, so that neither expires the
        # other's calls early.
        limits = [
            (key, f"{window}\x00{limit.calls}/{limit.seconds!r}", limit)
            for key, window, limit in limits
        ]
        try:
            for key, window, limit in limits:
                connection.execute(
                    "DELETE FROM calls WHERE window = ? AND at <= ?", (window, now - limit.seconds)
                )
                (count,) = connection.execute(
                    "SELECT COUNT(*) FROM calls WHERE window = ?", (window,)
                ).fetchone()
                if count >= limit.calls:
                    connection.execute("COMMIT")
                    return _used_up(key, limit)
            connection.executemany(
                "INSERT INTO calls (window, at) VALUES (?, ?)",
                [(window, now) for _, window, _ in limits],
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            assert self.store is not None
            connection = sqlite3.connect(
                self.store,
                timeout=_STORE_LOCK_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS calls (window TEXT NOT NULL, at REAL NOT NULL)"
                )
                connection.execute("CREATE INDEX IF NOT EXISTS calls_window ON calls (window, at)")
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection


def _used_up(key: str, limit: RateLimit) -> Denial:
    return Denial(key, f"the rate limit of {limit.calls} calls per {limit.seconds:g} s is used up")


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """The per-run and rate limits that one tool's calls count against.

    Each per-run limit is a rule's key path, the counter it uses and the max
    calls. Each rate limit is a rule's key path, the name of its window and the
    limit. They depend only on the tool and its server's policy, so the host
    works them out once per tool.
    """

    per_run: tuple[tuple[str, tuple[str, str], int], ...] = ()
    windows: tuple[tuple[str, str, RateLimit], ...] = ()

    @classmethod
    def of(cls, tool: ToolSpec, policy: ServerPolicy) -> BudgetLimits:
        """Collect the limits of the server and of each ``tools`` entry matching `tool`."""
        prefix = f"isobind.servers.{tool.server}"
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
        return cls(tuple(per_run), tuple(windows))


class RunBudget:
    """Calls counted in one run against the per-run limits of the policies.

    A server's limits count the calls of all its tools together. A ``tools``
    entry's limits count each matching tool on its own, so ``"*"`` with
    ``maxCallsPerRun: 2`` allows two calls of every tool.
    """

    def __init__(self, windows: RateWindows) -> None:
        self._windows = windows
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def spend(self, limits: BudgetLimits) -> Denial | None:
        """Count one call against `limits`, or return the budget rule that it would break."""
        for key, counter, limit in limits.per_run:
            if self._counts[counter] >= limit:
                return Denial(key, f"the budget of {limit} calls per run is used up")
        if limits.windows:
            denial = self._windows.check(list(limits.windows))
            if denial is not None:
                return denial
        for _, counter, _ in limits.per_run:
            self._counts[counter] += 1
        return None
