"""The OS lockdown of a sandbox worker process: the wall behind the V8 isolate.

A worker calls `enter_network_namespace()` first, while it still has one
thread, and `lock_down()` once V8 is initialised and has created an isolate.
After that, every thread of the process is under a seccomp filter that rejects
with EPERM the system calls an isolate escape would need:

- network: `socket`, `connect`, `bind`, `listen`, `accept`, `socketpair`;
- new programs and processes: `execve`, `fork`, `vfork`, and `clone` without
  `CLONE_THREAD` (threads stay allowed because V8 and Python start them);
- files: every `open`, so neither reading nor writing, plus the calls that
  change the filesystem without opening (`unlink`, `rename`, `chmod`, ...);
- escape hatches: `ptrace`, `process_vm_*`, `mount`, `unshare`, `setns`,
  `bpf`, `io_uring_*`, `userfaultfd`, `kill`, and more below.

`clone3` and `openat2` fail with ENOSYS instead, because seccomp cannot look
into their argument structs; glibc then falls back to `clone` and `openat`,
which the filter can check.

Resource limits cap the process's private writable memory (RLIMIT_DATA, which
counts ArrayBuffer backing stores that V8's heap limit does not), open files
and core dumps. Every step that the OS does not allow is reported in the
returned `LockdownReport`, never skipped silently.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import resource
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LockdownReport", "enter_network_namespace", "lock_down"]

logger = logging.getLogger(__name__)

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_CLONE_THREAD = 0x00010000

_DENIED_SYSCALLS = (
    # network
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    # programs and processes
    "execve",
    "execveat",
    "fork",
    "vfork",
    # files
    "open",
    "openat",
    "creat",
    "open_by_handle_at",
    "name_to_handle_at",
    "truncate",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "mknod",
    "mknodat",
    "chmod",
    "fchmodat",
    "chown",
    "lchown",
    "fchownat",
    "chdir",
    "chroot",
    "pivot_root",
    "mount",
    "umount2",
    # other processes, namespaces and kernel interfaces
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kill",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "personality",
)

# Calls whose arguments are structs that seccomp cannot inspect: ENOSYS makes
# glibc fall back to the older call that the filter checks.
_UNSUPPORTED_SYSCALLS = ("clone3", "openat2")


@dataclass(slots=True)
class LockdownReport:
    """The protection a worker achieved; `missing` names each step that failed."""

    network_namespace: bool = False
    seccomp: bool = False
    data_limit_bytes: int | None = None
    open_files_limit: int | None = None
    core_dumps: bool = True
    environment_keys: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "network_namespace": self.network_namespace,
            "seccomp": self.seccomp,
            "data_limit_bytes": self.data_limit_bytes,
            "open_files_limit": self.open_files_limit,
            "core_dumps": self.core_dumps,
            "environment_keys": self.environment_keys,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockdownReport:
        return cls(
            network_namespace=bool(data.get("network_namespace")),
            seccomp=bool(data.get("seccomp")),
            data_limit_bytes=data.get("data_limit_bytes"),
            open_files_limit=data.get("open_files_limit"),
            core_dumps=bool(data.get("core_dumps", True)),
            environment_keys=[str(key) for key in data.get("environment_keys", [])],
            missing=[str(item) for item in data.get("missing", [])],
        )


def enter_network_namespace() -> str | None:
    """Move this process into a new user and network namespace with no interfaces but `lo`.

    Returns `None` on success, else why it failed. The kernel allows
    `unshare(CLONE_NEWUSER)` only while the process has a single thread, so
    call this before anything starts a thread.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        return None
    code = ctypes.get_errno()
    return f"unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: {os.strerror(code)}"


def lock_down(report: LockdownReport, *, data_budget_bytes: int, max_open_files: int) -> None:
    """Apply resource limits and the seccomp filter to this process, recording the result.

    `data_budget_bytes` is added to the private writable memory the process
    already uses, so V8's own reservations made at start-up stay within the
    limit and the budget is what the runs can add.
    """
    report.environment_keys = sorted(os.environ)
    # Imported before the limits apply: a small RLIMIT_NOFILE would leave no file
    # descriptor for opening the module, and the filter would be skipped.
    try:
        import pyseccomp
    except (ImportError, OSError) as error:
        report.missing.append(f"seccomp: pyseccomp or libseccomp is unavailable: {error}")
        seccomp = None
    else:
        seccomp = pyseccomp
    _limit_resources(report, data_budget_bytes, max_open_files)
    if seccomp is not None:
        _load_seccomp_filter(report, seccomp)


def _data_in_use() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmData is missing from /proc/self/status")


def _limit_resources(report: LockdownReport, data_budget_bytes: int, max_open_files: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        report.core_dumps = False
    except (OSError, ValueError) as error:
        report.missing.append(f"RLIMIT_CORE: {error}")
    try:
        limit = _data_in_use() + data_budget_bytes
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        report.data_limit_bytes = limit
    except (OSError, ValueError) as error:
        report.missing.append(f"RLIMIT_DATA: {error}")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))
        report.open_files_limit = max_open_files
    except (OSError, ValueError) as error:
        report.missing.append(f"RLIMIT_NOFILE: {error}")
    # NOTE: RLIMIT_NPROC is not set: Linux counts it per user across all of
    # that user's processes, and ignores it for root, so no value both holds
    # and leaves the user's other processes alone. The seccomp filter's ban
    # on fork, vfork and process clones is what stops new processes.


def _load_seccomp_filter(report: LockdownReport, seccomp: Any) -> None:
    try:
        syscall_filter = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        # TSYNC applies the filter to every thread already running (V8's
        # platform threads, mini-racer's isolate threads), not just this one.
        syscall_filter.set_attr(seccomp.Attr.CTL_TSYNC, 1)
        denied = seccomp.ERRNO(errno.EPERM)
        for name in _DENIED_SYSCALLS:
            _add_rule(syscall_filter, denied, name)
        for name in _UNSUPPORTED_SYSCALLS:
            _add_rule(syscall_filter, seccomp.ERRNO(errno.ENOSYS), name)
        syscall_filter.add_rule(
            denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, 0)
        )
        syscall_filter.load()
    except (OSError, RuntimeError, ValueError) as error:
        report.missing.append(f"seccomp: loading the filter failed: {error}")
        return
    report.seccomp = True


def _add_rule(syscall_filter: Any, action: int, name: str) -> None:
    try:
        syscall_filter.add_rule(action, name)
    except (OSError, RuntimeError, ValueError) as error:
        # A call that this architecture does not have cannot be made either.
        logger.debug("seccomp: no rule for %s: %s", name, error)
