"""Approval of single tool calls by a person or a program before they run."""

from __future__ import annotations

import inspect
import json
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import anyio.to_thread

__all__ = ["ApprovalRequest", "Approver", "TerminalApprover", "ask"]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A call waiting for a decision; `input` has every secret already redacted."""

    server: str
    tool: str
    input: Any


Approver = Callable[[ApprovalRequest], bool | Awaitable[bool]]
"""A callback that returns (or resolves to) `True` to let a call run.

Any other value, an exception or no answer within the approval timeout rejects it.
"""


async def ask(approver: Approver, request: ApprovalRequest) -> bool:
    """Call `approver` and return whether it answered exactly `True`.

    The callback runs in a worker thread, so that a blocking one (a terminal
    prompt) leaves the event loop free. An awaitable it returns is awaited on the
    event loop. When the caller's timeout cancels the wait, a blocked thread is
    abandoned and its late answer ignored.
    """
    answer = await anyio.to_thread.run_sync(approver, request, abandon_on_cancel=True)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer is True


class TerminalApprover:
    """Asks on a terminal: prints the call to `output` and reads ``y`` or ``n`` from `source`.

    Questions are asked one at a time, so concurrent calls do not mix their
    prompts. End of input counts as no.

    NOTE: a question that times out leaves its thread blocked on `source`, so the
    next question waits for that read to end first.
    """

    def __init__(self, source: TextIO | None = None, output: TextIO | None = None) -> None:
        self._source = source if source is not None else sys.stdin
        self._output = output if output is not None else sys.stderr
        self._lock = threading.Lock()

    def __call__(self, request: ApprovalRequest) -> bool:
        shown = json.dumps(request.input, ensure_ascii=False)
        if len(shown) > 2000:
            shown = shown[:2000] + f"... [{len(shown) - 2000} more characters]"
        with self._lock:
            self._output.write(
                f"isobind: allow tools.{request.server}.{request.tool} with input {shown}? [y/N] "
            )
            self._output.flush()
            line = self._source.readline()
        return line.strip().lower() in ("y", "yes")
