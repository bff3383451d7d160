"""The README's commands and examples, checked so that they cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys

from isobind import load_config

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_first_two_blocks_are_commands() -> None:
    first_block_language = re.search(r"```(\w+)", README)
    assert first_block_language is not None
    assert first_block_language.group(1) == "sh"
    install, test = code_blocks("sh")[:2]
    assert "isobind exec" in install
    assert "pytest" in test


def test_ci_runs_readme_commands() -> None:
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in code_blocks("sh")[:2]:
        assert command.strip() in ci_script


def test_python_example_runs() -> None:
    (example,) = [block for block in code_blocks("python") if "asyncio.run(" in block]
    completed = subprocess.run(
        [sys.executable, "-c", example],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "declare namespace tools.time" in completed.stdout
    assert "True" in completed.stdout


def test_bundled_example_config_loads() -> None:
    config = load_config(ROOT / "examples" / "isobind.json", environ={})
    assert set(config.servers) == {"time", "git", "forecast"}
