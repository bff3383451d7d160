"""Scrubbing for logs and the audit log: credential shapes and secrets split across lines.

`scrub_credential_shapes` replaces text that looks like a credential although no
config names it: bearer tokens, keys with a well-known prefix and private-key
blocks. It runs on log lines and audit records only, never on results, because a
result may contain such text on purpose and the code needs it unchanged.

`LineScrubber` scrubs a stream of lines (a server's stderr, its log
notifications) in which a secret may be split across two lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._redact import REDACTED, LiveRedactor, Scrubber

__all__ = ["LineScrubber", "scrub_credential_shapes"]

# Prefixes published by the issuers: OpenAI and Anthropic (sk-), GitHub (ghp_, gho_,
# ghu_, ghs_, ghr_, github_pat_), AWS access key ids (AKIA, ASIA), Slack (xoxb-,
# xoxp-, xoxa-, xoxr-, xoxs-, xoxe-), Stripe (sk_live_, rk_live_), GitLab (glpat-),
# Google API keys (AIza). Lengths are lower bounds, so that short words do not match.
_KEY_PATTERNS = (
    r"\bsk-[A-Za-z0-9_\-]{16,}",
    r"\bgh[opusr]_[A-Za-z0-9]{20,}",
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bxox[abeprs]-[A-Za-z0-9\-]{10,}",
    r"\b[rs]k_live_[A-Za-z0-9]{16,}",
    r"\bglpat-[A-Za-z0-9_\-]{20,}",
    r"\bAIza[0-9A-Za-z_\-]{30,}",
    # A JSON Web Token: three base64url parts, the first two starting with '{"'.
    r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+",
)
_KEYS = re.compile("|".join(_KEY_PATTERNS))
# The credential after "Bearer" or "Basic" (RFC 6750 b64token). It must contain a
# digit, so that prose such as "basic configuration" stays as it is.
_BEARER = re.compile(
    r"(?i)\b(bearer|basic)(\s+|%20|\+)(?=[A-Za-z0-9\-._~+/]*[0-9])[A-Za-z0-9\-._~+/]{8,}=*"
)
# The value of an Authorization header, whatever its scheme. A backslash ends it, so
# that a JSON escape is never cut in half.
_AUTHORIZATION = re.compile(r"(?i)\b(authorization\s*[:=]\s*(?:bearer\s+|basic\s+)?)[^\s\\\",;]+")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
# The same inside JSON text: a block ends at the closing quote of its string at the latest.
_PRIVATE_KEY_IN_JSON = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[^\"]*?(?:-----END \1PRIVATE KEY-----|(?=\"))"
)
_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_PRIVATE_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")


def scrub_credential_shapes(text: str, *, json_text: bool = False) -> str:
    """Replace bearer tokens, well-known key formats and private-key blocks in `text`.

    A private-key block without its END line is replaced up to the end of `text`,
    or with `json_text` up to the end of the JSON string that contains it.
    """
    private_key = _PRIVATE_KEY_IN_JSON if json_text else _PRIVATE_KEY
    text = private_key.sub(REDACTED, text)
    text = _AUTHORIZATION.sub(lambda match: f"{match.group(1)}{REDACTED}", text)
    text = _BEARER.sub(lambda match: f"{match.group(1)}{match.group(2)}{REDACTED}", text)
    return _KEYS.sub(REDACTED, text)


class LineScrubber:
    """Scrubs lines one by one and passes each to `emit`, also when a secret spans two.

    A line that ends with the first characters of a secret is held back until the
    next line arrives. The two are then searched together, and a secret found
    across the boundary is replaced in both. Lines inside a private-key block are
    replaced whole. Call `flush` at the end of the stream to emit a held line.

    NOTE: only a secret split across two consecutive lines is found, not one
    spread over three or more.
    """

    def __init__(self, redactor: Scrubber, emit: Callable[[str], None]) -> None:
        self._redactor = redactor
        self._emit = emit
        self._held: tuple[str, str] | None = None
        self._in_private_key = False

    def feed(self, line: str, label: str = "") -> None:
        """Scrub `line`, given without its line feed, and emit it or hold it back.

        `label` (such as a log level) is put before the line when it is emitted,
        and is not searched together with the line before.
        """
        if self._held is not None:
            held_label, held = self._held
            held, line = _cut_across(self._redactor, held, line)
            self._held = None
            self._send(held, held_label)
        redactor = self._redactor
        if isinstance(redactor, LiveRedactor) and redactor.ends_with_secret_start(line.rstrip()):
            self._held = (label, line)
            return
        self._send(line, label)

    def flush(self) -> None:
        """Emit the held line, if any."""
        if self._held is not None:
            (label, held), self._held = self._held, None
            self._send(held, label)

    def _send(self, line: str, label: str) -> None:
        if self._in_private_key:
            if _PRIVATE_KEY_END.search(line):
                self._in_private_key = False
            self._emit(label + REDACTED)
            return
        if _PRIVATE_KEY_BEGIN.search(line) and not _PRIVATE_KEY_END.search(line):
            self._in_private_key = True
        text = self._redactor.scrub_text(line)
        self._emit(label + scrub_credential_shapes(text))


def _cut_across(redactor: Scrubber, first: str, second: str) -> tuple[str, str]:
    """Replace the parts of a secret that starts in `first` and ends in `second`.

    Whitespace at the end of `first` and the start of `second` is left out of the
    join, because log formatters (rich's, for one) pad and indent wrapped lines.
    """
    head = first.rstrip()
    indent = len(second) - len(second.lstrip())
    boundary = len(head)
    spans = redactor.find_spans(head + second[indent:])
    crossing = [(start, end) for start, end in spans if start < boundary < end]
    if not crossing:
        return first, second
    start = min(start for start, _ in crossing)
    end = max(end for _, end in crossing)
    return first[:start] + REDACTED, second[:indent] + REDACTED + second[indent + end - boundary :]
