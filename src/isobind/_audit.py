"""The audit log: one JSON line per execution, scrubbed of secrets before it is written."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ._redact import Redactor

__all__ = ["AuditLog"]

logger = logging.getLogger(__name__)


class AuditLog:
    """An append-only JSON Lines file of execution records.

    Each record is scrubbed by the redactor and written with one `write` call
    on a file opened in append mode, so records from concurrent executions do
    not interleave. The file is created with mode 0600 because it contains the
    code and the tool inputs and outputs.
    """

    def __init__(self, path: str | os.PathLike[str], redactor: Redactor | None = None):
        self.path = Path(path)
        self._redactor = redactor if redactor is not None else Redactor.empty()
        self._lock = threading.Lock()

    def with_redactor(self, redactor: Redactor) -> AuditLog:
        return AuditLog(self.path, redactor)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(self._redactor.scrub(record), ensure_ascii=False) + "\n"
        line = self._redactor.scrub_text(line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line)
        logger.debug("audit record %s written to %s", record.get("executionId"), self.path)
