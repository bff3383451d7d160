"""What a model needs to write code for a `Toolbox`: the rules, the code tool, the feedback.

The agent loop and the framework adapters share these texts, so a model sees
the same rules and the same error reports whichever way it reaches isobind.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._result import ExecutionError, ExecutionResult
from ._search import DISCOVERY_DECLARATION, ServerSummary

if TYPE_CHECKING:
    from ._toolbox import Toolbox

__all__ = [
    "CODE_TOOL_NAME",
    "CODE_TOOL_PARAMETERS",
    "ApiMode",
    "describe_code_tool",
    "execute_for_model",
    "format_execution",
    "instructions",
    "search_instructions",
    "toolbox_instructions",
]

CODE_TOOL_NAME = "execute_typescript"

CODE_TOOL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": "TypeScript, run as the body of an async function.",
        }
    },
    "required": ["code"],
    "additionalProperties": False,
}
"""JSON Schema of the code tool's arguments."""

# Characters of a run's returned JSON and of its console output sent back to the
# model. Longer text is cut, with a note of how many characters were left out.
MAX_RESULT_CHARS = 20_000
MAX_CONSOLE_CHARS = 8_000

_RULES = """\
Rules for the code:
- The code is the body of an async function. Use `await` at the top level and
  `return` the data the task needs. The returned value comes back to you as
  JSON, so return only the fields you need, not whole tool outputs.
- Call tools only as `await tools.<server>.<tool>(input)` with one input
  object that matches the declared interface. Run independent calls
  concurrently with `Promise.all`.
- The sandbox has no network, no files and no modules: `fetch`,
  `XMLHttpRequest`, `WebSocket`, `import` and `require` fail, and so do `eval`
  and `new Function`. Everything outside the sandbox goes through `tools`.
- `console.log` writes notes that come back with the result.
- Each run starts in a fresh sandbox: variables do not survive between runs.
- A run is stopped after {timeout:g} seconds.
- A failed run comes back with the error, its line and a hint. Fix the code and
  run it again.
"""


ApiMode = Literal["full", "search", "auto"]
"""The way the model gets the API: the whole declaration, search helpers, or by size."""

# Past this many characters of declaration, "auto" switches to search mode. It is
# about 10,000 tokens by the rule of thumb of four characters per token.
MAX_FULL_API_CHARS = 40_000

_SEARCH_INTRO = """\
The `tools` global has {tool_count} tools on {server_count} servers, not declared
here. Find what you need from inside your code with the `isobind` global
declared below. For example, `return await isobind.searchTools("commits of a
repository", {{detail: "declarations"}})` returns the declarations of the best
matches. Read them, then call the tools in the next run. Search before you
call a tool whose declaration you have not read.
"""


def instructions(declaration: str, *, timeout: float) -> str:
    """Return the rules for the code followed by the TypeScript API of the tools."""
    rules = _RULES.format(timeout=timeout)
    return f"{rules}\nThe API of the `tools` global:\n\n```ts\n{declaration.rstrip()}\n```\n"


def search_instructions(servers: Sequence[ServerSummary], *, timeout: float) -> str:
    """Return the rules for the code, the servers and the tool-search API, for large APIs."""
    rules = _RULES.format(timeout=timeout)
    tool_count = sum(server.tool_count for server in servers)
    intro = _SEARCH_INTRO.format(tool_count=tool_count, server_count=len(servers))
    lines = []
    for server in servers:
        about = server.title or server.description or ""
        suffix = f": {_first_line(about)}" if about else ""
        lines.append(f"- tools.{server.name} ({server.tool_count} tools){suffix}")
    listing = "\n".join(lines)
    return (
        f"{rules}\n{intro}\nServers:\n{listing}\n\n"
        f"The API of the `isobind` global:\n\n```ts\n{DISCOVERY_DECLARATION.rstrip()}\n```\n"
    )


def toolbox_instructions(toolbox: Toolbox, *, api: ApiMode = "auto") -> str:
    """Return the rules and the API of an open `toolbox`, whole or through search.

    The whole API is `Toolbox.compact_declaration`, whose descriptions are cut
    to a sentence. `api="auto"` gives it unless it is longer than
    `MAX_FULL_API_CHARS`, and the servers with the search helpers otherwise.
    """
    if api not in ("full", "search", "auto"):
        raise ValueError(f"api must be 'full', 'search' or 'auto', not {api!r}")
    declaration = toolbox.compact_declaration
    timeout = toolbox.limits.timeout
    if api == "full" or (api == "auto" and len(declaration) <= MAX_FULL_API_CHARS):
        return instructions(declaration, timeout=timeout)
    return search_instructions(toolbox.list_servers(), timeout=timeout)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 160 else f"{line[:160]}…"


def format_execution(
    result: ExecutionResult, code: str, tool_names: Iterable[tuple[str, str]]
) -> str:
    """Render a run's outcome as the text a model reads: the result, or the error and a hint.

    `tool_names` are the (server, tool) identifiers of the callable tools, used
    to suggest the closest names when the code calls one that does not exist.
    The text contains only data that the `Toolbox` already scrubbed of secrets,
    and lines of `code`.
    """
    parts: list[str] = []
    if result.error is None:
        parts.append("The run succeeded.")
        parts.append("Returned value (JSON):\n" + _returned_json(result.result))
    else:
        parts.append(_error_report(result.error, code, list(tool_names)))
    console = _console_text(result)
    if console:
        parts.append("Console output:\n" + console)
    return "\n\n".join(parts)


def _returned_json(value: Any) -> str:
    if value is None:
        return "undefined (the code returned nothing; `return` the data you need)"
    text = json.dumps(value, ensure_ascii=False, indent=1)
    return _cut(text, MAX_RESULT_CHARS, "return fewer fields")


def _console_text(result: ExecutionResult) -> str:
    lines = [
        entry.message if entry.level == "log" else f"[{entry.level}] {entry.message}"
        for entry in result.logs
    ]
    text = _cut("\n".join(lines), MAX_CONSOLE_CHARS, "log less")
    if result.logs_dropped:
        text += f"\n[{result.logs_dropped} more console messages dropped by the output limit]"
    return text


def _cut(text: str, limit: int, advice: str) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[cut: {len(text) - limit} more characters; {advice}]"


def _error_report(error: ExecutionError, code: str, tool_names: Sequence[tuple[str, str]]) -> str:
    lines = [f"The run failed with {error.name}: {error.message}"]
    source = _source_excerpt(code, error.line, error.column)
    if source:
        lines.append(source)
    hint = _hint(error, code, tool_names)
    if hint:
        lines.append(f"Hint: {hint}")
    return "\n".join(lines)


def _source_excerpt(code: str, line: int | None, column: int | None) -> str:
    """Return the failing source line, numbered, with a caret under the column."""
    if line is None:
        return ""
    code_lines = code.splitlines()
    if not 1 <= line <= len(code_lines):
        return ""
    prefix = f"{line} | "
    text = f"At line {line}" + (f", column {column}" if column else "") + ":\n"
    text += prefix + code_lines[line - 1]
    if column is not None and column >= 1:
        text += "\n" + " " * (len(prefix) + column - 1) + "^"
    return text


# A static reference to a tool, `tools.server.tool`, with optional spaces around dots.
_TOOL_REFERENCE = re.compile(r"\btools\s*\.\s*([A-Za-z_$][\w$]*)\s*\.\s*([A-Za-z_$][\w$]*)")

_HINTS_BY_NAME = {
    "NetworkAccessError": (
        "the sandbox has no network. Get the data through the `tools` functions of the API."
    ),
    "ToolInputError": "compare the input with the tool's input interface in the API.",
    "PermissionDeniedError": (
        "the host's policy denies this tool. Do not call it again; use another tool."
    ),
    "SyntaxError": (
        "the code is the body of an async function: write statements, with no `import` or `export`."
    ),
    "TimeLimitExceeded": "do less work in one run, and do not wait in loops.",
    "MemoryLimitExceeded": "keep less data in memory; return only the fields you need.",
    "DeadlockError": "await only promises that a `tools` call or your own code settles.",
    "ResultTooLargeError": "return fewer fields, or a summary of the data.",
    "EvalError": "`eval` and `new Function` are disabled; write the code directly.",
}


def _hint(error: ExecutionError, code: str, tool_names: Sequence[tuple[str, str]]) -> str:
    unknown = _unknown_tool_hint(code, tool_names)
    if unknown and error.name in ("TypeError", "ReferenceError"):
        return unknown
    if error.name == "ReferenceError":
        return (
            "only the standard JavaScript built-ins, `console` and `tools` exist in the "
            "sandbox, with no Node.js or browser globals."
        )
    return _HINTS_BY_NAME.get(error.name, unknown)


def _unknown_tool_hint(code: str, tool_names: Sequence[tuple[str, str]]) -> str:
    """Name each `tools.s.t` in `code` that is no callable tool, with the closest real names."""
    known = set(tool_names)
    servers = sorted({server for server, _ in tool_names})
    notes: list[str] = []
    for match in _TOOL_REFERENCE.finditer(code):
        server, tool = match.group(1), match.group(2)
        if (server, tool) in known:
            continue
        written = f"tools.{server}.{tool}"
        if server in servers:
            note = f"{written} does not exist: `{server}` has no tool `{tool}`"
        else:
            note = f"{written} does not exist: there is no server `{server}`"
        close = _closest_tools(server, tool, tool_names)
        if close:
            note += ". Closest names: " + ", ".join(close)
        note += "."
        if note not in notes:
            notes.append(note)
    if notes and servers:
        notes.append("Servers: " + ", ".join(servers) + ".")
    return " ".join(notes)


def _closest_tools(server: str, tool: str, tool_names: Sequence[tuple[str, str]]) -> list[str]:
    """Return up to three callable tools whose names are closest to `tools.server.tool`.

    Tool names are compared within the named server, or within the servers whose
    names are close to it, before the whole `server.tool` names are compared,
    because a shared server prefix makes every tool of that server look close.
    """
    servers = sorted({name for name, _ in tool_names})
    candidates = [server] if server in servers else difflib.get_close_matches(server, servers)
    for candidate in candidates:
        tools = [name for owner, name in tool_names if owner == candidate]
        close = difflib.get_close_matches(tool, tools, n=3, cutoff=0.6)
        if close:
            return [f"tools.{candidate}.{name}" for name in close]
    full_names = [f"{owner}.{name}" for owner, name in tool_names]
    close = difflib.get_close_matches(f"{server}.{tool}", full_names, n=3, cutoff=0.6)
    return [f"tools.{name}" for name in close]


async def execute_for_model(toolbox: Toolbox, code: str) -> str:
    """Run `code` in `toolbox` and return the outcome as the text a model reads."""
    result = await toolbox.execute(code)
    feedback = format_execution(result, code, toolbox.callable_tools)
    return toolbox.redactor.scrub_text(feedback)


def describe_code_tool(toolbox: Toolbox, *, api: ApiMode = "auto") -> str:
    """Return the code tool's description for frameworks whose prompt isobind does not own.

    It carries the rules and the API (see `toolbox_instructions`), because the
    model reads nothing else about the sandbox.
    """
    summary = (
        "Run TypeScript in a fresh sandbox that can call the tools described below, "
        "and return what the code returns, its console output or its error."
    )
    return f"{summary}\n\n{toolbox_instructions(toolbox, api=api)}"
