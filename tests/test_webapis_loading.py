"""Loading the Web APIs only for code that names them, in real isolates."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from isobind import FunctionTools, SandboxSettings, Toolbox
from isobind._sandbox import (
    CallReply,
    CallRequest,
    EngineBatch,
    Limits,
    _bootstrap_template,
    _Isolate,
    _webapis_source,
    configuration_of,
    create_isolate,
    names_web_api,
    run_in_isolate,
)

pytestmark = pytest.mark.anyio

WEB_API_NAMES = [
    "TextEncoder",
    "TextDecoder",
    "atob",
    "btoa",
    "structuredClone",
    "URL",
    "URLSearchParams",
]

# `glob\u0061lThis` is `globalThis` written with an escape, which the text
# scan does not see: the way to reach a Web API without naming it.
HIDDEN_GLOBAL = "const g = glob\\u0061lThis;\n"


def echo(text: str) -> str:
    """Return `text` unchanged."""
    return text


@pytest.fixture(
    scope="module",
    params=[pytest.param("workers", id="workers"), pytest.param("inprocess", id="inprocess")],
)
async def toolbox(request: pytest.FixtureRequest) -> AsyncIterator[Toolbox]:
    tools = FunctionTools("t", [echo], read_only=True)
    settings = SandboxSettings(mode=request.param, workers=1)
    async with Toolbox(functions=[tools], sandbox=settings) as opened:
        yield opened


async def run_ok(toolbox: Toolbox, code: str) -> Any:
    result = await toolbox.execute(code)
    assert result.ok, result.error
    return result.result


def test_names_are_what_webapis_defines() -> None:
    defined = re.findall(r'^\s*define\("(\w+)"', _webapis_source(), re.MULTILINE)
    assert sorted(defined) == sorted(WEB_API_NAMES)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("return 1", False, id="none"),
        pytest.param("return new TextEncoder().encode('a')", True, id="constructor"),
        pytest.param("return atob('YQ==')", True, id="function"),
        pytest.param("const { URL: Address } = globalThis", True, id="destructured"),
        pytest.param("return 1 // structuredClone", True, id="comment"),
        pytest.param("return 'see the URL'", True, id="string"),
        pytest.param("return x.URL", True, id="property"),
        pytest.param("return globalThis['Text' + 'Encoder']", True, id="computed-global"),
        pytest.param("return globalThis ['x']", True, id="computed-spaced"),
        pytest.param("return globalThis?.[name]", True, id="optional-computed"),
        pytest.param("return Reflect.ownKeys(globalThis)", True, id="global-as-value"),
        pytest.param("const g = self; return g", True, id="self"),
        pytest.param("return window[name]", True, id="window"),
        pytest.param("return this[name]", True, id="this-computed"),
        pytest.param("return this", True, id="this-value"),
        pytest.param("globalThis.cache = 1; return globalThis.cache", False, id="global-member"),
        pytest.param("return this.total + this.#count", False, id="this-member"),
        pytest.param("const my_URL = 1, URLs = 2, $atob = 3, btoa2 = 4", False, id="longer-names"),
        pytest.param("const selfish = 1, windows = 2, thisOne = 3", False, id="longer-globals"),
        pytest.param("return 1 // url, Url", False, id="case-differs"),
    ],
)
def test_names_web_api(code: str, expected: bool) -> None:
    assert names_web_api(code) is expected


async def test_bootstrap_defines_placeholders() -> None:
    isolate = await _Isolate.create()
    try:
        await isolate.eval(_bootstrap_template())
        script = (
            "JSON.stringify(Object.getOwnPropertyNames(globalThis).filter("
            "(name) => typeof Object.getOwnPropertyDescriptor(globalThis, name).get === "
            "'function'))"
        )
        placeholders = await isolate.eval(script)
        await isolate.eval(_webapis_source())
        left = await isolate.eval(script)
        kinds = await isolate.eval(
            f"JSON.stringify({WEB_API_NAMES!r}.map((name) => "
            "typeof Object.getOwnPropertyDescriptor(globalThis, name).value))"
        )
    finally:
        await isolate.close()
    assert sorted(re.findall(r"\w+", placeholders)) == sorted(WEB_API_NAMES)
    assert left == "[]"
    assert kinds == '["function","function","function","function","function","function","function"]'


async def no_calls(request: CallRequest) -> CallReply:
    raise AssertionError(f"the code made a call: {request}")


class RecordedBatches:
    """Records the sources of every engine batch; the real engine still runs them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.batches: list[list[str]] = []
        submit = _Isolate.submit

        def recording(
            isolate: _Isolate, sources: Sequence[str], notify_index: int | None = None
        ) -> EngineBatch:
            self.batches.append(list(sources))
            return submit(isolate, sources, notify_index)

        monkeypatch.setattr(_Isolate, "submit", recording)


@pytest.mark.parametrize("configured", [False, True], ids=["unconfigured", "configured"])
async def test_begin_batch_sources(monkeypatch: pytest.MonkeyPatch, configured: bool) -> None:
    recorded = RecordedBatches(monkeypatch)
    limits = Limits()
    configuration = configuration_of({}, limits) if configured else None
    for code in ("return 1", "return typeof URL"):
        isolate = await create_isolate(configuration)
        outcome = await run_in_isolate(
            code, api={}, handler=no_calls, limits=limits, isolate=isolate
        )
        assert outcome.error is None, outcome.error
    preparation, plain_begin, _, named_begin = recorded.batches
    assert _bootstrap_template() in preparation
    assert _webapis_source() not in preparation
    assert _webapis_source() not in plain_begin
    assert named_begin.count(_webapis_source()) == 1
    # Evaluated before the configure (or empty) task, so before the code's script.
    assert named_begin.index(_webapis_source()) == 0
    assert len(named_begin) == len(plain_begin) + 1


async def test_unnamed_run_keeps_placeholder(toolbox: Toolbox) -> None:
    code = (
        HIDDEN_GLOBAL + "return typeof Object.getOwnPropertyDescriptor(g, 'Text' + 'Encoder').get"
    )
    assert await run_ok(toolbox, code) == "function"


async def test_named_run_has_real_value(toolbox: Toolbox) -> None:
    code = (
        HIDDEN_GLOBAL + "// TextEncoder\n"
        "return typeof Object.getOwnPropertyDescriptor(g, 'Text' + 'Encoder').value"
    )
    assert await run_ok(toolbox, code) == "function"


@pytest.mark.parametrize("name", WEB_API_NAMES)
async def test_computed_access_names_fix(toolbox: Toolbox, name: str) -> None:
    split = len(name) // 2
    code = HIDDEN_GLOBAL + f"return g['{name[:split]}' + '{name[split:]}'];"
    result = await toolbox.execute(code)
    assert result.error is not None
    assert result.error.name == "ReferenceError"
    assert f"{name} is not loaded in this run" in result.error.message
    assert f"Write {name} as a plain name in the code" in result.error.message
    assert result.error.line == 2
    assert result.error.stack is not None
    assert "isobind:" not in result.error.stack


async def test_placeholder_takes_assignment(toolbox: Toolbox) -> None:
    code = (
        HIDDEN_GLOBAL + "g['UR' + 'L'] = 5;\nreturn [g['UR' + 'L'], Object.keys(g).includes('URL')]"
    )
    assert await run_ok(toolbox, code) == [5, False]


async def test_next_run_unaffected(toolbox: Toolbox) -> None:
    failed = await toolbox.execute(HIDDEN_GLOBAL + "return g['a' + 'tob']('YQ==')")
    assert failed.error is not None
    assert await run_ok(toolbox, "return atob('YQ==')") == "a"


async def test_quota_error_without_webapis(toolbox: Toolbox) -> None:
    code = (
        "try { crypto.getRandomValues(new Uint8Array(65537)) }\n"
        "catch (e) { return [e.name, e instanceof DOMException, e instanceof Error] }"
    )
    assert not names_web_api(code)
    assert await run_ok(toolbox, code) == ["QuotaExceededError", True, True]


async def test_webapis_frames_hidden(toolbox: Toolbox) -> None:
    # The failing call starts inside a callback of URLSearchParams.forEach, so
    # its call site's stack passes through `_webapis.js`.
    code = """
let pending;
new URLSearchParams("a=1").forEach(() => { pending = tools.t.echo({}); });
try { await pending; } catch (e) { return [e.name, String(e.stack)]; }
"""
    name, stack = await run_ok(toolbox, code)
    assert name == "ToolInputError"
    assert "code.ts:3:" in stack
    assert "isobind:" not in stack


async def test_webapis_error_stack_is_code(toolbox: Toolbox) -> None:
    result = await toolbox.execute("const a = 1;\nnew URL('not a url');")
    assert result.error is not None
    assert result.error.name == "TypeError"
    assert result.error.line == 2
    assert result.error.stack is not None
    assert "isobind:" not in result.error.stack
