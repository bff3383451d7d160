"""Shared parts of the tests that kill, stop or starve sandbox workers.

A worker the pool kills may leave its subprocess transport to the garbage
collector, which then warns about it. Test modules that kill workers add
`KILLED_WORKER_MARKS` to their `pytestmark` and import the autouse fixture
`collect_killed_transports`, so that these warnings neither fail the test
that caused them nor a later one.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

KILLED_WORKER_MARKS = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def collect_killed_transports() -> Iterator[None]:
    """Collect the transports of killed workers while their ResourceWarning is ignored."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def child_pids(command_part: bytes = b"") -> set[int]:
    """Return the ids of this process's children whose command line contains `command_part`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and command_part in command:
            found.add(int(entry.name))
    return found
