"""The second wall: a locked-down worker stops native code that escaped the isolate.

The probe plays a successful V8 escape: `WorkerPool(_probe_module=...)` makes
a worker load a Python file before lockdown and call its `probe()` after
lockdown, on a thread that existed before the filter was loaded. The probe
calls libc directly through ctypes, as shellcode would, so Python's own checks
play no part.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from isobind import FunctionTools, Limits, SandboxSettings, Toolbox
from isobind._pool import WorkerPool

pytestmark = pytest.mark.anyio

HOST_SECRET = "host-credential-5f1e2d3c4b5a6978"

PROBE_TEMPLATE = """
import ctypes
import os

TARGETS = {targets!r}
libc = ctypes.CDLL(None, use_errno=True)
libc.fork.restype = ctypes.c_int


def attempt(name, call):
    ctypes.set_errno(0)
    result = call()
    return {{"result": result, "errno": ctypes.get_errno()}}


def fork_and_exit():
    pid = libc.fork()
    if pid == 0:
        libc._exit(0)
    return pid


def probe():
    argv = (ctypes.c_char_p * 2)(b"/bin/true", None)
    envp = (ctypes.c_char_p * 1)(None)
    report = {{
        "socket_inet": attempt("socket", lambda: libc.socket(2, 1, 0)),
        "socket_unix": attempt("socket", lambda: libc.socket(1, 1, 0)),
        "socketpair": attempt(
            "socketpair", lambda: libc.socketpair(1, 1, 0, (ctypes.c_int * 2)())
        ),
        "read_host_file": attempt(
            "open", lambda: libc.open(TARGETS["host_file"].encode(), os.O_RDONLY)
        ),
        "write_file": attempt(
            "open",
            lambda: libc.open(TARGETS["written_file"].encode(), os.O_WRONLY | os.O_CREAT, 0o600),
        ),
        "read_host_environ": attempt(
            "open", lambda: libc.open(TARGETS["host_environ"].encode(), os.O_RDONLY)
        ),
        "fork": attempt("fork", fork_and_exit),
        "execve": attempt("execve", lambda: libc.execve(b"/bin/true", argv, envp)),
        "environment": sorted(os.environ),
        "secret_in_environment": any(
            TARGETS["secret"] in value for value in os.environ.values()
        ),
    }}
    return report
"""


@pytest.fixture(scope="module")
def probe_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp_path = tmp_path_factory.mktemp("probe")
    os.environ["ISOBIND_TEST_HOST_SECRET"] = HOST_SECRET
    host_file = tmp_path / "host-credentials.txt"
    host_file.write_text(HOST_SECRET, encoding="utf-8")
    targets = {
        "host_file": str(host_file),
        "written_file": str(tmp_path / "written-by-worker.txt"),
        "host_environ": f"/proc/{os.getpid()}/environ",
        "secret": HOST_SECRET,
    }
    path = tmp_path / "escape_probe.py"
    path.write_text(textwrap.dedent(PROBE_TEMPLATE.format(targets=targets)), encoding="utf-8")
    try:
        yield {"path": str(path), **targets}
    finally:
        del os.environ["ISOBIND_TEST_HOST_SECRET"]


@pytest.fixture(scope="module")
async def probed_pool(probe_module: dict[str, str]) -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(SandboxSettings(workers=1), _probe_module=probe_module["path"])
    try:
        await pool.start()
        yield pool
    finally:
        await pool.aclose()


@pytest.mark.parametrize(
    "attempt",
    [
        pytest.param("socket_inet", id="tcp-socket"),
        pytest.param("socket_unix", id="unix-socket"),
        pytest.param("socketpair", id="socketpair"),
        pytest.param("read_host_file", id="read-file"),
        pytest.param("write_file", id="write-file"),
        pytest.param("read_host_environ", id="host-environ"),
        pytest.param("fork", id="fork"),
        pytest.param("execve", id="execve"),
    ],
)
async def test_escaped_code_denied(probed_pool: WorkerPool, attempt: str) -> None:
    probe = probed_pool.last_probe
    assert probe is not None
    outcome = probe[attempt]
    assert outcome["result"] == -1, f"{attempt} succeeded inside a locked worker"
    assert outcome["errno"] == errno.EPERM


async def test_escaped_code_finds_no_secret(
    probed_pool: WorkerPool, probe_module: dict[str, str]
) -> None:
    probe = probed_pool.last_probe
    assert probe is not None
    assert probe["secret_in_environment"] is False
    assert "ISOBIND_TEST_HOST_SECRET" not in probe["environment"]
    assert not os.path.exists(probe_module["written_file"])  # noqa: ASYNC240


async def test_lockdown_level_reported(probed_pool: WorkerPool) -> None:
    report = probed_pool.lockdown
    assert report is not None
    assert report.seccomp is True
    assert report.core_dumps is False
    assert report.data_limit_bytes is not None
    assert report.open_files_limit == 256
    assert "ISOBIND_TEST_HOST_SECRET" not in report.environment_keys


async def test_worker_has_own_network_namespace(probed_pool: WorkerPool) -> None:
    report = probed_pool.lockdown
    assert report is not None
    if not report.network_namespace:
        pytest.skip(f"this OS refused a network namespace: {report.missing}")
    (pid,) = probed_pool.worker_pids
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")


async def test_isolates_run_after_lockdown(probed_pool: WorkerPool) -> None:
    async def no_calls(request: Any) -> Any:
        raise AssertionError("no call expected")

    outcome = await probed_pool.run(
        "return [new Date(0).toISOString(), 'a'.localeCompare('b'), JSON.stringify({x: 1})]",
        api={},
        handler=no_calls,
        limits=Limits(),
    )
    assert outcome.error is None
    assert outcome.result_text == '["1970-01-01T00:00:00.000Z",-1,"{\\"x\\":1}"]'


def test_tight_open_files_limit_keeps_seccomp() -> None:
    # In a child process, because the lockdown cannot be undone: with only a few file
    # descriptors left, the filter's module must already be loaded.
    script = textwrap.dedent(
        """
        import json
        from isobind._lockdown import LockdownReport, lock_down
        report = LockdownReport()
        lock_down(report, data_budget_bytes=1 << 30, max_open_files=4)
        print(json.dumps({"seccomp": report.seccomp, "missing": report.missing}))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["seccomp"] is True, report["missing"]


def ping() -> int:
    """Return 1."""
    return 1


async def test_stopped_worker_killed_at_deadline() -> None:
    # SIGSTOP is a real fault: the worker stays alive but never answers, as a
    # worker stuck in native code would.
    async with Toolbox(
        functions=[FunctionTools("t", [ping])],
        sandbox=SandboxSettings(workers=1, kill_grace=0.2),
    ) as box:
        assert (await box.execute("return 1")).ok
        assert box._pool is not None
        (pid,) = box._pool.worker_pids
        os.kill(pid, signal.SIGSTOP)
        result = await box.execute("return 2", timeout=0.3)
        assert result.error is not None
        assert result.error.name == "TimeLimitExceeded"
        # The result comes at the time limit. The next run waits for the
        # stopped worker to be killed, `kill_grace` later, and gets a new one.
        again = await box.execute("return 3")
        assert again.result == 3
        assert pid not in box._pool.worker_pids


def test_doctor_reports_level() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "isobind", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "seccomp filter" in completed.stdout
    lines = completed.stdout.splitlines()
    if completed.returncode == 0:
        assert all(not line.startswith("MISSING") for line in lines)
    else:
        assert completed.returncode == 1
        assert "missing:" in completed.stderr
