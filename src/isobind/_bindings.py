"""The host side of a binding call: policy, input validation, the upstream call, redaction.

A call arrives from the sandbox as JSON text and leaves as JSON text. Nothing
of the host crosses back except data built here: no exception objects, no
tracebacks, no host paths, and every string is scrubbed of secrets first.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators

from ._approval import ApprovalRequest, Approver, ask
from ._budget import BudgetLimits, RateWindows, RunBudget
from ._egress import EGRESS_KEY, EgressGateway
from ._errors import describe_exception
from ._functions import FunctionTools
from ._inputs import describe_input_error
from ._json_tree import map_leaves
from ._policy import (
    Denial,
    ServerPolicy,
    ToolRule,
    check_rule_arguments,
    check_tool,
    matching_rules,
    name_matches,
)
from ._redact import Scrubber
from ._result import CallRecord
from ._sandbox import CallReply, CallRequest
from ._telemetry import Telemetry, finish_span
from ._tools import ToolSpec
from ._typescript import Api
from ._upstream import McpConnection

__all__ = ["CallDispatcher", "CallObserver", "ToolPlan", "ToolRegistry"]

logger = logging.getLogger(__name__)

ToolSource = McpConnection | FunctionTools
CallObserver = Callable[[CallRecord], Awaitable[None] | None]
"""Receives the record of each finished call; it may be a coroutine function."""

# Inputs are produced by untrusted code; these bounds keep parsing them cheap.
MAX_INPUT_CHARS = 8_000_000
_MAX_ERROR_CHARS = 4_000


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """The facts that the checks of one tool's calls need, worked out on its first call.

    It depends only on the tool, its server's policy and the registry's
    settings. A `Toolbox` builds a new registry when a tool list changes.
    """

    label: str
    """The tool's name in messages: ``tools.<server>.<tool>``."""
    span_attributes: Mapping[str, str]
    policy: ServerPolicy
    denial: Denial | None
    """The rule that rejects the tool whatever its input (`check_tool`), or `None`."""
    rules: tuple[tuple[str, ToolRule], ...]
    """The ``tools`` entries of the policy whose glob matches the tool (`matching_rules`)."""
    limits: BudgetLimits
    approval_rule: str | None
    """The key path of the first rule that requires approval, or `None`."""
    reads_only: bool
    validator: Any
    """The JSON Schema validator of the input, or `None` when the schema is invalid.

    It is `None` for a denied tool too, because its calls never reach validation.
    """


class ToolRegistry:
    """Everything a call needs, shared by all runs of one `Toolbox`.

    Its settings must not change after the first call, because each tool's
    `ToolPlan` is worked out from them once.
    """

    def __init__(
        self,
        api: Api,
        sources: Mapping[str, ToolSource],
        policies: Mapping[str, ServerPolicy],
        redactor: Scrubber,
        *,
        approver: Approver | None = None,
        approval_timeout: float = 300.0,
        approve_writes: bool = False,
        telemetry: Telemetry | None = None,
        egress: EgressGateway | None = None,
        windows: RateWindows | None = None,
    ):
        self.api = api
        self.sources = sources
        self.policies = policies
        self.redactor = redactor
        self.approver = approver
        self.approval_timeout = approval_timeout
        self.approve_writes = approve_writes
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.windows = windows if windows is not None else RateWindows()
        self.egress = egress
        self._validators: dict[tuple[str, str], Any] = {}
        self._plans: dict[tuple[str, str], ToolPlan] = {}

    def plan(self, tool: ToolSpec) -> ToolPlan:
        """Return the cached `ToolPlan` of `tool`, working it out on the first call."""
        key = (tool.server, tool.name)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._new_plan(tool)
        return plan

    def _new_plan(self, tool: ToolSpec) -> ToolPlan:
        policy = self.policies.get(tool.server)
        if policy is None:
            policy = ServerPolicy.default()
        denial = check_tool(tool, policy)
        # A denied tool's input is never validated, so its schema is not even checked.
        validator = self.validator(tool) if denial is None else None
        return ToolPlan(
            label=f"tools.{tool.server}.{tool.name}",
            span_attributes={"isobind.server": tool.server, "isobind.tool": tool.name},
            policy=policy,
            denial=denial,
            rules=tuple(matching_rules(tool, policy)),
            limits=BudgetLimits.of(tool, policy),
            approval_rule=_approval_rule(tool, policy, approve_writes=self.approve_writes),
            reads_only=_reads_only(tool),
            validator=validator,
        )

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
    """Handles the calls of one run and records them for the result and the audit.

    In a dry run every tool not annotated read-only is answered with a
    `PermissionDeniedError` instead of running, and its record is marked `dry_run`.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        dry_run: bool = False,
        on_call: CallObserver | None = None,
    ):
        self.registry = registry
        self.dry_run = dry_run
        self.budget = RunBudget(registry.windows)
        self.records: list[CallRecord] = []
        self._on_call = on_call
        self._origin = time.monotonic()

    async def __call__(self, request: CallRequest) -> CallReply:
        started = time.monotonic()
        registry = self.registry
        if request.server == EGRESS_KEY and registry.egress is not None:
            return await self._fetch(registry.egress, request, started)
        tool = registry.api.bindings.get((request.server, request.tool))
        if tool is None:
            return CallReply.failure(
                "ToolError", f"tools.{request.server}.{request.tool} is not a known tool"
            )
        plan = registry.plan(tool)
        with registry.telemetry.span("isobind.call", plan.span_attributes) as span:
            arguments, reply = _parse_input(plan, request.input_text)
            dry_run = False
            if reply is None:
                try:
                    reply, dry_run = await self._checked_call(tool, plan, arguments, request)
                except asyncio.CancelledError:
                    # The run ended (time limit, or it returned without awaiting
                    # the call) while the upstream call was in flight.
                    cancelled = CallReply.failure(
                        "CallCancelled", "the run ended before the call finished"
                    )
                    self._record(
                        tool, arguments, request.input_text, cancelled, started, dry_run=False
                    )
                    raise
            error_name = None if reply.ok else reply.error_name
            finish_span(span, ok=reply.ok, error_name=error_name, dry_run=dry_run)
        self._record(tool, arguments, request.input_text, reply, started, dry_run=dry_run)
        await self._notify(self.records[-1])
        return reply

    async def _fetch(
        self, gateway: EgressGateway, request: CallRequest, started: float
    ) -> CallReply:
        """Pass one `fetch` to the egress gateway and record it as a call of server "fetch"."""
        try:
            fields = json.loads(request.input_text[:MAX_INPUT_CHARS])
        except (ValueError, RecursionError):
            fields = None
        if not isinstance(fields, dict):
            return CallReply.failure("TypeError", "fetch: the request could not be read")

        method = str(fields.get("method", "GET")).upper()
        attributes = {"isobind.server": "fetch", "isobind.tool": method}
        with self.registry.telemetry.span("isobind.call", attributes) as span:
            dry_run = self.dry_run and method not in _SAFE_METHODS
            if dry_run:
                reply = CallReply.failure(
                    "PermissionDeniedError",
                    f"fetch with method {method} is not permitted: this is a dry run "
                    "(rule dryRun).",
                )
            else:
                reply = await gateway.fetch(fields)
            finish_span(span, ok=reply.ok, error_name=None if reply.ok else reply.error_name)

        url = str(fields.get("url", ""))[:1000]
        error = None if reply.ok else {"name": reply.error_name, "message": reply.error_message}
        record = CallRecord(
            server="fetch",
            tool=method,
            input=self.registry.redactor.scrub({"url": url, "method": method}),
            ok=reply.ok,
            error=error,
            duration_ms=(time.monotonic() - started) * 1000,
            dry_run=dry_run,
            start_ms=(started - self._origin) * 1000,
        )
        self.records.append(record)
        await self._notify(record)
        return reply

    async def _notify(self, record: CallRecord) -> None:
        """Pass `record` to the observer, awaiting it when it is a coroutine function."""
        if self._on_call is None:
            return
        try:
            outcome = self._on_call(record)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("call observer failed for tool %s of %s", record.tool, record.server)

    async def _checked_call(
        self, tool: ToolSpec, plan: ToolPlan, arguments: dict[str, Any], request: CallRequest
    ) -> tuple[CallReply, bool]:
        """Check the call and make it; the flag is true when a dry run refused it."""
        if plan.denial is not None:
            return CallReply.failure("PermissionDeniedError", plan.denial.message(tool)), False
        invalid = self._validate(plan, arguments)
        if invalid is not None:
            scrubbed = self.registry.redactor.scrub_text(invalid)
            return CallReply.failure("ToolInputError", scrubbed), False
        denial = check_rule_arguments(plan.rules, arguments)
        if denial is not None:
            return CallReply.failure("PermissionDeniedError", denial.message(tool)), False
        if self.dry_run and not plan.reads_only:
            denial = Denial("dryRun", "this is a dry run and the tool is not annotated read-only")
            return CallReply.failure("PermissionDeniedError", denial.message(tool)), True
        denial = self.budget.spend(plan.limits)
        if denial is None and plan.approval_rule is not None:
            denial = await self._approve(tool, plan.approval_rule, arguments)
        if denial is not None:
            return CallReply.failure("PermissionDeniedError", denial.message(tool)), False
        return await self._call(tool, arguments, request.input_text), False

    async def _approve(self, tool: ToolSpec, rule: str, arguments: dict[str, Any]) -> Denial | None:
        """Ask the approver about a call that `rule` requires approval for.

        Return `None` when the approver agrees, else a denial by `rule`.
        """
        approver = self.registry.approver
        if approver is None:
            return Denial(rule, "the call needs approval and no approver is configured")

        request = ApprovalRequest(tool.server, tool.name, self.registry.redactor.scrub(arguments))
        timeout = self.registry.approval_timeout
        try:
            with anyio.fail_after(timeout):
                approved = await ask(approver, request)
        except TimeoutError:
            return Denial(rule, f"the approver did not answer within {timeout:g} s")
        except Exception as error:
            logger.exception("approver failed for server %s tool %s", tool.server, tool.name)
            return Denial(rule, f"the approver failed ({type(error).__name__})")
        if not approved:
            return Denial(rule, "the approver rejected the call")
        return None

    async def _call(self, tool: ToolSpec, arguments: dict[str, Any], input_text: str) -> CallReply:
        registry = self.registry
        source = registry.sources[tool.server]
        try:
            if isinstance(source, FunctionTools):
                # The function gets its own parse of the input. Then a function that
                # changes its arguments in place cannot change `arguments`, which the
                # call record keeps without a copy.
                value = await source.call(tool.name, json.loads(input_text))
            else:
                result = await source.call_tool(tool.name, arguments)
                if result.is_error:
                    return CallReply.failure("ToolError", self._error_text(tool, result))
                value = _result_value(result)
        except Exception as error:
            logger.info("server %s tool %s failed: %s", tool.server, tool.name, type(error))
            message = _scrub_then_cut(
                registry.redactor, describe_exception(error, type_names=False)
            )
            return CallReply.failure(
                "ToolError", f"tools.{tool.server}.{tool.name} failed: {message}"
            )
        # The value is serialised at once, so a copy would serve no purpose.
        return CallReply.success(to_json_text(registry.redactor.scrub_copy_on_write(value)))

    def _validate(self, plan: ToolPlan, arguments: dict[str, Any]) -> str | None:
        validator = plan.validator
        if validator is None:
            return None
        try:
            error = jsonschema_exceptions.best_match(validator.iter_errors(arguments))
        except RecursionError:
            return f"{plan.label}: the input is nested too deeply to check"
        if error is None:
            return None
        detail = self.registry.redactor.scrub_text(describe_input_error(error))
        return f"{plan.label}: {_truncate(detail, 1000)}"

    def _error_text(self, tool: ToolSpec, result: types.CallToolResult) -> str:
        texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
        detail = "\n".join(texts) if texts else "the tool reported an error without a message"
        scrubbed = _scrub_then_cut(self.registry.redactor, detail)
        return f"tools.{tool.server}.{tool.name}: {scrubbed}"

    def _record(
        self,
        tool: ToolSpec,
        arguments: dict[str, Any],
        input_text: str,
        reply: CallReply,
        started: float,
        *,
        dry_run: bool,
    ) -> None:
        recorded_input: Any = arguments if arguments or input_text == "{}" else input_text[:1000]
        # The record may keep `arguments` itself, because after the parse only
        # read-only checks and an MCP request have used it.
        recorded_input = self.registry.redactor.scrub_copy_on_write(recorded_input)
        error = None
        if not reply.ok:
            error = {"name": reply.error_name, "message": reply.error_message}
        record = CallRecord(
            server=tool.server,
            tool=tool.name,
            input=recorded_input,
            ok=reply.ok,
            error=error,
            duration_ms=(time.monotonic() - started) * 1000,
            dry_run=dry_run,
            start_ms=(started - self._origin) * 1000,
        )
        self.records.append(record)


def _parse_input(plan: ToolPlan, input_text: str) -> tuple[dict[str, Any], CallReply | None]:
    """Parse a call's input. On failure, return `{}` and the reply that explains it."""
    if len(input_text) > MAX_INPUT_CHARS:
        return {}, CallReply.failure(
            "ToolInputError",
            f"{plan.label}: the input is {len(input_text)} characters of JSON, over the "
            f"limit of {MAX_INPUT_CHARS}",
        )
    try:
        arguments = json.loads(input_text)
    except RecursionError:
        return {}, CallReply.failure(
            "ToolInputError", f"{plan.label}: the input is nested too deeply to parse"
        )
    except ValueError as error:
        return {}, CallReply.failure("ToolInputError", f"{plan.label}: invalid JSON: {error}")
    if not isinstance(arguments, dict):
        return {}, CallReply.failure("ToolInputError", f"{plan.label}: the input must be an object")
    if not _is_well_formed(arguments, input_text):
        return {}, CallReply.failure(
            "ToolInputError",
            f"{plan.label}: the input contains a lone UTF-16 surrogate, which cannot be sent "
            "as UTF-8. Remove it or use String.prototype.toWellFormed()",
        )
    return arguments, None


# Methods that RFC 9110 defines as safe, which a dry run lets through.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _reads_only(tool: ToolSpec) -> bool:
    annotations = tool.annotations
    return annotations.read_only is True and annotations.destructive is not True


def _approval_rule(tool: ToolSpec, policy: ServerPolicy, *, approve_writes: bool) -> str | None:
    """Return the key path of the first rule that requires approval of `tool`, or `None`."""
    prefix = f"isobind.servers.{tool.server}"
    for pattern in policy.approve:
        if name_matches(tool, pattern):
            return f"{prefix}.approve"
    for key, rule in matching_rules(tool, policy):
        if rule.approve:
            return f"{key}.approve"
    if approve_writes and not _reads_only(tool):
        return "isobind.approveWrites"
    return None


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
            return json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            return text
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in content]


def _reject_constant(name: str) -> None:
    # JSON has no NaN or Infinity; a text item spelling them stays text.
    raise ValueError(f"{name} is not JSON")


def to_json_text(value: Any) -> str:
    """Serialise `value` as JSON the sandbox can parse, as `JSON.stringify` would.

    Non-finite numbers become `null`, and a value nested too deeply to
    serialise becomes an error string instead of crashing the host.
    """
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value))
    except RecursionError:
        return json.dumps("[value nested too deeply to return]")


def _finite(value: Any) -> Any:
    """Return a copy of `value` with NaN and infinities replaced by None."""
    return map_leaves(value, _finite_leaf)


def _finite_leaf(leaf: object) -> object:
    return None if isinstance(leaf, float) and not math.isfinite(leaf) else leaf


def _is_well_formed(arguments: dict[str, Any], input_text: str) -> bool:
    # V8's JSON.stringify escapes a lone surrogate as \udXXX; only then check.
    if "\\ud" not in input_text.lower():
        return True
    try:
        json.dumps(arguments, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scrub_then_cut(redactor: Scrubber, text: str) -> str:
    """Scrub `text`, then cut it to the error length.

    Cutting first could leave the start of a secret that the redactor no longer
    recognises. Text far past the cut is dropped before scrubbing, to bound the work.
    """
    return _truncate(redactor.scrub_text(text[: _MAX_ERROR_CHARS + 65_536]))


def _truncate(text: str, limit: int = _MAX_ERROR_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"
