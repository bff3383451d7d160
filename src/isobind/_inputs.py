"""Messages for tool inputs that break the tool's JSON Schema.

A message names the field, what the schema expects and what the code gave, so
that the code (and the model that wrote it) can fix the call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jsonschema.exceptions import ValidationError

__all__ = ["describe_input_error", "json_type_name", "show_value"]

_SHOWN_CHARS = 80

_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def describe_input_error(error: ValidationError) -> str:
    """Return ``<field>: expected <what>, got <value>`` for one validation error."""
    field = _field_path(error.absolute_path)
    keyword = error.validator
    expected = error.validator_value
    given = error.instance

    if keyword == "required":
        # The field is missing, so `instance` is the object that lacks it.
        required = expected if isinstance(expected, list) else []
        missing = [name for name in required if isinstance(given, dict) and name not in given]
        name = missing[0] if missing else "?"
        return f"{_field_path([*error.absolute_path, name])}: required field is missing"
    if keyword == "additionalProperties" and isinstance(given, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = sorted(key for key in given if key not in allowed)
        shown = ", ".join(repr(key) for key in extra)
        return f"{field}: unexpected field {shown}; expected only {_names(sorted(allowed))}"

    return f"{field}: expected {_expectation(str(keyword), expected)}, got {show_value(given)}"


def _field_path(parts: Iterable[Any]) -> str:
    return "input" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names) or "no fields"


def _expectation(keyword: str, value: Any) -> str:
    if keyword == "type":
        types = value if isinstance(value, list) else [value]
        return " or ".join(_TYPE_NAMES.get(str(kind), str(kind)) for kind in types)
    if keyword == "enum":
        return "one of " + ", ".join(show_value(item) for item in value)
    if keyword == "const":
        return f"exactly {show_value(value)}"
    if keyword == "minimum":
        return f"a number >= {value}"
    if keyword == "maximum":
        return f"a number <= {value}"
    if keyword == "exclusiveMinimum":
        return f"a number > {value}"
    if keyword == "exclusiveMaximum":
        return f"a number < {value}"
    if keyword == "minLength":
        return f"a string of at least {value} characters"
    if keyword == "maxLength":
        return f"a string of at most {value} characters"
    if keyword == "minItems":
        return f"an array of at least {value} items"
    if keyword == "maxItems":
        return f"an array of at most {value} items"
    if keyword == "pattern":
        return f"a string matching {value!r}"
    if keyword == "format":
        return f"a string in {value} format"
    if keyword == "multipleOf":
        return f"a multiple of {value}"
    if keyword == "uniqueItems":
        return "an array of unique items"
    if keyword in ("anyOf", "oneOf"):
        return f"a value matching {keyword} of {len(value)} schemas"
    return f"a value that satisfies {keyword!r}"


def show_value(value: Any) -> str:
    """Show a JSON value briefly, with its type when the text alone is ambiguous."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    kind = _json_type(value)
    return f"{text} ({kind})" if kind else text


def _json_type(value: Any) -> str:
    # true, false and null show their type in their text.
    if isinstance(value, bool) or value is None:
        return ""
    return json_type_name(value)


def json_type_name(value: Any) -> str:
    """Return the JSON type of a parsed value with its article, such as "an object"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return ""
