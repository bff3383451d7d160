"""Python callables offered to the sandbox as tools, beside the MCP servers."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

import anyio.to_thread
from pydantic import TypeAdapter, validate_call
from pydantic_core import to_jsonable_python

from ._errors import ApiError
from ._tools import ToolAnnotations, ToolSpec

__all__ = ["FunctionTools"]

logger = logging.getLogger(__name__)


class FunctionTools:
    """A group of Python functions exposed as `tools.<name>.<function>(input)`.

    pydantic derives the input schema from each function's signature and the
    output schema from its return annotation. `pydantic.validate_call` validates
    and coerces the arguments before the function runs. Synchronous
    functions run in a worker thread so that they cannot block the event loop.
    """

    def __init__(
        self,
        name: str,
        functions: Iterable[Callable[..., Any]],
        *,
        read_only: bool = False,
    ):
        self.name = name
        self.read_only = read_only
        self._functions: dict[str, Callable[..., Any]] = {}
        self._validated: dict[str, Callable[..., Any]] = {}
        for function in functions:
            tool_name = function.__name__
            if tool_name in self._functions:
                raise ApiError(f"function group {name!r} has two functions named {tool_name!r}")
            self._functions[tool_name] = function

    def list_tools(self) -> list[ToolSpec]:
        return [self._spec(tool_name, fn) for tool_name, fn in self._functions.items()]

    def _spec(self, tool_name: str, function: Callable[..., Any]) -> ToolSpec:
        input_schema = TypeAdapter(cast(Any, function)).json_schema()
        output_schema: dict[str, Any] | None = None
        return_type = inspect.signature(function).return_annotation
        if return_type not in (inspect.Signature.empty, None, Any):
            try:
                output_schema = TypeAdapter(return_type).json_schema()
            except Exception as error:  # pydantic raises several types for unsupported hints
                logger.warning(
                    "function %s.%s: return annotation has no JSON schema (%s); "
                    "its result is typed unknown",
                    self.name,
                    tool_name,
                    error,
                )
        return ToolSpec(
            server=self.name,
            name=tool_name,
            description=inspect.getdoc(function),
            input_schema=input_schema,
            output_schema=output_schema,
            annotations=ToolAnnotations(read_only=self.read_only),
        )

    async def call(self, tool_name: str, arguments: dict[str, Any]) -> Any:
        """Validate `arguments`, run the function and return its result as JSON data."""
        function = self._functions[tool_name]
        # Building the validator costs about 0.3 ms, several times the call
        # itself, so it is built once per function.
        validated = self._validated.get(tool_name)
        if validated is None:
            validated = self._validated[tool_name] = validate_call(function)
        if inspect.iscoroutinefunction(function):
            value = await validated(**arguments)
        else:
            value = await anyio.to_thread.run_sync(lambda: validated(**arguments))
        return to_jsonable_python(value)
