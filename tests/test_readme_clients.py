"""The client configuration snippets in the README parse, and name valid `isobind serve` options."""

from __future__ import annotations

import json
import re
import shlex
import urllib.parse
from typing import Any

import pytest
import typer

from isobind._cli import app

from .conftest import ROOT

SECTION = "## Serving Code Mode to MCP clients"


def section_blocks(language: str) -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    text = readme[start : end if end != -1 else len(readme)]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def parse_isobind_args(args: list[str]) -> Any:
    """Parse `args` as the `isobind` command line would, without running the command.

    Raises the command line's usage error for an unknown or invalid option.
    """
    group: Any = typer.main.get_command(app)
    name, *rest = args
    command = group.get_command(group.context_class(group), name)
    assert command is not None, f"unknown isobind command {name!r}"
    return command.make_context(name, rest)


def check_url(url: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    assert parsed.scheme == "http"
    assert parsed.hostname == "127.0.0.1"
    assert parsed.path == "/mcp"


def test_section_has_snippets() -> None:
    assert len(section_blocks("json")) == 2
    assert len(section_blocks("sh")) == 3


@pytest.mark.parametrize("index", [0, 1], ids=["stdio", "http"])
def test_json_snippet_is_valid(index: int) -> None:
    data = json.loads(section_blocks("json")[index])
    entry = data["mcpServers"]["isobind"]
    if "command" in entry:
        assert entry["command"].endswith("/isobind")
        context = parse_isobind_args(entry["args"])
        assert context.params["config"] is not None
    else:
        check_url(entry["url"])
        assert entry["headers"]["Authorization"].startswith("Bearer ")


def test_shell_snippets_are_valid() -> None:
    commands = [
        shlex.split(line)
        for block in section_blocks("sh")
        for line in block.splitlines()
        if line.strip()
    ]
    serve_lines = [words for words in commands if words[0].endswith("isobind") or "=" in words[0]]
    claude_lines = [words for words in commands if words[0] == "claude"]
    assert len(serve_lines) == 2
    assert len(claude_lines) == 2

    for words in serve_lines:
        while "=" in words[0]:
            words = words[1:]
        parse_isobind_args(words[1 : words.index("#") if "#" in words else None])

    stdio, http = claude_lines
    assert stdio[:3] == ["claude", "mcp", "add"]
    parse_isobind_args(stdio[stdio.index("--") + 2 :])
    assert http[3:5] == ["--transport", "http"]
    check_url(http[6])
    assert http[http.index("--header") + 1].startswith("Authorization: Bearer ")
