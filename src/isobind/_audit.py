"""The audit log: one JSON line per execution, scrubbed of secrets before it is written."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, cast

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

    def check_writable(self) -> None:
        """Create the file if needed, so that a bad path fails before any code runs.

        Raises:
            OSError: the file cannot be opened for appending.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.close(fd)

    def write(self, record: dict[str, Any]) -> None:
        scrubbed = cast(dict[str, Any], self._redactor.scrub(record))
        try:
            line = json.dumps(scrubbed, ensure_ascii=True)
        except (RecursionError, ValueError) as error:
            # Values reach here already checked; this guards the log itself.
            logger.warning(
                "audit record %s: result not serialisable: %s", record.get("executionId"), error
            )
            line = json.dumps({**scrubbed, "result": "[not serialisable]"}, ensure_ascii=True)
        line = self._redactor.scrub_text(line) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line)
        logger.debug("audit record %s written to %s", record.get("executionId"), self.path)
