"""Credentials out of band: secret sources, OAuth tokens, and scrubbing of every leak."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from isobind import ConfigError, Toolbox, UpstreamError, load_config
from isobind._log_scrub import LineScrubber, scrub_credential_shapes
from isobind._redact import LiveRedactor

from .conftest import TESTS, write_config
from .servers.protected import CLIENT_ID, ProtectedServer

pytestmark = pytest.mark.anyio

TOKEN = "leak-test-7a6b5c4d3e2f1a0b9c8d"
CLIENT_SECRET = "client-secret-0f9e8d7c6b5a4321"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend in memory.

    Containers and CI machines have no system keyring (no Secret Service, no
    Keychain), so the tests install this backend through keyring's own API.
    """

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        urllib.parse.quote(secret, safe=""),
    ]


def assert_no_secret(text: str, secret: str = TOKEN) -> None:
    for form in encodings(secret):
        assert form not in text, f"secret form {form!r} leaked"
        # Either half of a form, as a split line would leave it.
        middle = len(form) // 2
        assert form[:middle] not in text, f"first half of {form!r} leaked"
        assert form[middle:] not in text, f"second half of {form!r} leaked"


def test_secret_sources_resolved(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    (tmp_path / "token.txt").write_text("from-a-file-123456\n", encoding="utf-8")
    memory_keyring.set_password("isobind-test", "robot", "from-the-keyring-654321")
    data = {
        "mcpServers": {
            "s": {
                "command": "server",
                "env": {
                    "A": "${secret:env:HOST_TOKEN}",
                    "B": "${secret:file:token.txt}",
                    "C": "key=${secret:keyring:isobind-test/robot}",
                },
            }
        }
    }
    config = load_config(write_config(tmp_path, data), environ={"HOST_TOKEN": "from-env-abcdef"})
    server = config.servers["s"]
    env = dict(server.env)  # type: ignore[union-attr]
    assert env == {
        "A": "from-env-abcdef",
        "B": "from-a-file-123456",
        "C": "key=from-the-keyring-654321",
    }
    assert config.secrets == {"from-env-abcdef", "from-a-file-123456", "from-the-keyring-654321"}
    assert "from" not in repr(config)


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        pytest.param("${secret:env:MISSING}", "environment variable MISSING is not set", id="env"),
        pytest.param("${secret:file:absent.txt}", "absent.txt' not found", id="file"),
        pytest.param("${secret:file:empty.txt}", "is empty", id="empty-file"),
        pytest.param(
            "${secret:keyring:svc/nobody}",
            "no keyring entry for service 'svc' and user 'nobody'",
            id="keyring",
        ),
        pytest.param("${secret:keyring:noslash}", "invalid keyring reference", id="keyring-form"),
        pytest.param("${secret:vault:x}", "unknown secret source 'vault'", id="kind"),
    ],
)
def test_secret_source_errors(
    tmp_path: Path, memory_keyring: MemoryKeyring, reference: str, problem: str
) -> None:
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    data = {"mcpServers": {"s": {"command": "server", "env": {"KEY": reference}}}}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, data), environ={})
    assert caught.value.key == "mcpServers.s.env.KEY"
    assert problem in str(caught.value)


def test_line_scrubber_joins_split_secret() -> None:
    emitted: list[str] = []
    scrubber = LineScrubber(LiveRedactor([TOKEN]), emitted.append)
    for form in encodings(TOKEN):
        for cut in (3, len(form) // 2, len(form) - 3):
            scrubber.feed(f"before {form[:cut]}")
            scrubber.feed(f"{form[cut:]} after")
    scrubber.feed("last line")
    scrubber.flush()
    assert emitted[-1] == "last line"
    assert_no_secret("\n".join(emitted))
    assert all(line.startswith(("before", "[REDACTED]")) for line in emitted[:-1])


def test_line_scrubber_joins_secret_over_many_lines() -> None:
    emitted: list[str] = []
    scrubber = LineScrubber(LiveRedactor([TOKEN]), emitted.append)
    fed = 0
    for form in encodings(TOKEN):
        for parts in (3, 4, len(form) // 3):
            size = -(-len(form) // parts)
            pieces = [form[index : index + size] for index in range(0, len(form), size)]
            lines = [f"before {pieces[0]}", *(f"  {piece}  " for piece in pieces[1:-1])]
            lines.append(f"    {pieces[-1]} after")
            for line in lines:
                scrubber.feed(line)
            fed += len(lines)
    scrubber.feed("last line")
    scrubber.flush()
    assert len(emitted) == fed + 1
    assert emitted[-1] == "last line"
    assert_no_secret("\n".join(emitted))
    assert_no_secret("".join(line.strip() for line in emitted))
    assert all("[REDACTED]" in line for line in emitted[:-1])


def test_line_scrubber_emits_lines_without_secrets() -> None:
    emitted: list[str] = []
    scrubber = LineScrubber(LiveRedactor([TOKEN]), emitted.append)
    lines = [f"starts like the token: {TOKEN[:5]}", "but goes on differently", "third"]
    for line in lines:
        scrubber.feed(line)
    scrubber.flush()
    assert emitted == lines


# --- The leak suite: a server that echoes its credential everywhere it can -------


@pytest.fixture(scope="module")
def leaky_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("leaky")
    (directory / "token.txt").write_text(TOKEN + "\n", encoding="utf-8")
    data = {
        "mcpServers": {
            "leaky": {
                "command": sys.executable,
                "args": [str(TESTS / "servers" / "leaky.py")],
                "env": {"LEAKY_TOKEN": "${secret:file:token.txt}"},
            }
        },
        "isobind": {"timeout": 10, "audit": "audit.jsonl"},
    }
    return write_config(directory, data)


@pytest.fixture(scope="module")
async def leaky(leaky_config: Path) -> AsyncIterator[Toolbox]:
    async with Toolbox.from_config(leaky_config, environ={}) as toolbox:
        yield toolbox


LEAK_CODE = """
const out = {};
out.clear = await tools.leaky.echo_token();
out.encoded = await tools.leaky.echo_encoded();
for (const name of ["fail_with_token", "fail_every_form"]) {
  try { await tools.leaky[name](); } catch (error) { out[name] = [error.message, error.stack]; }
}
out.logged = await tools.leaky.log_every_form();
out.echoed = await tools.leaky.echo({value: JSON.stringify(out)});
console.log(JSON.stringify(out));
console.error(out.encoded.base64, out.encoded.hex);
await tools.leaky.fail_every_form();
"""


async def wait_for_log(caplog: pytest.LogCaptureFixture, *needles: str) -> None:
    # The stderr relay logs from its own thread; wait for its last line, bounded.
    with anyio.fail_after(10):
        while not all(needle in caplog.text for needle in needles):  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_leak_suite_through_toolbox(leaky: Toolbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="isobind")
    result = await leaky.execute(LEAK_CODE)
    assert result.error is not None
    assert result.error.name == "ToolError"
    await wait_for_log(caplog, "stderr done", "log done")

    everything = json.dumps(result.to_dict())
    assert "[REDACTED]" in everything
    assert_no_secret(everything)
    assert_no_secret(caplog.text)
    assert leaky.audit is not None
    assert_no_secret(leaky.audit.path.read_text(encoding="utf-8"))
    # The split lines were logged, with the secret replaced on both sides.
    assert "clear split: [REDACTED]" in caplog.text
    assert "[REDACTED] (end of hex)" in caplog.text


async def test_credential_shapes_scrubbed_in_logs(
    leaky: Toolbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="isobind")
    code = """
await tools.leaky.log_shapes();
console.log("token ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8 and Bearer abcdefgh12345678");
"""
    result = await leaky.execute(code)
    assert result.ok, result.error
    await wait_for_log(caplog, "shapes done")
    assert leaky.audit is not None
    audit = leaky.audit.path.read_text(encoding="utf-8")
    for text in (caplog.text, audit, json.dumps([entry.message for entry in result.logs])):
        for shape in (
            "A1b2C3d4E5f6G7h8",
            "AKIAIOSFODNN7EXAMPLE",
            "xoxb-1234567890",
            "sk-proj-abcdef",
            "abc.def-ghi_jkl",
            "uniquekeybody",
            "abcdefgh12345678",
        ):
            assert shape not in text, shape
    assert "Authorization: Bearer [REDACTED]" in caplog.text


def test_leak_suite_through_cli(leaky_config: Path, tmp_path: Path) -> None:
    script = tmp_path / "leak.ts"
    script.write_text(LEAK_CODE, encoding="utf-8")
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "isobind", "exec", str(script)),
            *("--config", str(leaky_config), "--json", "--verbose"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={key: value for key, value in os.environ.items() if key != "LEAKY_TOKEN"},
    )
    assert completed.returncode == 1, completed.stderr
    output = json.loads(completed.stdout)
    assert output["error"]["name"] == "ToolError"
    assert_no_secret(completed.stdout)
    assert_no_secret(completed.stderr)
    assert "stderr done" in completed.stderr


# --- OAuth client credentials against a streamable-HTTP server ---------------------


@pytest.fixture
def protected() -> Iterator[ProtectedServer]:
    server = ProtectedServer(CLIENT_SECRET, uses_per_token=4)
    server.start()
    yield server
    server.stop()


def oauth_config(directory: Path, server: ProtectedServer) -> Path:
    data = {
        "mcpServers": {"remote": {"type": "http", "url": f"{server.url}/mcp"}},
        "isobind": {
            "audit": "audit.jsonl",
            "servers": {
                "remote": {
                    "oauth": {
                        "tokenUrl": f"{server.url}/token",
                        "clientId": CLIENT_ID,
                        "clientSecret": "${secret:env:REMOTE_CLIENT_SECRET}",
                    }
                }
            },
        },
    }
    return write_config(directory, data)


async def test_oauth_tokens_applied_and_refreshed(
    protected: ProtectedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="isobind")
    config = load_config(
        oauth_config(tmp_path, protected), environ={"REMOTE_CLIENT_SECRET": CLIENT_SECRET}
    )
    code = """
const sums = [];
for (let i = 0; i < 6; i++) sums.push(await tools.remote.add({a: i, b: 1}));
const seen = await tools.remote.whoami({});
console.log("server saw", seen.authorization);
return {sums, seen};
"""
    async with Toolbox(config) as toolbox:
        assert "function add(" in toolbox.declaration
        result = await toolbox.execute(code)
        audit = tmp_path / "audit.jsonl"
        audit_text = audit.read_text(encoding="utf-8")

    assert result.ok, result.error
    sums = [
        value["result"] if isinstance(value, dict) else value for value in result.result["sums"]
    ]
    assert sums == [1, 2, 3, 4, 5, 6]
    assert result.result["seen"]["authorization"] == "Bearer [REDACTED]"
    state = protected.state
    # Each token serves four requests, so the host had to renew it after a 401.
    assert len(state.issued) >= 3
    assert state.rejected >= 2
    assert state.bad_client_requests == 0
    places = [json.dumps(result.to_dict()), audit_text, caplog.text]
    for token in state.issued:
        for place in places:
            assert_no_secret(place, token)
    for place in places:
        assert_no_secret(place, CLIENT_SECRET)


async def test_http_server_without_token_fails(protected: ProtectedServer, tmp_path: Path) -> None:
    data = {"mcpServers": {"remote": {"type": "http", "url": f"{protected.url}/mcp"}}}
    config = load_config(write_config(tmp_path, data), environ={})
    with pytest.raises(UpstreamError) as caught:
        async with Toolbox(config):
            pass
    assert "could not connect" in str(caught.value)
    assert protected.state.rejected >= 1


async def test_oauth_wrong_client_secret_fails(protected: ProtectedServer, tmp_path: Path) -> None:
    config = load_config(
        oauth_config(tmp_path, protected), environ={"REMOTE_CLIENT_SECRET": "wrong-secret-123456"}
    )
    with pytest.raises(UpstreamError) as caught:
        async with Toolbox(config):
            pass
    message = str(caught.value)
    assert "the token endpoint returned HTTP 401" in message
    assert "wrong-secret-123456" not in message
    assert protected.state.issued == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("basic configuration", "basic configuration", id="prose-basic"),
        pytest.param("bearer instruments", "bearer instruments", id="prose-bearer"),
        pytest.param("Bearer abcdefgh12345678", "Bearer [REDACTED]", id="bearer"),
        pytest.param(
            "Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED]", id="header"
        ),
        pytest.param("key AKIAIOSFODNN7EXAMPLE.", "key [REDACTED].", id="aws"),
        pytest.param("sk-short", "sk-short", id="short-prefix"),
    ],
)
def test_credential_shapes(text: str, expected: str) -> None:
    assert scrub_credential_shapes(text) == expected


def test_credential_shapes_keep_json_valid() -> None:
    record = {
        "a": 'authorization=abc\\"def ghp_' + "x1" * 15,
        "b": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE",
        "c": "after",
    }
    scrubbed = scrub_credential_shapes(json.dumps(record), json_text=True)
    decoded = json.loads(scrubbed)
    assert decoded["b"] == "[REDACTED]"
    assert decoded["c"] == "after"
    assert "x1x1" not in decoded["a"]


def test_missing_keyring_names_next_step(tmp_path: Path) -> None:
    # keyring's own backend for a machine without a keyring, as on most CI runners.
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        data = {"mcpServers": {"s": {"command": "server", "env": {"KEY": "${secret:keyring:a/b}"}}}}
        with pytest.raises(ConfigError) as caught:
            load_config(write_config(tmp_path, data), environ={})
    finally:
        keyring.set_keyring(previous)
    message = str(caught.value)
    assert "no system keyring is available" in message
    assert "${secret:env:NAME}" in message
