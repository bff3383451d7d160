"""`isobind run` end to end: scripted model servers over HTTP, real MCP servers, real V8."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLES, LEAKY_TOKEN, TESTS, write_config
from .model_servers import Kind, RecordedRequest, ScriptedModelServer, Turn

MODEL_KEY = "sk-fake-model-key-5e6f7a8b9c0d"
FORECAST_KEY = "forecast-upstream-secret-1a2b3c4d"
SECRETS = (MODEL_KEY, FORECAST_KEY, LEAKY_TOKEN)
# A credential that no config names, written by the model itself.
GITHUB_TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ012345"

BROKEN_CODE = """\
const zone = "Asia/Tokyo";
const now = await tools.time.get_time({timezone: zone});
return now.datetime;"""

FETCH_CODE = f"""\
// The docs' example token: {GITHUB_TOKEN}
const response = await fetch("https://weather.example.com/oslo");
return await response.json();"""

FIXED_CODE = """\
const [now, forecast, token] = await Promise.all([
  tools.time.get_current_time({timezone: "Asia/Tokyo"}),
  tools.forecast.get_forecast({city: "Oslo", days: 1}),
  tools.leaky.echo_token({}),
]);
console.log("token check:", token);
return {zone: now.timezone, forecast, token};"""

ANSWER = "It is evening in Tokyo, and Oslo gets the forecast shown above."


def script() -> list[Turn]:
    return [
        Turn.code(BROKEN_CODE, text="Let me check the time in Tokyo first."),
        Turn.code(FETCH_CODE),
        Turn.code(FIXED_CODE),
        Turn(text=ANSWER),
    ]


@pytest.fixture(scope="module")
def agent_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = {
        "mcpServers": {
            "time": {"command": "mcp-server-time", "args": ["--local-timezone", "Etc/UTC"]},
            "forecast": {
                "command": sys.executable,
                "args": [str(EXAMPLES / "servers" / "forecast.py")],
                "env": {"FORECAST_API_KEY": "${FORECAST_API_KEY}"},
            },
            "leaky": {
                "command": sys.executable,
                "args": [str(TESTS / "servers" / "leaky.py")],
                "env": {"LEAKY_TOKEN": "${LEAKY_TOKEN}"},
            },
        },
        "isobind": {"timeout": 10, "servers": {"leaky": {"allow": ["echo-token"]}}},
    }
    return write_config(tmp_path_factory.mktemp("agent"), data)


def run_cli(
    kind: Kind, server: ScriptedModelServer, config: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    key_variable = "OPENAI_API_KEY" if kind == "openai" else "ANTHROPIC_API_KEY"
    environ = {
        "PATH": os.environ.get("PATH", ""),
        key_variable: MODEL_KEY,
        "FORECAST_API_KEY": FORECAST_KEY,
        "LEAKY_TOKEN": LEAKY_TOKEN,
    }
    command = [
        sys.executable,
        "-m",
        "isobind",
        "run",
        "What time is it in Tokyo, and what is the weather in Oslo?",
        "--config",
        str(config),
        "--model",
        "scripted-model",
        "--provider",
        kind,
        "--base-url",
        server.base_url,
        *options,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, env=environ, timeout=90, check=False
    )


def last_tool_output(kind: Kind, request: RecordedRequest) -> str:
    """Return the text of the last tool result in a request's conversation."""
    messages = request.json["messages"]
    if kind == "openai":
        assert messages[-1]["role"] == "tool"
        return str(messages[-1]["content"])
    block = messages[-1]["content"][-1]
    assert block["type"] == "tool_result"
    return str(block["content"])


def system_text(kind: Kind, request: RecordedRequest) -> str:
    body = request.json
    if kind == "openai":
        assert body["messages"][0]["role"] == "system"
        return str(body["messages"][0]["content"])
    return str(body["system"])


def encoded_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode().rstrip("="), raw.hex()]


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        for form in encoded_forms(secret):
            assert form not in text, f"{where} contains a secret"


@dataclass(frozen=True)
class Session:
    """One `isobind run --json` against a scripted server, shared by the tests that read it."""

    kind: Kind
    completed: subprocess.CompletedProcess[str]
    requests: list[RecordedRequest]
    audit_text: str

    @property
    def output(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.completed.stdout)
        return data


# One session per provider, because each run starts three MCP servers and takes seconds.
@pytest.fixture(scope="module", params=["openai", "anthropic"])
def session(
    request: pytest.FixtureRequest, agent_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Session:
    kind: Kind = request.param
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with ScriptedModelServer(kind, script()) as server:
        completed = run_cli(
            kind, server, agent_config, "--json", "--audit", str(audit), "--verbose"
        )
    assert completed.returncode == 0, completed.stderr
    return Session(kind, completed, server.requests, audit.read_text(encoding="utf-8"))


def test_run_json_output(session: Session) -> None:
    output = session.output
    assert output["status"] == "answered"
    assert output["answer"] == ANSWER
    assert output["turns"] == 4
    assert output["provider"] == session.kind
    assert output["model"] == "scripted-model"
    assert output["usage"]["inputTokens"] > 0
    assert output["usage"]["outputTokens"] > 0
    runs = output["runs"]
    scrubbed_fetch_code = FETCH_CODE.replace(GITHUB_TOKEN, "[REDACTED]")
    assert [run["code"] for run in runs] == [BROKEN_CODE, scrubbed_fetch_code, FIXED_CODE]
    assert runs[0]["execution"]["error"]["name"] == "TypeError"
    assert runs[1]["execution"]["error"]["name"] == "NetworkAccessError"
    assert runs[2]["execution"]["ok"] is True
    assert runs[2]["execution"]["result"]["zone"] == "Asia/Tokyo"
    assert sorted(call["tool"] for call in runs[2]["execution"]["calls"]) == [
        "echo-token",
        "get-forecast",
        "get_current_time",
    ]
    assert [message["role"] for message in output["conversation"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]


def test_model_receives_api(session: Session) -> None:
    requests = session.requests
    assert len(requests) == 4
    system = system_text(session.kind, requests[0])
    assert "function get_current_time(" in system
    assert "function get_forecast(" in system
    assert "Rules for the code" in system
    names = [tool.get("name") or tool["function"]["name"] for tool in requests[0].json["tools"]]
    assert names == ["execute_typescript"]


def test_model_receives_error_line(session: Session) -> None:
    broken = last_tool_output(session.kind, session.requests[1])
    assert "TypeError: tools.time.get_time is not a function" in broken
    assert "At line 2" in broken
    assert "2 | const now = await tools.time.get_time({timezone: zone});" in broken
    assert "Closest names: " in broken
    assert "tools.time.get_current_time" in broken.split("Closest names: ")[1]


def test_model_receives_network_error(session: Session) -> None:
    network = last_tool_output(session.kind, session.requests[2])
    assert "NetworkAccessError" in network
    assert "2 | const response = await fetch(" in network
    assert "no network" in network


def test_model_receives_fixed_result(session: Session) -> None:
    fixed = last_tool_output(session.kind, session.requests[3])
    assert "The run succeeded" in fixed
    assert '"zone": "Asia/Tokyo"' in fixed
    assert "Oslo" in fixed
    assert "token check:" in fixed
    assert "the token is [REDACTED]" in fixed


def test_secrets_never_reach_model(session: Session) -> None:
    for number, request in enumerate(session.requests):
        assert_no_secret(request.body.decode(), f"request {number} body")
        headers = dict(request.headers)
        # anthropic 2.17 sends the key as a bearer token, earlier releases as `x-api-key`.
        if "x-api-key" in headers:
            assert headers.pop("x-api-key") == MODEL_KEY
        else:
            assert headers.pop("authorization") == f"Bearer {MODEL_KEY}"
        assert_no_secret(json.dumps(headers), f"request {number} other headers")


def test_secrets_absent_from_output(session: Session) -> None:
    assert_no_secret(session.completed.stdout, "stdout")
    assert GITHUB_TOKEN not in session.completed.stdout
    assert GITHUB_TOKEN not in session.audit_text
    assert_no_secret(session.completed.stderr, "stderr")
    assert_no_secret(session.audit_text, "audit log")


def test_audit_covers_session(session: Session) -> None:
    records = [json.loads(line) for line in session.audit_text.splitlines()]
    # Call records (one per tool call) come before the record of their execution.
    records = [record for record in records if record["type"] != "call"]
    assert [record["type"] for record in records] == ["execution"] * 3 + ["session"]
    record = records[-1]
    assert record["sessionId"] == session.output["sessionId"]
    assert record["status"] == "answered"
    assert record["answer"] == ANSWER
    assert record["provider"] == session.kind
    assert record["model"] == "scripted-model"
    assert record["turns"] == 4
    assert record["executionIds"] == [execution["executionId"] for execution in records[:3]]
    assert records[0]["code"] == BROKEN_CODE
    assert records[2]["ok"] is True


def test_run_streams_progress_to_terminal(agent_config: Path) -> None:
    with ScriptedModelServer("openai", script()) as server:
        completed = run_cli("openai", server, agent_config)
    assert completed.returncode == 0, completed.stderr

    assert completed.stdout == ANSWER + "\n"
    progress = completed.stderr
    assert "Let me check the time in Tokyo first." in progress
    assert "code run" in progress
    assert "tools.time.get_time({timezone: zone})" in progress
    assert "TypeError at line 2: tools.time.get_time is not a function" in progress
    assert "NetworkAccessError at line 2" in progress
    assert GITHUB_TOKEN not in progress
    assert 'time.get_current_time({"timezone": "Asia/Tokyo"}) ok' in progress
    assert "forecast.get-forecast(" in progress
    assert 'console.log: token check: { result: "the token is [REDACTED]" }' in progress
    assert "answered: 4 model turns, 3 code runs" in progress


def test_run_without_api_key_fails(agent_config: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "isobind",
        "run",
        "anything",
        "--config",
        str(agent_config),
        "--model",
        "gpt-test",
    ]
    environ = {"PATH": os.environ.get("PATH", "")}
    completed = subprocess.run(
        command, capture_output=True, text=True, env=environ, timeout=60, check=False
    )
    assert completed.returncode == 2
    assert "OPENAI_API_KEY is not set" in completed.stderr
