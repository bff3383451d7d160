"""Tests for scrubbing secrets and their encodings out of text and JSON-like data."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import pickle
import random
import re
import string
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from isobind import _redact
from isobind._redact import REDACTED, Redactor

PLAIN = "sk-live-4f9XbQ2mZ7pL0aRt"
SPECIAL = 'tok/en+Key=1 "quoted" back\\slash?&#~'
NON_ASCII = "пароль-秘密-clé-🔑"
SECRETS = {"plain": PLAIN, "special": SPECIAL, "non-ascii": NON_ASCII}

_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def _lower_escapes(encoded: str) -> str:
    """Return `encoded` with the hex digits of each `%XX` escape in lower case."""
    return _PERCENT_ESCAPE.sub(lambda match: match.group().lower(), encoded)


def _utf8(secret: str) -> bytes:
    return secret.encode("utf-8")


FORMS: dict[str, Callable[[str], str]] = {
    "clear": lambda s: s,
    "base64-padded": lambda s: base64.b64encode(_utf8(s)).decode(),
    "base64-unpadded": lambda s: base64.b64encode(_utf8(s)).decode().rstrip("="),
    "base64url-padded": lambda s: base64.urlsafe_b64encode(_utf8(s)).decode(),
    "base64url-unpadded": lambda s: base64.urlsafe_b64encode(_utf8(s)).decode().rstrip("="),
    "hex-lower": lambda s: _utf8(s).hex(),
    "hex-upper": lambda s: _utf8(s).hex().upper(),
    "quote": lambda s: quote(s, safe=""),
    "quote-lower-escapes": lambda s: _lower_escapes(quote(s, safe="")),
    "quote-default-safe": lambda s: quote(s),
    "quote-plus": lambda s: quote_plus(s),
    "percent-every-byte": lambda s: "".join(f"%{byte:02X}" for byte in _utf8(s)),
    "percent-every-byte-lower": lambda s: "".join(f"%{byte:02x}" for byte in _utf8(s)),
    "quote-plus-lower-escapes": lambda s: _lower_escapes(quote_plus(s)),
    "json-ascii": lambda s: json.dumps(s)[1:-1],
    "json-unicode": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json-escaped-slash": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "json-upper-unicode-escapes": lambda s: re.sub(
        r"\\u[0-9a-f]{4}", lambda match: "\\u" + match.group()[2:].upper(), json.dumps(s)
    )[1:-1],
    "json-twice": lambda s: json.dumps(json.dumps(s))[3:-3],
}


@pytest.mark.parametrize("form", list(FORMS.values()), ids=list(FORMS))
@pytest.mark.parametrize("secret", list(SECRETS.values()), ids=list(SECRETS))
def test_form_is_redacted(secret: str, form: Callable[[str], str]) -> None:
    redactor = Redactor([secret])
    text = f"before {form(secret)} after"

    assert redactor.contains_secret(text)
    assert redactor.scrub_text(text) == f"before {REDACTED} after"


def test_all_lists_public_names() -> None:
    assert _redact.__all__ == ["REDACTED", "LiveRedactor", "Redactor", "Scrubber"]
    for name in _redact.__all__:
        assert hasattr(_redact, name)


def test_marker_value() -> None:
    assert REDACTED == "[REDACTED]"


def test_unrelated_text_unchanged() -> None:
    redactor = Redactor([PLAIN, SPECIAL, NON_ASCII])
    text = "nothing secret here: sk-live-, %2F, 736b, c2stbGl2ZS, \\u00e9"

    assert not redactor.contains_secret(text)
    assert redactor.scrub_text(text) == text


# JavaScript encoders keep other punctuation than Python's `quote`. The expected
# strings follow the ECMAScript encodeURIComponent and encodeURI definitions and the
# WHATWG URL standard's application/x-www-form-urlencoded serializer.
JS_SECRET = "k!e*y'(1)~/+ é"
JS_FORMS = {
    "encodeURIComponent": "k!e*y'(1)~%2F%2B%20%C3%A9",
    "encodeURI": "k!e*y'(1)~/+%20%C3%A9",
    "URLSearchParams": "k%21e*y%27%281%29%7E%2F%2B+%C3%A9",
}


@pytest.mark.parametrize("encoded", list(JS_FORMS.values()), ids=list(JS_FORMS))
def test_javascript_url_form_is_redacted(encoded: str) -> None:
    redactor = Redactor([JS_SECRET])

    assert redactor.scrub_text(f"?q={encoded}&x=1") == f"?q={REDACTED}&x=1"


def test_url_query_keeps_other_parameters() -> None:
    redactor = Redactor([SPECIAL])
    url = f"https://api.example.com/v1/items?key={quote_plus(SPECIAL)}&page=2"

    assert redactor.scrub_text(url) == f"https://api.example.com/v1/items?key={REDACTED}&page=2"


def test_percent_escape_mixed_case() -> None:
    redactor = Redactor(["a/b/c/d/e"])

    assert redactor.scrub_text("a%2fb%2Fc%2fd%2Fe") == REDACTED


def test_url_form_letters_case_sensitive() -> None:
    redactor = Redactor(["Token/Value"])

    assert redactor.scrub_text("token%2Fvalue") == "token%2Fvalue"


def test_clear_form_is_case_sensitive() -> None:
    redactor = Redactor(["SecretToken123"])

    assert redactor.scrub_text("secrettoken123 SECRETTOKEN123") == "secrettoken123 SECRETTOKEN123"


def test_base64_form_is_case_sensitive() -> None:
    redactor = Redactor([PLAIN])
    swapped = base64.b64encode(PLAIN.encode()).decode().swapcase()

    assert redactor.scrub_text(swapped) == swapped


def test_hex_mixed_case_is_redacted() -> None:
    redactor = Redactor([PLAIN])
    mixed = "".join(
        char.upper() if index % 2 else char for index, char in enumerate(PLAIN.encode().hex())
    )

    assert redactor.scrub_text(mixed) == REDACTED


def test_hex_inside_larger_dump() -> None:
    redactor = Redactor([NON_ASCII])
    dump = (b"prefix bytes " + NON_ASCII.encode() + b" suffix").hex()

    scrubbed = redactor.scrub_text(dump)

    assert scrubbed == b"prefix bytes ".hex() + REDACTED + b" suffix".hex()


def _base64_decodings(text: str) -> list[bytes]:
    """Return what base64 decoding recovers from each piece of `text` between markers.

    Each piece is decoded at the four possible character alignments, with both
    alphabets folded to the standard one and characters outside it dropped.
    """
    decodings: list[bytes] = []
    for piece in text.split(REDACTED):
        normalized = piece.replace("-", "+").replace("_", "/")
        alphabet_only = re.sub(r"[^A-Za-z0-9+/]", "", normalized)
        for start in range(4):
            chunk = alphabet_only[start:]
            chunk = chunk[: len(chunk) // 4 * 4]
            decodings.append(binascii.a2b_base64(chunk))
    return decodings


def _recoverable(text: str, secret: bytes) -> bool:
    return any(secret in decoded for decoded in _base64_decodings(text))


ENCODERS = {
    "standard": base64.b64encode,
    "urlsafe": base64.urlsafe_b64encode,
}


@pytest.mark.parametrize("offset", [0, 1, 2], ids=["offset-0", "offset-1", "offset-2"])
@pytest.mark.parametrize("encoder", list(ENCODERS.values()), ids=list(ENCODERS))
@pytest.mark.parametrize("secret", list(SECRETS.values()), ids=list(SECRETS))
def test_base64_blob_at_offset(secret: str, encoder: Callable[[bytes], bytes], offset: int) -> None:
    redactor = Redactor([secret])
    prefix = b"Authorization: user:"[: 18 + offset]
    secret_bytes = secret.encode()
    blob = encoder(prefix + secret_bytes + b"; trailing context").decode()

    scrubbed = redactor.scrub_text(blob)

    assert redactor.contains_secret(blob)
    assert _recoverable(blob, secret_bytes)
    assert not _recoverable(scrubbed, secret_bytes)
    assert scrubbed.startswith(blob[: len(prefix) // 3 * 4])
    assert REDACTED in scrubbed


@pytest.mark.parametrize("offset", [0, 1, 2], ids=["offset-0", "offset-1", "offset-2"])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_base64_blob_ending_with_secret(offset: int, padded: bool) -> None:
    redactor = Redactor([PLAIN])
    blob = base64.b64encode(b"user:"[:offset] + PLAIN.encode()).decode()
    if not padded:
        blob = blob.rstrip("=")

    # The characters before ceil(8 * offset / 6) carry bits of the prefix and remain.
    kept = (8 * offset + 5) // 6

    assert redactor.scrub_text(blob) == blob[:kept] + REDACTED


@given(
    prefix=st.binary(max_size=20),
    secret=st.text(min_size=8, max_size=40),
    suffix=st.binary(max_size=20),
    urlsafe=st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_base64_blob_property(prefix: bytes, secret: str, suffix: bytes, urlsafe: bool) -> None:
    assume(secret.strip())
    secret_bytes = secret.encode("utf-8")
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    blob = encode(prefix + secret_bytes + suffix).decode()
    redactor = Redactor([secret])

    assert redactor.contains_secret(blob)
    assert not _recoverable(redactor.scrub_text(blob), secret_bytes)


JSON_SECRETS = {
    "quote-and-backslash": 'pa"ss\\word-123',
    "slash": "path/to/token-xyz",
    "non-ascii": "mot-de-passe-é-ü",
    "astral": "emoji-key-🔑🔑",
    "control": "line\nbreak\ttab-xyz",
    "del": "del\x7fchar-xyz",
    "lone-surrogate": "half\ud800pair-xyz",
}


@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["ascii", "unicode"])
@pytest.mark.parametrize("secret", list(JSON_SECRETS.values()), ids=list(JSON_SECRETS))
def test_json_document_is_scrubbed(secret: str, ensure_ascii: bool) -> None:
    redactor = Redactor([secret])
    document = {"token": secret, "nested": [f"Bearer {secret}", {"k": secret}]}
    text = json.dumps(document, ensure_ascii=ensure_ascii)

    scrubbed = redactor.scrub_text(text)

    assert redactor.contains_secret(text)
    assert json.loads(scrubbed) == {
        "token": REDACTED,
        "nested": [f"Bearer {REDACTED}", {"k": REDACTED}],
    }


@pytest.mark.parametrize("secret", list(JSON_SECRETS.values()), ids=list(JSON_SECRETS))
def test_json_inside_json_is_scrubbed(secret: str) -> None:
    redactor = Redactor([secret])
    text = json.dumps({"result": json.dumps({"token": secret})})

    scrubbed = redactor.scrub_text(text)

    assert json.loads(json.loads(scrubbed)["result"]) == {"token": REDACTED}


def test_scrub_dict_keys_and_values() -> None:
    redactor = Redactor([PLAIN])
    value = {PLAIN: 1, "headers": {f"x-{PLAIN}": [PLAIN, (PLAIN, 2)]}}

    assert redactor.scrub(value) == {
        REDACTED: 1,
        "headers": {f"x-{REDACTED}": [REDACTED, (REDACTED, 2)]},
    }


def test_scrub_leaves_input_unchanged() -> None:
    redactor = Redactor([PLAIN])
    value = {"a": [PLAIN, {"b": PLAIN}]}
    original = copy.deepcopy(value)

    redactor.scrub(value)

    assert value == original


def test_scrub_returns_new_containers() -> None:
    redactor = Redactor([PLAIN])
    inner = ["unchanged"]
    value = {"list": inner, "tuple": ("x",)}

    result = redactor.scrub(value)

    assert isinstance(result, dict)
    assert result == value
    assert result is not value
    assert result["list"] is not inner
    assert type(result["tuple"]) is tuple


@pytest.mark.parametrize(
    "scalar",
    [None, True, 0, 12.5, b"sk-live-4f9XbQ2mZ7pL0aRt"],
    ids=["none", "bool", "int", "float", "bytes"],
)
def test_scrub_keeps_other_scalars(scalar: object) -> None:
    redactor = Redactor([PLAIN])

    assert redactor.scrub(scalar) is scalar
    assert redactor.scrub([scalar]) == [scalar]


def test_scrub_plain_string() -> None:
    assert Redactor([PLAIN]).scrub(f"key={PLAIN}") == f"key={REDACTED}"


def test_scrub_deep_list_nesting() -> None:
    depth = 100_000
    value: list[object] = [PLAIN]
    for _ in range(depth - 1):
        value = [value, "x"]

    result = Redactor([PLAIN]).scrub(value)

    levels = 0
    node = result
    while isinstance(node, list) and len(node) == 2:
        assert node[1] == "x"
        node = node[0]
        levels += 1
    assert levels == depth - 1
    assert node == [REDACTED]


def test_scrub_deep_dict_nesting() -> None:
    depth = 100_000
    value: dict[str, object] = {"leaf": PLAIN}
    for _ in range(depth - 1):
        value = {PLAIN: value}

    result = Redactor([PLAIN]).scrub(value)

    levels = 0
    node = result
    while isinstance(node, dict) and REDACTED in node:
        node = node[REDACTED]
        levels += 1
    assert levels == depth - 1
    assert node == {"leaf": REDACTED}


def test_scrub_rejects_reference_cycle() -> None:
    value: list[object] = ["a"]
    value.append({"self": value})

    with pytest.raises(ValueError, match="contains itself"):
        Redactor([PLAIN]).scrub(value)


def test_scrub_many_strings() -> None:
    redactor = Redactor([PLAIN, SPECIAL])
    value = [
        "short",
        f"prefix {PLAIN}",
        "x" * 100,
        {"k": quote(SPECIAL, safe="")},
        (PLAIN.encode().hex(),),
        "y" * 100,
    ]

    assert redactor.scrub(value) == [
        "short",
        f"prefix {REDACTED}",
        "x" * 100,
        {"k": REDACTED},
        (REDACTED,),
        "y" * 100,
    ]


def test_scrub_secret_split_across_strings() -> None:
    halves = [PLAIN[:12], PLAIN[12:]]

    assert Redactor([PLAIN]).scrub(halves) == halves


def test_scrub_shared_container_twice() -> None:
    shared = [PLAIN]

    assert Redactor([PLAIN]).scrub([shared, shared]) == [[REDACTED], [REDACTED]]


def test_copy_on_write_returns_clean_value() -> None:
    value = {"a": ["plain", {"b": ("text", 1)}], "c": None}

    assert Redactor([PLAIN]).scrub_copy_on_write(value) is value
    assert Redactor.empty().scrub_copy_on_write(value) is value


def test_copy_on_write_scrubs_like_scrub() -> None:
    redactor = Redactor([PLAIN, SPECIAL])
    value = {"a": ["plain", {PLAIN: quote(SPECIAL, safe="")}], "b": (f"x {PLAIN}",)}
    original = copy.deepcopy(value)

    scrubbed = redactor.scrub_copy_on_write(value)

    assert scrubbed == redactor.scrub(value)
    assert scrubbed == {"a": ["plain", {REDACTED: REDACTED}], "b": (f"x {REDACTED}",)}
    assert value == original


def test_copy_on_write_secret_across_strings() -> None:
    # The joined search finds the secret across the separator, so `scrub` runs and
    # returns an equal copy.
    halves = [PLAIN[:12], PLAIN[12:]]

    assert Redactor([PLAIN]).scrub_copy_on_write(halves) == halves


def test_copy_on_write_rejects_reference_cycle() -> None:
    value: list[object] = ["a"]
    value.append({"self": value})

    with pytest.raises(ValueError, match="contains itself"):
        Redactor([PLAIN]).scrub_copy_on_write(value)


def test_copy_on_write_shared_container_twice() -> None:
    shared = ["clean"]
    value = [shared, shared]

    assert Redactor([PLAIN]).scrub_copy_on_write(value) is value
    assert Redactor([PLAIN]).scrub_copy_on_write([[PLAIN], [PLAIN]]) == [[REDACTED], [REDACTED]]


def test_copy_on_write_deep_nesting() -> None:
    value: list[object] = [PLAIN]
    for _ in range(100_000):
        value = [value]

    scrubbed = Redactor([PLAIN]).scrub_copy_on_write(value)

    assert scrubbed is not value
    node = scrubbed
    while isinstance(node, list) and isinstance(node[0], list):
        node = node[0]
    assert node == [REDACTED]


_JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_PLANTED = st.sampled_from([PLAIN, f"id {PLAIN}.", quote(SPECIAL, safe=""), PLAIN.encode().hex()])


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        _JSON_LEAVES | _PLANTED,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=4) | _PLANTED, children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_copy_on_write_equals_scrub(value: object) -> None:
    redactor = Redactor([PLAIN, SPECIAL])

    scrubbed = redactor.scrub_copy_on_write(value)

    assert scrubbed == redactor.scrub(value)


def test_ten_megabyte_string() -> None:
    rng = random.Random(1234)
    alphabet = string.ascii_letters + string.digits + "-_"
    secrets = ["".join(rng.choice(alphabet) for _ in range(40)) for _ in range(20)]
    redactor = Redactor(secrets)
    filler = base64.b64encode(rng.randbytes(7_500_000)).decode()
    planted = [
        secrets[0],
        base64.b64encode(b"x" + secrets[1].encode()).decode(),
        secrets[2].encode().hex(),
        base64.urlsafe_b64encode(b"ab" + secrets[3].encode()).decode(),
    ]
    text = "\n".join([filler[:1000], *planted, filler[1000:]])
    assert len(text) > 10_000_000

    scrubbed = redactor.scrub_text(text)

    assert scrubbed.count(REDACTED) == len(planted)
    assert len(scrubbed) < len(text)
    assert not redactor.contains_secret(scrubbed)


def test_overlapping_secrets_substring() -> None:
    short, long = "token-abcdef", "token-abcdef-extended-part"
    redactor = Redactor([short, long])

    assert redactor.scrub_text(f"a {long} b {short} c") == f"a {REDACTED} b {REDACTED} c"


def test_overlapping_secrets_partial() -> None:
    redactor = Redactor(["abcdefgh12", "gh12345678"])

    assert redactor.scrub_text("xxabcdefgh12345678yy") == f"xx{REDACTED}yy"


def test_overlapping_secrets_in_base64() -> None:
    first, second = "abcdefgh12", "gh12345678"
    redactor = Redactor([first, second])
    blob = base64.b64encode(b"user:abcdefgh12345678;").decode()

    scrubbed = redactor.scrub_text(blob)

    assert not _recoverable(scrubbed, first.encode())
    assert not _recoverable(scrubbed, second.encode())


def test_adjacent_occurrences_become_one_marker() -> None:
    assert Redactor([PLAIN]).scrub_text(PLAIN * 3) == REDACTED


@pytest.mark.parametrize("unit", ["ab", "éb"], ids=["ascii", "non-ascii"])
def test_self_overlapping_secret(unit: str) -> None:
    redactor = Redactor([unit * 4])

    assert redactor.scrub_text(f"x{unit * 5}y") == f"x{REDACTED}y"


def test_short_secret_clear_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_redact, "_warned_short_lengths", set())
    redactor = Redactor(["a1/b"])
    hex_form = b"a1/b".hex()

    assert redactor.scrub_text("x a1/b y") == f"x {REDACTED} y"
    assert redactor.scrub_text(hex_form) == hex_form
    assert redactor.scrub_text(quote("a1/b", safe="")) == quote("a1/b", safe="")


def test_short_secret_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_redact, "_warned_short_lengths", set())
    caplog.set_level(logging.WARNING, logger=_redact.__name__)

    Redactor(["q7Zx"])
    Redactor(["k9Wy"])

    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "4 characters" in message
    assert "q7Zx" not in message


@pytest.mark.parametrize(
    "blank", ["", " ", "\t\n", "\u3000"], ids=["empty", "space", "tabs", "ideographic"]
)
def test_blank_secret_ignored(blank: str) -> None:
    redactor = Redactor([blank])

    assert not redactor
    assert redactor.scrub_text(f"a{blank}b") == f"a{blank}b"


def test_empty_redactor_is_false() -> None:
    assert not Redactor.empty()
    assert Redactor.empty().scrub_text(PLAIN) == PLAIN
    assert Redactor([PLAIN])


def test_stripped_secret_also_redacted() -> None:
    redactor = Redactor([f"  {PLAIN}\n"])

    assert redactor.scrub_text(f"key={PLAIN};") == f"key={REDACTED};"


def test_single_string_rejected() -> None:
    with pytest.raises(TypeError, match="Wrap the secret in a list"):
        Redactor(PLAIN)


def test_non_str_secret_rejected() -> None:
    with pytest.raises(TypeError, match="got bytes") as raised:
        Redactor([PLAIN.encode()])  # type: ignore[list-item]

    assert PLAIN not in str(raised.value)


def test_redactor_is_immutable() -> None:
    redactor = Redactor([PLAIN])

    with pytest.raises(AttributeError):
        redactor._secrets = frozenset()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        redactor.extra = 1  # type: ignore[attr-defined]


def test_repr_hides_secrets() -> None:
    text = repr(Redactor([PLAIN, SPECIAL]))

    assert PLAIN not in text
    assert "2 secrets" in text


def test_pickle_rejected() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Redactor([PLAIN]))


def test_copy_returns_same_object() -> None:
    redactor = Redactor([PLAIN])

    assert copy.copy(redactor) is redactor
    assert copy.deepcopy(redactor) is redactor


def test_merged_covers_both() -> None:
    first = Redactor([PLAIN])
    merged = first.merged([SPECIAL])
    text = f"{PLAIN} {SPECIAL}"

    assert merged.scrub_text(text) == f"{REDACTED} {REDACTED}"
    assert first.scrub_text(text) == f"{REDACTED} {SPECIAL}"


def test_merged_with_redactor() -> None:
    merged = Redactor([PLAIN]).merged(Redactor([NON_ASCII]))

    assert merged.scrub_text(f"{PLAIN}|{NON_ASCII}") == f"{REDACTED}|{REDACTED}"


def test_merged_rejects_single_string() -> None:
    with pytest.raises(TypeError, match="Wrap the secret in a list"):
        Redactor([PLAIN]).merged(SPECIAL)


def test_secret_across_marker_rescanned() -> None:
    redactor = Redactor(["]abcdefgh"])

    scrubbed = redactor.scrub_text("]abcdefghabcdefgh")

    assert "]abcdefgh" not in scrubbed
    assert not redactor.contains_secret(scrubbed)


def test_endless_reappearance_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    secret = "]" + "x" * 7
    redactor = Redactor([secret])
    caplog.set_level(logging.WARNING, logger=_redact.__name__)

    # Each pass leaves a new "]" before the next seven "x".
    scrubbed = redactor.scrub_text("]" + "x" * 7 * 20)

    assert scrubbed == REDACTED
    assert "redaction passes" in caplog.text
    assert secret not in caplog.text


def test_secret_inside_marker() -> None:
    redactor = Redactor(["REDACTED"])

    assert redactor.scrub_text("is REDACTED here") == f"is {REDACTED} here"


@pytest.mark.parametrize(
    "secret",
    ["пароль-секрет", "mot-de-passe-été", "秘密のトークン", "key-🔑-value"],
    ids=["cyrillic", "latin", "cjk", "astral"],
)
def test_non_ascii_encoded_forms(secret: str) -> None:
    redactor = Redactor([secret])
    data = secret.encode("utf-8")
    forms = [
        base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
        data.hex(),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
    ]

    for form in forms:
        assert redactor.scrub_text(f"<{form}>") == f"<{REDACTED}>", form


def _all_forms(secret: str) -> list[str]:
    return [form(secret) for form in FORMS.values()]


# Secrets of at least 8 characters. Those inside the marker text are left out, because
# every marker would contain them.
property_secrets = st.text(min_size=8, max_size=30).filter(
    lambda secret: bool(secret.strip()) and secret not in REDACTED
)


@given(prefix=st.text(max_size=30), secret=property_secrets, suffix=st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_clear_secret_property(prefix: str, secret: str, suffix: str) -> None:
    redactor = Redactor([secret])

    scrubbed = redactor.scrub_text(prefix + secret + suffix)

    for form in _all_forms(secret):
        assert form not in scrubbed


@given(
    prefix=st.text(max_size=30),
    secret=property_secrets,
    suffix=st.text(max_size=30),
    form_name=st.sampled_from(list(FORMS)),
)
@settings(max_examples=300, deadline=None)
def test_encoded_secret_property(prefix: str, secret: str, suffix: str, form_name: str) -> None:
    redactor = Redactor([secret])
    text = prefix + FORMS[form_name](secret) + suffix

    scrubbed = redactor.scrub_text(text)

    assert redactor.contains_secret(text)
    for form in _all_forms(secret):
        assert form not in scrubbed


@given(
    first=property_secrets,
    second=property_secrets,
    overlap=st.integers(min_value=0, max_value=8),
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
)
@settings(max_examples=300, deadline=None)
def test_two_secrets_property(
    first: str, second: str, overlap: int, prefix: str, suffix: str
) -> None:
    redactor = Redactor([first, second])
    # Both secrets in full, then the two run together with up to `overlap` characters
    # of `first` cut off where `second` starts.
    text = f"{prefix}{first} {second}|{first[: len(first) - overlap]}{second}{suffix}"

    scrubbed = redactor.scrub_text(text)

    assert first not in scrubbed
    assert second not in scrubbed


def test_random_bytes_blob_not_over_redacted() -> None:
    redactor = Redactor([PLAIN, SPECIAL, NON_ASCII])
    blob = base64.b64encode(random.Random(99).randbytes(100_000)).decode()

    assert redactor.scrub_text(blob) == blob
