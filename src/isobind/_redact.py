"""Removal of secret values from everything that leaves the host.

A `Redactor` is built from the secret strings kept on the host (API keys, tokens) and
replaces each occurrence of a secret by `REDACTED` in text and in JSON-like data.
Besides the clear text, it finds these forms of each secret:

- base64 of the UTF-8 bytes, standard and URL-safe alphabets, with or without padding,
  also when the secret is part of a larger encoded blob at any byte offset;
- percent-encoding of the UTF-8 bytes as written by Python's `quote` (with and without
  `safe="/"`) and `quote_plus`, JavaScript's `encodeURIComponent` and `encodeURI`, and
  the WHATWG `application/x-www-form-urlencoded` serializer (`URLSearchParams`);
- hex of the UTF-8 bytes;
- JSON string escaping, with and without `ensure_ascii`, with and without `\\/` for
  `/`, and the same escaping applied twice (a JSON document inside a JSON string).

Hex digits match in any case, both in hex forms and inside `%XX` and `\\uXXXX`
escapes. All other characters match case-sensitively.

Secrets shorter than 6 characters are redacted in clear text only, because their
encoded forms are short enough to occur by chance in ordinary output. The first
redactor built with such a secret logs a warning that gives its length, never its
value, once per length and process. Empty and whitespace-only secrets are ignored. A
secret with surrounding whitespace is also scrubbed without it.

Overlapping occurrences, of one secret or of several, become a single marker.

Known gaps: base64 split across lines (MIME, PEM), base64 of other encodings than
UTF-8 (UTF-16), base32, partial percent-encoding by hand-written encoders, JSON that
escapes characters the common serializers leave alone (`\\u0061` for `a`) and Unicode
normalization (NFC against NFD) are not detected.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import logging
import re
import string
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NoReturn, Protocol, TypeVar, final

from ._json_tree import map_leaves

__all__ = ["REDACTED", "LiveRedactor", "Redactor", "Scrubber"]

logger = logging.getLogger(__name__)

REDACTED = "[REDACTED]"

# Secrets shorter than this are matched in clear text only (see the module docstring).
_MIN_ENCODED_LENGTH = 6

# A pass can make a secret that contains "[" or "]" appear anew across a marker, so such
# secrets are searched again after each pass that found one. The bound is arbitrary.
# Past it the whole text is replaced (fail closed).
_MAX_PASSES = 8

# Short secret lengths already logged, so that each length is logged once per process.
_warned_short_lengths: set[int] = set()

# A form of a secret is a sequence of pieces: a chunk of text and whether the chunk is
# hex digits whose letter case is free (hex forms, `%XX` and `\uXXXX` escapes).
_Piece = tuple[str, bool]

_ALPHANUMERIC = string.ascii_letters + string.digits

# Bytes that each percent-encoder keeps as they are, while every other byte becomes
# `%XX`. The flag is true when the encoder writes a space as "+".
_PERCENT_ENCODERS: tuple[tuple[str, bool], ...] = (
    (_ALPHANUMERIC + "-._~", False),  # urllib.parse.quote(safe=""), RFC 3986 unreserved
    (_ALPHANUMERIC + "-._~/", False),  # urllib.parse.quote() with its default safe="/"
    (_ALPHANUMERIC + "-._~", True),  # urllib.parse.quote_plus()
    (_ALPHANUMERIC + "-_.!~*'()", False),  # JavaScript encodeURIComponent
    (_ALPHANUMERIC + "-_.!~*'();,/?:@&=+$#", False),  # JavaScript encodeURI
    (_ALPHANUMERIC + "*-._", True),  # WHATWG application/x-www-form-urlencoded
    ("", False),  # every byte escaped, as some encoders and hand-written code do
)

# Characters that every common JSON serializer writes as a two-character escape.
_JSON_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}

# The URL-safe base64 alphabet differs from the standard one in two characters only,
# so the search runs in a copy of the text written in the standard alphabet.
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")

# Forms that share a prefix of at least this many characters are found by one search
# for that prefix, the anchor. The forms of one secret often differ only after its
# first special character. Forms are not grouped on shorter prefixes, because
# `str.find` skips ahead further with a longer search string.
_MIN_ANCHOR_LENGTH = 12

_Key = TypeVar("_Key", str, bytes)

# Separator of the strings of a structure that `scrub` searches in one pass.
_SEPARATOR = "\x00"


@dataclass(frozen=True, slots=True)
class _Form:
    """One ASCII form of a secret, as searched in a bytes view of the text.

    The view has one byte per character of the text, so positions carry over. Forms of
    clear text, hex, percent-encoding and JSON use the folded view, where ASCII letters
    are lower case and each non-ASCII character is "?". Base64 forms use a view where
    the URL-safe characters are replaced by the standard ones.
    """

    key: bytes
    # Pattern of the exact form in the original text, where only hex digits may differ
    # in case. None when the form is all hex digits.
    verifier: re.Pattern[str] | None = None
    # Longer forms that start with `key`, longest first (base64 tails and padding).
    extensions: tuple[bytes, ...] = ()

    def match_end(self, text: str, view: bytes, start: int) -> int | None:
        """Return where this form ends if it occurs at `start`, else None."""
        if not view.startswith(self.key, start):
            return None
        end = start + len(self.key)
        if self.verifier is not None and self.verifier.fullmatch(text, start, end) is None:
            return None

        for extension in self.extensions:
            if view.startswith(extension, start):
                return start + len(extension)

        return end


@dataclass(frozen=True, slots=True)
class _Matcher:
    """The forms of a set of secrets grouped by anchor, ready to search.

    Each `exact_forms` entry is an anchor and the non-ASCII forms that start with it,
    searched exactly in the text. The other entries are an anchor and the `_Form`s of
    that view.
    """

    exact_forms: tuple[tuple[str, tuple[str, ...]], ...]
    folded_forms: tuple[tuple[bytes, tuple[_Form, ...]], ...]
    base64_forms: tuple[tuple[bytes, tuple[_Form, ...]], ...]
    # Length of the shortest anchor. No shorter text contains a form.
    min_length: int

    @classmethod
    def build(
        cls,
        exact_forms: Iterable[str],
        folded_forms: Iterable[_Form] = (),
        base64_forms: Iterable[_Form] = (),
    ) -> _Matcher:
        exact_groups = _group_by_anchor(exact_forms)
        folded_groups = _group_forms(folded_forms)
        base64_groups = _group_forms(base64_forms)
        anchor_lengths = [len(anchor) for anchor, _ in exact_groups]
        anchor_lengths += [len(anchor) for anchor, _ in folded_groups + base64_groups]
        return cls(
            exact_forms=exact_groups,
            folded_forms=folded_groups,
            base64_forms=base64_groups,
            min_length=min(anchor_lengths, default=0),
        )

    def __bool__(self) -> bool:
        return bool(self.exact_forms or self.folded_forms or self.base64_forms)

    def find_spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Yield the start and end of every occurrence of every form, overlaps included."""
        size = len(text)
        if size < self.min_length:
            return

        for anchor, keys in self.exact_forms:
            if len(anchor) > size:
                continue
            start = text.find(anchor)
            while start != -1:
                for key in keys:
                    if text.startswith(key, start):
                        yield start, start + len(key)
                start = text.find(anchor, start + 1)

        if self.folded_forms:
            yield from _find_forms(text, _fold(text), self.folded_forms)
        if self.base64_forms:
            yield from _find_forms(text, _standard_base64(text), self.base64_forms)

    def redact_once(self, text: str) -> str | None:
        """Replace every occurrence by `REDACTED`, or return None if there is none.

        Overlapping and touching occurrences become one marker, so a secret that
        overlaps another one is covered in full.
        """
        spans = sorted(self.find_spans(text))
        if not spans:
            return None

        parts: list[str] = []
        done = 0
        span_start, span_end = spans[0]
        for start, end in spans[1:]:
            if start <= span_end:
                span_end = max(span_end, end)
                continue
            parts += (text[done:span_start], REDACTED)
            done = span_end
            span_start, span_end = start, end
        parts += (text[done:span_start], REDACTED, text[span_end:])

        return "".join(parts)


def _find_forms(
    text: str, view: bytes, groups: tuple[tuple[bytes, tuple[_Form, ...]], ...]
) -> Iterator[tuple[int, int]]:
    size = len(view)
    for anchor, forms in groups:
        if len(anchor) > size:
            continue
        start = view.find(anchor)
        while start != -1:
            for form in forms:
                end = form.match_end(text, view, start)
                if end is not None:
                    yield start, end
            start = view.find(anchor, start + 1)


def _fold(text: str) -> bytes:
    # "replace" writes one "?" per non-ASCII character, so positions stay aligned.
    return text.encode("ascii", "replace").lower()


def _standard_base64(text: str) -> bytes:
    return text.encode("ascii", "replace").translate(_URLSAFE_TO_STANDARD)


def _group_by_anchor(keys: Iterable[_Key]) -> tuple[tuple[_Key, tuple[_Key, ...]], ...]:
    """Return the keys in groups, each with its anchor, the longest prefix they share."""
    groups: list[tuple[_Key, list[_Key]]] = []
    for key in sorted(set(keys)):
        if groups:
            anchor, members = groups[-1]
            shared = _common_prefix(anchor, key)
            if len(shared) >= _MIN_ANCHOR_LENGTH:
                members.append(key)
                groups[-1] = (shared, members)
                continue
        groups.append((key, [key]))

    return tuple((anchor, tuple(members)) for anchor, members in groups)


def _common_prefix(first: _Key, second: _Key) -> _Key:
    size = 0
    for left, right in zip(first, second, strict=False):
        if left != right:
            break
        size += 1
    return first[:size]


def _group_forms(forms: Iterable[_Form]) -> tuple[tuple[bytes, tuple[_Form, ...]], ...]:
    by_key: dict[bytes, list[_Form]] = {}
    for form in forms:
        by_key.setdefault(form.key, []).append(form)
    return tuple(
        (anchor, tuple(form for key in keys for form in by_key[key]))
        for anchor, keys in _group_by_anchor(by_key)
    )


@final
class Redactor:
    """Secret values to replace by `REDACTED`, in clear text and in common encodings.

    Build it with `Redactor(secrets)`. It is immutable: `merged` returns a new one. Its
    `repr` shows the number of secrets and never their values. A redactor without
    secrets is false and returns text unchanged.
    """

    __slots__ = ("_matcher", "_rescan_matcher", "_secrets")

    _secrets: frozenset[str]
    _matcher: _Matcher
    _rescan_matcher: _Matcher

    def __init__(self, secrets: Iterable[str]) -> None:
        if isinstance(secrets, str | bytes):
            raise TypeError(
                "Redactor() expects an iterable of secret strings, not a single string. "
                "Wrap the secret in a list."
            )

        kept = _normalize_secrets(secrets)
        forms = _Forms()
        for secret in kept:
            forms.add_secret(secret)

        object.__setattr__(self, "_secrets", kept)
        object.__setattr__(self, "_matcher", forms.matcher())
        object.__setattr__(self, "_rescan_matcher", forms.rescan_matcher())

    @classmethod
    def empty(cls) -> Redactor:
        """Return a redactor without secrets, which changes nothing."""
        return cls(())

    def merged(self, other_secrets: Iterable[str] | Redactor) -> Redactor:
        """Return a new redactor for the secrets of both this one and `other_secrets`."""
        if isinstance(other_secrets, Redactor):
            return Redactor(self._secrets | other_secrets._secrets)
        if isinstance(other_secrets, str | bytes):
            raise TypeError(
                "merged() expects an iterable of secret strings, not a single string. "
                "Wrap the secret in a list."
            )
        return Redactor(itertools.chain(self._secrets, other_secrets))

    def scrub_text(self, text: str) -> str:
        """Return `text` with every form of every secret replaced by `REDACTED`."""
        scrubbed = self._matcher.redact_once(text)
        if scrubbed is None:
            return text
        if not self._rescan_matcher:
            return scrubbed

        for _ in range(_MAX_PASSES):
            again = self._rescan_matcher.redact_once(scrubbed)
            if again is None:
                return scrubbed
            scrubbed = again

        logger.warning(
            "A secret still occurred after %d redaction passes over a text of %d "
            "characters, so the whole text was replaced by the marker",
            _MAX_PASSES,
            len(text),
        )
        return REDACTED

    def contains_secret(self, text: str) -> bool:
        """Return whether `text` contains any form of any secret."""
        return next(self._matcher.find_spans(text), None) is not None

    def find_spans(self, text: str) -> list[tuple[int, int]]:
        """Return the sorted start and end of every form of every secret in `text`."""
        return sorted(self._matcher.find_spans(text))

    @property
    def secrets(self) -> frozenset[str]:
        """The secrets, for building a larger redactor. Never log or show them."""
        return self._secrets

    def scrub(self, value: object) -> object:
        """Return a deep copy of `value` with every secret in its strings redacted.

        Dicts (keys and values), lists and tuples are rebuilt as new plain `dict`,
        `list` and `tuple` objects, even when nothing changed, and strings are scrubbed
        with `scrub_text`. Any other value is returned as it is, so convert bytes,
        numbers that could spell a secret and custom objects to JSON types first. When
        scrubbed dict keys become equal, the later entry wins. The walk uses an
        explicit stack, so nesting depth is limited by memory only.

        Raises:
            ValueError: `value` contains itself.
        """
        strings: list[str] = []

        def collect(leaf: object) -> object:
            if isinstance(leaf, str):
                strings.append(leaf)
            return leaf

        copied = map_leaves(value, collect)
        flagged = self._strings_with_secrets(strings)
        if not flagged:
            return copied

        # The second walk meets the strings in the same order as the first.
        index = itertools.count()

        def scrub_flagged(leaf: object) -> object:
            if isinstance(leaf, str) and next(index) in flagged:
                return self.scrub_text(leaf)
            return leaf

        return map_leaves(value, scrub_flagged)

    def scrub_copy_on_write(self, value: object) -> object:
        """Return `value` itself when none of its strings contains a secret, else `scrub(value)`.

        The search is the one `scrub` makes, without building a copy first. Use it
        only where nothing changes `value` afterwards, because the result may be
        `value`.

        Raises:
            ValueError: `value` contains itself.
        """
        if not self._matcher:
            return value
        if not self._strings_with_secrets(_strings_of(value)):
            return value
        return self.scrub(value)

    def __bool__(self) -> bool:
        return bool(self._matcher)

    def __repr__(self) -> str:
        return f"<Redactor of {len(self._secrets)} secrets>"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot set {name!r}, because a Redactor is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete {name!r}, because a Redactor is immutable")

    def __copy__(self) -> Redactor:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Redactor:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Redactor cannot be pickled, because that would write its secrets")

    def _strings_with_secrets(self, strings: list[str]) -> set[int]:
        """Return the indexes of the strings that may contain a form of a secret.

        The strings long enough to hold a form are joined and searched in one pass,
        which costs far less than one search per string. A form found across the
        separator only flags a string for `scrub_text`, which searches it again alone.
        """
        if not self._matcher:
            return set()
        candidates = [
            index for index, text in enumerate(strings) if len(text) >= self._matcher.min_length
        ]
        if not candidates:
            return set()

        starts: list[int] = []
        offset = 0
        for index in candidates:
            starts.append(offset)
            offset += len(strings[index]) + len(_SEPARATOR)
        joined = _SEPARATOR.join(strings[index] for index in candidates)

        return {
            candidates[bisect.bisect_right(starts, start) - 1]
            for start, _ in self._matcher.find_spans(joined)
        }


# `_strings_of` walks this many levels by recursion, which is faster for the small
# values of most tool calls. A deeper value is walked again with an explicit stack.
_RECURSIVE_DEPTH = 64


class _TooDeep(Exception):
    """Raised by `_collect_strings` below `_RECURSIVE_DEPTH` levels."""


def _strings_of(value: object) -> list[str]:
    """Return the strings in `value`, dict keys included, without copying it.

    Raises:
        ValueError: `value` contains itself.
    """
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict | list | tuple):
        return []
    strings: list[str] = []
    try:
        _collect_strings(value, strings, _RECURSIVE_DEPTH)
    except (_TooDeep, RecursionError):
        # Deep nesting or a reference cycle, so walk again with a stack that finds cycles.
        strings = _collect_strings_deep(value)
    return strings


def _collect_strings(
    container: dict[object, object] | list[object] | tuple[object, ...],
    strings: list[str],
    depth: int,
) -> None:
    if depth == 0:
        raise _TooDeep
    children: Iterable[object]
    if isinstance(container, dict):
        children = itertools.chain.from_iterable(container.items())
    else:
        children = container
    for child in children:
        if isinstance(child, str):
            strings.append(child)
        elif isinstance(child, dict | list | tuple):
            _collect_strings(child, strings, depth - 1)


def _collect_strings_deep(
    value: dict[object, object] | list[object] | tuple[object, ...],
) -> list[str]:
    strings: list[str] = []
    # Each frame: a container and the iterator over its children. `on_path` contains
    # the containers on the way down, so a container reached twice side by side is
    # walked twice, as `map_leaves` walks it, but one inside itself is rejected.
    stack: list[tuple[object, Iterator[object]]] = []
    on_path: set[int] = set()

    def push(container: dict[object, object] | list[object] | tuple[object, ...]) -> None:
        if id(container) in on_path:
            raise ValueError(
                f"cannot scrub a {type(container).__name__} that contains itself. "
                "Pass data without reference cycles."
            )
        on_path.add(id(container))
        if isinstance(container, dict):
            stack.append((container, itertools.chain.from_iterable(container.items())))
        else:
            stack.append((container, iter(container)))

    push(value)
    while stack:
        container, children = stack[-1]
        for child in children:
            if isinstance(child, dict | list | tuple):
                push(child)
                break
            if isinstance(child, str):
                strings.append(child)
        else:
            stack.pop()
            on_path.discard(id(container))
    return strings


def _normalize_secrets(secrets: Iterable[str]) -> frozenset[str]:
    """Return the secrets to scrub, dropping blank ones and adding stripped variants."""
    kept: set[str] = set()
    for secret in secrets:
        if not isinstance(secret, str):
            raise TypeError(
                f"each secret must be a str, got {type(secret).__name__}. "
                "Decode bytes secrets before building the Redactor."
            )
        stripped = secret.strip()
        if not stripped:
            continue
        kept.add(secret)
        kept.add(stripped)

    for length in sorted({len(secret) for secret in kept}):
        if length < _MIN_ENCODED_LENGTH and length not in _warned_short_lengths:
            _warned_short_lengths.add(length)
            logger.warning(
                "A secret of %d characters is shorter than %d, so it is redacted in "
                "clear text only and its base64, hex, URL and JSON forms are not scrubbed",
                length,
                _MIN_ENCODED_LENGTH,
            )

    return frozenset(kept)


@dataclass(slots=True)
class _Forms:
    """The forms of the secrets added so far, grouped by the view they are searched in."""

    exact_forms: set[str] = field(default_factory=set)
    folded_forms: set[_Form] = field(default_factory=set)
    base64_forms: set[_Form] = field(default_factory=set)

    def add_secret(self, secret: str) -> None:
        """Add the forms of `secret`: clear text only if it is short, else all of them."""
        if len(secret) < _MIN_ENCODED_LENGTH:
            self._add_pieces([(secret, False)])
            return

        # "surrogatepass" encodes a lone surrogate instead of raising, because JSON text
        # can contain one.
        data = secret.encode("utf-8", "surrogatepass")
        self._add_pieces([(data.hex(), True)])
        for keep, space_as_plus in _PERCENT_ENCODERS:
            self._add_pieces(_percent_encode(data, keep, space_as_plus=space_as_plus))

        clear: list[_Piece] = [(secret, False)]
        self._add_pieces(clear)
        for ascii_only, escape_slash in itertools.product((True, False), repeat=2):
            once = _json_escape(clear, ascii_only=ascii_only, escape_slash=escape_slash)
            twice = _json_escape(once, ascii_only=ascii_only, escape_slash=escape_slash)
            self._add_pieces(once)
            self._add_pieces(twice)

        self.base64_forms.update(_base64_forms(data))

    def matcher(self) -> _Matcher:
        return _Matcher.build(self.exact_forms, self.folded_forms, self.base64_forms)

    def rescan_matcher(self) -> _Matcher:
        """Return a matcher for the forms that a redaction pass can make appear anew.

        A new occurrence must overlap a marker without lying inside it, so it contains
        "[" or "]". Forms found inside the marker itself are left out, because no number
        of passes removes them. Base64 forms contain no brackets.
        """
        return _Matcher.build(
            exact_forms=(key for key in self.exact_forms if _may_reappear(key)),
            folded_forms=(form for form in self.folded_forms if _may_reappear(form)),
        )

    def _add_pieces(self, pieces: Sequence[_Piece]) -> None:
        """Add one form given as pieces.

        A non-ASCII form is searched exactly in the text. An ASCII form is searched in
        the folded view, and its verifier then checks the case of every character but
        the hex digits. The verifier also rejects a non-ASCII character where the form
        has "?", because the folded view writes "?" for each.
        """
        text = "".join(chunk for chunk, _ in pieces)
        if not text.isascii():
            self.exact_forms.add(text)
            return

        verifier = None
        if not all(is_hex for _, is_hex in pieces):
            pattern = "".join(
                _hex_pattern(chunk) if is_hex else re.escape(chunk) for chunk, is_hex in pieces
            )
            verifier = re.compile(pattern)
        self.folded_forms.add(_Form(text.lower().encode("ascii"), verifier))


def _may_reappear(form: str | _Form) -> bool:
    if isinstance(form, str):
        return ("[" in form or "]" in form) and form not in REDACTED
    if b"[" not in form.key and b"]" not in form.key:
        return False
    return form.verifier is None or form.verifier.search(REDACTED) is None


def _percent_encode(data: bytes, keep: str, *, space_as_plus: bool) -> list[_Piece]:
    pieces: list[_Piece] = []
    for byte in data:
        char = chr(byte)
        if char in keep:
            pieces.append((char, False))
        elif char == " " and space_as_plus:
            pieces.append(("+", False))
        else:
            pieces += (("%", False), (f"{byte:02X}", True))
    return pieces


def _json_escape(pieces: Sequence[_Piece], *, ascii_only: bool, escape_slash: bool) -> list[_Piece]:
    """Return the pieces as they appear inside a JSON string literal.

    With `ascii_only`, DEL and everything above it becomes `\\uXXXX`, as Python's
    `json.dumps` writes by default. Otherwise only quotes, backslashes and control
    characters are escaped, as in `JSON.stringify` and `ensure_ascii=False`.
    """
    escaped: list[_Piece] = []
    for chunk, is_hex in pieces:
        if is_hex:
            escaped.append((chunk, True))
            continue
        for char in chunk:
            if char in _JSON_SHORT_ESCAPES:
                escaped.append((_JSON_SHORT_ESCAPES[char], False))
            elif char == "/" and escape_slash:
                escaped.append(("\\/", False))
            elif char < " " or (ascii_only and char > "~"):
                escaped += _unicode_escape(char)
            else:
                escaped.append((char, False))
    return escaped


def _unicode_escape(char: str) -> list[_Piece]:
    """Return `\\uXXXX` pieces for `char`, as a surrogate pair above U+FFFF."""
    code = ord(char)
    if code <= 0xFFFF:
        units = [code]
    else:
        code -= 0x10000
        units = [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]
    pieces: list[_Piece] = []
    for unit in units:
        pieces += (("\\u", False), (f"{unit:04x}", True))
    return pieces


def _hex_pattern(digits: str) -> str:
    return "".join(
        f"[{digit.lower()}{digit.upper()}]" if digit.isalpha() else digit for digit in digits
    )


def _base64_forms(data: bytes) -> list[_Form]:
    """Return the base64 forms of `data` at the three byte offsets inside a blob.

    At offset k, the encoding of k unknown bytes followed by n bytes of `data` has its
    characters at indexes [ceil(8k/6), floor(8(k+n)/6)) made of `data`'s bits only.
    That range is the form. The characters after it (a partial character and padding)
    are fixed only when `data` ends the blob, so they extend a match instead.
    """
    forms: list[_Form] = []
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data)
        first = -(-8 * offset // 6)
        stop = 8 * (offset + len(data)) // 6
        core = encoded[first:stop]
        tail = encoded[stop:]
        extensions = {core + tail, core + tail.rstrip(b"=")} - {core}
        forms.append(_Form(core, extensions=tuple(sorted(extensions, key=len, reverse=True))))
    return forms


class Scrubber(Protocol):
    """What the host needs to scrub output: a `Redactor` or a `LiveRedactor`."""

    def scrub_text(self, text: str) -> str: ...

    def scrub(self, value: object) -> object: ...

    def find_spans(self, text: str) -> list[tuple[int, int]]: ...

    def contains_secret(self, text: str) -> bool: ...

    def scrub_copy_on_write(self, value: object) -> object: ...


class LiveRedactor:
    """A redactor to which secrets can be added while it is in use.

    OAuth access tokens are issued after start-up and replaced on refresh, so the
    parts of the host that scrub output share one `LiveRedactor` and see each new
    token at once. Adding rebuilds the inner `Redactor` under a lock, and readers
    use whichever `Redactor` was current when they started.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._redactor = Redactor(secrets)
        self._lock = threading.Lock()
        self._prefix_forms = _prefix_forms(self._redactor.secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Scrub `secrets` too from now on."""
        with self._lock:
            new = set(secrets) - self._redactor.secrets
            if not new:
                return
            self._redactor = self._redactor.merged(new)
            self._prefix_forms = _prefix_forms(self._redactor.secrets)

    @property
    def current(self) -> Redactor:
        """The `Redactor` for the secrets known now."""
        return self._redactor

    def scrub_text(self, text: str) -> str:
        return self._redactor.scrub_text(text)

    def scrub(self, value: object) -> object:
        return self._redactor.scrub(value)

    def scrub_copy_on_write(self, value: object) -> object:
        return self._redactor.scrub_copy_on_write(value)

    def find_spans(self, text: str) -> list[tuple[int, int]]:
        return self._redactor.find_spans(text)

    def contains_secret(self, text: str) -> bool:
        return self._redactor.contains_secret(text)

    def ends_with_secret_start(self, text: str) -> bool:
        """Return whether `text` ends with the first characters of a secret.

        Checked forms: clear text, standard and URL-safe base64, lowercase and
        uppercase hex, and `quote(safe="")`. Only the first `_MIN_PREFIX` or more
        characters of a form count, so that ordinary text is rarely held back.
        """
        for form in self._prefix_forms:
            longest = min(len(form) - 1, len(text))
            for size in range(_MIN_PREFIX, longest + 1):
                if text.endswith(form[:size]):
                    return True
        return False

    def __bool__(self) -> bool:
        return bool(self._redactor)

    def __repr__(self) -> str:
        return f"<LiveRedactor of {len(self._redactor.secrets)} secrets>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a LiveRedactor cannot be pickled, because that would write its secrets")


# The shortest start of a secret that holds back a log line until the next one.
_MIN_PREFIX = 3


def _prefix_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    forms: set[str] = set()
    for secret in secrets:
        data = secret.encode("utf-8")
        forms.update(
            (
                secret,
                base64.b64encode(data).decode(),
                base64.urlsafe_b64encode(data).decode().rstrip("="),
                data.hex(),
                data.hex().upper(),
                urllib.parse.quote(secret, safe=""),
            )
        )
    return tuple(form for form in forms if len(form) > _MIN_PREFIX)
