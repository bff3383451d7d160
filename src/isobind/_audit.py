"""The audit log: a hash-chained JSON Lines file, scrubbed of secrets before it is written.

Format. Each line is one JSON object with a ``type``:

- ``"call"``: one tool call, with ``executionId``, ``index`` (0-based, in the order
  the calls finished), ``server``, ``tool``, the redacted ``input``, ``ok``,
  ``error``, ``startMs`` (from the start of the run) and ``durationMs``;
- ``"execution"``: one run, written after its calls, with ``executionId``,
  ``startedAt``, ``code``, ``ok``, ``result``, ``error``, ``calls``, ``logs``,
  ``timings`` and ``limits``.

Every record has ``prev``: the lowercase hex SHA-256 of the previous line's bytes
(UTF-8, without its line feed), or 64 zeros for the first line. Editing, inserting,
reordering or removing a line breaks the ``prev`` of the line after it, which
`verify_log` finds. Removing lines from the end leaves a valid chain, so keep the
head hash that `verify_log` returns somewhere else to detect that too.

Writers take an exclusive `fcntl.flock` lock on the file while they read the last
line and append, so several `AuditLog` objects and several processes on one host
can share a file. NOTE: flock is advisory and is not reliable on network file
systems such as NFS, so writers on different hosts must not share a file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._log_scrub import scrub_credential_shapes
from ._redact import Redactor, Scrubber

__all__ = [
    "GENESIS_HASH",
    "AuditLog",
    "ChainError",
    "ChainSummary",
    "line_hash",
    "read_records",
    "verify_log",
]

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
"""The ``prev`` of the first record of a log."""

# The last line is found by reading backwards from the end in blocks of this size.
_TAIL_BLOCK = 64 * 1024


def line_hash(line: bytes) -> str:
    """Return the chain hash of one line, given without its line feed."""
    return hashlib.sha256(line).hexdigest()


class AuditLog:
    """Appends hash-chained records to a JSON Lines file.

    Each record is scrubbed by the redactor, and of credential shapes that no
    config names (`scrub_credential_shapes`), before it is hashed and written. The
    records of one `append` are written with one `write` call, so a reader never
    sees half an execution. The file is created with mode 0600 because it
    contains the code and the tool inputs and outputs.
    """

    def __init__(self, path: str | os.PathLike[str], redactor: Scrubber | None = None):
        self.path = Path(path)
        self._redactor: Scrubber = redactor if redactor is not None else Redactor.empty()
        # flock locks belong to open files, so threads of one process also need this lock.
        self._lock = threading.Lock()

    def with_redactor(self, redactor: Scrubber) -> AuditLog:
        return AuditLog(self.path, redactor)

    def check_writable(self) -> None:
        """Create the file if needed, so that a bad path fails before any code runs.

        Raises:
            OSError: the file cannot be opened for appending.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.close(fd)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        self.append([record])

    def append(self, records: Sequence[dict[str, Any]]) -> str:
        """Append `records` in order, chaining each to the one before; return the new head hash."""
        scrubbed = [self._redactor.scrub(record) for record in records]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                previous = _last_line_hash(fd)
                lines: list[bytes] = []
                for record in scrubbed:
                    assert isinstance(record, dict)
                    line = self._encode({**record, "prev": previous})
                    previous = line_hash(line)
                    lines.append(line)
                os.write(fd, b"".join(line + b"\n" for line in lines))
            finally:
                os.close(fd)  # closing the file releases the flock
        logger.debug("%d audit records written to %s", len(records), self.path)
        return previous

    def _encode(self, record: dict[str, Any]) -> bytes:
        try:
            text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        except (RecursionError, ValueError) as error:
            # Results reach here already checked; this guards the log itself.
            logger.warning("audit record not serialisable (%s); its result is left out", error)
            record = {**record, "result": "[not serialisable]"}
            text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        # A secret could also appear across two values once they are joined.
        text = scrub_credential_shapes(self._redactor.scrub_text(text), json_text=True)
        # A lone surrogate (possible in code passed from Python) becomes "?".
        return text.encode("utf-8", "replace")


def _last_line_hash(fd: int) -> str:
    """Return the hash of the last line of the open file, or `GENESIS_HASH` when it is empty."""
    end = os.lseek(fd, 0, os.SEEK_END)
    if end == 0:
        return GENESIS_HASH
    tail = b""
    position = end
    while position > 0:
        size = min(_TAIL_BLOCK, position)
        position -= size
        tail = os.pread(fd, size, position) + tail
        # The file ends with a line feed, so look for the one before it.
        cut = tail.rfind(b"\n", 0, len(tail) - 1)
        if cut >= 0:
            return line_hash(tail[cut + 1 :].rstrip(b"\n"))
    return line_hash(tail.rstrip(b"\n"))


class ChainError(Exception):
    """Raised when an audit log is not a valid hash chain; `line` is 1-based."""

    def __init__(self, line: int, reason: str):
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}")


@dataclass(frozen=True, slots=True)
class ChainSummary:
    """A verified log: the number of records and the hash of the last line."""

    records: int
    head: str


def verify_log(path: str | os.PathLike[str]) -> ChainSummary:
    """Check every record's ``prev`` against the line before it.

    Raises:
        ChainError: naming the first line that is not valid JSON, lacks ``prev``
            or does not chain to the line before it.
        OSError: when the file cannot be read.
    """
    previous = GENESIS_HASH
    count = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                raise ChainError(number, "the line has no line feed, so the write was cut short")
            line = raw[:-1]
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as error:
                raise ChainError(number, f"invalid JSON ({error})") from None
            if not isinstance(record, dict) or not isinstance(record.get("prev"), str):
                raise ChainError(number, "the record has no prev hash")
            if record["prev"] != previous:
                raise ChainError(
                    number,
                    "prev does not match the hash of the line before it, so a line was "
                    "edited, inserted or removed at or before this one",
                )
            previous = line_hash(line)
            count += 1
    return ChainSummary(records=count, head=previous)


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield each record of a log; lines that are not JSON objects are skipped."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record
