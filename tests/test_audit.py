"""The hash-chained audit log, its commands, and OpenTelemetry spans."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner, Result

from isobind import AuditLog, FunctionTools, Toolbox
from isobind._audit import GENESIS_HASH, ChainError, line_hash, verify_log
from isobind._cli import app

pytestmark = pytest.mark.anyio

SECRET = "audit-secret-5d4c3b2a1908"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def reveal() -> str:
    """Return a value containing the configured secret."""
    return f"key={SECRET}"


def fail() -> str:
    """Always fail."""
    raise RuntimeError("broken on purpose")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def toolbox(tmp_path: Path, exporter: InMemorySpanExporter) -> AsyncIterator[Toolbox]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with Toolbox(
        functions=[
            FunctionTools("math", [add], read_only=True),
            FunctionTools("misc", [reveal, fail]),
        ],
        audit=tmp_path / "audit.jsonl",
        secrets=[SECRET],
        tracer_provider=provider,
    ) as opened:
        yield opened
    provider.shutdown()


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def audit_path(toolbox: Toolbox) -> Path:
    assert toolbox.audit is not None
    return toolbox.audit.path


CODE = """
const sum = await tools.math.add({a: 2, b: 3});
const text = await tools.misc.reveal({});
try { await tools.misc.fail({}); } catch (error) {}
return [sum, text];
"""


async def test_records_per_call_and_execution(toolbox: Toolbox) -> None:
    result = await toolbox.execute(CODE)
    assert result.ok, result.error
    lines = read_lines(audit_path(toolbox))
    records = [json.loads(line) for line in lines]
    assert [record["type"] for record in records] == ["call", "call", "call", "execution"]
    assert [record.get("tool") for record in records[:3]] == ["add", "reveal", "fail"]
    assert {record["executionId"] for record in records} == {result.execution_id}
    assert [record["index"] for record in records[:3]] == [0, 1, 2]
    assert records[2]["ok"] is False
    assert records[0]["prev"] == GENESIS_HASH
    for previous, record in zip(lines, records[1:], strict=False):
        assert record["prev"] == line_hash(previous.encode())
    assert SECRET not in "\n".join(lines)


async def test_chain_continues_across_toolboxes(toolbox: Toolbox) -> None:
    await toolbox.execute("return 1")
    path = audit_path(toolbox)
    async with Toolbox(audit=path) as other:
        await other.execute("return 2")
    summary = verify_log(path)
    assert summary.records == 2
    assert summary.head == line_hash(read_lines(path)[-1].encode())


def run_cli(*args: str) -> Result:
    # In process: starting the interpreter for each command would cost seconds.
    return CliRunner(env={"COLUMNS": "240"}).invoke(app, list(args))


def edit_field(line: str) -> str:
    record = json.loads(line)
    record["ok"] = not record["ok"]
    return json.dumps(record, separators=(",", ":"))


@pytest.mark.parametrize(
    ("tamper", "bad_line"),
    [
        pytest.param(lambda lines: [*lines[:1], edit_field(lines[1]), *lines[2:]], 3, id="edit"),
        pytest.param(lambda lines: [lines[0], *lines[2:]], 2, id="remove"),
        pytest.param(lambda lines: [lines[1], lines[0], *lines[2:]], 1, id="reorder"),
        pytest.param(lambda lines: [*lines[:2], lines[1], *lines[2:]], 3, id="duplicate"),
        pytest.param(lambda lines: [*lines[:3], "{not json", *lines[3:]], 4, id="garbage"),
    ],
)
async def test_hand_edit_fails_verification(toolbox: Toolbox, tamper: Any, bad_line: int) -> None:
    await toolbox.execute(CODE)
    path = audit_path(toolbox)
    completed = run_cli("audit", "verify", str(path))
    assert completed.exit_code == 0, completed.stderr
    assert "4 records, chain intact" in completed.stdout

    lines = read_lines(path)
    path.write_text("\n".join(tamper(lines)) + "\n", encoding="utf-8")
    completed = run_cli("audit", "verify", str(path))
    assert completed.exit_code == 1
    assert f"line {bad_line}:" in completed.stderr
    with pytest.raises(ChainError) as caught:
        verify_log(path)
    assert caught.value.line == bad_line


def test_concurrent_writers_keep_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    script = (
        "import sys\n"
        "from isobind import AuditLog\n"
        "log = AuditLog(sys.argv[1])\n"
        "for i in range(40):\n"
        "    log.append([{'type': 'call', 'n': i}, {'type': 'execution', 'n': i}])\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script, str(path)]) for _ in range(2)]

    def write_in_thread() -> None:
        log = AuditLog(path)
        for number in range(40):
            log.write({"type": "execution", "thread": number})

    threads = [threading.Thread(target=write_in_thread) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for process in processes:
        assert process.wait(timeout=60) == 0

    summary = verify_log(path)
    assert summary.records == 2 * 80 + 3 * 40


async def test_show_table_and_timeline(toolbox: Toolbox) -> None:
    first = await toolbox.execute(CODE)
    await toolbox.execute("return await tools.math.add({a: 1, b: 1})")
    path = str(audit_path(toolbox))

    table = run_cli("audit", "show", path)
    assert table.exit_code == 0, table.stderr
    assert first.execution_id in table.stdout
    assert "execution id" in table.stdout
    assert SECRET not in table.stdout

    timeline = run_cli("audit", "show", path, "--execution", first.execution_id[:12])
    assert timeline.exit_code == 0, timeline.stderr
    rows = [line for line in timeline.stdout.splitlines() if "misc." in line or "math." in line]
    assert [row.split("│")[3].strip() for row in rows] == ["math.add", "misc.reveal", "misc.fail"]
    assert "ToolError" in timeline.stdout
    assert "broken on purpose" in timeline.stdout

    missing = run_cli("audit", "show", path, "--execution", "ffff-none")
    assert missing.exit_code == 2
    assert "no execution" in missing.stderr


async def test_show_escapes_control_characters(toolbox: Toolbox) -> None:
    code = (
        'throw Object.assign(new Error("\\u001b[2Jwiped\\u001b]8;;http://x\\u0007link"),'
        ' {name: "\\u001b[31mRED"});'
    )
    result = await toolbox.execute(code)
    assert result.error is not None
    table = run_cli("audit", "show", str(audit_path(toolbox)))
    assert table.exit_code == 0, table.stderr
    assert "\x1b" not in table.stdout
    assert "\x07" not in table.stdout
    assert "\\x1b[31mRED" in table.stdout


def test_show_rejects_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "random.jsonl"
    path.write_bytes(bytes(range(128, 256)) * 10)
    shown = run_cli("audit", "show", str(path))
    assert shown.exit_code == 2
    assert "is not UTF-8" in shown.stderr
    assert "Traceback" not in shown.stderr


async def test_show_warns_of_broken_chain(toolbox: Toolbox) -> None:
    first = await toolbox.execute("return await tools.math.add({a: 1, b: 1})")
    await toolbox.execute("return 1")
    path = audit_path(toolbox)
    lines = read_lines(path)
    # Only a line with a line after it can be checked: the next line's `prev` covers it.
    index = next(
        number
        for number, line in enumerate(lines)
        if json.loads(line).get("executionId") == first.execution_id
        and json.loads(line)["type"] == "execution"
    )
    record = json.loads(lines[index])
    record["calls"] = "notalist"
    lines[index] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shown = run_cli("audit", "show", str(path))
    assert shown.exit_code == 0, shown.stderr
    assert "warning:" in shown.stderr
    assert "altered" in shown.stderr
    row = next(line for line in shown.stdout.splitlines() if record["executionId"] in line)
    assert "8" not in row.split("│")[4]


async def test_spans_for_execution_and_calls(
    toolbox: Toolbox, exporter: InMemorySpanExporter
) -> None:
    result = await toolbox.execute(CODE)
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    [execution] = by_name["isobind.execution"]
    calls = by_name["isobind.call"]
    assert execution.attributes["isobind.execution_id"] == result.execution_id
    assert execution.attributes["isobind.calls"] == 3
    assert execution.attributes["isobind.ok"] is True
    assert [span.attributes["isobind.tool"] for span in calls] == ["add", "reveal", "fail"]
    assert all(span.parent.span_id == execution.context.span_id for span in calls)
    assert calls[2].attributes["isobind.ok"] is False
    assert calls[2].attributes["error.type"] == "ToolError"
    for span in spans:
        assert SECRET not in json.dumps(dict(span.attributes or {}))


def test_package_exports_public_names() -> None:
    import isobind

    for name in isobind.__all__:
        assert hasattr(isobind, name), name
    for name in ("ApprovalRequest", "ChainError", "TerminalApprover", "verify_log"):
        assert name in isobind.__all__
