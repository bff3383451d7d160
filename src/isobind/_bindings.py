"""The host side of a binding call: policy, input validation, the upstream call, redaction.

A call arrives from the sandbox as JSON text and leaves as JSON text. Nothing
of the host crosses back except data built here: no exception objects, no
tracebacks, no host paths, and every string is scrubbed of secrets first.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import mcp_types as types
from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators

from ._config import ServerPolicy
from ._functions import FunctionTools
from ._policy import check_tool
from ._redact import Redactor
from ._result import CallRecord
from ._sandbox import CallReply, CallRequest
from ._tools import ToolSpec
from ._typescript import Api
from ._upstream import McpConnection

__all__ = ["CallDispatcher", "CallObserver", "ToolRegistry"]

logger = logging.getLogger(__name__)

ToolSource = McpConnection | FunctionTools
CallObserver = Callable[[CallRecord], Awaitable[None]]
"""Awaited with each finished call's record, for progress reports."""

# Inputs are produced by untrusted code; these bounds keep parsing them cheap.
MAX_INPUT_CHARS = 8_000_000
_MAX_ERROR_CHARS = 4_000


class ToolRegistry:
    """Everything a call needs, shared by all runs of one `Toolbox`."""

    def __init__(
        self,
        api: Api,
        sources: Mapping[str, ToolSource],
        policies: Mapping[str, ServerPolicy],
        redactor: Redactor,
    ):
        self.api = api
        self.sources = sources
        self.policies = policies
        self.redactor = redactor
        self._validators: dict[tuple[str, str], Any] = {}

    def validator(self, tool: ToolSpec) -> Any:
        """Return a cached JSON Schema validator for the tool's input, or `None`."""
        key = (tool.server, tool.name)
        if key not in self._validators:
            schema = tool.input_schema
            try:
                cls = validators.validator_for(schema)
                cls.check_schema(schema)
                self._validators[key] = cls(schema)
            except jsonschema_exceptions.SchemaError as error:
                logger.warning(
                    "server %s tool %s: input schema is invalid (%s); inputs are not validated",
                    tool.server,
                    tool.name,
                    error.message,
                )
                self._validators[key] = None
        return self._validators[key]


class CallDispatcher:
    """Handles the calls of one run and records them for the result and the audit."""

    def __init__(self, registry: ToolRegistry, on_call: CallObserver | None = None):
        self.registry = registry
        self.records: list[CallRecord] = []
        self.on_call = on_call

    async def __call__(self, request: CallRequest) -> CallReply:
        started = time.monotonic()
        tool = self.registry.api.bindings.get((request.server, request.tool))
        if tool is None:
            return CallReply.failure(
                "ToolError", f"tools.{request.server}.{request.tool} is not a known tool"
            )
        arguments, reply = self._parse_input(tool, request.input_text)
        if reply is None:
            reply = await self._checked_call(tool, arguments)
        self._record(tool, arguments, request.input_text, reply, started)
        if self.on_call is not None:
            try:
                await self.on_call(self.records[-1])
            except Exception:
                logger.exception("call observer failed for tool %s of %s", tool.name, tool.server)
        return reply

    def _parse_input(
        self, tool: ToolSpec, input_text: str
    ) -> tuple[dict[str, Any], CallReply | None]:
        label = f"tools.{tool.server}.{tool.name}"
        if len(input_text) > MAX_INPUT_CHARS:
            return {}, CallReply.failure(
                "ToolInputError",
                f"{label}: the input is {len(input_text)} characters of JSON, over the "
                f"limit of {MAX_INPUT_CHARS}",
            )
        try:
            arguments = json.loads(input_text)
        except RecursionError:
            return {}, CallReply.failure(
                "ToolInputError", f"{label}: the input is nested too deeply to parse"
            )
        except ValueError as error:
            return {}, CallReply.failure("ToolInputError", f"{label}: invalid JSON: {error}")
        if not isinstance(arguments, dict):
            return {}, CallReply.failure("ToolInputError", f"{label}: the input must be an object")
        return arguments, None

    async def _checked_call(self, tool: ToolSpec, arguments: dict[str, Any]) -> CallReply:
        registry = self.registry
        policy = registry.policies.get(tool.server, ServerPolicy.default())
        denial = check_tool(tool, policy)
        if denial is not None:
            return CallReply.failure("PermissionDeniedError", denial.message(tool))
        invalid = self._validate(tool, arguments)
        if invalid is not None:
            return CallReply.failure("ToolInputError", registry.redactor.scrub_text(invalid))
        source = registry.sources[tool.server]
        try:
            if isinstance(source, FunctionTools):
                value = await source.call(tool.name, arguments)
            else:
                result = await source.call_tool(tool.name, arguments)
                if result.is_error:
                    return CallReply.failure("ToolError", self._error_text(tool, result))
                value = _result_value(result)
        except Exception as error:
            logger.info("server %s tool %s failed: %s", tool.server, tool.name, type(error))
            message = registry.redactor.scrub_text(_truncate(_describe(error)))
            return CallReply.failure(
                "ToolError", f"tools.{tool.server}.{tool.name} failed: {message}"
            )
        return CallReply.success(json.dumps(registry.redactor.scrub(value)))

    def _validate(self, tool: ToolSpec, arguments: dict[str, Any]) -> str | None:
        validator = self.registry.validator(tool)
        if validator is None:
            return None
        try:
            error = jsonschema_exceptions.best_match(validator.iter_errors(arguments))
        except RecursionError:
            return f"tools.{tool.server}.{tool.name}: the input is nested too deeply to check"
        if error is None:
            return None
        where = "input" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        return f"tools.{tool.server}.{tool.name}: {where}: {_truncate(error.message, 500)}"

    def _error_text(self, tool: ToolSpec, result: types.CallToolResult) -> str:
        texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
        detail = "\n".join(texts) if texts else "the tool reported an error without a message"
        scrubbed = self.registry.redactor.scrub_text(_truncate(detail))
        return f"tools.{tool.server}.{tool.name}: {scrubbed}"

    def _record(
        self,
        tool: ToolSpec,
        arguments: dict[str, Any],
        input_text: str,
        reply: CallReply,
        started: float,
    ) -> None:
        redactor = self.registry.redactor
        recorded_input: Any = arguments if arguments or input_text == "{}" else input_text[:1000]
        error = None
        if not reply.ok:
            error = {"name": reply.error_name, "message": reply.error_message}
        self.records.append(
            CallRecord(
                server=tool.server,
                tool=tool.name,
                input=redactor.scrub(recorded_input),
                ok=reply.ok,
                error=error,
                duration_ms=(time.monotonic() - started) * 1000,
            )
        )


def _result_value(result: types.CallToolResult) -> Any:
    """Return `structuredContent`, else JSON of a single text item, else its text, else content."""
    if result.structured_content is not None:
        return result.structured_content
    content = result.content
    if not content:
        return None
    if len(content) == 1 and isinstance(content[0], types.TextContent):
        text = content[0].text
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in content]


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in error.exceptions)
    text = str(error)
    return text if text else type(error).__name__


def _truncate(text: str, limit: int = _MAX_ERROR_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"
