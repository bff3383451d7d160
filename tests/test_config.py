"""Tests for loading and validating the JSON config file."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from isobind import _config
from isobind._config import (
    Config,
    HttpServer,
    StdioServer,
    load_config,
    parse_config,
)
from isobind._errors import ConfigError
from isobind._policy import ServerPolicy
from isobind._pool import SandboxSettings
from isobind._toolbox import Toolbox

FULL_EXAMPLE = {
    "mcpServers": {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]},
        "weather": {
            "command": "python",
            "args": ["server.py"],
            "env": {"WEATHER_API_KEY": "${WEATHER_API_KEY}"},
            "cwd": ".",
        },
        "remote": {
            "type": "http",
            "url": "http://127.0.0.1:8000/mcp",
            "headers": {"Authorization": "Bearer ${TOKEN:-dev-token}"},
        },
        "fs": {"command": "mcp-server-filesystem", "args": ["/tmp"]},
    },
    "isobind": {
        "timeout": 30,
        "memoryMb": 128,
        "audit": "audit.jsonl",
        "servers": {"fs": {"allow": ["read_*", "list_*"], "deny": ["*delete*"], "readOnly": True}},
    },
}


def write_config(directory: Path, data: object, name: str = "isobind.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def stdio(config: Config, name: str) -> StdioServer:
    server = config.servers[name]
    assert isinstance(server, StdioServer)
    return server


def http(config: Config, name: str) -> HttpServer:
    server = config.servers[name]
    assert isinstance(server, HttpServer)
    return server


def test_all_names_exported() -> None:
    public = {
        name
        for name, value in vars(_config).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == _config.__name__
    }
    assert set(_config.__all__) == public
    assert set(_config.__all__) == {
        "Config",
        "HttpServer",
        "StdioServer",
        "load_config",
        "parse_config",
    }


def test_stdio_server_minimal() -> None:
    config = parse_config({"mcpServers": {"time": {"command": "mcp-server-time"}}}, environ={})

    server = stdio(config, "time")
    assert server == StdioServer(name="time", command="mcp-server-time")
    assert server.args == ()
    assert dict(server.env) == {}
    assert server.cwd is None
    assert config.policies["time"] == ServerPolicy.default()
    assert config.secrets == frozenset()
    assert config.path is None


def test_full_example(tmp_path: Path) -> None:
    path = write_config(tmp_path, FULL_EXAMPLE)

    config = load_config(path, environ={"WEATHER_API_KEY": "w-key"})

    assert config.path == path
    assert list(config.servers) == ["time", "weather", "remote", "fs"]
    assert stdio(config, "time").args == ("--local-timezone", "UTC")
    weather = stdio(config, "weather")
    assert weather.command == "python"
    assert weather.args == ("server.py",)
    assert dict(weather.env) == {"WEATHER_API_KEY": "w-key"}
    assert weather.cwd == tmp_path / "."
    remote = http(config, "remote")
    assert remote.url == "http://127.0.0.1:8000/mcp"
    assert dict(remote.headers) == {"Authorization": "Bearer dev-token"}
    assert config.timeout == 30.0
    assert config.memory_mb == 128
    assert config.audit == tmp_path / "audit.jsonl"
    assert config.secrets == {"w-key", "dev-token"}


def test_policies_cover_every_server(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, FULL_EXAMPLE), environ={"WEATHER_API_KEY": "k"})

    assert set(config.policies) == set(config.servers)
    assert config.policies["fs"] == ServerPolicy(
        allow=("read_*", "list_*"), deny=("*delete*",), read_only=True
    )
    assert config.policies["time"] == ServerPolicy(allow=None, deny=(), read_only=False)


def test_policy_empty_allow_kept() -> None:
    data = {
        "mcpServers": {"fs": {"command": "fs"}},
        "isobind": {"servers": {"fs": {"allow": []}}},
    }

    policy = parse_config(data, environ={}).policies["fs"]

    assert policy.allow == ()
    assert policy.deny == ()
    assert policy.read_only is False


def test_isobind_defaults() -> None:
    config = parse_config({"mcpServers": {}}, environ={})

    assert config.timeout == 30.0
    assert isinstance(config.timeout, float)
    assert config.memory_mb == 128
    assert config.audit is None
    assert dict(config.servers) == {}
    assert dict(config.policies) == {}


def test_isobind_settings() -> None:
    data = {"mcpServers": {}, "isobind": {"timeout": 2.5, "memoryMb": 64}}

    config = parse_config(data, environ={})

    assert config.timeout == 2.5
    assert config.memory_mb == 64


def test_sandbox_defaults_when_absent() -> None:
    config = parse_config({"mcpServers": {}}, environ={})

    assert config.sandbox is None


def test_sandbox_settings() -> None:
    sandbox = {
        "mode": "inprocess",
        "workers": 3,
        "startTimeout": 12.5,
        "killGrace": 0.5,
        "workerMemoryMb": 512,
        "maxOpenFiles": 64,
        "networkNamespace": False,
        "pinCpus": False,
        "stackKb": 256,
    }
    data = {"mcpServers": {}, "isobind": {"sandbox": sandbox}}

    config = parse_config(data, environ={})

    assert config.sandbox == SandboxSettings(
        mode="inprocess",
        workers=3,
        start_timeout=12.5,
        kill_grace=0.5,
        worker_memory_mb=512,
        max_open_files=64,
        network_namespace=False,
        pin_cpus=False,
        stack_kb=256,
    )


def test_sandbox_keys_left_out_keep_defaults() -> None:
    data = {"mcpServers": {}, "isobind": {"sandbox": {"workers": 2, "stackKb": None}}}

    config = parse_config(data, environ={})

    assert config.sandbox is not None
    assert config.sandbox.workers == 2
    assert config.sandbox.mode == "workers"
    assert config.sandbox.stack_kb == SandboxSettings().stack_kb


def test_toolbox_uses_config_sandbox() -> None:
    data = {"mcpServers": {}, "isobind": {"sandbox": {"mode": "inprocess"}}}
    config = parse_config(data, environ={})

    from_config = Toolbox(config)
    overridden = Toolbox(config, sandbox=SandboxSettings(workers=1))

    assert from_config.sandbox.mode == "inprocess"
    assert from_config._pool is None
    assert overridden.sandbox.mode == "workers"
    assert overridden._pool is not None


def test_null_counts_as_omitted() -> None:
    data = {
        "mcpServers": {"time": {"command": "t", "args": None, "env": None, "type": None}},
        "isobind": {"timeout": None, "memoryMb": None, "audit": None, "servers": None},
    }

    config = parse_config(data, environ={})

    assert stdio(config, "time").args == ()
    assert config.timeout == 30.0
    assert config.memory_mb == 128
    assert config.audit is None


def test_claude_desktop_file(tmp_path: Path) -> None:
    # claude_desktop_config.json: no `type`, plus the app's own settings.
    data = {
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "filesystem": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
            },
            "github": {
                "command": "docker",
                "args": ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"},
                "autoApprove": ["get_me"],
                "alwaysAllow": ["search_code"],
                "timeout": 60,
                "disabled": False,
            },
        },
    }
    path = write_config(tmp_path, data, name="claude_desktop_config.json")

    config = load_config(path, environ={"GITHUB_TOKEN": "ghp_example"})

    assert list(config.servers) == ["filesystem", "github"]
    assert stdio(config, "filesystem").command == "npx"
    assert dict(stdio(config, "github").env) == {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_example"}
    assert config.secrets == {"ghp_example"}


def test_claude_code_file(tmp_path: Path) -> None:
    # A project's .mcp.json as Claude Code writes it, with `type` on every entry.
    data = {
        "mcpServers": {
            "git": {"type": "stdio", "command": "mcp-server-git", "args": [], "env": {}},
            "api": {
                "type": "http",
                "url": "https://mcp.example.com/mcp",
                "headers": {"Authorization": "Bearer ${API_KEY}"},
            },
        }
    }
    path = write_config(tmp_path, data, name=".mcp.json")

    config = load_config(path, environ={"API_KEY": "abc123"})

    assert stdio(config, "git").command == "mcp-server-git"
    assert http(config, "api").url == "https://mcp.example.com/mcp"
    assert dict(http(config, "api").headers) == {"Authorization": "Bearer abc123"}


@pytest.mark.parametrize("server_type", ["http", "streamable-http", "streamableHttp"])
def test_http_type_aliases(server_type: str) -> None:
    data = {"mcpServers": {"api": {"type": server_type, "url": "https://example.com/mcp"}}}

    server = http(parse_config(data, environ={}), "api")

    assert server == HttpServer(name="api", url="https://example.com/mcp")


def test_http_server_without_type() -> None:
    data = {"mcpServers": {"api": {"url": "http://localhost:9000/mcp"}}}

    assert http(parse_config(data, environ={}), "api").url == "http://localhost:9000/mcp"


def test_disabled_server_skipped() -> None:
    data = {
        "mcpServers": {
            "on": {"command": "a"},
            # A disabled server's variables need not be set.
            "off": {"command": "${UNSET_VARIABLE}", "disabled": True},
        },
        "isobind": {"servers": {"off": {"readOnly": True}}},
    }

    config = parse_config(data, environ={})

    assert list(config.servers) == ["on"]
    assert list(config.policies) == ["on"]


def test_server_names_kept_as_given() -> None:
    data = {"mcpServers": {"my-server.v2 (beta)": {"command": "x"}}}

    config = parse_config(data, environ={})

    assert list(config.servers) == ["my-server.v2 (beta)"]
    assert config.servers["my-server.v2 (beta)"].name == "my-server.v2 (beta)"


@pytest.mark.parametrize(
    ("template", "environ", "expected"),
    [
        pytest.param("${A}", {"A": "value"}, "value", id="variable"),
        pytest.param("x-${A}-y", {"A": "1"}, "x-1-y", id="inside-text"),
        pytest.param("${A}${B}", {"A": "1", "B": "2"}, "12", id="two-variables"),
        pytest.param("${A:-fallback}", {}, "fallback", id="default-when-unset"),
        pytest.param("${A:-fallback}", {"A": ""}, "fallback", id="default-when-empty"),
        pytest.param("${A:-fallback}", {"A": "set"}, "set", id="value-over-default"),
        pytest.param("${A:-}", {}, "", id="empty-default"),
        pytest.param("${A:-a:-b}", {}, "a:-b", id="default-with-separator"),
        pytest.param("${A}", {"A": ""}, "", id="empty-value-without-default"),
        pytest.param("$${A}", {}, "${A}", id="escaped-dollar"),
        pytest.param("cost $$5", {}, "cost $5", id="escaped-dollar-in-text"),
        pytest.param("$$$${A}", {"A": "x"}, "$${A}", id="two-escapes"),
        pytest.param("$$${A}", {"A": "x"}, "$x", id="escape-then-variable"),
        pytest.param("$HOME", {"HOME": "/home/me"}, "$HOME", id="bare-dollar-kept"),
        pytest.param("end$", {}, "end$", id="trailing-dollar"),
        pytest.param("no variables", {}, "no variables", id="plain-text"),
    ],
)
def test_substitution(template: str, environ: dict[str, str], expected: str) -> None:
    data = {"mcpServers": {"s": {"command": "run", "env": {"VALUE": template}}}}

    config = parse_config(data, environ=environ)

    assert stdio(config, "s").env["VALUE"] == expected


def test_substitution_in_every_field(tmp_path: Path) -> None:
    data = {
        "mcpServers": {
            "local": {
                "command": "${BIN}/server",
                "args": ["--token", "${ARG}"],
                "env": {"KEY": "${ENV_VALUE}"},
                "cwd": "${WORKDIR}",
            },
            "remote": {
                "url": "https://${HOST}/mcp",
                "headers": {"X-Key": "${HEADER}"},
            },
        }
    }
    environ = {
        "BIN": "/opt/bin",
        "ARG": "a1",
        "ENV_VALUE": "e1",
        "WORKDIR": "work",
        "HOST": "example.com",
        "HEADER": "h1",
    }

    config = load_config(write_config(tmp_path, data), environ=environ)

    local = stdio(config, "local")
    assert local.command == "/opt/bin/server"
    assert local.args == ("--token", "a1")
    assert dict(local.env) == {"KEY": "e1"}
    assert local.cwd == tmp_path / "work"
    remote = http(config, "remote")
    assert remote.url == "https://example.com/mcp"
    assert dict(remote.headers) == {"X-Key": "h1"}
    assert config.secrets == set(environ.values())


def test_substitution_skips_names_and_audit() -> None:
    data = {
        "mcpServers": {"s": {"command": "run", "env": {"${A}": "v"}}},
        "isobind": {"audit": "/logs/${A}.jsonl"},
    }

    config = parse_config(data, environ={"A": "x"})

    assert dict(stdio(config, "s").env) == {"${A}": "v"}
    assert config.audit == Path("/logs/${A}.jsonl")
    assert config.secrets == frozenset()


def test_secrets_are_substituted_values() -> None:
    data = {
        "mcpServers": {
            "s": {
                "command": "run",
                "args": ["--key=${KEY}", "${EMPTY}", "${UNSET:-default-secret}"],
                "env": {"PLAIN": "literal-not-a-secret"},
            }
        }
    }

    config = parse_config(data, environ={"KEY": "k-123", "EMPTY": ""})

    assert config.secrets == {"k-123", "default-secret"}
    assert isinstance(config.secrets, frozenset)


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISOBIND_TEST_TOKEN", "from-os-environ")
    data = {"mcpServers": {"s": {"command": "run", "args": ["${ISOBIND_TEST_TOKEN}"]}}}

    config = parse_config(data)

    assert stdio(config, "s").args == ("from-os-environ",)


def test_missing_variable_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, FULL_EXAMPLE)

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})

    message = str(caught.value)
    assert str(path) in message
    assert "mcpServers.weather.env.WEATHER_API_KEY" in message
    assert "environment variable WEATHER_API_KEY is not set" in message
    assert "${WEATHER_API_KEY:-default}" in message
    assert caught.value.path == str(path)
    assert caught.value.key == "mcpServers.weather.env.WEATHER_API_KEY"


def test_relative_paths_follow_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    write_config(
        config_dir,
        {
            "mcpServers": {"s": {"command": "run", "cwd": "servers/s"}},
            "isobind": {"audit": "logs/audit.jsonl"},
        },
    )
    monkeypatch.chdir(tmp_path)

    config = load_config("conf/isobind.json", environ={})

    assert config.path == config_dir / "isobind.json"
    assert stdio(config, "s").cwd == config_dir / "servers/s"
    assert config.audit == config_dir / "logs/audit.jsonl"


def test_absolute_paths_kept(tmp_path: Path) -> None:
    data = {
        "mcpServers": {"s": {"command": "run", "cwd": str(tmp_path / "elsewhere")}},
        "isobind": {"audit": str(tmp_path / "audit.jsonl")},
    }

    config = load_config(write_config(tmp_path / "", data), environ={})

    assert stdio(config, "s").cwd == tmp_path / "elsewhere"
    assert config.audit == tmp_path / "audit.jsonl"


def test_parse_without_path_uses_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = {
        "mcpServers": {"s": {"command": "run", "cwd": "work"}},
        "isobind": {"audit": "audit.jsonl"},
    }

    config = parse_config(data, environ={})

    assert stdio(config, "s").cwd == tmp_path / "work"
    assert config.audit == tmp_path / "audit.jsonl"


def test_byte_order_mark_accepted(tmp_path: Path) -> None:
    path = tmp_path / "isobind.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"mcpServers": {}}).encode())

    assert dict(load_config(path, environ={}).servers) == {}


def test_dataclasses_frozen() -> None:
    config = parse_config({"mcpServers": {"s": {"command": "run", "env": {"A": "1"}}}}, environ={})
    server = stdio(config, "s")

    with pytest.raises(dataclasses.FrozenInstanceError):
        server.command = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        server.env["A"] = "2"  # type: ignore[index]
    with pytest.raises(TypeError):
        config.servers["t"] = server  # type: ignore[index]


def test_repr_hides_secrets() -> None:
    data = {
        "mcpServers": {
            "local": {"command": "${S1}", "args": ["${S2}"], "env": {"K": "${S3}"}, "cwd": "${S4}"},
            "remote": {"url": "https://${S5}/mcp", "headers": {"H": "${S6}"}},
        }
    }
    environ = {f"S{number}": f"secret-{number}" for number in range(1, 7)}

    text = repr(parse_config(data, environ=environ))

    assert "local" in text
    assert "remote" in text
    for secret in environ.values():
        assert secret not in text


# Each case: document, expected key path (None for the top level), expected problem text.
ERROR_CASES = [
    pytest.param([], None, "top level must be a JSON object", id="top-level-array"),
    pytest.param("servers", None, "not a string", id="top-level-string"),
    pytest.param({}, "mcpServers", "required key is missing", id="missing-mcpServers"),
    pytest.param({"mcpServers": []}, "mcpServers", "must be an object", id="mcpServers-array"),
    pytest.param({"mcpServers": None}, "mcpServers", "not null", id="mcpServers-null"),
    pytest.param(
        {"mcpServers": {"s": "run"}}, "mcpServers.s", "must be an object", id="server-string"
    ),
    pytest.param(
        {"mcpServers": {"": {"command": "run"}}}, "mcpServers", "empty name", id="empty-name"
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "url": "http://h/mcp"}}},
        "mcpServers.s",
        "both command and url",
        id="command-and-url",
    ),
    pytest.param(
        {"mcpServers": {"s": {"args": ["x"]}}},
        "mcpServers.s",
        "neither command nor url",
        id="no-command-or-url",
    ),
    pytest.param(
        {"mcpServers": {"s": {"type": "sse", "url": "http://h/sse"}}},
        "mcpServers.s.type",
        "only stdio and streamable HTTP",
        id="sse-type",
    ),
    pytest.param(
        {"mcpServers": {"s": {"type": "websocket", "url": "ws://h"}}},
        "mcpServers.s.type",
        "unknown server type 'websocket'. Valid types are stdio, http",
        id="unknown-type",
    ),
    pytest.param(
        {"mcpServers": {"s": {"type": 1, "command": "run"}}},
        "mcpServers.s.type",
        "must be a string, not 1",
        id="type-number",
    ),
    pytest.param(
        {"mcpServers": {"s": {"type": "stdio", "url": "http://h/mcp"}}},
        "mcpServers.s.type",
        "does not match the server's url",
        id="stdio-type-with-url",
    ),
    pytest.param(
        {"mcpServers": {"s": {"type": "http", "command": "run"}}},
        "mcpServers.s.type",
        "does not match the server's command",
        id="http-type-with-command",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": ""}}},
        "mcpServers.s.command",
        "command is empty",
        id="empty-command",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "  "}}},
        "mcpServers.s.command",
        "command is empty",
        id="blank-command",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": ["run"]}}},
        "mcpServers.s.command",
        "must be a string, not an array",
        id="command-array",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "args": "--flag"}}},
        "mcpServers.s.args",
        "must be an array, not a string",
        id="args-string",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "args": ["--port", 8080]}}},
        "mcpServers.s.args[1]",
        "must be a string, not 8080",
        id="args-element-number",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "env": ["A=1"]}}},
        "mcpServers.s.env",
        "must be an object, not an array",
        id="env-array",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "env": {"DEBUG": True}}}},
        "mcpServers.s.env.DEBUG",
        "must be a string, not true",
        id="env-value-bool",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "cwd": 1}}},
        "mcpServers.s.cwd",
        "must be a string, not 1",
        id="cwd-number",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "cwd": ""}}},
        "mcpServers.s.cwd",
        "cwd is empty",
        id="cwd-empty",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "headers": {"A": "b"}}}},
        "mcpServers.s.headers",
        "headers applies only to HTTP servers",
        id="headers-on-stdio",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "http://h/mcp", "env": {"KEY": "v"}}}},
        "mcpServers.s.env",
        "env applies only to stdio servers",
        id="env-on-http",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "http://h/mcp", "args": []}}},
        "mcpServers.s.args",
        "args applies only to stdio servers",
        id="args-on-http",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "http://h/mcp", "cwd": "."}}},
        "mcpServers.s.cwd",
        "cwd applies only to stdio servers",
        id="cwd-on-http",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "ftp://h/mcp"}}},
        "mcpServers.s.url",
        "not an http:// or https:// URL",
        id="url-ftp",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "localhost:8000/mcp"}}},
        "mcpServers.s.url",
        "not an http:// or https:// URL",
        id="url-without-scheme",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "http:///mcp"}}},
        "mcpServers.s.url",
        "with a host",
        id="url-without-host",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "http://[::1/mcp"}}},
        "mcpServers.s.url",
        "not an http:// or https:// URL",
        id="url-unparsable",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "http://h/mcp", "headers": {"X-Retry": 3}}}},
        "mcpServers.s.headers.X-Retry",
        "must be a string, not 3",
        id="header-value-number",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "disabled": "yes"}}},
        "mcpServers.s.disabled",
        "must be true or false, not a string",
        id="disabled-string",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "${A"}}},
        "mcpServers.s.command",
        "has no closing '}'",
        id="unclosed-substitution",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "args": ["${1A}"]}}},
        "mcpServers.s.args[0]",
        "invalid substitution '${1A}'",
        id="invalid-variable-name",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "args": ["${A-b}"]}}},
        "mcpServers.s.args[0]",
        "invalid substitution '${A-b}'",
        id="default-without-colon",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "run", "args": ["${}"]}}},
        "mcpServers.s.args[0]",
        "invalid substitution '${}'",
        id="empty-substitution",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "http://h/mcp", "headers": {"Auth": "${NOT_SET}"}}}},
        "mcpServers.s.headers.Auth",
        "environment variable NOT_SET is not set",
        id="missing-variable",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": []},
        "isobind",
        "must be an object, not an array",
        id="isobind-array",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"memory_mb": 64}},
        "isobind.memory_mb",
        "unknown key 'memory_mb' (did you mean 'memoryMb'?). "
        "Valid keys are approveWrites, audit, cpuTime, defaultPolicy, egress, maxCalls, "
        "maxConcurrentCalls, maxLogBytes, maxResultBytes, memoryMb, rateLimitStore, sandbox, "
        "servers, timeout",
        id="isobind-unknown-key",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"timeout": 0}},
        "isobind.timeout",
        "must be greater than 0, not 0",
        id="timeout-zero",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"timeout": -5}},
        "isobind.timeout",
        "must be greater than 0, not -5",
        id="timeout-negative",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"timeout": "30"}},
        "isobind.timeout",
        "must be a number, not a string",
        id="timeout-string",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"timeout": True}},
        "isobind.timeout",
        "must be a number, not true",
        id="timeout-bool",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"timeout": float("inf")}},
        "isobind.timeout",
        "must be a finite number, not Infinity",
        id="timeout-infinite",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"memoryMb": 0}},
        "isobind.memoryMb",
        "must be greater than 0, not 0",
        id="memory-zero",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"memoryMb": 64.5}},
        "isobind.memoryMb",
        "must be an integer, not 64.5",
        id="memory-fraction",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"memoryMb": False}},
        "isobind.memoryMb",
        "must be an integer, not false",
        id="memory-bool",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"audit": True}},
        "isobind.audit",
        "must be a string, not true",
        id="audit-bool",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"audit": ""}},
        "isobind.audit",
        "audit is empty",
        id="audit-empty",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"servers": ["fs"]}},
        "isobind.servers",
        "must be an object, not an array",
        id="policies-array",
    ),
    pytest.param(
        {
            "mcpServers": {"fs": {"command": "fs"}, "time": {"command": "t"}},
            "isobind": {"servers": {"fss": {"readOnly": True}}},
        },
        "isobind.servers.fss",
        "no server named 'fss' in mcpServers (did you mean 'fs'?). Known servers: fs, time",
        id="policy-unknown-server",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"servers": {"fs": {}}}},
        "isobind.servers.fs",
        "Known servers: none",
        id="policy-without-servers",
    ),
    pytest.param(
        {
            "mcpServers": {"fs": {"command": "fs"}},
            "isobind": {"servers": {"fs": {"read_only": True}}},
        },
        "isobind.servers.fs.read_only",
        "unknown key 'read_only' (did you mean 'readOnly'?). Valid keys are allow, approve, "
        "deny, denyDestructive, maxCallsPerRun, oauth, rateLimit, readOnly, tools",
        id="policy-unknown-key",
    ),
    pytest.param(
        {
            "mcpServers": {"fs": {"command": "fs"}},
            "isobind": {"servers": {"fs": {"allow": "read_*"}}},
        },
        "isobind.servers.fs.allow",
        "must be an array, not a string",
        id="allow-string",
    ),
    pytest.param(
        {
            "mcpServers": {"fs": {"command": "fs"}},
            "isobind": {"servers": {"fs": {"deny": ["ok", None]}}},
        },
        "isobind.servers.fs.deny[1]",
        "must be a string, not null",
        id="deny-element-null",
    ),
    pytest.param(
        {
            "mcpServers": {"fs": {"command": "fs"}},
            "isobind": {"servers": {"fs": {"readOnly": "true"}}},
        },
        "isobind.servers.fs.readOnly",
        "must be true or false, not a string",
        id="readOnly-string",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": {"mode": "docker"}}},
        "isobind.sandbox.mode",
        "must be one of 'workers' or 'inprocess', not \"docker\"",
        id="sandbox-mode-unknown",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": {"workerMemoryMb": 1}}},
        "isobind.sandbox.workerMemoryMb",
        "must be at least 64, not 1",
        id="sandbox-worker-memory-small",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": {"maxOpenFiles": 8}}},
        "isobind.sandbox.maxOpenFiles",
        "must be at least 16, not 8",
        id="sandbox-open-files-small",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": {"workers": 0}}},
        "isobind.sandbox.workers",
        "must be at least 1, not 0",
        id="sandbox-workers-zero",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": {"workers": "4"}}},
        "isobind.sandbox.workers",
        "must be an integer, not a string",
        id="sandbox-workers-string",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": {"stackKb": 4096}}},
        "isobind.sandbox.stackKb",
        "must be at most 2048, not 4096",
        id="sandbox-stack-too-large",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": {"killGrace": -1}}},
        "isobind.sandbox.killGrace",
        "must be at least 0, not -1",
        id="sandbox-kill-grace-negative",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": {"workerMemory": 512}}},
        "isobind.sandbox.workerMemory",
        "unknown key 'workerMemory' (did you mean 'workerMemoryMb'?)",
        id="sandbox-unknown-key",
    ),
    pytest.param(
        {"mcpServers": {}, "isobind": {"sandbox": "inprocess"}},
        "isobind.sandbox",
        "must be an object",
        id="sandbox-not-object",
    ),
]


@pytest.mark.parametrize(("document", "key", "problem"), ERROR_CASES)
def test_invalid_config(tmp_path: Path, document: Any, key: str | None, problem: str) -> None:
    path = write_config(tmp_path, document)

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})

    message = str(caught.value)
    assert message.startswith(str(path))
    assert caught.value.path == str(path)
    assert caught.value.key == key
    if key is not None:
        assert f": {key}: " in message
    assert problem in message


def test_error_without_path_sets_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"mcpServers": {"s": {"command": 1}}}, environ={})

    assert caught.value.path is None
    assert caught.value.key == "mcpServers.s.command"
    assert "must be a string, not 1" in str(caught.value)


def test_error_counts_further_problems() -> None:
    data = {"mcpServers": {"a": {"command": 1}, "b": {"args": 2}, "c": {"env": 3}}}

    with pytest.raises(ConfigError) as caught:
        parse_config(data, environ={})

    assert caught.value.key == "mcpServers.a.command"
    assert "(2 more errors in this file)" in str(caught.value)


def test_missing_file_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value) == f"{path}: config file not found. Check the path, or create the file"
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_directory_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)

    message = str(caught.value)
    assert message.startswith(f"{tmp_path}: ")
    assert "directory" in message


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
)
def test_unreadable_file_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"mcpServers": {}})
    path.chmod(0)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value).startswith(f"{path}: permission denied")


def test_invalid_json_error(tmp_path: Path) -> None:
    path = tmp_path / "isobind.json"
    path.write_text('{\n  "mcpServers": {\n    "time": {"command": "t",}\n  }\n}\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: invalid JSON at line 3, column 29: ")
    assert "Expecting property name" in message
    assert caught.value.key is None


def test_empty_file_error(tmp_path: Path) -> None:
    path = tmp_path / "isobind.json"
    path.write_text("")

    with pytest.raises(ConfigError, match="invalid JSON at line 1, column 1"):
        load_config(path)


def test_invalid_utf8_error(tmp_path: Path) -> None:
    path = tmp_path / "isobind.json"
    path.write_bytes(b'{"mcpServers": {"\xff": {}}}')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value) == (
        f"{path}: the file is not valid UTF-8 (invalid byte at offset 17). Save it as UTF-8"
    )


SECRET = "s3cr3t-v4lue"

# Documents that fail after ${SECRET} is resolved, or whose failing value comes from a
# substitution.
SECRET_ERROR_CASES = [
    pytest.param(
        {"mcpServers": {"s": {"url": "${SECRET_URL}"}}},
        id="url-from-variable",
    ),
    pytest.param(
        {"mcpServers": {"s": {"url": "${UNSET:-ftp://s3cr3t-v4lue@host}"}}},
        id="url-from-default",
    ),
    pytest.param(
        {"mcpServers": {"s": {"command": "${EMPTY}", "env": {"K": "${SECRET}"}}}},
        id="empty-command",
    ),
    pytest.param(
        {
            "mcpServers": {
                "a": {"command": "run", "env": {"K": "${SECRET}"}},
                "b": {"command": "run", "env": {"K": "${MISSING}"}},
            }
        },
        id="missing-after-resolved",
    ),
    pytest.param(
        {
            "mcpServers": {"a": {"command": "run", "args": ["--key=${SECRET}"]}},
            "isobind": {"servers": {"b": {}}},
        },
        id="policy-after-resolved",
    ),
    pytest.param(
        {"mcpServers": {"a": {"command": "run", "cwd": "${EMPTY}", "args": ["${SECRET}"]}}},
        id="empty-cwd-after-resolved",
    ),
    pytest.param(
        {"mcpServers": {"a": {"command": "${SECRET}", "args": ["${SECRET"]}}},
        id="unclosed-after-resolved",
    ),
]


@pytest.mark.parametrize("document", SECRET_ERROR_CASES)
def test_no_secret_in_error(tmp_path: Path, document: Any) -> None:
    environ = {"SECRET": SECRET, "SECRET_URL": f"ftp://{SECRET}@host/mcp", "EMPTY": ""}
    path = write_config(tmp_path, document)

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert all(SECRET not in str(argument) for argument in caught.value.args)


def test_misspelt_server_key_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = {
        "mcpServers": {
            "s": {"command": "server", "argz": ["x"], "evn": {"A": "b"}, "autoApprove": []}
        }
    }
    with caplog.at_level("WARNING", logger="isobind._config"):
        config = load_config(write_config(tmp_path, data), environ={})
    assert config.servers["s"].args == ()
    messages = [record.getMessage() for record in caplog.records]
    assert any("mcpServers.s.argz" in message and "'args'" in message for message in messages)
    assert any("mcpServers.s.evn" in message and "'env'" in message for message in messages)
    assert not any("autoApprove" in message for message in messages)


def test_limit_keys_set_run_limits(tmp_path: Path) -> None:
    data = {
        "mcpServers": {},
        "isobind": {
            "timeout": 60,
            "memoryMb": 64,
            "maxLogBytes": 1000,
            "maxResultBytes": 2000,
            "maxCalls": 3,
            "maxConcurrentCalls": 2,
        },
    }
    limits = load_config(write_config(tmp_path, data), environ={}).run_limits()
    assert (limits.timeout, limits.memory_mb) == (60, 64)
    assert (limits.max_log_bytes, limits.max_result_bytes) == (1000, 2000)
    assert (limits.max_calls, limits.max_concurrent_calls) == (3, 2)
    # Without cpuTime, a longer timeout also allows longer computation.
    assert limits.cpu_time == 60


def test_cpu_time_key_kept_under_cli_timeout(tmp_path: Path) -> None:
    data = {"mcpServers": {}, "isobind": {"cpuTime": 5}}
    config = load_config(write_config(tmp_path, data), environ={})
    limits = config.run_limits(timeout=100, memory_mb=32)
    assert (limits.timeout, limits.memory_mb, limits.cpu_time) == (100, 32, 5)
    assert config.run_limits().cpu_time == 5


@pytest.mark.parametrize(
    ("key", "value"),
    [("cpuTime", 0), ("maxCalls", -1), ("maxConcurrentCalls", 0), ("maxResultBytes", "big")],
)
def test_invalid_limit_key(tmp_path: Path, key: str, value: object) -> None:
    data = {"mcpServers": {}, "isobind": {key: value}}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, data), environ={})
    assert caught.value.key == f"isobind.{key}"
