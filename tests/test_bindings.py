"""The dispatcher of binding calls, called directly with real functions, policies and redactors.

Each decision is compared with the policy and validation functions applied
call by call, so that these tests fail if the per-tool plan that the
dispatcher caches drifts from them.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from jsonschema.exceptions import best_match
from pydantic import BaseModel

from isobind import FunctionTools, SandboxSettings, Toolbox
from isobind._approval import ApprovalRequest
from isobind._bindings import CallDispatcher, ToolRegistry
from isobind._budget import RateWindows
from isobind._inputs import describe_input_error
from isobind._policy import (
    ArgumentRule,
    RateLimit,
    ServerPolicy,
    ToolRule,
    check_arguments,
    check_tool,
)
from isobind._redact import REDACTED, LiveRedactor
from isobind._sandbox import CallReply, CallRequest
from isobind._tools import ToolSpec

pytestmark = pytest.mark.anyio

SECRET = "sk-dispatch-test-0123456789"


class Node(BaseModel):
    value: int
    children: list[Node] = []


async def weather(city: str, days: int = 1) -> dict[str, Any]:
    """Return a forecast."""
    return {"city": city, "days": days}


async def append_item(items: Any) -> int:
    """Append to the argument in place and return its new length."""
    items.append("added by the tool")
    return len(items)


async def echo(value: Any) -> Any:
    """Return `value`."""
    return value


async def not_a_number() -> float:
    """Return NaN, which JSON cannot carry."""
    return math.nan


async def tree(root: Node) -> int:
    """Return the root's value."""
    return root.value


@pytest.fixture
async def toolbox() -> AsyncIterator[Toolbox]:
    group = FunctionTools("fn", [weather, append_item, echo, not_a_number, tree])
    async with Toolbox(functions=[group], sandbox=SandboxSettings(mode="inprocess")) as box:
        yield box


def registry_with(toolbox: Toolbox, policy: ServerPolicy, **options: Any) -> ToolRegistry:
    """Return a registry of the toolbox's tools under `policy`."""
    base = toolbox._require_open()
    return ToolRegistry(base.api, base.sources, {"fn": policy}, base.redactor, **options)


def spec(registry: ToolRegistry, name: str) -> ToolSpec:
    return registry.api.bindings[("fn", name)]


async def call(dispatcher: CallDispatcher, tool: str, arguments: Any) -> CallReply:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return await dispatcher(CallRequest(1, "fn", tool, text))


async def test_plan_worked_out_once(toolbox: Toolbox) -> None:
    registry = toolbox._require_open()
    tool = spec(registry, "weather")
    plan = registry.plan(tool)

    assert registry.plan(tool) is plan
    assert plan.validator is registry.validator(tool)
    assert plan.label == "tools.fn.weather"


WEATHER_INPUTS = [
    pytest.param('{"city": "Paris", "days": 3}', id="valid"),
    pytest.param('{"city": "Paris"}', id="default-used"),
    pytest.param('{"city": "Paris", "days": 2.0}', id="integer-as-float"),
    pytest.param('{"days": 3}', id="missing-field"),
    pytest.param('{"city": 5}', id="wrong-type"),
    pytest.param('{"city": "Paris", "days": true}', id="bool-for-integer"),
    pytest.param('{"city": "Paris", "extra": 1}', id="extra-field"),
    pytest.param(f'{{"city": "{SECRET}", "days": "x"}}', id="secret-in-error"),
]


@pytest.mark.parametrize("input_text", WEATHER_INPUTS)
async def test_validation_matches_jsonschema(toolbox: Toolbox, input_text: str) -> None:
    toolbox.redactor.add([SECRET])
    registry = toolbox._require_open()
    validator = registry.validator(spec(registry, "weather"))
    error = best_match(validator.iter_errors(json.loads(input_text)))

    reply = await call(CallDispatcher(registry), "weather", input_text)

    if error is None:
        assert reply.ok, reply.error_message
    else:
        expected = toolbox.redactor.scrub_text(describe_input_error(error))
        assert reply.error_name == "ToolInputError"
        assert reply.error_message == f"tools.fn.weather: {expected}"
        assert SECRET not in reply.error_message


async def test_deep_input_named_too_deep(toolbox: Toolbox) -> None:
    # jsonschema recurses once per level, so 300 levels of a recursive schema exhaust it.
    node: dict[str, Any] = {"value": 0}
    for _ in range(300):
        node = {"value": 0, "children": [node]}

    reply = await call(CallDispatcher(toolbox._require_open()), "tree", {"root": node})

    assert reply.error_name == "ToolInputError"
    assert reply.error_message == "tools.fn.tree: the input is nested too deeply to check"


POLICY = ServerPolicy(
    deny=("echo",),
    max_calls_per_run=4,
    tools={
        "weather": ToolRule(
            arguments={"city": ArgumentRule(one_of=("Paris", "Rome"))},
            max_calls_per_run=2,
            rate_limit=RateLimit(calls=3, seconds=3600),
        )
    },
)


async def test_policy_decisions_match_check_functions(toolbox: Toolbox) -> None:
    registry = registry_with(toolbox, POLICY, windows=RateWindows())
    weather_tool = spec(registry, "weather")
    echo_tool = spec(registry, "echo")
    denied = check_tool(echo_tool, POLICY)
    off_list = check_arguments(weather_tool, POLICY, {"city": "Oslo"})
    assert denied is not None
    assert off_list is not None
    dispatcher = CallDispatcher(registry)

    echo_reply = await call(dispatcher, "echo", {"value": 1})
    oslo_reply = await call(dispatcher, "weather", {"city": "Oslo"})
    first = await call(dispatcher, "weather", {"city": "Paris"})
    second = await call(dispatcher, "weather", {"city": "Rome"})
    third = await call(dispatcher, "weather", {"city": "Rome"})

    assert echo_reply.error_message == denied.message(echo_tool)
    assert registry.plan(echo_tool).validator is None
    assert oslo_reply.error_message == off_list.message(weather_tool)
    assert first.ok
    assert second.ok
    assert third.error_name == "PermissionDeniedError"
    assert "isobind.servers.fn.tools.weather.maxCallsPerRun" in third.error_message


async def test_rate_window_spans_runs(toolbox: Toolbox) -> None:
    registry = registry_with(toolbox, POLICY, windows=RateWindows())

    replies = []
    for _ in range(2):
        dispatcher = CallDispatcher(registry)
        replies.append(await call(dispatcher, "weather", {"city": "Paris"}))
        replies.append(await call(dispatcher, "weather", {"city": "Paris"}))

    assert [reply.ok for reply in replies] == [True, True, True, False]
    assert "isobind.servers.fn.tools.weather.rateLimit" in replies[3].error_message


async def test_approval_rule_from_plan(toolbox: Toolbox) -> None:
    approvals = []

    def approve(request: ApprovalRequest) -> bool:
        approvals.append(request.input)
        return bool(request.input["city"] == "Paris")

    policy = ServerPolicy(approve=("weather",))
    without = CallDispatcher(registry_with(toolbox, policy))
    with_approver = CallDispatcher(registry_with(toolbox, policy, approver=approve))

    unanswered = await call(without, "weather", {"city": "Paris"})
    approved = await call(with_approver, "weather", {"city": "Paris"})
    rejected = await call(with_approver, "weather", {"city": "Rome"})
    not_needed = await call(with_approver, "append_item", {"items": []})

    assert "no approver is configured (rule isobind.servers.fn.approve)" in (
        unanswered.error_message
    )
    assert approved.ok
    assert "the approver rejected the call" in rejected.error_message
    assert not_needed.ok
    assert approvals == [{"city": "Paris"}, {"city": "Rome"}]


async def test_dry_run_refuses_unannotated_tool(toolbox: Toolbox) -> None:
    dispatcher = CallDispatcher(toolbox._require_open(), dry_run=True)

    reply = await call(dispatcher, "weather", {"city": "Paris"})

    assert reply.error_name == "PermissionDeniedError"
    assert "(rule dryRun)" in reply.error_message
    assert dispatcher.records[0].dry_run


async def test_record_keeps_input_as_sent(toolbox: Toolbox) -> None:
    # pydantic passes an argument typed `Any` through as it is, so `append_item`
    # changes the very list it receives.
    dispatcher = CallDispatcher(toolbox._require_open())

    reply = await call(dispatcher, "append_item", {"items": [1, 2]})

    assert reply.value_text == "3"
    assert dispatcher.records[0].input == {"items": [1, 2]}


async def test_record_input_of_unparsed_text(toolbox: Toolbox) -> None:
    dispatcher = CallDispatcher(toolbox._require_open())

    reply = await call(dispatcher, "weather", "[1, 2]")

    assert reply.error_message == "tools.fn.weather: the input must be an object"
    assert dispatcher.records[0].input == "[1, 2]"


async def test_secret_added_later_scrubbed(toolbox: Toolbox) -> None:
    registry = toolbox._require_open()
    value = {"token": SECRET, "list": [SECRET, 1]}

    before = await call(CallDispatcher(registry), "echo", {"value": value})
    toolbox.redactor.add([SECRET])
    dispatcher = CallDispatcher(registry)
    after = await call(dispatcher, "echo", {"value": value})

    assert before.value_text == json.dumps(value)
    assert after.value_text == json.dumps({"token": REDACTED, "list": [REDACTED, 1]})
    assert dispatcher.records[0].input == {"value": {"token": REDACTED, "list": [REDACTED, 1]}}


@pytest.mark.parametrize("secrets", [(), (SECRET,)], ids=["no-secrets", "secrets"])
async def test_non_finite_result_becomes_null(toolbox: Toolbox, secrets: tuple[str, ...]) -> None:
    base = toolbox._require_open()
    redactor = LiveRedactor(secrets)
    registry = ToolRegistry(base.api, base.sources, base.policies, redactor)

    reply = await call(CallDispatcher(registry), "not_a_number", {})

    assert reply.value_text == "null"
