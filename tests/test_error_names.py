"""`SANDBOX_ERROR_NAMES` lists every error name the host reports.

The public tuple is documented as the names `ExecutionResult.error.name`
takes for isobind's own errors, so that any other name is an error the code
threw. A tool reply too large to send to the sandbox ends the run with
InputTooLargeError, which is not in the tuple.
"""

from __future__ import annotations

import pytest

from isobind import SANDBOX_ERROR_NAMES, FunctionTools, Limits, SandboxSettings, Toolbox

pytestmark = pytest.mark.anyio


def control_text(count: int) -> str:
    """Return `count` copies of U+0001, which JSON escapes to six characters."""
    return "\x01" * count


async def test_input_too_large_is_listed() -> None:
    tools = FunctionTools("t", [control_text], read_only=True)
    settings = SandboxSettings(workers=1)
    limits = Limits(timeout=60)
    async with Toolbox(functions=[tools], sandbox=settings, limits=limits) as toolbox:
        # 25 M characters make a message of about 325 MB to the sandbox.
        result = await toolbox.execute(
            "const text = await tools.t.control_text({count: 25_000_000}); return text.length"
        )

    assert result.error is not None
    assert result.error.name == "InputTooLargeError", result.error
    assert result.error.name in SANDBOX_ERROR_NAMES
