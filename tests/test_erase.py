"""Tests for `isobind._erase`: TypeScript erasure that keeps every line and column."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from py_mini_racer import MiniRacer

from isobind import _erase
from isobind._erase import TypeScriptSyntaxError, erase_types

LINE_TERMINATORS = "\n\r\u2028\u2029"

# The V8 tests run erased code as the body of this function. Its header takes one line, so
# line N of the TypeScript is line N + 1 in V8. The fake `tools` object replaces the MCP
# bindings that isobind installs.
FUNCTION_HEADER = (
    "(async function () { const tools = { github: { listIssues: async ({ repo, limit }) => "
    "({ items: ISSUES.slice(0, limit).map((issue) => ({ ...issue, repo })) }) } };\n"
)
ISSUES_JS = json.dumps(
    [
        {"id": 1, "title": "Crash on start", "labels": ["bug"], "assignee": {"login": "ana"}},
        {"id": 2, "title": "Docs", "labels": ["docs", "bug"], "assignee": None},
        {"id": 3, "title": "Slow search results", "assignee": {"login": "bo"}},
    ]
)


@pytest.fixture(scope="module")
def v8() -> Iterator[MiniRacer]:
    with MiniRacer() as mini_racer:
        mini_racer.eval(f"var ISSUES = {ISSUES_JS};")
        yield mini_racer


def run_in_v8(v8: MiniRacer, javascript: str) -> object:
    """Run `javascript` as an async function body in V8 and return its result decoded from JSON."""
    promise = v8.eval(
        FUNCTION_HEADER + javascript + "\n})().then((value) => JSON.stringify(value))"
    )
    return json.loads(promise.get(timeout=10))


def newline_positions(text: str) -> list[int]:
    return [index for index, character in enumerate(text) if character in LINE_TERMINATORS]


# Each case: TypeScript, then the exact JavaScript expected, aligned so that columns match.
CONSTRUCTS = [
    pytest.param(
        "let x: number = 1;",
        "let x         = 1;",
        id="variable-annotation",
    ),
    pytest.param(
        "let x!: number;",
        "let x         ;",
        id="definite-assignment",
    ),
    pytest.param(
        "const { a, b }: Pair = pair;",
        "const { a, b }       = pair;",
        id="destructuring-annotation",
    ),
    pytest.param(
        "function f(a: string, b = 1, ...rest: number[]) {}",
        "function f(a        , b = 1, ...rest          ) {}",
        id="parameter-annotations",
    ),
    pytest.param(
        "function f(a?: string, b?) {}",
        "function f(a         , b ) {}",
        id="optional-parameters",
    ),
    pytest.param(
        "function f(): Promise<void> {}",
        "function f()                {}",
        id="return-type",
    ),
    pytest.param(
        "function isText(v: unknown): v is string { return true }",
        "function isText(v         )              { return true }",
        id="type-predicate",
    ),
    pytest.param(
        "function check(v: unknown): asserts v is string {}",
        "function check(v         )                      {}",
        id="asserts-predicate",
    ),
    pytest.param(
        "function f(this: Window, a: number) {}",
        "function f(              a        ) {}",
        id="this-parameter",
    ),
    pytest.param(
        "function f(this: Window) {}",
        "function f(            ) {}",
        id="this-parameter-alone",
    ),
    pytest.param(
        "function id<T extends object = {}>(x: T): T { return x }",
        "function id                       (x   )    { return x }",
        id="function-type-parameters",
    ),
    pytest.param(
        "const f = (a: number): number => a * 2;",
        "const f = (a        )         => a * 2;",
        id="arrow-return-type",
    ),
    pytest.param(
        "const f = <T,>(a: T): T[] => [a];",
        "const f =     (a   )      => [a];",
        id="arrow-type-parameters",
    ),
    pytest.param(
        "const f = async <T>(a: T) => a;",
        "const f = async    (a   ) => a;",
        id="async-arrow-type-parameters",
    ),
    pytest.param(
        "const f = (a): {\n  x: number\n} => a",
        "const f = (a    \n           \n) => a",
        id="arrow-return-type-across-lines",
    ),
    pytest.param(
        "const f = async <T>\n(x: T) => x",
        "const f = async (  \n x   ) => x",
        id="async-arrow-type-parameters-across-lines",
    ),
    pytest.param(
        "try { f() } catch (e: unknown) {}",
        "try { f() } catch (e         ) {}",
        id="catch-annotation",
    ),
    pytest.param(
        "interface User { id: number; name?: string }",
        "                                            ",
        id="interface",
    ),
    pytest.param(
        "export interface User {}",
        "                        ",
        id="exported-interface",
    ),
    pytest.param(
        "export default interface User {}",
        "                                ",
        id="default-exported-interface",
    ),
    pytest.param(
        "type Id = string | number;",
        "                          ",
        id="type-alias",
    ),
    pytest.param(
        "export type Id = string;",
        "                        ",
        id="exported-type-alias",
    ),
    pytest.param(
        "declare const api: Api;",
        "                       ",
        id="declare-const",
    ),
    pytest.param(
        "declare function log(msg: string): void;",
        "                                        ",
        id="declare-function",
    ),
    pytest.param(
        "declare global { interface Window { x: 1 } }",
        "                                            ",
        id="declare-global",
    ),
    pytest.param(
        "declare namespace NS { const x: number }",
        "                                        ",
        id="declare-namespace",
    ),
    pytest.param(
        "declare enum E { A }",
        "                    ",
        id="declare-enum",
    ),
    pytest.param(
        "namespace Shapes { export type Point = { x: number } }",
        "                                                      ",
        id="type-only-namespace",
    ),
    pytest.param(
        "const n = value as number;",
        "const n = value          ;",
        id="as",
    ),
    pytest.param(
        "const xs = [1, 2] as const;",
        "const xs = [1, 2]         ;",
        id="as-const",
    ),
    pytest.param(
        "const c = { a: 1 } satisfies Config;",
        "const c = { a: 1 }                 ;",
        id="satisfies",
    ),
    pytest.param(
        "const v = x as unknown as T satisfies U;",
        "const v = x                            ;",
        id="chained-assertions",
    ),
    pytest.param(
        "const n = maybe!;",
        "const n = maybe ;",
        id="non-null",
    ),
    pytest.param(
        "const n = a!.b![0]!.c;",
        "const n = a .b [0] .c;",
        id="non-null-chain",
    ),
    pytest.param(
        "obj!.count = 1;",
        "obj .count = 1;",
        id="non-null-assignment-target",
    ),
    pytest.param(
        "const n = <number>value;",
        "const n =         value;",
        id="angle-bracket-assertion",
    ),
    pytest.param(
        "const r = parse<Result>(text);",
        "const r = parse        (text);",
        id="call-type-arguments",
    ),
    pytest.param(
        "const m = new Map<string, number>();",
        "const m = new Map                ();",
        id="new-type-arguments",
    ),
    pytest.param(
        "const s = new Set<string>;",
        "const s = new Set        ;",
        id="new-without-parentheses",
    ),
    pytest.param(
        "const r = api?.get<User>(id);",
        "const r = api?.get      (id);",
        id="optional-call-type-arguments",
    ),
    pytest.param(
        "const parseUser = parse<User>;",
        "const parseUser = parse      ;",
        id="instantiation-expression",
    ),
    pytest.param(
        "const r = make\n<T>(x)",
        "const r = make\n   (x)",
        id="type-arguments-on-next-line",
    ),
    pytest.param(
        "class Box<T> extends Base<T> implements Shape, Named {}",
        "class Box    extends Base                            {}",
        id="class-heritage",
    ),
    pytest.param(
        "const C = class implements Shape {};",
        "const C = class                  {};",
        id="class-expression-implements",
    ),
    pytest.param(
        "class A { public a = 1; protected b = 2; private c() {} }",
        "class A {        a = 1;           b = 2;         c() {} }",
        id="access-modifiers",
    ),
    pytest.param(
        "class A { readonly a?: number; b!: string; static readonly c = 1 }",
        "class A {          a         ; b         ; static          c = 1 }",
        id="readonly-optional-definite-fields",
    ),
    pytest.param(
        "class A { declare x: number; y = 1 }",
        "class A {                  ; y = 1 }",
        id="declare-field",
    ),
    pytest.param(
        "abstract class A { abstract run(): void; abstract x: number; go() {} }",
        "         class A {                     ;                   ; go() {} }",
        id="abstract-class",
    ),
    pytest.param(
        "export abstract class A {}",
        "export          class A {}",
        id="exported-abstract-class",
    ),
    pytest.param(
        "class B extends A { override run(): void {} override x = 1 }",
        "class B extends A {          run()       {}          x = 1 }",
        id="override",
    ),
    pytest.param(
        "class A { [key: string]: unknown; x = 1 }",
        "class A {                       ; x = 1 }",
        id="index-signature",
    ),
    pytest.param(
        "class A { map<U>(f: (x: T) => U): U[] { return [] } }",
        "class A { map   (f             )      { return [] } }",
        id="method-type-parameters",
    ),
    pytest.param(
        "class A { run?(): void {} }",
        "class A { run ()       {} }",
        id="optional-method",
    ),
    pytest.param(
        "class A { get x(): number { return 1 } set x(v: number) {} }",
        "class A { get x()         { return 1 } set x(v        ) {} }",
        id="accessor-types",
    ),
    pytest.param(
        "function pick(x: string): string;\n"
        "function pick(x: number): number;\n"
        "function pick(x: any) { return x }",
        "                                 \n"
        "                                 \n"
        "function pick(x     ) { return x }",
        id="function-overloads",
    ),
    pytest.param(
        "class A {\n  constructor(a: string);\n  constructor(a: any) {}\n  m(): void;\n  m() {}\n}",
        "class A {\n                        ;\n  constructor(a     ) {}\n           ;\n  m() {}\n}",
        id="method-overloads",
    ),
    pytest.param(
        "import type { User } from './user';",
        "                                   ",
        id="import-type",
    ),
    pytest.param(
        "import type User from './user';",
        "                               ",
        id="import-type-default",
    ),
    pytest.param(
        "import type * as T from './types';",
        "                                  ",
        id="import-type-namespace",
    ),
    pytest.param(
        "import { type User, load } from './user';",
        "import {            load } from './user';",
        id="inline-type-specifier",
    ),
    pytest.param(
        "import { type User, type Id } from './user';",
        "                                            ",
        id="only-inline-type-specifiers",
    ),
    pytest.param(
        "import api, { type User } from './api';",
        "import api, {           } from './api';",
        id="default-import-and-type-specifier",
    ),
    pytest.param(
        "export type { User };",
        "                     ",
        id="export-type",
    ),
    pytest.param(
        "export type { User } from './user';",
        "                                   ",
        id="export-type-from",
    ),
    pytest.param(
        "export { type User, load };",
        "export {            load };",
        id="export-inline-type-specifier",
    ),
    pytest.param(
        "let x /* why */: number /* unit */ = 1; // done",
        "let x /* why */         /* unit */ = 1; // done",
        id="comments-kept",
    ),
    pytest.param(
        'let s: "é" | "😀" = "é";',
        'let s            = "é";',
        id="non-ascii-in-type",
    ),
    pytest.param(
        "let p: {\r\n  x: number\r\n} = { x: 1 };",
        "let p   \r\n           \r\n  = { x: 1 };",
        id="crlf-in-type",
    ),
    pytest.param(
        "interface I { /* \u2028 */ a: number }",
        " " * 17 + "\u2028" + " " * 15,
        id="line-separator-in-type",
    ),
]

# Blanking that would join two statements writes `;` instead of a space.
SEMICOLONS = [
    pytest.param(
        "let a = b\ninterface I {}\n(c)",
        "let a = b\n;             \n(c)",
        id="interface-before-parenthesis",
    ),
    pytest.param(
        "let a = b\ntype T = 1\n[1].forEach(f)",
        "let a = b\n;         \n[1].forEach(f)",
        id="type-alias-before-bracket",
    ),
    pytest.param(
        "let a = b;\ntype T = 1\n(c)",
        "let a = b;\n          \n(c)",
        id="type-alias-after-semicolon",
    ),
    pytest.param(
        "let a = b\ntype T = 1\nc()",
        "let a = b\n          \nc()",
        id="type-alias-before-identifier",
    ),
    pytest.param(
        "{\ntype T = 1\n(c)\n}",
        "{\n          \n(c)\n}",
        id="type-alias-first-in-block",
    ),
    pytest.param(
        "if (a) {}\n<T>(c).d()",
        "if (a) {}\n;  (c).d()",
        id="assertion-starts-statement",
    ),
    pytest.param(
        "let y = x as T\n(c)",
        "let y = x    ;\n(c)",
        id="as-before-parenthesis",
    ),
    pytest.param(
        "let y = x as T\n!c",
        "let y = x     \n!c",
        id="as-before-unary",
    ),
    pytest.param(
        "let y = x as T\n+ c",
        "let y = x     \n+ c",
        id="as-before-binary-operator",
    ),
    pytest.param(
        "let y: T\n(c)",
        "let y  ;\n(c)",
        id="annotation-before-parenthesis",
    ),
    pytest.param(
        "class K { x = 1\n  private [k] = 2 }",
        "class K { x = 1\n  ;       [k] = 2 }",
        id="modifier-before-computed-field",
    ),
    pytest.param(
        "class K { x = 1;\n  private [k] = 2 }",
        "class K { x = 1;\n          [k] = 2 }",
        id="modifier-after-semicolon",
    ),
    pytest.param(
        "class K { x = 1\n  private k = 2 }",
        "class K { x = 1\n          k = 2 }",
        id="modifier-before-field-name",
    ),
    pytest.param(
        "class K { x?\n  ['k'] = 2 }",
        "class K { x;\n  ['k'] = 2 }",
        id="optional-field-before-computed-field",
    ),
    pytest.param(
        "class K { x = 1\n  declare y: T\n  [k] = 2 }",
        "class K { x = 1\n  ;           \n  [k] = 2 }",
        id="declare-field-before-computed-field",
    ),
    pytest.param(
        "if (a) interface I {}\nfoo()",
        "if (a) ;             \nfoo()",
        id="interface-as-if-body",
    ),
]

ENUMS = [
    pytest.param(
        "enum Color { Red, Green = 5, Blue }",
        'const Color = { Red: 0, [0]: "Red", Green:  5, [5]: "Green", Blue: 6, [6]: "Blue" };',
        id="numeric",
    ),
    pytest.param(
        "enum Mode {\n  Read = 'r',\n  Write = 'w',\n}\nuse(Mode)",
        "const Mode = {\n  Read:  'r',\n  Write:  'w',\n};\nuse(Mode)",
        id="string",
    ),
    pytest.param(
        "const enum Flag { On = 1, Off = 0 }",
        'const Flag = {    On:  1, [1]: "On", Off:  0, [0]: "Off" };',
        id="const",
    ),
    pytest.param(
        "export enum E { A }",
        'export const E = { A: 0, [0]: "A" };',
        id="exported",
    ),
    pytest.param(
        "enum E { 'a b' = 1, \"c\", ['d'] = 'x' }",
        "const E = { ['a b']: 1, [1]: 'a b', [\"c\"]: 2, [2]: \"c\", ['d']:  'x' };",
        id="string-names",
    ),
    pytest.param(
        "enum E { A = -1, B, C = 1.5, D }",
        'const E = { A:  -1, [-1]: "A", B: 0, [0]: "B", C:  1.5, [1.5]: "C", D: 2.5, [2.5]: "D" };',
        id="negative-and-fraction",
    ),
    pytest.param(
        "enum E {\n  // first\n  A, /* second */ B\n}",
        'const E = {\n  // first\n  A: 0, [0]: "A", /* second */ B: 1, [1]: "B"\n};',
        id="comments",
    ),
    pytest.param(
        "enum Bits {\n  A = 1 << 0,\n  AB = A | 2,\n  C,\n}\nnext()",
        "const Bits = (Bits => {\n"
        '  const A = Bits["A"] = 1 << 0; if (typeof A !== "string") Bits[A] = "A"; \n'
        '  const AB = Bits["AB"] = A | 2; if (typeof AB !== "string") Bits[AB] = "AB"; \n'
        '  const C = Bits["C"] = Bits["AB"] + 1; Bits[C] = "C"; \n'
        "return Bits; })({});\n"
        "next()",
        id="computed",
    ),
    pytest.param(
        "enum E {\n  A = (1 as number),\n}",
        "const E = (E => {\n"
        '  const A = E["A"] = (1          ); if (typeof A !== "string") E[A] = "A"; \n'
        "return E; })({});",
        id="initializer-with-type",
    ),
]

PLAIN_JAVASCRIPT = [
    pytest.param("const a = [1, 2].map((x) => x * 2);", id="arrow"),
    pytest.param(
        "class A { #p = 1; static s = 2; get v() { return this.#p } static { init() } }",
        id="class-features",
    ),
    pytest.param("async function* gen() { for await (const x of xs) yield x }", id="generator"),
    pytest.param("const r = /<T>[a-z]+/g.test(s) ? a : b;", id="regex"),
    pytest.param("const t = `a ${b + 1} <T> c`;", id="template"),
    pytest.param("label: for (;;) { break label }", id="label"),
    pytest.param("if (a < b && c > d) {}", id="comparisons"),
    pytest.param("x = y ? (z) : w;", id="conditional"),
    pytest.param(
        "const o = { type: 1, interface: 2, declare: 3, as: 4, satisfies: 5, readonly: 6 };",
        id="keyword-property-names",
    ),
    pytest.param("let type = 1; let declare = 2; let readonly = 3; type = 4;", id="keyword-names"),
    pytest.param("declare(x); namespace(y); module.exports = 1;", id="keyword-calls"),
    pytest.param("a?.b?.(c)?.[d] ?? e;", id="optional-chaining"),
    pytest.param("const f = async (a, { b = 1 } = {}, ...c) => a;", id="parameters"),
    pytest.param("const r = await Promise.all([f(), g()]);\nreturn r;", id="await-and-return"),
    pytest.param("let s = 'é\u2028ü'; // ünïcode 😀", id="non-ascii"),
    pytest.param("a()\r\nb()\r\n", id="crlf"),
    pytest.param("", id="empty"),
    pytest.param("// only a comment", id="comment"),
]


@pytest.mark.parametrize(("source", "expected"), CONSTRUCTS + SEMICOLONS)
def test_erase_exact_output(source: str, expected: str) -> None:
    assert erase_types(source) == expected


@pytest.mark.parametrize(("source", "expected"), CONSTRUCTS + SEMICOLONS)
def test_erase_keeps_positions(source: str, expected: str) -> None:
    erased = erase_types(source)

    assert len(erased) == len(source)
    assert newline_positions(erased) == newline_positions(source)
    changed = {erased[i] for i in range(len(source)) if erased[i] != source[i]}
    assert changed <= set(" ;()")


@pytest.mark.parametrize(("source", "expected"), ENUMS)
def test_enum_exact_output(source: str, expected: str) -> None:
    assert erase_types(source) == expected


@pytest.mark.parametrize(("source", "expected"), ENUMS)
def test_enum_keeps_lines(source: str, expected: str) -> None:
    erased = erase_types(source)
    closing_line = source[: source.rindex("}")].count("\n")

    assert erased.count("\n") == source.count("\n")
    assert erased.splitlines()[closing_line + 1 :] == source.splitlines()[closing_line + 1 :]


@pytest.mark.parametrize("source", PLAIN_JAVASCRIPT)
def test_plain_javascript_unchanged(source: str) -> None:
    assert erase_types(source) == source


RUNS = [
    pytest.param(
        "enum Color { Red, Green = 5, Blue, Name = 'n' }\n"
        "return [Color.Red, Color.Blue, Color[5], Color.Name, Color[6]]",
        [0, 6, "Green", "n", "Blue"],
        id="enum-numeric",
    ),
    pytest.param(
        "enum Bits {\n  A = 1 << 0,\n  B = 1 << 1,\n  AB = A | B,\n  C,\n"
        "  S = 'x'.toUpperCase(),\n}\nreturn [Bits.AB, Bits[3], Bits.C, Bits.S, 'X' in Bits]",
        [3, "AB", 4, "X", False],
        id="enum-computed",
    ),
    pytest.param(
        "const enum Flag { On = 1, Off = 0 }\nreturn Flag.On + Flag.Off",
        1,
        id="const-enum",
    ),
    pytest.param(
        "let calls = 0\nconst f = () => { calls++ }\nlet a = f\ninterface I {}\n(1)\nreturn calls",
        0,
        id="asi-interface-before-parenthesis",
    ),
    pytest.param(
        "let calls = 0\nconst f = () => { calls++ }\nlet a = f as any\n(1)\nreturn calls",
        0,
        id="asi-as-before-parenthesis",
    ),
    pytest.param(
        "let a = [0, 1]\ntype T = 1\n[5].forEach((x) => a.push(x))\nreturn a",
        [0, 1, 5],
        id="asi-type-alias-before-bracket",
    ),
    pytest.param(
        "class K { x = 1\n  private ['k'] = 2 }\nreturn new K()",
        {"x": 1, "k": 2},
        id="asi-modifier-before-computed-field",
    ),
    pytest.param(
        "const g = (a: number): {\n  x: number\n} => ({ x: a })\nreturn g(3)",
        {"x": 3},
        id="arrow-return-type-across-lines",
    ),
    pytest.param(
        "const f = async <T>\n(x: T) => x\nreturn await f(4)",
        4,
        id="async-arrow-across-lines",
    ),
    pytest.param(
        "class A<T> {\n"
        "  private readonly items: T[] = [];\n"
        "  declare label: string;\n"
        "  static of<U>(this: unknown, ...xs: U[]): A<U> {\n"
        "    const a = new A<U>(); a.items.push(...xs); return a\n"
        "  }\n"
        "  get size(): number { return this.items.length }\n"
        "}\n"
        "const a = A.of<number>(1, 2)\n"
        "return [a.size, 'label' in a]",
        [2, False],
        id="class-members",
    ),
    pytest.param(
        "abstract class Shape { abstract area(): number; describe(): string "
        "{ return `area ${this.area()}` } }\n"
        "class Square extends Shape { side: number; constructor(side: number) { super(); "
        "this.side = side } override area(): number { return this.side ** 2 } }\n"
        "return new Square(3).describe()",
        "area 9",
        id="abstract-and-override",
    ),
    pytest.param(
        "function pick(x: string): string;\nfunction pick(x: number): number;\n"
        "function pick(x: any) { return x }\nreturn [pick('a'), pick(1)]",
        ["a", 1],
        id="overloads",
    ),
    pytest.param(
        "function scale(this: { n: number }, k: number) { return this.n * k }\n"
        "return scale.call({ n: 2 }, 3)",
        6,
        id="this-parameter",
    ),
    pytest.param(
        "namespace Geometry { export interface Point { x: number } }\n"
        "const p: Geometry.Point = { x: 1 }\nreturn p.x",
        1,
        id="type-only-namespace",
    ),
    pytest.param(
        "const config = { retries: 3, mode: 'fast' } as const satisfies Record<string, unknown>\n"
        "const n = <number>config.retries\nreturn [n, config.mode]",
        [3, "fast"],
        id="as-const-satisfies",
    ),
    pytest.param(
        "const r = await Promise.resolve(41) as number\nif (r > 40) return r + 1\nreturn 0",
        42,
        id="top-level-await-and-return",
    ),
]


@pytest.mark.parametrize(("source", "expected"), RUNS)
def test_erased_code_runs_in_v8(v8: MiniRacer, source: str, expected: object) -> None:
    assert run_in_v8(v8, erase_types(source)) == expected


AGENT_SCRIPT = """\
interface Issue {
  id: number;
  title: string;
  repo: string;
  labels?: string[];
  assignee?: { login: string } | null;
}

type Summary = { open: number; byLabel: Record<string, number> };

async function fetchIssues<T extends Issue>(repo: string, limit = 10): Promise<T[]> {
  const result = (await tools.github.listIssues({ repo, limit })) as { items: T[] };
  return result.items!;
}

function countLabels(issues: readonly Issue[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const issue of issues) {
    for (const label of issue.labels ?? []) {
      counts[label] = (counts[label] ?? 0) + 1;
    }
  }
  return counts;
}

const issues = await fetchIssues<Issue>("octo/repo", 3);
const owners = issues
  .filter((issue): issue is Issue & { assignee: { login: string } } => !!issue.assignee)
  .map((issue) => issue.assignee!.login);
const summary = {
  open: issues.length,
  byLabel: countLabels(issues),
} satisfies Summary;

let longest!: string;
for (const issue of issues) {
  if (!longest || issue.title.length > longest.length) longest = issue.title;
}
if (owners.length === 0) {
  return { summary, owners: null };
}
return {
  summary,
  owners,
  longest,
  repo: issues[0]?.repo,
  missing: issues[2]?.labels?.[0] as string | undefined ?? "none",
};
"""


def test_agent_script_runs_in_v8(v8: MiniRacer) -> None:
    erased = erase_types(AGENT_SCRIPT)

    assert newline_positions(erased) == newline_positions(AGENT_SCRIPT)
    assert run_in_v8(v8, erased) == {
        "summary": {"open": 3, "byLabel": {"bug": 2, "docs": 1}},
        "owners": ["ana", "bo"],
        "longest": "Slow search results",
        "repo": "octo/repo",
        "missing": "none",
    }


def test_error_stack_points_at_typescript_line(v8: MiniRacer) -> None:
    source = (
        "interface Point { x: number; y: number }\n"
        "const p: Point = { x: 1, y: 2 } as Point;\n"
        "function fail<T>(value: T): never {\n"
        "  throw new Error(`bad ${value as unknown as string}`);\n"
        "}\n"
        "return fail<number>(p.x!);\n"
    )
    erased = erase_types(source)

    promise = v8.eval(FUNCTION_HEADER + erased + "\n})().catch((error) => error.stack)")
    stack = str(promise.get(timeout=10))

    # `new` is at line 4, column 9 and the call `fail` at line 6, column 8 of the TypeScript,
    # and the function header adds one line.
    frames = re.findall(r"<anonymous>:(\d+):(\d+)", stack)
    assert frames[0] == ("5", "9")
    assert frames[1] == ("7", "8")


def test_v8_syntax_error_points_at_typescript_line(v8: MiniRacer) -> None:
    source = "let x: number = 1;\nconst y: string = 'a';\nlet x = 2;\n"

    with pytest.raises(Exception, match=r"<anonymous>:4: SyntaxError: Identifier 'x'"):
        v8.eval(FUNCTION_HEADER + erase_types(source) + "\n})()")


SYNTAX_ERRORS = [
    pytest.param("let x = 1;\nlet y = ;", 2, 7, "unexpected '='", id="unexpected-token"),
    pytest.param("if (x) {\n  y()\n", 2, 6, "missing '}'", id="missing-brace"),
    pytest.param("foo(a, b\nbar()", 2, 6, "unexpected end", id="unclosed-parenthesis"),
    pytest.param("let a = 1\n/* note", 2, 8, "unexpected end", id="unterminated-comment"),
    pytest.param("foo() )", 1, 7, "unexpected ')'", id="unmatched-parenthesis"),
    pytest.param("let a = 1 +* 2", 1, 12, "unexpected '*'", id="double-operator"),
    pytest.param(
        "const é = '😀'; let y = ;", 1, 22, "unexpected '='", id="column-counts-characters"
    ),
    pytest.param("a;\r\nb;\rlet y = ;", 3, 7, "unexpected '='", id="cr-and-crlf-lines"),
]


@pytest.mark.parametrize(("source", "line", "column", "message"), SYNTAX_ERRORS)
def test_syntax_error_position(source: str, line: int, column: int, message: str) -> None:
    with pytest.raises(TypeScriptSyntaxError) as caught:
        erase_types(source)

    assert caught.value.line == line
    assert caught.value.column == column
    assert message in caught.value.message


UNSUPPORTED = [
    pytest.param(
        "let a = 1\nnamespace N { export const x = 1 }",
        2,
        1,
        "namespaces that contain values",
        id="namespace-with-values",
    ),
    pytest.param(
        "module M { const x = 1 }",
        1,
        1,
        "namespaces that contain values",
        id="module-with-values",
    ),
    pytest.param(
        "class D {\n  constructor(private x: number) {}\n}",
        2,
        15,
        "parameter properties",
        id="parameter-property",
    ),
    pytest.param(
        "class D { constructor(readonly x: number) {} }",
        1,
        23,
        "parameter properties",
        id="readonly-parameter-property",
    ),
    pytest.param("@sealed class E {}", 1, 1, "decorators", id="class-decorator"),
    pytest.param("class E { @log m() {} }", 1, 11, "decorators", id="method-decorator"),
    pytest.param("import A = N.B;", 1, 1, "'import X = ...'", id="import-alias"),
    pytest.param("export = x;", 1, 1, "'export ='", id="export-assignment"),
    pytest.param("const r = x as Fn(1)", 1, 18, "cannot be called directly", id="called-assertion"),
    pytest.param(
        "x = a as T\n[1].map(f)", 2, 1, "End the previous line with ';'", id="bracket-after-type"
    ),
    pytest.param("return <T>\nx", 1, 8, "after 'return'", id="line-break-after-return"),
    pytest.param(
        "const f = () => <T>{ a: 1 }", 1, 17, "arrow function body", id="object-arrow-body"
    ),
    pytest.param("<T>{}.toString()", 1, 1, "start of a statement", id="statement-starts-brace"),
    pytest.param(
        "enum E { A = 'a', B }", 1, 19, "needs an initializer", id="enum-member-after-string"
    ),
    pytest.param(
        "class A { constructor(private x: number) {} }\nnamespace N { const a = 1 }",
        1,
        23,
        "parameter properties",
        id="first-problem-reported",
    ),
]


@pytest.mark.parametrize(("source", "line", "column", "message"), UNSUPPORTED)
def test_unsupported_construct_rejected(source: str, line: int, column: int, message: str) -> None:
    with pytest.raises(TypeScriptSyntaxError) as caught:
        erase_types(source)

    assert caught.value.line == line
    assert caught.value.column == column
    assert message in caught.value.message


def test_syntax_error_text_names_position() -> None:
    with pytest.raises(TypeScriptSyntaxError) as caught:
        erase_types("let y = ;")

    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == (
        "unexpected '='. Fix the syntax at this position. (line 1, column 7)"
    )


def test_erase_types_from_many_threads() -> None:
    sources = [AGENT_SCRIPT, "let x: number = 1;", "enum E { A, B }", "const n = <T>x;"]
    expected = [erase_types(source) for source in sources]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(erase_types, sources * 50, timeout=60))

    assert results == expected * 50


def test_all_names_exist() -> None:
    assert sorted(_erase.__all__) == ["TypeScriptSyntaxError", "erase_types"]
    for name in _erase.__all__:
        assert hasattr(_erase, name)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("x = 1 <!-- 2\nimport('y')", id="html-open-inline"),
    ],
)
def test_html_like_comment_rejected(source: str) -> None:
    with pytest.raises(TypeScriptSyntaxError, match="HTML-like comments"):
        erase_types(source)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("let y = 1; y-->0;", id="decrement-greater"),
        pytest.param('const s = "<!--";', id="in-string"),
        pytest.param("// <!-- in a comment", id="in-comment"),
        pytest.param("let a = 1;\n<!-- read as a comment by both", id="html-comment-line"),
    ],
)
def test_html_like_text_allowed(source: str) -> None:
    assert erase_types(source) == source


def test_dynamic_import_renamed_same_length() -> None:
    source = "const m = await import('x');"
    erased = erase_types(source)
    assert len(erased) == len(source)
    assert "import(" not in erased
    assert "$mport('x')" in erased
