"""Naming rules that turn MCP server, tool and schema names into JavaScript identifiers.

The generated TypeScript declares `tools.<server>.<tool>` and named types, so every
original name must become a valid identifier. The mapping is deterministic and
never consults other names: resolving two names that map to the same identifier
is left to the caller, which raises `ApiError`.

Rules of `to_identifier`, applied in order:

1. Each run of characters that cannot appear in an identifier becomes one `_`
   (`get-weather` and `get.weather` both become `get_weather`).
2. A result that is empty becomes `_`, and one that starts with a character that
   cannot start an identifier (a digit) gets a leading `_` (`2fa` becomes `_2fa`).
3. A reserved word gets a trailing `_` (`delete` becomes `delete_`).

Non-ASCII letters stay when they are valid in an identifier (`café` stays `café`).
Validity follows Python's `str.isidentifier` (Unicode XID_Start and XID_Continue)
plus `$`, ZWNJ and ZWJ. XID is a subset of the ID_Start and ID_Continue classes
that ECMAScript uses, so every accepted name is valid JavaScript. A few rare
characters that JavaScript accepts are replaced anyway.
"""

from __future__ import annotations

__all__ = ["is_identifier", "is_identifier_name", "to_identifier", "to_type_name"]

# ECMAScript 2022 reserved words, including those reserved only in strict mode
# code and in modules, because the sandboxed code runs as strict mode code.
_RESERVED_WORDS = frozenset(
    {
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "implements",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "null",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
    }
)

# Not reserved, but strict mode code cannot bind `arguments` or `eval`, and a
# top-level `const undefined` (or `NaN`, `Infinity`) is a SyntaxError because the
# global property is not configurable. Avoiding them keeps destructuring such as
# `const { eval } = tools.x` from failing. `__proto__` is avoided because
# assigning it on a plain object replaces the prototype instead of adding a key.
_AVOIDED_NAMES = frozenset({"arguments", "eval", "undefined", "NaN", "Infinity", "__proto__"})

_ZWNJ = "\u200c"
_ZWJ = "\u200d"


def _is_start(char: str) -> bool:
    return char == "$" or char.isidentifier()


def _is_part(char: str) -> bool:
    return char in ("$", _ZWNJ, _ZWJ) or ("a" + char).isidentifier()


def is_identifier_name(name: str) -> bool:
    """Return whether `name` is an ECMAScript IdentifierName, which includes reserved words.

    Such a name can be an unquoted property key, as in `{ delete: string }`.
    """
    if not name or not _is_start(name[0]):
        return False

    return all(_is_part(char) for char in name[1:])


def is_identifier(name: str) -> bool:
    """Return whether `name` can be declared as is: a valid identifier and not a reserved word."""
    return is_identifier_name(name) and name not in _RESERVED_WORDS and name not in _AVOIDED_NAMES


def to_identifier(name: str) -> str:
    """Turn `name` into a JavaScript identifier by the rules in the module docstring.

    A name that already is an identifier and not reserved comes back unchanged.
    """
    if is_identifier(name):
        return name

    chars: list[str] = []
    in_invalid_run = False
    for char in name:
        if _is_part(char):
            chars.append(char)
            in_invalid_run = False
        elif not in_invalid_run:
            chars.append("_")
            in_invalid_run = True

    result = "".join(chars)
    if not result:
        return "_"

    if not _is_start(result[0]):
        result = "_" + result

    if result in _RESERVED_WORDS or result in _AVOIDED_NAMES:
        result += "_"

    return result


def to_type_name(name: str, suffix: str = "") -> str:
    """Turn `name` into a PascalCase identifier for a TypeScript type, then append `suffix`.

    Words split at `_`, `-` and every other character invalid in an identifier,
    and each word gets an uppercase first letter: `get_current_time` with suffix
    `Input` becomes `GetCurrentTimeInput`. Letters after the first keep their case.
    """
    words: list[str] = []
    word_start = 0
    for index, char in enumerate(name):
        if char == "_" or not _is_part(char):
            words.append(name[word_start:index])
            word_start = index + 1
    words.append(name[word_start:])

    pascal = "".join(word[0].upper() + word[1:] for word in words if word)
    return to_identifier(pascal + suffix) if pascal + suffix else "Type"
