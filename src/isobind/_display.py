"""Live terminal output of `isobind run`: model text, code runs, tool calls, the answer."""

from __future__ import annotations

import json

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text

from ._agent import AgentEvents, AgentResult, CodeRun
from ._providers import ModelResponse
from ._result import CallRecord
from ._terminal import printable

__all__ = ["TerminalEvents", "print_answer"]

# Characters of a tool input or of a returned value shown on one progress line.
_PREVIEW_CHARS = 160


class TerminalEvents(AgentEvents):
    """Prints the progress of a session to `console` as it happens."""

    def __init__(self, console: Console):
        self.console = console
        self._in_text = False

    def model_text(self, delta: str) -> None:
        self.console.print(printable(delta), end="", markup=False, highlight=False)
        self._in_text = True

    def model_turn(self, response: ModelResponse) -> None:
        if self._in_text:
            self.console.print()
            self._in_text = False

    def run_started(self, code: str) -> None:
        syntax = Syntax(printable(code), "typescript", line_numbers=True, word_wrap=True)
        self.console.print(Panel(syntax, title="code run", title_align="left", expand=False))

    def tool_call(self, record: CallRecord) -> None:
        line = Text("  → ", style="dim")
        line.append(printable(f"{record.server}.{record.tool}"), style="cyan")
        line.append(f"({_preview(record.input)})")
        if record.ok:
            line.append(f" ok, {record.duration_ms:.0f} ms", style="green")
        else:
            error = record.error or {}
            failure = f" {error.get('name', 'error')}: {error.get('message', '')}"
            line.append(printable(failure), style="red")
        self.console.print(line)

    def run_finished(self, run: CodeRun) -> None:
        result = run.result
        if result is None:
            self.console.print(Text(printable(run.feedback), style="red"))
            return
        for entry in result.logs:
            message = printable(f"  console.{entry.level}: {entry.message}")
            self.console.print(Text(message, style="dim"))
        if result.error is None:
            summary = Text("  returned ", style="green")
            summary.append(_preview(result.result), style="default")
        else:
            error = result.error
            where = f" at line {error.line}" if error.line else ""
            summary = Text(printable(f"  {error.name}{where}: {error.message}"), style="bold red")
        self.console.print(summary)


def print_answer(console: Console, status_console: Console, result: AgentResult) -> None:
    """Print the answer to `console` and a summary of the session to `status_console`."""
    usage = result.usage
    executed = sum(run.result is not None for run in result.runs)
    rejected = len(result.runs) - executed
    summary = f"{result.status}: {result.turns} model turns, {executed} code runs, "
    if rejected:
        summary += f"{rejected} rejected tool calls, "
    summary += f"{usage.input_tokens} input and {usage.output_tokens} output tokens"
    status_console.print(Rule(summary, style="dim"))
    if result.answer is not None:
        console.print(printable(result.answer), markup=False, highlight=False)
    elif result.status == "max_turns":
        status_console.print("No answer: the model used every turn; raise --max-turns.")
    else:
        status_console.print("No answer: the session used its token budget; raise --max-tokens.")


def _preview(value: object) -> str:
    text = printable(json.dumps(value, ensure_ascii=False))
    if len(text) > _PREVIEW_CHARS:
        return f"{text[:_PREVIEW_CHARS]}…"
    return text
