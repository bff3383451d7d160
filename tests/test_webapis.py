"""The Web APIs of the prelude, checked against what browsers and Node return."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from isobind import FunctionTools, SandboxSettings, Toolbox

pytestmark = pytest.mark.anyio


def echo(text: str) -> str:
    """Return `text` unchanged."""
    return text


@pytest.fixture(scope="module")
async def toolbox() -> AsyncIterator[Toolbox]:
    tools = FunctionTools("t", [echo], read_only=True)
    async with Toolbox(functions=[tools], sandbox=SandboxSettings(workers=1)) as opened:
        yield opened


async def evaluate(toolbox: Toolbox, expression: str) -> Any:
    result = await toolbox.execute(f"return {expression};")
    assert result.ok, result.error
    return result.result


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param(
            "[...new TextEncoder().encode('h€\u00e9😀')]",
            [104, 226, 130, 172, 195, 169, 240, 159, 152, 128],
            id="encode-utf8",
        ),
        pytest.param(
            "[...new TextEncoder().encode('\\ud800x')]",
            [239, 191, 189, 120],
            id="encode-lone-surrogate",
        ),
        pytest.param(
            "new TextDecoder().decode(new Uint8Array([104, 226, 130, 172]))", "h€", id="decode-utf8"
        ),
        pytest.param(
            "new TextDecoder().decode(new Uint8Array([0xff, 0x41, 0xe2, 0x82]))",
            "\ufffdA\ufffd",
            id="decode-invalid",
        ),
        pytest.param(
            "new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41]))",
            "A",
            id="decode-bom",
        ),
        pytest.param(
            "(() => { try { new TextDecoder('utf-8', {fatal: true})"
            ".decode(new Uint8Array([0xff])); } catch (e) { return e.name; } })()",
            "TypeError",
            id="decode-fatal",
        ),
        pytest.param(
            "new TextEncoder().encodeInto('a€', new Uint8Array(3))",
            {"read": 1, "written": 1},
            id="encode-into",
        ),
        pytest.param("btoa('hello')", "aGVsbG8=", id="btoa"),
        pytest.param("atob('aGVs bG8=')", "hello", id="atob-whitespace"),
        pytest.param("atob('aGVsbA')", "hell", id="atob-no-padding"),
        pytest.param(
            "(() => { try { btoa('€') } catch (e) { return e.name } })()",
            "InvalidCharacterError",
            id="btoa-non-latin1",
        ),
        pytest.param(
            "(() => { try { atob('a') } catch (e) { return e.name } })()",
            "InvalidCharacterError",
            id="atob-invalid",
        ),
        pytest.param(
            "new URLSearchParams('a=1&b=x+y&a=%E2%82%AC').getAll('a')",
            ["1", "€"],
            id="params-parse",
        ),
        pytest.param(
            "new URLSearchParams({q: 'a b&c', n: 1}).toString()",
            "q=a+b%26c&n=1",
            id="params-serialize",
        ),
        pytest.param(
            "(() => { const p = new URLSearchParams('b=2&a=1&a=0'); p.sort(); "
            "p.set('b', 3); return [...p]; })()",
            [["a", "1"], ["a", "0"], ["b", "3"]],
            id="params-sort-set",
        ),
        pytest.param(
            "new URL('HTTPS://User:pw@Example.COM:443/a/./b/../c?x=1#frag').href",
            "https://User:pw@example.com/a/c?x=1#frag",
            id="url-normalise",
        ),
        pytest.param(
            "(() => { const u = new URL('http://h:8080/p?q=1'); return [u.host, u.port, "
            "u.pathname, u.search, u.origin, u.searchParams.get('q')]; })()",
            ["h:8080", "8080", "/p", "?q=1", "http://h:8080", "1"],
            id="url-parts",
        ),
        pytest.param(
            "new URL('../x?y=2', 'https://example.com/a/b/c').href",
            "https://example.com/a/x?y=2",
            id="url-relative",
        ),
        pytest.param(
            "new URL('//cdn.example/z', 'https://example.com/a').href",
            "https://cdn.example/z",
            id="url-scheme-relative",
        ),
        pytest.param(
            "(() => { const u = new URL('https://e.com/p'); u.searchParams.append("
            "'k', 'v w'); return u.href; })()",
            "https://e.com/p?k=v+w",
            id="url-params-write-back",
        ),
        pytest.param(
            "[URL.canParse('not a url'), URL.canParse('mailto:a@b.c')]",
            [False, True],
            id="url-can-parse",
        ),
        pytest.param(
            "(() => { const a = {d: new Date(0), m: new Map([[1, {x: [1]}]]), "
            "s: new Set([2])}; a.self = a; const b = structuredClone(a); "
            "return [b !== a, b.self === b, b.d.getTime(), b.m.get(1).x[0], "
            "b.s.has(2), b.m.get(1) !== a.m.get(1)]; })()",
            [True, True, 0, 1, True, True],
            id="structured-clone",
        ),
        pytest.param(
            "(() => { try { structuredClone({f() {}}) } catch (e) { return e.name } })()",
            "DataCloneError",
            id="structured-clone-function",
        ),
        pytest.param(
            "[...structuredClone(new Uint16Array([1, 65535]))]",
            [1, 65535],
            id="structured-clone-typed-array",
        ),
        pytest.param("crypto.getRandomValues(new Uint8Array(32)).length", 32, id="random-values"),
        pytest.param(
            "(() => { try { crypto.getRandomValues(new Float64Array(2)) } "
            "catch (e) { return e.name } })()",
            "TypeError",
            id="random-values-float",
        ),
        pytest.param(
            "(() => { try { crypto.getRandomValues(new Uint8Array(65537)) } "
            "catch (e) { return e.name } })()",
            "QuotaExceededError",
            id="random-values-quota",
        ),
        pytest.param(
            "(() => { let ok = true; for (let i = 0; i < 1000; i++) { "
            "const x = Math.random(); ok = ok && x >= 0 && x < 1; } return ok; })()",
            True,
            id="math-random-range",
        ),
        pytest.param("typeof FinalizationRegistry", "undefined", id="no-finalization-registry"),
        pytest.param("typeof WebAssembly", "undefined", id="no-webassembly"),
        pytest.param("typeof SharedArrayBuffer", "undefined", id="no-shared-memory"),
    ],
)
async def test_web_api(toolbox: Toolbox, expression: str, expected: Any) -> None:
    assert await evaluate(toolbox, expression) == expected


async def test_random_uuid_format(toolbox: Toolbox) -> None:
    uuids = await evaluate(toolbox, "Array.from({length: 50}, () => crypto.randomUUID())")
    assert len(set(uuids)) == 50
    for value in uuids:
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value
        )


async def test_randomness_differs_between_runs(toolbox: Toolbox) -> None:
    code = "[...crypto.getRandomValues(new Uint8Array(16))].concat([Math.random()])"
    first = await evaluate(toolbox, code)
    second = await evaluate(toolbox, code)
    assert first != second
    assert len(set(first[:16])) > 4


async def test_random_bytes_look_uniform(toolbox: Toolbox) -> None:
    counts = await evaluate(
        toolbox,
        "(() => { const c = new Array(256).fill(0); const b = new Uint8Array(65536); "
        "crypto.getRandomValues(b); for (const x of b) c[x]++; return c; })()",
    )
    # 65,536 bytes over 256 values: 256 expected per value; a healthy generator
    # stays well within 256 +/- 100 (more than 6 standard deviations).
    assert min(counts) > 156
    assert max(counts) < 356


async def test_crypto_is_chacha20_keyed_by_host() -> None:
    # RFC 8439 section 2.3.2's key, with block counter 0 and an all-zero
    # nonce; the expected words were computed with the RFC's block function.
    from isobind._sandbox import _bootstrap_template, _Isolate

    key = bytes(range(32))
    isolate = await _Isolate.create()
    try:
        await isolate.eval(_bootstrap_template())
        await isolate.eval(
            f'__isobind.prepare("t", "{key.hex()}"); __isobind.configure("t", "{{}}", "{{}}");'
            "globalThis.out = [...crypto.getRandomValues(new Uint8Array(64))].join(',')"
        )
        stream = bytes(int(x) for x in (await isolate.eval("out")).split(","))
        again = await isolate.eval(
            '(() => { try { __isobind.prepare("x", "00") } catch (e) { return e.message } })()'
        )
    finally:
        await isolate.close()
    assert stream == _chacha20_block(key, 0, bytes(12))
    assert again == "__isobind is reserved for the host"
    assert _bootstrap_template().rstrip().endswith("sourceURL=isobind:bootstrap")


def _chacha20_block(key: bytes, counter: int, nonce: bytes) -> bytes:
    """The RFC 8439 section 2.3 block function, written from the RFC's pseudocode."""
    import struct

    def rotate(value: int, bits: int) -> int:
        return ((value << bits) | (value >> (32 - bits))) & 0xFFFFFFFF

    def quarter(x: list[int], a: int, b: int, c: int, d: int) -> None:
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF
        x[d] = rotate(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF
        x[b] = rotate(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF
        x[d] = rotate(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF
        x[b] = rotate(x[b] ^ x[c], 7)

    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += [*struct.unpack("<8I", key), counter, *struct.unpack("<3I", nonce)]
    work = list(state)
    for _ in range(10):
        for a, b, c, d in (
            (0, 4, 8, 12),
            (1, 5, 9, 13),
            (2, 6, 10, 14),
            (3, 7, 11, 15),
            (0, 5, 10, 15),
            (1, 6, 11, 12),
            (2, 7, 8, 13),
            (3, 4, 9, 14),
        ):
            quarter(work, a, b, c, d)
    return struct.pack("<16I", *((w + s) & 0xFFFFFFFF for w, s in zip(work, state, strict=True)))


def test_reference_block_matches_rfc_vector() -> None:
    # RFC 8439 section 2.3.2: the first bytes of the serialized block.
    block = _chacha20_block(bytes(range(32)), 1, bytes.fromhex("000000090000004a00000000"))
    assert block[:16].hex() == "10f1e7e4d13b5915500fdd1fa32071c4"
