"""The quick input check against jsonschema itself, on fixed and generated schemas."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import FormatChecker, validators
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, TypeAdapter

from isobind._schema_check import (
    QUICK_CHECK_CLASSES,
    QUICK_CHECK_KEYWORDS,
    compile_quick_check,
)


def quick_and_validator(schema: Any, cls: Any = None) -> tuple[Any, Any]:
    cls = cls or validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    return compile_quick_check(schema, validator), validator


class Point(BaseModel):
    x: int
    y: int = 0


class Shape(BaseModel):
    name: str
    points: list[Point]
    tags: set[str] = set()
    colour: str | None = None


def draw(shape: Shape, scale: float = 1.0, mode: str = "fill") -> str:
    return shape.name


PYDANTIC_SCHEMA = TypeAdapter(draw).json_schema()

# The shape of the schemas that TypeScript MCP servers send (zod-to-json-schema).
ZOD_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "path": {"type": "string", "description": "Absolute path"},
        "head": {"type": "number", "minimum": 1},
        "mode": {"type": "string", "enum": ["text", "binary"], "default": "text"},
        "paths": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "when": {"type": "string", "format": "date-time"},
    },
    "required": ["path"],
    "additionalProperties": False,
}

TREE_SCHEMA = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "value": {"type": "integer"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["value"],
        }
    },
    "$ref": "#/$defs/node",
}

# Each case: schema, an input the quick check proves valid, an input it rejects.
ACCEPTED_AND_REJECTED = [
    pytest.param(
        PYDANTIC_SCHEMA,
        {"shape": {"name": "a", "points": [{"x": 1}, {"x": 2, "y": 3}], "tags": ["p", "q"]}},
        {"shape": {"name": "a", "points": [{"y": 1}]}},
        id="pydantic-refs",
    ),
    pytest.param(
        ZOD_SCHEMA,
        {"path": "/tmp/a", "head": 2.5, "mode": "text", "when": "not a date"},
        {"path": "/tmp/a", "head": 0},
        id="zod-draft-07",
    ),
    pytest.param(
        TREE_SCHEMA,
        {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]},
        {"value": 1, "children": [{"value": 2, "children": [{"value": "3"}]}]},
        id="recursive-ref",
    ),
    pytest.param(
        {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}, "maxProperties": 2},
        {"ab": 1, "cd": None},
        {"ab": 1, "Cd": None},
        id="property-names",
    ),
    pytest.param(
        {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "null"}]},
        None,
        "abc",
        id="any-of",
    ),
    pytest.param({"const": True}, True, 1, id="const-bool-not-one"),
    pytest.param({"enum": [1, "a", None]}, 1, True, id="enum-true-not-one"),
    pytest.param(
        {"type": "array", "uniqueItems": True}, ["a", "b"], ["a", "a"], id="unique-strings"
    ),
    pytest.param({"type": "integer", "exclusiveMaximum": 3}, 2, 3, id="exclusive-bound"),
]


@pytest.mark.parametrize(("schema", "valid", "invalid"), ACCEPTED_AND_REJECTED)
def test_quick_check_accepts_valid_rejects_invalid(schema: Any, valid: Any, invalid: Any) -> None:
    quick, validator = quick_and_validator(schema)

    assert quick is not None
    assert validator.is_valid(valid)
    assert quick(valid) is True
    assert not validator.is_valid(invalid)
    assert quick(invalid) is False


# Inputs that are valid, but that the quick check leaves to jsonschema.
LEFT_TO_JSONSCHEMA = [
    pytest.param({"type": "integer"}, 1.0, id="integer-as-float"),
    pytest.param({"enum": [1.0]}, 1, id="enum-int-against-float"),
    pytest.param({"type": "array", "uniqueItems": True}, [1, True], id="unique-non-strings"),
]


@pytest.mark.parametrize(("schema", "valid"), LEFT_TO_JSONSCHEMA)
def test_quick_check_defers_unproven_inputs(schema: Any, valid: Any) -> None:
    quick, validator = quick_and_validator(schema)

    assert quick is not None
    assert validator.is_valid(valid)
    assert quick(valid) is False


NOT_COMPILED = [
    pytest.param({"oneOf": [{"type": "string"}, {"type": "integer"}]}, None, id="one-of"),
    pytest.param({"not": {"type": "string"}}, None, id="not"),
    pytest.param({"patternProperties": {"^a": {"type": "string"}}}, None, id="pattern-properties"),
    pytest.param({"multipleOf": 0.1}, None, id="multiple-of"),
    pytest.param({"items": [{"type": "string"}]}, validators.Draft7Validator, id="tuple-items"),
    pytest.param({"$ref": "other.json#/a"}, None, id="remote-ref"),
    pytest.param({"$id": "https://example.test/s", "type": "object"}, None, id="id"),
    pytest.param({"enum": [[1], [2]]}, None, id="enum-of-arrays"),
    pytest.param({"type": "string"}, validators.Draft4Validator, id="draft-4"),
    pytest.param({"$defs": {"a": {"$anchor": "a"}}, "$ref": "#a"}, None, id="anchor"),
]


@pytest.mark.parametrize(("schema", "cls"), NOT_COMPILED)
def test_quick_check_not_compiled(schema: Any, cls: Any) -> None:
    quick, _ = quick_and_validator(schema, cls)

    assert quick is None


def test_quick_check_not_compiled_with_format_checker() -> None:
    schema = {"type": "string", "format": "date"}
    validator = validators.Draft202012Validator(schema, format_checker=FormatChecker())

    assert compile_quick_check(schema, validator) is None


def test_quick_check_ignores_unapplied_keywords() -> None:
    # Draft 6 applies neither "dependentRequired" nor "if", so jsonschema skips both.
    schema = {"type": "object", "dependentRequired": {"a": ["b"]}, "if": {"type": "string"}}
    quick, validator = quick_and_validator(schema, validators.Draft6Validator)

    assert quick is not None
    assert validator.is_valid({"a": 1})
    assert quick({"a": 1}) is True


def test_quick_check_deep_input_raises_recursion() -> None:
    # The caller falls back to jsonschema on RecursionError, so the check may raise it.
    quick, _ = quick_and_validator(TREE_SCHEMA)
    deep: dict[str, Any] = {"value": 0}
    for _ in range(5000):
        deep = {"value": 0, "children": [deep]}

    assert quick is not None
    with pytest.raises(RecursionError):
        quick(deep)


@pytest.mark.parametrize("cls", QUICK_CHECK_CLASSES, ids=lambda cls: cls.__name__)
def test_mirrored_keyword_functions_unchanged(cls: Any) -> None:
    # The quick check mirrors these jsonschema 4.x functions. Another function for
    # a keyword means that its semantics must be checked again.
    for keyword in QUICK_CHECK_KEYWORDS:
        function = cls.VALIDATORS[keyword]
        name = f"{function.__module__}.{function.__name__}"
        expected = {f"jsonschema._keywords.{keyword.lstrip('$')}"}
        if keyword == "items":
            expected.add("jsonschema._legacy_keywords.items_draft6_draft7_draft201909")
        assert name in expected, keyword


# Generated schemas and inputs: whatever the quick check accepts, jsonschema accepts.

NAMES = st.sampled_from(["a", "b", "c"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3)
    | st.sampled_from([0.0, -0.0, 1.0, 2.5, math.nan, math.inf])
    | st.sampled_from(["", "a", "ab", "abc", "b1", "A"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NAMES, children, max_size=3),
    max_leaves=12,
)
TYPE_NAMES = st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array"])
BOUNDS = st.integers(-2, 3) | st.floats(-2, 3)


def schema_objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    keywords: dict[str, st.SearchStrategy[Any]] = {
        "type": TYPE_NAMES | st.lists(TYPE_NAMES, min_size=1, max_size=3, unique=True),
        "enum": st.lists(SCALARS | st.lists(SCALARS, max_size=1), min_size=1, max_size=3),
        "const": SCALARS,
        "properties": st.dictionaries(NAMES, children, max_size=3),
        "required": st.lists(NAMES, max_size=3, unique=True),
        "additionalProperties": children,
        "propertyNames": children,
        "items": children,
        "pattern": st.sampled_from(["^a", "b", "^[a-c]+$", ""]),
        "uniqueItems": st.booleans(),
        "allOf": st.lists(children, min_size=1, max_size=2),
        "anyOf": st.lists(children, min_size=1, max_size=2),
        "format": st.sampled_from(["date", "email"]),
        "title": st.just("ignored"),
        "minimum": BOUNDS,
        "exclusiveMaximum": BOUNDS,
        "minLength": st.integers(0, 3),
        "maxItems": st.integers(0, 3),
        "minProperties": st.integers(0, 3),
    }
    return st.fixed_dictionaries({}, optional=keywords)  # type: ignore[arg-type]


SCHEMAS = st.recursive(st.booleans() | st.just({}), schema_objects, max_leaves=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schema=SCHEMAS,
    instances=st.lists(VALUES, min_size=1, max_size=8),
    cls=st.sampled_from(QUICK_CHECK_CLASSES),
)
def test_quick_check_never_accepts_invalid(schema: Any, instances: list[Any], cls: Any) -> None:
    try:
        cls.check_schema(schema)
    except SchemaError:
        assume(False)
    validator = cls(schema)
    quick = compile_quick_check(schema, validator)
    assume(quick is not None)
    assert quick is not None

    for instance in instances:
        if quick(instance):
            assert validator.is_valid(instance), instance


@settings(max_examples=200, deadline=None)
@given(schema=SCHEMAS.filter(lambda schema: isinstance(schema, dict)), instance=VALUES)
def test_ref_wrapped_schema_never_accepts_invalid(schema: Any, instance: Any) -> None:
    direct = {"$defs": {"target": schema}, "$ref": "#/$defs/target"}
    try:
        validators.Draft202012Validator.check_schema(direct)
    except SchemaError:
        assume(False)
    quick, validator = quick_and_validator(direct, validators.Draft202012Validator)
    assume(quick is not None)
    assert quick is not None

    if quick(instance):
        assert validator.is_valid(instance)
