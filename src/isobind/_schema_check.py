"""A quick check that a tool input is valid, compiled once per JSON Schema.

`jsonschema` interprets the schema anew on every call and builds a validator
object for each subschema it enters. For a two-field input that took about 15
microseconds with `jsonschema` 4.26 on the 2-core development machine, and the
compiled check below under 1. `compile_quick_check` turns a schema into nested
closures once.

The check is one-sided. When it returns `True`, the input is valid for the
`jsonschema` validator it was compiled for. When it returns `False`, the input
may still be valid: the caller then runs `jsonschema`, which decides and
explains the error. Whatever the check cannot prove, it leaves to `jsonschema`
by returning `False`, such as an integer written as ``1.0`` or an `enum` of
arrays.

It compiles schemas of the drafts 6, 7, 2019-09 and 2020-12 that use only the
keywords most common in tool schemas. These are ``type``, ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties``, ``propertyNames``,
``items`` (one schema for every item), the size and range bounds, ``pattern``,
``uniqueItems``, ``allOf``, ``anyOf``, ``format`` and ``$ref`` to a JSON
pointer in the same document. ``format`` is skipped, because `jsonschema`
asserts it only with a format checker. Keywords that the validator class does
not apply are skipped too, as `jsonschema` skips them. Any other keyword, and
any ``$id`` or anchor, leaves the schema without a quick check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import validators

__all__ = ["QUICK_CHECK_CLASSES", "QUICK_CHECK_KEYWORDS", "QuickCheck", "compile_quick_check"]

QuickCheck = Callable[[Any], bool]
"""Returns `True` only for an input that the validator accepts."""

# These classes apply the supported keywords with the same functions (the
# `jsonschema` 4.x keyword functions that this module mirrors). A test checks
# that this stays so.
QUICK_CHECK_CLASSES: tuple[type[Any], ...] = (
    validators.Draft6Validator,
    validators.Draft7Validator,
    validators.Draft201909Validator,
    validators.Draft202012Validator,
)

QUICK_CHECK_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "propertyNames",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "uniqueItems",
        "allOf",
        "anyOf",
        "format",
        "$ref",
    }
)

# Keywords that change how a `$ref` resolves. A schema containing any of them,
# anywhere, gets no quick check.
_RESOLUTION_KEYWORDS = frozenset(
    {"$id", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$dynamicRef", "$recursiveRef"}
)

# A `$ref` the quick check resolves: a JSON pointer into the same document,
# without percent-escapes.
_LOCAL_REF = re.compile(r"#(?:/(?:[A-Za-z0-9_.$-]|~[01])*)*")

# Types that `json.loads` produces for each JSON Schema type. The inputs come
# from `json.loads`, so an exact type test is enough. An integer written as a
# float (1.0) is left to `jsonschema`.
_EXACT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}

_SCALARS = (str, int, float, bool, type(None))


class _Unsupported(Exception):
    """Raised while compiling when a schema uses something the quick check does not cover."""


def compile_quick_check(schema: Any, validator: Any) -> QuickCheck | None:
    """Compile `schema` for inputs that `validator` (built from it) checks, or return `None`.

    `None` means the schema, its draft or the validator's settings are not
    covered, so every input must go to `validator`.
    """
    if type(validator) not in QUICK_CHECK_CLASSES or validator.format_checker is not None:
        return None
    if _contains_resolution_keyword(schema):
        return None
    try:
        return _Compiler(schema, frozenset(validator.VALIDATORS)).compile(schema)
    except (_Unsupported, RecursionError):
        return None


def _contains_resolution_keyword(schema: Any) -> bool:
    """Return whether any object in `schema`, at any depth, has a `_RESOLUTION_KEYWORDS` key."""
    stack = [schema]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if not _RESOLUTION_KEYWORDS.isdisjoint(value):
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


class _Compiler:
    """Compiles the subschemas of one document, each once, following local `$ref`s."""

    def __init__(self, root: Any, applied: frozenset[str]):
        self.root = root
        self.applied = applied
        self.compiled: dict[int, QuickCheck] = {}
        # A subschema being compiled, reached again through a `$ref` cycle, gets a
        # check that calls the finished one through this cell.
        self.pending: dict[int, list[QuickCheck]] = {}

    def compile(self, schema: Any) -> QuickCheck:
        key = id(schema)
        if key in self.compiled:
            return self.compiled[key]
        if key in self.pending:
            cell = self.pending[key]
            return lambda instance: cell[0](instance)

        self.pending[key] = cell = []
        check = self._compile_new(schema)
        cell.append(check)
        del self.pending[key]
        self.compiled[key] = check
        return check

    def _compile_new(self, schema: Any) -> QuickCheck:
        if schema is True:
            return _accept
        if schema is False or not isinstance(schema, dict):
            # A false schema rejects every input. check_schema admits no other
            # schema that is not an object, so rejecting is only a safe default.
            return _reject

        checks: list[QuickCheck] = []
        for keyword, value in schema.items():
            if keyword not in self.applied or keyword == "format":
                continue
            if keyword not in QUICK_CHECK_KEYWORDS:
                raise _Unsupported(keyword)
            check = self._compile_keyword(keyword, value, schema)
            if check is not None:
                checks.append(check)
        return _all_of(checks)

    def _compile_keyword(
        self, keyword: str, value: Any, schema: dict[str, Any]
    ) -> QuickCheck | None:
        if keyword == "type":
            return _type_check(value)
        if keyword in ("enum", "const"):
            return _equality_check(value if keyword == "enum" else [value])
        if keyword == "properties":
            return self._properties_check(value)
        if keyword == "required":
            return _required_check(value)
        if keyword == "additionalProperties":
            return self._additional_check(value, schema.get("properties", {}))
        if keyword == "propertyNames":
            return self._property_names_check(value)
        if keyword == "items":
            return self._items_check(value)
        if keyword == "pattern":
            return _pattern_check(value)
        if keyword == "uniqueItems":
            return _unique_check if value is True else None
        if keyword in ("allOf", "anyOf"):
            return self._combination_check(keyword, value)
        if keyword == "$ref":
            return self._reference_check(value)
        return _bound_check(keyword, value)

    def _properties_check(self, properties: Any) -> QuickCheck:
        if not isinstance(properties, dict):
            raise _Unsupported("properties")
        checks = tuple((name, self.compile(subschema)) for name, subschema in properties.items())

        def check(instance: Any) -> bool:
            if type(instance) is not dict:
                return True
            for name, property_check in checks:
                if name in instance and not property_check(instance[name]):
                    return False
            return True

        return check

    def _additional_check(self, additional: Any, properties: Any) -> QuickCheck:
        if not isinstance(properties, dict):
            raise _Unsupported("additionalProperties")
        known = frozenset(properties)
        extra_check = self.compile(additional)

        def check(instance: Any) -> bool:
            if type(instance) is not dict:
                return True
            return all(name in known or extra_check(instance[name]) for name in instance)

        return check

    def _property_names_check(self, names_schema: Any) -> QuickCheck:
        name_check = self.compile(names_schema)

        def check(instance: Any) -> bool:
            if type(instance) is not dict:
                return True
            return all(name_check(name) for name in instance)

        return check

    def _items_check(self, items: Any) -> QuickCheck:
        # The array form (one schema per position) is left to jsonschema.
        if not isinstance(items, dict | bool):
            raise _Unsupported("items")
        item_check = self.compile(items)

        def check(instance: Any) -> bool:
            if type(instance) is not list:
                return True
            return all(item_check(item) for item in instance)

        return check

    def _combination_check(self, keyword: str, subschemas: Any) -> QuickCheck:
        if not isinstance(subschemas, list) or not subschemas:
            raise _Unsupported(keyword)
        checks = tuple(self.compile(subschema) for subschema in subschemas)
        if keyword == "allOf":
            return _all_of(list(checks))

        def any_of(instance: Any) -> bool:
            return any(check(instance) for check in checks)

        return any_of

    def _reference_check(self, reference: Any) -> QuickCheck:
        if not isinstance(reference, str) or _LOCAL_REF.fullmatch(reference) is None:
            raise _Unsupported("$ref")
        target = self.root
        for part in reference[1:].split("/")[1:]:
            token = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                raise _Unsupported("$ref")
        return self.compile(target)


def _accept(instance: Any) -> bool:
    return True


def _reject(instance: Any) -> bool:
    return False


def _all_of(checks: list[QuickCheck]) -> QuickCheck:
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]
    sequence = tuple(checks)

    def check(instance: Any) -> bool:
        # A plain loop, because a generator would cost more than most checks.
        for each in sequence:  # noqa: SIM110
            if not each(instance):
                return False
        return True

    return check


def _type_check(names: Any) -> QuickCheck:
    names = names if isinstance(names, list) else [names]
    exact: set[type] = set()
    for name in names:
        if name not in _EXACT_TYPES:
            raise _Unsupported("type")
        exact.update(_EXACT_TYPES[name])
    allowed = frozenset(exact)
    return lambda instance: type(instance) in allowed


def _equality_check(values: Any) -> QuickCheck:
    """Return a check that accepts an input equal to one of `values` and of the same type.

    Only scalar values are compiled. Requiring the same type keeps `True` apart
    from `1`, as JSON Schema does, and leaves `1` against `1.0` to jsonschema.
    """
    if not isinstance(values, list) or not all(isinstance(value, _SCALARS) for value in values):
        raise _Unsupported("enum")
    allowed = frozenset((type(value), value) for value in values)

    def check(instance: Any) -> bool:
        if not isinstance(instance, _SCALARS):
            return False
        return (type(instance), instance) in allowed

    return check


def _required_check(names: Any) -> QuickCheck:
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise _Unsupported("required")
    required = frozenset(names)

    def check(instance: Any) -> bool:
        return type(instance) is not dict or instance.keys() >= required

    return check


def _pattern_check(pattern: Any) -> QuickCheck:
    if not isinstance(pattern, str):
        raise _Unsupported("pattern")
    try:
        # jsonschema calls re.search with the pattern, which compiles it the same way.
        search = re.compile(pattern).search
    except re.error as error:
        raise _Unsupported("pattern") from error

    def check(instance: Any) -> bool:
        return type(instance) is not str or search(instance) is not None

    return check


def _unique_check(instance: Any) -> bool:
    # Only arrays of strings are proven unique here. Other arrays go to jsonschema,
    # which compares 1 and 1.0 as equal but true and 1 as different.
    if type(instance) is not list:
        return True
    if not all(type(item) is str for item in instance):
        return False
    return len(set(instance)) == len(instance)


# Each bound: the JSON type it applies to and the test an applicable input must pass.
_BOUNDS: Mapping[str, tuple[tuple[type, ...], Callable[[Any, Any], bool]]] = {
    "minimum": ((int, float), lambda instance, bound: not instance < bound),
    "maximum": ((int, float), lambda instance, bound: not instance > bound),
    "exclusiveMinimum": ((int, float), lambda instance, bound: not instance <= bound),
    "exclusiveMaximum": ((int, float), lambda instance, bound: not instance >= bound),
    "minLength": ((str,), lambda instance, bound: not len(instance) < bound),
    "maxLength": ((str,), lambda instance, bound: not len(instance) > bound),
    "minItems": ((list,), lambda instance, bound: not len(instance) < bound),
    "maxItems": ((list,), lambda instance, bound: not len(instance) > bound),
    "minProperties": ((dict,), lambda instance, bound: not len(instance) < bound),
    "maxProperties": ((dict,), lambda instance, bound: not len(instance) > bound),
}


def _bound_check(keyword: str, bound: Any) -> QuickCheck:
    if keyword not in _BOUNDS or type(bound) not in (int, float):
        raise _Unsupported(keyword)
    applies_to, passes = _BOUNDS[keyword]

    def check(instance: Any) -> bool:
        # The tests are written as jsonschema writes them (`not instance < bound`
        # where it rejects `instance < bound`), so that NaN is treated the same.
        return type(instance) not in applies_to or passes(instance, bound)

    return check
