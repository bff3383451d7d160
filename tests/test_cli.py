"""The `isobind` command line, run as a real subprocess against real servers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from isobind import load_config

from .conftest import EXAMPLES, TESTS, write_config

ISOBIND = [sys.executable, "-m", "isobind"]


def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [*ISOBIND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def time_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = {
        "mcpServers": {
            "time": {"command": "mcp-server-time", "args": ["--local-timezone", "Etc/UTC"]},
            "forecast": {
                "command": sys.executable,
                "args": [str(EXAMPLES / "servers" / "forecast.py")],
                "env": {"FORECAST_API_KEY": "${CLI_TEST_KEY:-cli-test-key-7a6b5c4d}"},
            },
        },
        "isobind": {"servers": {"time": {"deny": ["convert_time"]}}},
    }
    return write_config(tmp_path_factory.mktemp("cli"), data)


def write_script(directory: Path, code: str, name: str = "script.ts") -> Path:
    path = directory / name
    path.write_text(code, encoding="utf-8")
    return path


def test_exec_json_success(time_config: Path, tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        "const now: {timezone: string} =\n"
        "  await tools.time.get_current_time({timezone: 'Asia/Tokyo'});\n"
        "console.log('zone', now.timezone);\n"
        "return now.timezone;\n",
    )
    completed = run_cli("exec", str(script), "--config", str(time_config), "--json")
    assert completed.returncode == 0, completed.stderr
    output = json.loads(completed.stdout)
    assert set(output) >= {"ok", "result", "logs", "calls", "error"}
    assert output["ok"] is True
    assert output["result"] == "Asia/Tokyo"
    assert output["logs"] == [{"level": "log", "message": "zone Asia/Tokyo"}]
    assert output["calls"][0]["tool"] == "get_current_time"
    assert output["error"] is None


def test_exec_json_failure_exit_one(time_config: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, "const a = 1;\nthrow new RangeError('too far');\n")
    completed = run_cli("exec", str(script), "--config", str(time_config), "--json")
    assert completed.returncode == 1
    output = json.loads(completed.stdout)
    assert output["ok"] is False
    assert output["error"]["name"] == "RangeError"
    assert output["error"]["message"] == "too far"
    assert output["error"]["line"] == 2


def test_exec_human_output(time_config: Path, tmp_path: Path) -> None:
    script = write_script(
        tmp_path, "console.log('hello', {a: 1});\nreturn {answer: 42};\n", name="hello.js"
    )
    completed = run_cli("exec", str(script), "--config", str(time_config))
    assert completed.returncode == 0, completed.stderr
    assert "hello { a: 1 }" in completed.stdout
    assert '"answer": 42' in completed.stdout


def test_exec_human_error_shows_location(time_config: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, "\n\nawait fetch('http://127.0.0.1:9/');\n", name="net.ts")
    completed = run_cli("exec", str(script), "--config", str(time_config))
    assert completed.returncode == 1
    assert "NetworkAccessError at line 3" in completed.stderr
    assert "net.ts:3" in completed.stderr


def test_exec_reads_stdin(time_config: Path) -> None:
    completed = run_cli("exec", "-", "--config", str(time_config), "--json", stdin="return 1 + 1")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["result"] == 2


def test_exec_timeout_option(time_config: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, "while (true) {}")
    completed = run_cli(
        "exec", str(script), "--config", str(time_config), "--json", "--timeout", "0.3"
    )
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["error"]["name"] == "TimeLimitExceeded"


def test_exec_memory_option(time_config: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, "const a = []; for (;;) a.push({x: Math.random()});")
    completed = run_cli(
        "exec", str(script), "--config", str(time_config), "--json", "--memory-mb", "16"
    )
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["error"]["name"] == "MemoryLimitExceeded"


def test_exec_audit_option(time_config: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, "return await tools.forecast.list_cities()")
    audit = tmp_path / "audit.jsonl"
    completed = run_cli("exec", str(script), "--config", str(time_config), "--audit", str(audit))
    assert completed.returncode == 0, completed.stderr
    records = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert records[-1]["type"] == "execution"
    assert records[-1]["calls"][0]["tool"] == "list-cities"
    assert "cli-test-key-7a6b5c4d" not in audit.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        pytest.param("{not json", "invalid JSON", id="malformed-json"),
        pytest.param('{"servers": {}}', "mcpServers", id="missing-mcpServers"),
        pytest.param(
            '{"mcpServers": {"a": {"command": "x"}}, "isobind": {"timeot": 3}}',
            "timeot",
            id="unknown-isobind-key",
        ),
        pytest.param(
            '{"mcpServers": {"a": {"command": "x", "env": {"K": "${ISOBIND_TEST_UNSET}"}}}}',
            "ISOBIND_TEST_UNSET",
            id="missing-variable",
        ),
    ],
)
def test_config_error_exit_two(tmp_path: Path, config_text: str, expected: str) -> None:
    config = tmp_path / "broken.json"
    config.write_text(config_text, encoding="utf-8")
    script = write_script(tmp_path, "return 1")
    completed = run_cli("exec", str(script), "--config", str(config))
    assert completed.returncode == 2
    assert "broken.json" in completed.stderr
    assert expected in completed.stderr
    assert "Traceback" not in completed.stderr


def test_missing_server_command_exit_two(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, {"mcpServers": {"ghost": {"command": "isobind-no-such-server-command"}}}
    )
    script = write_script(tmp_path, "return 1")
    completed = run_cli("exec", str(script), "--config", str(config))
    assert completed.returncode == 2
    assert "ghost" in completed.stderr
    assert "not found" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_server_exiting_at_once_exit_two(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "mcpServers": {
                "forecast": {
                    "command": sys.executable,
                    "args": [str(EXAMPLES / "servers" / "forecast.py")],
                }
            }
        },
    )
    script = write_script(tmp_path, "return 1")
    completed = run_cli("exec", str(script), "--config", str(config))
    assert completed.returncode == 2
    assert "forecast" in completed.stderr
    assert "FORECAST_API_KEY" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_server_printing_to_stdout_named(tmp_path: Path) -> None:
    # A process that writes plain text to stdout and exits, as a misconfigured
    # server or a wrong command does.
    config = write_config(
        tmp_path, {"mcpServers": {"junk": {"command": "echo", "args": ["garbage", "line"]}}}
    )
    completed = run_cli("exec", "-", "--config", str(config), stdin="return 1")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "not JSON-RPC" in completed.stderr
    assert "'garbage line'" in completed.stderr
    assert "error: MCP server 'junk'" in completed.stderr


def test_missing_script_exit_two(time_config: Path, tmp_path: Path) -> None:
    completed = run_cli("exec", str(tmp_path / "nope.ts"), "--config", str(time_config))
    assert completed.returncode == 2
    assert "nope.ts" in completed.stderr


def test_types_prints_declaration(time_config: Path) -> None:
    completed = run_cli("types", "--config", str(time_config))
    assert completed.returncode == 0, completed.stderr
    assert "declare namespace tools.time" in completed.stdout
    assert "function get_current_time(" in completed.stdout
    assert "function get_forecast(" in completed.stdout
    assert "function convert_time(" not in completed.stdout


def test_version_option() -> None:
    completed = run_cli("--version")
    assert completed.returncode == 0
    assert completed.stdout.startswith("isobind ")


def test_non_utf8_script_exit_two(time_config: Path, tmp_path: Path) -> None:
    script = tmp_path / "latin1.ts"
    script.write_bytes(b"return '\xe9t\xe9';")
    completed = run_cli("exec", str(script), "--config", str(time_config))
    assert completed.returncode == 2
    assert "not UTF-8" in completed.stderr


def test_bad_audit_path_fails_before_run(time_config: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    script = write_script(tmp_path, "console.log('ran'); return 1")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    completed = run_cli(
        "exec", str(script), "--config", str(time_config), "--audit", str(blocker / "a.jsonl")
    )
    assert completed.returncode == 2
    assert "audit" in completed.stderr
    assert "ran" not in completed.stdout
    assert not marker.exists()


def test_escape_sequences_shown_escaped(time_config: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, "console.log('a\\x1b]0;title\\x07b\\x1b[2J');")
    completed = run_cli("exec", str(script), "--config", str(time_config))
    assert completed.returncode == 0, completed.stderr
    assert "\x1b" not in completed.stdout
    assert "\\x1b]0;title\\x07b" in completed.stdout


def test_timeout_raises_engine_time_budget(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"mcpServers": {}}), environ={})
    assert config.run_limits(timeout=60, memory_mb=16).cpu_time == 60
    assert config.run_limits(timeout=60, memory_mb=16).timeout == 60
    assert config.run_limits(timeout=2, memory_mb=16).cpu_time == 10


def process_gone(pid: int) -> bool:
    """Return whether `pid` has exited (a zombie that no one reaped counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard uses prctl")
def test_killed_exec_takes_servers_with_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = write_config(
        tmp_path,
        {
            "mcpServers": {
                "control": {
                    "command": sys.executable,
                    "args": [str(TESTS / "servers" / "control.py")],
                    "env": {"CONTROL_STATE_DIR": str(state)},
                }
            }
        },
    )
    process = subprocess.Popen(
        [*ISOBIND, "exec", "-", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write('return await tools.control.block({label: "stuck", seconds: 120});')
    process.stdin.close()
    marker = state / "stuck.started"
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the server never started the call"
    server_pid = int(marker.read_text(encoding="utf-8"))

    process.kill()
    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while not process_gone(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_gone(server_pid), "the server outlived the killed isobind process"


def started_workers(stderr: str) -> list[str]:
    """Return the numbers of the sandbox workers that a verbose run logged as started."""
    return re.findall(r"sandbox worker (\d+) started", stderr)


def test_exec_sandbox_inprocess_option(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mcpServers": {}})
    completed = run_cli(
        "exec", "-", "--config", str(config), "--json", "-v", "--sandbox", "inprocess",
        stdin="return 6 * 7",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["result"] == 42
    assert started_workers(completed.stderr) == []


def test_exec_workers_option_overrides_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mcpServers": {}, "isobind": {"sandbox": {"workers": 1}}})
    from_config = run_cli("exec", "-", "--config", str(config), "--json", "-v", stdin="return 1")
    overridden = run_cli(
        "exec", "-", "--config", str(config), "--json", "-v", "--workers", "2", stdin="return 1"
    )
    assert from_config.returncode == 0, from_config.stderr
    assert sorted(started_workers(from_config.stderr)) == ["1"]
    assert overridden.returncode == 0, overridden.stderr
    assert sorted(started_workers(overridden.stderr)) == ["1", "2"]


def test_exec_sandbox_mode_from_config(tmp_path: Path) -> None:
    data = {"mcpServers": {}, "isobind": {"sandbox": {"mode": "inprocess"}}}
    config = write_config(tmp_path, data)
    in_config = run_cli("exec", "-", "--config", str(config), "--json", "-v", stdin="return 1")
    overridden = run_cli(
        "exec", "-", "--config", str(config), "--json", "-v", "--sandbox", "workers",
        "--workers", "1", stdin="return 1",
    )  # fmt: skip
    assert in_config.returncode == 0, in_config.stderr
    assert started_workers(in_config.stderr) == []
    assert overridden.returncode == 0, overridden.stderr
    assert started_workers(overridden.stderr) == ["1"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param("--workers", "0", id="workers-zero"),
        pytest.param("--workers", "many", id="workers-word"),
        pytest.param("--sandbox", "docker", id="sandbox-unknown"),
    ],
)
def test_exec_invalid_sandbox_option_exit_two(tmp_path: Path, option: str, value: str) -> None:
    config = write_config(tmp_path, {"mcpServers": {}})
    completed = run_cli("exec", "-", "--config", str(config), option, value, stdin="return 1")
    assert completed.returncode == 2
    assert option in completed.stderr


def test_exec_invalid_sandbox_config_exit_two(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mcpServers": {}, "isobind": {"sandbox": {"stackKb": 9}}})
    completed = run_cli("exec", "-", "--config", str(config), stdin="return 1")
    assert completed.returncode == 2
    assert str(config) in completed.stderr
    assert "isobind.sandbox.stackKb: must be at least 64, not 9" in completed.stderr


@pytest.mark.parametrize("command", ["exec", "serve", "run"])
def test_sandbox_options_in_help(command: str) -> None:
    completed = run_cli(command, "--help", env={"COLUMNS": "200"})
    assert completed.returncode == 0, completed.stderr
    assert "--sandbox" in completed.stdout
    assert "inprocess" in completed.stdout
    assert "--workers" in completed.stdout
    assert "Number of sandbox worker processes" in completed.stdout


def test_exec_applies_config_limits(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mcpServers": {}, "isobind": {"maxCalls": 1}})
    code = """
await isobind.listServers();
try { await isobind.listServers(); return "second call ran"; }
catch (error) { return error.name; }
"""
    completed = run_cli("exec", "-", "--config", str(config), "--json", stdin=code)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["result"] == "LimitExceededError"


LEAKED_KEY = "Zq7Lm2Xp9Rt4Vb8Nc6Wd1Ke5Hf3Gj0Yu"


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_stdout_junk_keeps_secret_out_of_logs(tmp_path: Path, verbose: bool) -> None:
    # A server that prints its key to stdout before and instead of speaking MCP: as
    # plain text, and inside a JSON object that is not a JSON-RPC message.
    server = tmp_path / "printer.py"
    server.write_text(
        "import json, os, sys\n"
        "key = os.environ['API_KEY']\n"
        "print('oops key=' + key, flush=True)\n"
        "print(json.dumps({'note': key, 'jsonrpc': '2.0'}), flush=True)\n",
        encoding="utf-8",
    )
    (tmp_path / "key.txt").write_text(LEAKED_KEY, encoding="utf-8")
    config = write_config(
        tmp_path,
        {
            "mcpServers": {
                "printer": {
                    "command": sys.executable,
                    "args": [str(server)],
                    "env": {"API_KEY": "${secret:file:key.txt}"},
                }
            }
        },
    )
    options = ["--verbose"] if verbose else []
    completed = run_cli("types", "--config", str(config), *options)
    assert completed.returncode == 2
    assert "not JSON-RPC" in completed.stderr
    for start in range(0, len(LEAKED_KEY) - 8):
        assert LEAKED_KEY[start : start + 8] not in completed.stderr
