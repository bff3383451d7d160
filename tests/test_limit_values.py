"""Limits and settings from Python: invalid values are rejected, and many timers stay cheap."""

from __future__ import annotations

import pytest

from isobind import SandboxSettings, Toolbox
from isobind._sandbox import Limits

pytestmark = pytest.mark.anyio

# About 320 MB of V8 heap: 400 arrays of 100,000 doubles.
LARGE_HEAP = (
    "const arrays = [];\n"
    "for (let i = 0; i < 400; i++) arrays.push(new Array(1e5).fill(i + 0.5));\n"
    "return arrays.length;"
)


@pytest.mark.parametrize("memory_mb", [0, -5])
async def test_memory_mb_not_positive_rejected(memory_mb: int) -> None:
    # The CLI and the config reject these values, but from Python the run
    # goes on with no heap limit at all.
    async with Toolbox(sandbox=SandboxSettings(workers=1)) as toolbox:
        try:
            result = await toolbox.execute(LARGE_HEAP, memory_mb=memory_mb)
        except ValueError:
            return
    assert result.error is not None, "the run allocated 320 MB with no memory limit"
    assert result.error.name == "MemoryLimitExceeded"


@pytest.mark.parametrize(
    ("field", "name"),
    [
        pytest.param({"timeout": -1.0}, "timeout", id="timeout"),
        pytest.param({"memory_mb": 0}, "memory_mb", id="memory"),
    ],
)
def test_limits_reject_bad_values(field: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Limits(**field)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "name"),
    [
        pytest.param({"kill_grace": -1.0}, "kill_grace", id="kill-grace-negative"),
        pytest.param({"kill_grace": float("nan")}, "kill_grace", id="kill-grace-nan"),
        pytest.param({"start_timeout": 0.0}, "start_timeout", id="start-timeout-zero"),
    ],
)
def test_settings_reject_bad_grace(field: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SandboxSettings(**field)  # type: ignore[arg-type]


async def test_many_timers_fire_within_limits() -> None:
    # A search over every pending timer per fired timer would make 100,000
    # timers cost about 5e9 comparisons and run out of 10 s of engine time.
    code = (
        "let fired = 0;\n"
        "for (let i = 0; i < 100_000; i++) setTimeout(() => { fired++; }, 1);\n"
        "await new Promise((resolve) => setTimeout(resolve, 50));\n"
        "return fired;"
    )
    async with Toolbox(sandbox=SandboxSettings(workers=1)) as toolbox:
        result = await toolbox.execute(code)
    assert result.error is None, result.error
    assert result.result == 100_000
