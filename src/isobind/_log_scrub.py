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

__all__ = ["LineScrubber", "hide_pydantic_inputs", "scrub_credential_shapes"]

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


# pydantic quotes the invalid value in its error text, cut short in the middle when it
# is long, so a secret in it could show in part, where no redactor recognises it.
_PYDANTIC_INPUT = re.compile(r"input_value=.*?, input_type=", re.DOTALL)


def hide_pydantic_inputs(text: str) -> str:
    """Replace the values that pydantic validation errors quote in `text`."""
    return _PYDANTIC_INPUT.sub("input_value=(not shown), input_type=", text)


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
    """Scrubs lines one by one and passes each to `emit`, also when a secret spans several.

    A line that ends with the first characters of a secret is held back, and so
    are the lines after it while the held text still ends with the start of a
    secret. When a line ends that, the held lines are searched together, and a
    secret found across their boundaries is replaced in each line it touches.
    At most `MAX_HELD_LINES` lines are held. Lines inside a private-key block are
    replaced whole. Call `flush` at the end of the stream to emit held lines.
    """

    MAX_HELD_LINES = 64

    def __init__(self, redactor: Scrubber, emit: Callable[[str], None]) -> None:
        self._redactor = redactor
        self._emit = emit
        self._held: list[tuple[str, str]] = []
        self._in_private_key = False

    def feed(self, line: str, label: str = "") -> None:
        """Scrub `line`, given without its line feed, and emit it or hold it back.

        `label` (such as a log level) is put before the line when it is emitted,
        and is not searched together with the lines before.
        """
        self._held.append((label, line))
        redactor = self._redactor
        if len(self._held) < self.MAX_HELD_LINES and isinstance(redactor, LiveRedactor):
            held_text, _ = _join([text for _, text in self._held])
            if redactor.ends_with_secret_start(held_text.rstrip()):
                return
        self.flush()

    def flush(self) -> None:
        """Emit the held lines, if any."""
        held, self._held = self._held, []
        if len(held) > 1:
            lines = _cut_across(self._redactor, [text for _, text in held])
        else:
            lines = [text for _, text in held]
        for (label, _), line in zip(held, lines, strict=True):
            self._send(line, label)

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


def _join(lines: list[str]) -> tuple[str, list[tuple[int, int, int]]]:
    """Join `lines` as one text, leaving out the whitespace around each boundary.

    Log formatters (rich's, for one) pad and indent wrapped lines, so a secret
    cut by wrapping has whitespace between its parts. Returns the text and, per
    line, the start of its part in the text and the part's bounds in the line.
    """
    parts = []
    places = []
    position = 0
    last = len(lines) - 1
    for index, line in enumerate(lines):
        begin = len(line) - len(line.lstrip()) if index > 0 else 0
        end = len(line.rstrip()) if index < last else len(line)
        end = max(begin, end)
        places.append((position, begin, end))
        parts.append(line[begin:end])
        position += end - begin
    return "".join(parts), places


def _cut_across(redactor: Scrubber, lines: list[str]) -> list[str]:
    """Replace the parts of each secret that spans two or more of `lines`."""
    text, places = _join(lines)
    boundaries = [position for position, _, _ in places[1:]]
    crossing = [
        (start, end)
        for start, end in redactor.find_spans(text)
        if any(start < boundary < end for boundary in boundaries)
    ]
    if not crossing:
        return lines
    result = []
    for line, (position, begin, end) in zip(lines, places, strict=True):
        # Cut from the line's part every stretch a crossing secret covers, back to front
        # so that earlier offsets stay valid.
        part = line[begin:end]
        covered = sorted(
            (max(start, position) - position, min(stop, position + len(part)) - position)
            for start, stop in crossing
            if start < position + len(part) and stop > position
        )
        for cut_start, cut_end in reversed(_merge(covered)):
            part = part[:cut_start] + REDACTED + part[cut_end:]
        result.append(line[:begin] + part + line[end:])
    return result


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge sorted, possibly overlapping ranges."""
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
