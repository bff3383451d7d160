"""Policy on the host: real filesystem and memory servers, real files and symlinks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from isobind import ConfigError, ExecutionResult, Toolbox, load_config
from isobind._approval import ApprovalRequest

from .conftest import TESTS, node_server, write_config

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory the server may see whole, with a part the policy allows."""
    root = tmp_path_factory.mktemp("tree")
    allowed = root / "allowed"
    allowed.mkdir()
    (allowed / "notes.txt").write_text("line one\nline two\n", encoding="utf-8")
    (root / "secret.txt").write_text("outside the allowed directory\n", encoding="utf-8")
    (allowed / "escape").symlink_to(root / "secret.txt")
    (allowed / "inner").symlink_to(allowed / "notes.txt")
    return root


def policy_config(tree: Path, memory_file: Path) -> dict[str, Any]:
    allowed = str(tree / "allowed")
    return {
        "mcpServers": {
            # The server itself may read the whole tree: only the host policy
            # confines the code to the allowed directory.
            "fs": {"command": node_server("mcp-server-filesystem"), "args": [str(tree)]},
            "memory": {
                "command": node_server("mcp-server-memory"),
                "env": {"MEMORY_FILE_PATH": str(memory_file)},
            },
        },
        "isobind": {
            "timeout": 5,
            "servers": {
                "fs": {
                    "readOnly": True,
                    "tools": {
                        "*": {
                            "arguments": {
                                "path": {"within": [allowed]},
                                "paths": {"within": [allowed]},
                                "head": {"minimum": 1, "maximum": 10},
                            }
                        }
                    },
                },
                "memory": {
                    "denyDestructive": True,
                    "approve": ["create_entities"],
                    "tools": {
                        "read_graph": {"maxCallsPerRun": 2},
                        "search_nodes": {
                            "arguments": {"query": {"pattern": "[a-z]+"}},
                            "rateLimit": {"calls": 3, "seconds": 3600},
                        },
                        "open_nodes": {"arguments": {"names": {"oneOf": [["alpha"], ["beta"]]}}},
                        "create_*": {},
                        "add_observations": {},
                        "delete_entities": {},
                    },
                },
            },
        },
    }


class Approvals:
    """An approver that records each request and answers from a queue."""

    def __init__(self) -> None:
        self.requests: list[ApprovalRequest] = []
        self.answer: Any = True

    def __call__(self, request: ApprovalRequest) -> Any:
        self.requests.append(request)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.fixture(scope="module")
def approvals() -> Approvals:
    return Approvals()


@pytest.fixture(scope="module")
def memory_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("memory") / "memory.jsonl"


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory: pytest.TempPathFactory, tree: Path, memory_file: Path) -> Path:
    return write_config(tmp_path_factory.mktemp("policy"), policy_config(tree, memory_file))


@pytest.fixture(scope="module")
async def toolbox(policy_path: Path, approvals: Approvals) -> AsyncIterator[Toolbox]:
    config = load_config(policy_path, environ={})
    async with Toolbox(config, approve=approvals, approval_timeout=5) as opened:
        yield opened


async def call(toolbox: Toolbox, expression: str, **options: Any) -> ExecutionResult:
    """Run one call and return the result; a thrown error is reported as [name, message]."""
    code = f"""
try {{
  return ["ok", await {expression}];
}} catch (error) {{
  return [error.name, error.message];
}}
"""
    result = await toolbox.execute(code, **options)
    assert result.ok, result.error
    return result


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def js(value: object) -> str:
    return json.dumps(value)


async def test_read_inside_allowed_directory(toolbox: Toolbox, tree: Path) -> None:
    path = tree / "allowed" / "notes.txt"
    result = await call(toolbox, f"tools.fs.read_text_file({{path: {js(str(path))}}})")
    outcome, value = result.result
    assert outcome == "ok"
    assert "line one" in json.dumps(value)


async def test_read_through_inner_symlink_allowed(toolbox: Toolbox, tree: Path) -> None:
    path = tree / "allowed" / "inner"
    result = await call(toolbox, f"tools.fs.read_text_file({{path: {js(str(path))}}})")
    assert result.result[0] == "ok"


@pytest.mark.parametrize(
    "relative",
    [
        pytest.param("secret.txt", id="outside"),
        pytest.param("allowed/../secret.txt", id="dot-dot"),
        pytest.param("allowed/escape", id="symlink"),
    ],
)
async def test_read_outside_refused(toolbox: Toolbox, tree: Path, relative: str) -> None:
    path = f"{tree}/{relative}"
    result = await call(toolbox, f"tools.fs.read_text_file({{path: {js(path)}}})")
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "isobind.servers.fs.tools.*.arguments.path.within" in message
    assert "outside the allowed" not in json.dumps(result.to_dict())


async def test_read_multiple_checks_each_path(toolbox: Toolbox, tree: Path) -> None:
    paths = [str(tree / "allowed" / "notes.txt"), str(tree / "allowed" / "escape")]
    result = await call(toolbox, f"tools.fs.read_multiple_files({{paths: {js(paths)}}})")
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "arguments.paths.within" in message


async def test_relative_path_refused(toolbox: Toolbox) -> None:
    result = await call(toolbox, 'tools.fs.read_text_file({path: "allowed/notes.txt"})')
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "absolute path" in message


@pytest.mark.parametrize(
    ("head", "rule"),
    [
        pytest.param(0, "arguments.head.minimum", id="below"),
        pytest.param(11, "arguments.head.maximum", id="above"),
    ],
)
async def test_number_outside_range_refused(
    toolbox: Toolbox, tree: Path, head: int, rule: str
) -> None:
    path = js(str(tree / "allowed" / "notes.txt"))
    result = await call(toolbox, f"tools.fs.read_text_file({{path: {path}, head: {head}}})")
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert rule in message


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param('tools.fs.write_file({path: "{dir}/new.txt", content: "x"})', id="write"),
        pytest.param(
            'tools.fs.move_file({source: "{dir}/notes.txt", destination: "{dir}/moved.txt"})',
            id="move",
        ),
        pytest.param(
            'tools.fs.edit_file({path: "{dir}/notes.txt", '
            'edits: [{oldText: "line", newText: ""}]})',
            id="edit",
        ),
        pytest.param('tools.fs.create_directory({path: "{dir}/sub"})', id="mkdir"),
    ],
)
async def test_filesystem_writes_refused(toolbox: Toolbox, tree: Path, expression: str) -> None:
    allowed = tree / "allowed"
    before = sorted(path.name for path in allowed.iterdir())
    result = await call(toolbox, expression.replace("{dir}", str(allowed)))
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "isobind.servers.fs.readOnly" in message
    assert sorted(path.name for path in allowed.iterdir()) == before
    assert (allowed / "notes.txt").read_text(encoding="utf-8") == "line one\nline two\n"


async def test_declaration_hides_refused_tools(toolbox: Toolbox) -> None:
    declaration = toolbox.declaration
    assert "function read_text_file(" in declaration
    assert "function write_file(" not in declaration
    assert "function delete_entities(" not in declaration
    assert "function create_entities(" in declaration
    # Listed in no allow glob and no tools key, so denied by default.
    assert "function delete_relations(" not in declaration


async def test_memory_deletion_refused(toolbox: Toolbox) -> None:
    result = await call(toolbox, 'tools.memory.delete_entities({entityNames: ["alpha"]})')
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "isobind.servers.memory.denyDestructive" in message


async def test_unlisted_tool_denied_by_default(toolbox: Toolbox) -> None:
    result = await call(
        toolbox,
        'tools.memory.delete_relations({relations: [{from: "a", to: "b", relationType: "r"}]})',
    )
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "rule isobind.servers.memory.tools)" in message


async def test_memory_readonly_refuses_deletions(tmp_path: Path) -> None:
    data = {
        "mcpServers": {
            "memory": {
                "command": node_server("mcp-server-memory"),
                "env": {"MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")},
            }
        },
        "isobind": {"servers": {"memory": {"readOnly": True}}},
    }
    config = load_config(write_config(tmp_path, data), environ={})
    async with Toolbox(config) as toolbox:
        for expression in (
            'tools.memory.delete_entities({entityNames: ["a"]})',
            'tools.memory.delete_relations({relations: [{from: "a", to: "b", relationType: "r"}]})',
            'tools.memory.delete_observations({deletions: [{entityName: "a", observations: []}]})',
            'tools.memory.create_entities({entities: [{name: "a", entityType: "t", '
            "observations: []}]})",
        ):
            result = await call(toolbox, expression)
            name, message = result.result
            assert name == "PermissionDeniedError", expression
            assert "isobind.servers.memory.readOnly" in message
        read = await call(toolbox, "tools.memory.read_graph({})")
        assert read.result[0] == "ok"


async def test_default_policy_deny(tmp_path: Path) -> None:
    data = {
        "mcpServers": {
            "memory": {
                "command": node_server("mcp-server-memory"),
                "env": {"MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")},
            }
        },
        "isobind": {"defaultPolicy": "deny"},
    }
    config = load_config(write_config(tmp_path, data), environ={})
    async with Toolbox(config) as toolbox:
        assert "function read_graph(" not in toolbox.declaration
        result = await call(toolbox, "tools.memory.read_graph({})")
        name, message = result.result
        assert name == "PermissionDeniedError"
        assert "isobind.defaultPolicy" in message


ENTITY = '{entities: [{name: "alpha", entityType: "test", observations: ["first"]}]}'


async def test_approval_allows_call(
    toolbox: Toolbox, approvals: Approvals, memory_file: Path
) -> None:
    approvals.answer = True
    approvals.requests.clear()
    result = await call(toolbox, f"tools.memory.create_entities({ENTITY})")
    assert result.result[0] == "ok"
    assert [(r.server, r.tool) for r in approvals.requests] == [("memory", "create_entities")]
    assert approvals.requests[0].input["entities"][0]["name"] == "alpha"
    assert "alpha" in read_text(memory_file)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(False, "rejected", id="false"),
        pytest.param("yes", "rejected", id="not-true"),
        pytest.param(RuntimeError("approver broke"), "approver failed", id="exception"),
    ],
)
async def test_approval_refuses_call(
    toolbox: Toolbox, approvals: Approvals, answer: Any, reason: str
) -> None:
    approvals.answer = answer
    result = await call(
        toolbox,
        'tools.memory.create_entities({entities: [{name: "refused", entityType: "t", '
        "observations: []}]})",
    )
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "isobind.servers.memory.approve" in message
    assert reason in message
    graph = await call(toolbox, "tools.memory.read_graph({})")
    assert "refused" not in json.dumps(graph.result)


async def test_async_approval_and_timeout(tmp_path: Path, policy_path: Path) -> None:
    never = anyio.Event()

    async def hang(request: ApprovalRequest) -> bool:
        await never.wait()
        return True

    config = load_config(policy_path, environ={})
    async with Toolbox(config, approve=hang, approval_timeout=0.2) as toolbox:
        result = await call(toolbox, f"tools.memory.create_entities({ENTITY})")
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "did not answer within 0.2 s" in message


async def test_approval_without_approver(policy_path: Path) -> None:
    config = load_config(policy_path, environ={})
    async with Toolbox(config) as toolbox:
        result = await call(toolbox, f"tools.memory.create_entities({ENTITY})")
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "no approver" in message


async def test_budget_per_run(toolbox: Toolbox) -> None:
    code = """
const outcomes = [];
for (let i = 0; i < 3; i++) {
  try { await tools.memory.read_graph({}); outcomes.push("ok"); }
  catch (error) { outcomes.push(error.message); }
}
return outcomes;
"""
    for _ in range(2):  # the budget starts again with each run
        result = await toolbox.execute(code)
        assert result.ok, result.error
        first, second, third = result.result
        assert (first, second) == ("ok", "ok")
        assert "isobind.servers.memory.tools.read_graph.maxCallsPerRun" in third
        assert "2 calls per run" in third


async def test_budget_window_across_runs(toolbox: Toolbox) -> None:
    outcomes = []
    for _ in range(4):
        result = await call(toolbox, 'tools.memory.search_nodes({query: "alpha"})')
        outcomes.append(result.result)
    assert [outcome[0] for outcome in outcomes[:3]] == ["ok", "ok", "ok"]
    name, message = outcomes[3]
    assert name == "PermissionDeniedError"
    assert "isobind.servers.memory.tools.search_nodes.rateLimit" in message
    assert "3 calls per 3600 s" in message


async def test_pattern_constraint(toolbox: Toolbox) -> None:
    result = await call(toolbox, 'tools.memory.search_nodes({query: "Alpha!"})')
    name, message = result.result
    assert name == "PermissionDeniedError"
    assert "tools.search_nodes.arguments.query.pattern" in message


@pytest.mark.parametrize(
    ("names", "allowed"),
    [
        pytest.param(["alpha"], True, id="listed"),
        pytest.param(["gamma"], False, id="unlisted"),
    ],
)
async def test_value_list_constraint(toolbox: Toolbox, names: list[str], allowed: bool) -> None:
    result = await call(toolbox, f"tools.memory.open_nodes({{names: {js(names)}}})")
    if allowed:
        assert result.result[0] == "ok"
    else:
        name, message = result.result
        assert name == "PermissionDeniedError"
        assert "tools.open_nodes.arguments.names.oneOf" in message


async def test_input_error_names_field_expected_given(toolbox: Toolbox) -> None:
    result = await call(toolbox, 'tools.memory.open_nodes({names: "alpha"})')
    name, message = result.result
    assert name == "ToolInputError"
    assert 'input.names: expected an array, got "alpha" (a string)' in message


async def test_input_error_names_missing_field(toolbox: Toolbox) -> None:
    result = await call(toolbox, "tools.memory.open_nodes({})")
    name, message = result.result
    assert name == "ToolInputError"
    assert "input.names: required field is missing" in message


async def test_dry_run_refuses_writes(
    toolbox: Toolbox, approvals: Approvals, memory_file: Path
) -> None:
    approvals.requests.clear()
    code = """
const graph = await tools.memory.read_graph({});
let refused = null;
try {
  await tools.memory.add_observations({observations: [{entityName: "alpha", contents: ["dry"]}]});
} catch (error) { refused = [error.name, error.message]; }
return {entities: graph.entities.length, refused};
"""
    before = read_text(memory_file)
    result = await toolbox.execute(code, dry_run=True)
    assert result.ok, result.error
    name, message = result.result["refused"]
    assert name == "PermissionDeniedError"
    assert "dry run" in message
    assert "rule dryRun" in message
    assert read_text(memory_file) == before
    assert approvals.requests == []
    assert [(c.server, c.tool) for c in result.would_call] == [("memory", "add_observations")]
    data = result.to_dict()
    assert data["dryRun"] is True
    assert data["wouldCall"][0]["input"]["observations"][0]["contents"] == ["dry"]
    assert [call.dry_run for call in result.calls] == [False, True]


@pytest.fixture(scope="module")
def memory_only_path(tmp_path_factory: pytest.TempPathFactory, tree: Path) -> Path:
    """The memory server and its policy alone, so that CLI runs start one server.

    Its memory file starts with the entity "alpha", in the server's JSON Lines format.
    """
    directory = tmp_path_factory.mktemp("memory-only")
    seeded = directory / "memory.jsonl"
    entity = {"type": "entity", "name": "alpha", "entityType": "test", "observations": []}
    seeded.write_text(json.dumps(entity) + "\n", encoding="utf-8")
    data = policy_config(tree, seeded)
    del data["mcpServers"]["fs"]
    del data["isobind"]["servers"]["fs"]
    return write_config(directory, data)


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isobind", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_dry_run_reports_calls(memory_only_path: Path, tmp_path: Path) -> None:
    script = tmp_path / "write.ts"
    script.write_text(f"await tools.memory.create_entities({ENTITY});\n", encoding="utf-8")
    completed = run_cli(
        "exec", str(script), "--config", str(memory_only_path), "--dry-run", "--json"
    )
    assert completed.returncode == 1, completed.stderr
    output = json.loads(completed.stdout)
    assert output["error"]["name"] == "PermissionDeniedError"
    assert output["wouldCall"] == [
        {
            "server": "memory",
            "tool": "create_entities",
            "input": {
                "entities": [{"name": "alpha", "entityType": "test", "observations": ["first"]}]
            },
        }
    ]


@pytest.mark.parametrize(
    ("answer", "expected_ok"),
    [
        pytest.param("y\n", True, id="yes"),
        pytest.param("n\n", False, id="no"),
        pytest.param("", False, id="eof"),
    ],
)
def test_cli_prompt_from_piped_stdin(
    memory_only_path: Path, tmp_path: Path, answer: str, expected_ok: bool
) -> None:
    script = tmp_path / "observe.ts"
    script.write_text(
        'return await tools.memory.add_observations({observations: [{entityName: "alpha", '
        'contents: ["from the cli"]}]});\n',
        encoding="utf-8",
    )
    completed = run_cli(
        "exec", str(script), "--config", str(memory_only_path), "--approve", "--json", stdin=answer
    )
    assert "allow tools.memory.add_observations with input" in completed.stderr
    output = json.loads(completed.stdout)
    assert output["ok"] is expected_ok, output
    if not expected_ok:
        assert output["error"]["name"] == "PermissionDeniedError"
        assert "isobind.approveWrites" in output["error"]["message"]


@pytest.mark.parametrize(
    ("servers", "key", "problem"),
    [
        pytest.param(
            {"m": {"tools": {"*": {"arguments": {"q": {"pattern": "("}}}}}},
            "isobind.servers.m.tools.*.arguments.q.pattern",
            "invalid regular expression",
            id="bad-pattern",
        ),
        pytest.param(
            {"m": {"tools": {"*": {"arguments": {"n": {"minimum": 5, "maximum": 1}}}}}},
            "isobind.servers.m.tools.*.arguments.n",
            "minimum is greater than maximum",
            id="empty-range",
        ),
        pytest.param(
            {"m": {"tools": {"*": {"arguments": {"p": {"within": []}}}}}},
            "isobind.servers.m.tools.*.arguments.p.within",
            "within is empty",
            id="empty-within",
        ),
        pytest.param(
            {"m": {"tools": {"*": {"arguments": {"p": {"inside": ["/"]}}}}}},
            "isobind.servers.m.tools.*.arguments.p.inside",
            "Valid keys are maximum, minimum, oneOf, pattern, within",
            id="unknown-argument-key",
        ),
        pytest.param(
            {"m": {"rateLimit": {"calls": 1, "seconds": 0}}},
            "isobind.servers.m.rateLimit.seconds",
            "must be greater than 0",
            id="zero-window",
        ),
        pytest.param(
            {"m": {"tools": {"*": {"approval": True}}}},
            "isobind.servers.m.tools.*.approval",
            "did you mean 'approve'?",
            id="unknown-tool-key",
        ),
    ],
)
def test_policy_config_errors(
    tmp_path: Path, servers: dict[str, Any], key: str, problem: str
) -> None:
    data = {"mcpServers": {"m": {"command": "x"}}, "isobind": {"servers": servers}}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, data), environ={})
    assert caught.value.key == key
    assert problem in str(caught.value)


def test_default_policy_value_checked(tmp_path: Path) -> None:
    data = {"mcpServers": {"m": {"command": "x"}}, "isobind": {"defaultPolicy": "block"}}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, data), environ={})
    assert caught.value.key == "isobind.defaultPolicy"
    assert "'allow' or 'deny'" in str(caught.value)


def test_readme_config_example_valid() -> None:
    from isobind._config import _ConfigFile

    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    # The secret references need a keyring and files, so only the keys and types are checked.
    _ConfigFile.model_validate(json.loads(block))


def test_cli_prompt_on_terminal(memory_only_path: Path) -> None:
    """With the code on stdin, the question goes to the terminal: a real pseudo-terminal."""
    import fcntl
    import select
    import termios

    controller, terminal = os.openpty()

    def take_terminal() -> None:
        # Runs in the child: a new session whose controlling terminal is the pty.
        os.setsid()
        fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)

    code = (
        'return await tools.memory.add_observations({observations: [{entityName: "alpha", '
        'contents: ["from the terminal"]}]});\n'
    )
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "isobind", "exec", "-"),
            *("--config", str(memory_only_path), "--approve", "--json"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=terminal,
        preexec_fn=take_terminal,
        pass_fds=(terminal,),
    )
    os.close(terminal)
    try:
        assert process.stdin is not None
        process.stdin.write(code.encode())
        process.stdin.close()
        process.stdin = None  # so that communicate() does not flush the closed pipe

        shown = b""
        for _ in range(600):  # at most 60 s of 0.1 s waits for the question
            readable, _, _ = select.select([controller], [], [], 0.1)
            if readable:
                shown += os.read(controller, 4096)
            if b"[y/N]" in shown:
                break
        assert b"allow tools.memory.add_observations" in shown
        os.write(controller, b"y\n")
        stdout, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(controller)

    output = json.loads(stdout)
    assert output["ok"] is True, output


# --- Rate-limit windows shared through a store -------------------------------------


def rate_config(
    directory: Path, store: str | None, *, calls: int = 2, seconds: float = 3600
) -> Path:
    section: dict[str, Any] = {
        "timeout": 10,
        "servers": {"time": {"rateLimit": {"calls": calls, "seconds": seconds}}},
    }
    if store is not None:
        section["rateLimitStore"] = store
    data = {
        "mcpServers": {
            "time": {"command": "mcp-server-time", "args": ["--local-timezone", "Etc/UTC"]}
        },
        "isobind": section,
    }
    return write_config(directory, data)


TIME_CALL = 'tools.time.get_current_time({timezone: "Etc/UTC"})'


def exec_calls(config: Path, count: int) -> list[str]:
    """Run `count` calls in a separate `isobind exec` process; return each outcome's name."""
    code = f"""
const outcomes = [];
for (let i = 0; i < {count}; i++) {{
  try {{ await {TIME_CALL}; outcomes.push("ok"); }}
  catch (error) {{ outcomes.push(error.name + ": " + error.message); }}
}}
return outcomes;
"""
    completed = subprocess.run(
        [sys.executable, "-m", "isobind", "exec", "-", "--config", str(config), "--json"],
        input=code,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    outcomes: list[str] = json.loads(completed.stdout)["result"]
    return outcomes


def test_rate_store_shared_by_processes(tmp_path: Path) -> None:
    config = rate_config(tmp_path, "rate.db")
    assert exec_calls(config, 2) == ["ok", "ok"]
    [third] = exec_calls(config, 1)
    assert third.startswith("PermissionDeniedError")
    assert "isobind.servers.time.rateLimit" in third
    assert (tmp_path / "rate.db").is_file()


def test_rate_store_keeps_other_limits_apart(tmp_path: Path) -> None:
    # Two configs name the same rule and the same store with different limits. The
    # one with a 1 s window must not expire the calls of the one with an hour.
    (tmp_path / "hourly").mkdir()
    (tmp_path / "frequent").mkdir()
    hourly = rate_config(tmp_path / "hourly", "../rate.db", calls=2)
    frequent = rate_config(tmp_path / "frequent", "../rate.db", calls=100, seconds=1)
    assert exec_calls(hourly, 2) == ["ok", "ok"]
    time.sleep(1.2)  # the frequent config's window ends; the hourly one's does not
    assert exec_calls(frequent, 1) == ["ok"]
    [third] = exec_calls(hourly, 1)
    assert third.startswith("PermissionDeniedError")


def test_rate_window_per_process_without_store(tmp_path: Path) -> None:
    config = rate_config(tmp_path, None)
    assert exec_calls(config, 2) == ["ok", "ok"]
    assert exec_calls(config, 2) == ["ok", "ok"]


def test_rate_store_failure_rejects_calls(tmp_path: Path) -> None:
    config = rate_config(tmp_path, "missing-directory/rate.db")
    [outcome] = exec_calls(config, 1)
    assert outcome.startswith("PermissionDeniedError")
    assert "rate-limit store" in outcome
    assert "missing-directory" in outcome


async def test_rate_window_survives_api_rebuild(tmp_path: Path) -> None:
    async with Toolbox.from_config(rate_config(tmp_path, None)) as toolbox:
        for _ in range(2):
            result = await call(toolbox, TIME_CALL)
            assert result.result[0] == "ok"
        await toolbox.refresh()
        result = await call(toolbox, TIME_CALL)
        assert result.result[0] == "PermissionDeniedError"


def test_rate_store_empty_path_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(rate_config(tmp_path, ""))
    assert caught.value.key == "isobind.rateLimitStore"
    assert "rateLimitStore is empty" in str(caught.value)


# --- Tool names that are not identifiers ----------------------------------------------


def names_config(directory: Path, policy: dict[str, Any]) -> Path:
    data = {
        "mcpServers": {
            "n": {"command": sys.executable, "args": [str(TESTS / "servers" / "names.py")]}
        },
        "isobind": {"timeout": 10, "servers": {"n": policy}},
    }
    return write_config(directory, data)


@pytest.mark.parametrize(
    "pattern", ["delete-file", "delete_file", "delete_*", "delete-*"], ids=lambda p: p
)
async def test_deny_matches_api_name(tmp_path: Path, pattern: str) -> None:
    config = names_config(tmp_path, {"deny": [pattern, "get-data"]})
    async with Toolbox.from_config(config) as toolbox:
        assert "delete_file" not in toolbox.declaration
        result = await call(toolbox, 'tools.n.delete_file({path: "/etc/x"})')
        name, message = result.result
        assert name == "PermissionDeniedError"
        assert "isobind.servers.n.deny" in message
        assert not result.calls[0].ok


# A pattern matches original names and API identifiers, so `get_data` denies both tools.
@pytest.mark.parametrize(
    ("denied", "survivor"),
    [("get-data", "get_data"), ("get_data", None), ("get?data", None)],
    ids=["dashed", "underscored", "glob"],
)
async def test_denied_clash_leaves_others_usable(
    tmp_path: Path, denied: str, survivor: str | None
) -> None:
    config = names_config(tmp_path, {"deny": [denied]})
    async with Toolbox.from_config(config) as toolbox:
        result = await call(toolbox, 'tools.n.read_file({path: "a"})')
        assert result.result == ["ok", {"result": "read-file a"}]
        result = await call(toolbox, "tools.n.get_data({})")
        if survivor is None:
            assert "get_data" not in toolbox.declaration
            assert result.result[0] == "PermissionDeniedError"
        else:
            assert result.result == ["ok", {"result": survivor}]


async def test_allowed_clash_keeps_first_tool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = names_config(tmp_path, {})
    with caplog.at_level("WARNING", logger="isobind._toolbox"):
        async with Toolbox.from_config(config) as toolbox:
            result = await call(toolbox, "tools.n.get_data({})")
            assert result.result == ["ok", {"result": "get-data"}]
            result = await call(toolbox, 'tools.n.read_file({path: "a"})')
            assert result.result == ["ok", {"result": "read-file a"}]
    [warning] = [
        record.getMessage() for record in caplog.records if "both map" in record.getMessage()
    ]
    assert "'get-data' and 'get_data'" in warning
    assert "deny the first by its original name" in warning


async def test_tools_entry_does_not_widen_allow(tmp_path: Path) -> None:
    policy = {
        "allow": ["read-*"],
        "deny": ["get-data"],
        "tools": {"*": {"arguments": {"path": {"pattern": "[a-z]+"}}}},
    }
    async with Toolbox.from_config(names_config(tmp_path, policy)) as toolbox:
        assert "read_file" in toolbox.declaration
        for absent in ("create_thing", "delete_file", "get_data"):
            assert absent not in toolbox.declaration
        result = await call(toolbox, "tools.n.create_thing({})")
        name, message = result.result
        assert name == "PermissionDeniedError"
        assert "isobind.servers.n.allow" in message
        result = await call(toolbox, 'tools.n.read_file({path: "A1"})')
        name, message = result.result
        assert name == "PermissionDeniedError"
        assert "isobind.servers.n.tools.*.arguments.path.pattern" in message


async def test_tools_keys_admit_without_allow(tmp_path: Path) -> None:
    policy = {"deny": ["get_data"], "tools": {"read-file": {}, "create_*": {}}}
    async with Toolbox.from_config(names_config(tmp_path, policy)) as toolbox:
        result = await call(toolbox, 'tools.n.read_file({path: "a"})')
        assert result.result == ["ok", {"result": "read-file a"}]
        result = await call(toolbox, "tools.n.delete_file({path: 'a'})")
        name, message = result.result
        assert name == "PermissionDeniedError"
        assert "isobind.servers.n.tools" in message
