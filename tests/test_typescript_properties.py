"""Property tests: generated JSON Schemas, and values valid under them, checked by tsc.

Each generated case is a schema together with a strategy for values that the
schema accepts, built side by side so that no solver is needed
(hypothesis-jsonschema 0.23.1 fails with the hypothesis releases this project
uses). `jsonschema` confirms every value is valid before the compiler checks it.
One example batches many cases into one TypeScript file, so the whole test
runs the compiler a handful of times.

Object schemas that declare properties but not `additionalProperties` are
rendered closed on purpose (TypeScript then catches misspelt keys), so their
values are drawn without extra keys.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from isobind._typescript import render_schema

from .support import TSC, needs_tsc

Case = tuple[Any, st.SearchStrategy[Any]]

CASES_PER_EXAMPLE = 30
VALUES_PER_CASE = 3

# Property names that are not identifiers, are reserved words or look like numbers.
KEYS = st.sampled_from(["a", "b", "name", "delete", "class", "a-b", "my key", "0", "$x", "é"])

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.sampled_from([0.5, -1.25, 1e-7, 3.0e20]),
    st.text(max_size=6),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)

TYPED: list[Case] = [
    ({"type": "string"}, st.text(max_size=8)),
    ({"type": "integer"}, st.integers(-(10**9), 10**9)),
    ({"type": "number"}, st.floats(allow_nan=False, allow_infinity=False, width=32)),
    ({"type": "boolean"}, st.booleans()),
    ({"type": "null"}, st.none()),
    ({"type": ["string", "null"]}, st.none() | st.text(max_size=4)),
    ({"type": ["integer", "boolean"]}, st.integers(-5, 5) | st.booleans()),
    ({}, JSON_VALUES),
    (True, JSON_VALUES),
    ({"type": "object"}, st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3)),
    ({"type": "array"}, st.lists(JSON_VALUES, max_size=3)),
]


def literal_cases() -> st.SearchStrategy[Case]:
    const = SCALARS.map(lambda value: ({"const": value}, st.just(value)))
    const_structure = JSON_VALUES.map(lambda value: ({"const": value}, st.just(value)))
    enum = st.lists(SCALARS, min_size=1, max_size=4, unique_by=json.dumps).map(
        lambda values: ({"enum": values}, st.sampled_from(values))
    )
    return const | const_structure | enum


def leaves() -> st.SearchStrategy[Case]:
    return st.sampled_from(TYPED) | literal_cases()


@st.composite
def object_case(draw: st.DrawFn, children: st.SearchStrategy[Case]) -> Case:
    keys = draw(st.lists(KEYS, min_size=1, max_size=4, unique=True))
    members = {key: draw(children) for key in keys}
    required = [key for key in keys if draw(st.booleans())]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {key: member[0] for key, member in members.items()},
    }
    if required:
        schema["required"] = required

    extra: Case | None = None
    additional = draw(st.sampled_from(["absent", "false", "schema", "pattern"]))
    if additional == "false":
        schema["additionalProperties"] = False
    elif additional == "schema":
        extra = draw(children)
        schema["additionalProperties"] = extra[0]
    elif additional == "pattern":
        # Keys starting with "x_", which no name in KEYS does, so values need only
        # match the pattern's schema.
        extra = draw(children)
        schema["patternProperties"] = {"^x_": extra[0]}
        schema["additionalProperties"] = False

    @st.composite
    def values(draw_value: st.DrawFn) -> dict[str, Any]:
        value = {}
        for key, (_, member_values) in members.items():
            if key in required or draw_value(st.booleans()):
                value[key] = draw_value(member_values)
        if extra is not None and additional == "pattern":
            pattern_keys = st.text(max_size=3).map(lambda suffix: "x_" + suffix)
            value.update(draw_value(st.dictionaries(pattern_keys, extra[1], max_size=2)))
        elif extra is not None:
            extra_keys = st.text(max_size=4).filter(lambda key: key not in members)
            value.update(draw_value(st.dictionaries(extra_keys, extra[1], max_size=2)))
        return value

    return schema, values()


@st.composite
def tuple_case(draw: st.DrawFn, children: st.SearchStrategy[Case]) -> Case:
    elements = draw(st.lists(children, min_size=1, max_size=3))
    min_items = draw(st.integers(0, len(elements)))
    schema = {
        "type": "array",
        "items": [element[0] for element in elements],
        "additionalItems": False,
        "minItems": min_items,
    }
    strategies = [element[1] for element in elements]
    values = st.integers(min_items, len(elements)).flatmap(
        lambda length: st.tuples(*strategies[:length]).map(list)
    )
    return schema, values


def compound_cases(children: st.SearchStrategy[Case]) -> st.SearchStrategy[Case]:
    arrays = children.map(
        lambda child: ({"type": "array", "items": child[0]}, st.lists(child[1], max_size=3))
    )
    any_of = st.lists(children, min_size=2, max_size=3).map(
        lambda members: (
            {"anyOf": [member[0] for member in members]},
            st.one_of([member[1] for member in members]),
        )
    )
    nullable = children.map(
        lambda child: ({"anyOf": [child[0], {"type": "null"}]}, child[1] | st.none())
    )
    all_of = children.map(lambda child: ({"allOf": [child[0]]}, child[1]))
    return object_case(children) | tuple_case(children) | arrays | any_of | nullable | all_of


CASES = st.recursive(leaves(), compound_cases, max_leaves=8)


@st.composite
def root_case(draw: st.DrawFn) -> Case:
    """A case, sometimes moved into `$defs` behind a `$ref`, as pydantic emits models."""
    schema, values = draw(CASES)
    if draw(st.booleans()):
        return {"$defs": {"Model": schema}, "$ref": "#/$defs/Model"}, values
    return schema, values


def compile_file(source: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "cases.ts"
        path.write_text(source, encoding="utf-8")
        command = [str(TSC), "--strict", "--noEmit", "--target", "es2022", str(path)]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=120, cwd=directory, check=False
        )


@needs_tsc
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_valid_values_type_check(data: st.DataObject) -> None:
    blocks = []
    for number in range(CASES_PER_EXAMPLE):
        schema, values = data.draw(root_case(), label=f"case {number}")
        samples = data.draw(st.lists(values, min_size=1, max_size=VALUES_PER_CASE))
        validator = Draft7Validator(schema)
        for sample in samples:
            assert validator.is_valid(sample), (schema, sample)

        constants = "".join(
            f"  export const value{index}: T = {json.dumps(sample)};\n"
            for index, sample in enumerate(samples)
        )
        blocks.append(
            f"// schema: {json.dumps(schema)}\n"
            f"namespace case{number} {{\n{render_schema(schema, name='T')}\n{constants}}}\n"
        )

    source = "".join(blocks)
    result = compile_file(source)
    numbered = "\n".join(f"{n:4} {line}" for n, line in enumerate(source.splitlines(), 1))
    assert result.returncode == 0, f"tsc failed:\n{result.stdout}{result.stderr}\n{numbered}"
