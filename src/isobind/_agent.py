"""The agent loop: a model reads the API, writes code, reads the outcome, and replies.

The model has one tool, `execute_typescript`. Each call runs its code in a
fresh isolate of the `Toolbox`; the result, or the error with the failing line
and a hint, goes back to the model as the tool's output. The loop ends when
the model answers without calling the tool, or when a turn or token limit is
reached.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio.to_thread

from ._codemode import (
    CODE_TOOL_NAME,
    CODE_TOOL_PARAMETERS,
    ApiMode,
    format_execution,
    toolbox_instructions,
)
from ._log_scrub import scrub_credential_shapes
from ._providers import FunctionSpec, Message, ModelResponse, Provider, ToolCall, Usage
from ._result import CallRecord, ExecutionResult
from ._toolbox import Toolbox

__all__ = ["Agent", "AgentEvents", "AgentLimits", "AgentResult", "CodeRun", "system_prompt"]

logger = logging.getLogger(__name__)

Status = Literal["answered", "max_turns", "max_tokens"]

_SYSTEM_INTRO = """\
You complete the user's task by writing TypeScript that runs in a sandbox. Run
code with the `execute_typescript` tool; it returns what the code returns, its
console output, or its error. Prefer one run that does all the steps of the
task over many small runs. When you have what the task needs, reply with the
answer in plain text, without calling the tool.
"""

_CODE_TOOL_DESCRIPTION = (
    "Run TypeScript in a fresh sandbox against the `tools` API of the system prompt. "
    "The code is the body of an async function: `return` the data you need."
)


def system_prompt(toolbox: Toolbox, *, api: ApiMode = "auto") -> str:
    """Return the system prompt: the task of the model, the rules for the code and the API."""
    return f"{_SYSTEM_INTRO}\n{toolbox_instructions(toolbox, api=api)}"


CODE_TOOL = FunctionSpec(CODE_TOOL_NAME, _CODE_TOOL_DESCRIPTION, CODE_TOOL_PARAMETERS)


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """Budgets of one session."""

    max_turns: int = 20
    """Model responses per session."""
    max_tokens: int = 200_000
    """Input and output tokens per session, as the provider counts them; checked before
    each request, so the last request may pass the budget."""
    max_output_tokens: int = 4_096
    """Output tokens per model response."""


@dataclass(frozen=True, slots=True)
class CodeRun:
    """One call of the code tool: the code, its execution and the text the model got back."""

    call_id: str
    code: str
    result: ExecutionResult | None
    """`None` when the call never ran, such as arguments that are not valid JSON."""
    feedback: str

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"callId": self.call_id, "code": self.code}
        data["execution"] = self.result.to_dict() if self.result is not None else None
        data["feedback"] = self.feedback
        return data


@dataclass(slots=True)
class AgentResult:
    """The outcome of a session: the answer (when the model gave one) and what led to it."""

    status: Status
    answer: str | None
    turns: int
    runs: list[CodeRun]
    usage: Usage
    messages: list[Message]
    """The conversation as the model received it, without the system prompt."""
    session_id: str
    duration: float = 0.0
    """Wall-clock seconds of the whole session."""

    def to_dict(self) -> dict[str, Any]:
        """Return the `--json` form of `isobind run`."""
        return {
            "status": self.status,
            "answer": self.answer,
            "turns": self.turns,
            "usage": self.usage.to_dict(),
            "runs": [run.to_dict() for run in self.runs],
            "conversation": [message.to_dict() for message in self.messages],
            "sessionId": self.session_id,
            "durationMs": round(self.duration * 1000, 3),
        }


class AgentEvents:
    """Receives the progress of a session as it happens; every method does nothing by default."""

    def model_text(self, delta: str) -> None:
        """Receive a piece of the model's text as it streams in."""

    def model_turn(self, response: ModelResponse) -> None:
        """Receive a whole model response once it has arrived."""

    def run_started(self, code: str) -> None:
        """Receive the code of a run that is about to start."""

    def tool_call(self, record: CallRecord) -> None:
        """Receive a tool call of the running code once it has ended."""

    def run_finished(self, run: CodeRun) -> None:
        """Receive a finished run with the feedback sent to the model."""


@dataclass(slots=True)
class _Session:
    messages: list[Message]
    runs: list[CodeRun] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    turns: int = 0


class Agent:
    """Runs tasks with a model that writes code against a `Toolbox`.

    The toolbox must be open. The provider's API key should be among the
    toolbox's secrets so that it is scrubbed wherever it might appear. `api`
    chooses how the system prompt gives the API: `"full"` declares every tool,
    `"search"` lists the servers and the `isobind.searchTools` helpers, and
    `"auto"` searches only when the declaration is too long for a prompt.
    """

    def __init__(
        self,
        toolbox: Toolbox,
        provider: Provider,
        *,
        limits: AgentLimits | None = None,
        events: AgentEvents | None = None,
        api: ApiMode = "auto",
    ):
        self.toolbox = toolbox
        self.provider = provider
        self.api = api
        self.limits = limits if limits is not None else AgentLimits()
        self.events = events if events is not None else AgentEvents()

    @property
    def system_prompt(self) -> str:
        return system_prompt(self.toolbox, api=self.api)

    async def run(self, task: str) -> AgentResult:
        """Run one session for `task` and return its outcome.

        Raises `ModelError` when the provider fails; the audit log (when the
        toolbox has one) then gets a session record with the error.
        """
        session_id = uuid.uuid4().hex
        started_at = datetime.datetime.now(datetime.UTC)
        started = time.monotonic()
        scrub = self.toolbox.redactor.scrub_text
        session = _Session(messages=[Message("user", scrub(task))])
        logger.info("session %s started with model %s", session_id, self.provider.model)
        try:
            status, answer = await self._loop(session)
        except Exception as error:
            await self._audit(session_id, started_at, started, task, session, error=error)
            raise
        result = AgentResult(
            status=status,
            answer=answer,
            turns=session.turns,
            runs=session.runs,
            usage=session.usage,
            messages=session.messages,
            session_id=session_id,
            duration=time.monotonic() - started,
        )
        logger.info(
            "session %s ended: %s after %d turns, %d runs",
            session_id,
            status,
            session.turns,
            len(session.runs),
        )
        await self._audit(session_id, started_at, started, task, session, result=result)
        return result

    async def _loop(self, session: _Session) -> tuple[Status, str | None]:
        limits = self.limits
        scrub = self.toolbox.redactor.scrub_text
        # Tool descriptions come from the servers, which may quote their own secrets.
        system = scrub(self.system_prompt)
        while True:
            if session.turns >= limits.max_turns:
                return "max_turns", None
            if session.usage.total_tokens >= limits.max_tokens:
                return "max_tokens", None
            # NOTE: streamed text is scrubbed piece by piece, so a secret split across
            # two pieces reaches the events unscrubbed. Everything sent to the model
            # is scrubbed, so it can only write a secret it guessed, and the final
            # answer is scrubbed whole.
            response = await self.provider.complete(
                system=system,
                messages=session.messages,
                tools=[CODE_TOOL],
                max_tokens=limits.max_output_tokens,
                on_text=lambda delta: self.events.model_text(scrub(delta)),
            )
            session.turns += 1
            session.usage += response.usage
            self.events.model_turn(response)
            session.messages.append(Message("assistant", response.text, response.tool_calls))
            if not response.tool_calls:
                return "answered", scrub(response.text)
            for call in response.tool_calls:
                run = await self._run_call(call)
                session.runs.append(run)
                is_error = run.result is None or not run.result.ok
                session.messages.append(
                    Message("tool", run.feedback, tool_call_id=call.id, is_error=is_error)
                )

    async def _run_call(self, call: ToolCall) -> CodeRun:
        if call.name != CODE_TOOL_NAME:
            feedback = f"There is no tool {call.name!r}. Run code with `{CODE_TOOL_NAME}`."
            return CodeRun(call.id, "", None, feedback)
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as error:
            feedback = (
                f"The arguments of `{CODE_TOOL_NAME}` are not valid JSON ({error}); "
                'send {"code": "..."}.'
            )
            return CodeRun(call.id, call.arguments, None, feedback)
        code = arguments.get("code") if isinstance(arguments, dict) else None
        if not isinstance(code, str):
            feedback = f'`{CODE_TOOL_NAME}` takes {{"code": "..."}} with the code as a string.'
            return CodeRun(call.id, call.arguments, None, feedback)

        # The terminal shows the code as a log would: without credentials, even guessed ones.
        displayed_code = scrub_credential_shapes(self.toolbox.redactor.scrub_text(code))
        self.events.run_started(displayed_code)
        result = await self.toolbox.execute(code, on_call=self.events.tool_call)
        feedback = format_execution(result, code, self.toolbox.callable_tools)
        run = CodeRun(call.id, code, result, self.toolbox.redactor.scrub_text(feedback))
        self.events.run_finished(run)
        return run

    async def _audit(
        self,
        session_id: str,
        started_at: datetime.datetime,
        started: float,
        task: str,
        session: _Session,
        *,
        result: AgentResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        audit = self.toolbox.audit
        if audit is None:
            return
        record: dict[str, Any] = {
            "type": "session",
            "sessionId": session_id,
            "startedAt": started_at.isoformat(),
            "provider": self.provider.name,
            "model": self.provider.model,
            "task": task,
            "status": result.status if result is not None else "error",
            "answer": result.answer if result is not None else None,
            "error": f"{type(error).__name__}: {error}" if error is not None else None,
            "turns": session.turns,
            "usage": session.usage.to_dict(),
            "executionIds": [
                run.result.execution_id for run in session.runs if run.result is not None
            ],
            "timings": {"durationMs": round((time.monotonic() - started) * 1000, 3)},
            "limits": {
                "maxTurns": self.limits.max_turns,
                "maxTokens": self.limits.max_tokens,
                "maxOutputTokens": self.limits.max_output_tokens,
            },
        }
        await anyio.to_thread.run_sync(audit.write, record)
