"""Model providers for the agent loop: OpenAI-compatible chat completions and Anthropic Messages.

The loop keeps the conversation in one neutral form (`Message`) and each
provider translates it into its API's format on every request, through the
provider's official Python SDK. Responses are streamed: text reaches the
caller's `on_text` as it arrives, and tool calls are assembled from their parts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._errors import ModelError

if TYPE_CHECKING:
    import anthropic
    import openai

__all__ = [
    "AnthropicProvider",
    "FunctionSpec",
    "Message",
    "ModelResponse",
    "OpenAIProvider",
    "Provider",
    "ToolCall",
    "Usage",
]

logger = logging.getLogger(__name__)

TextCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call requested by the model."""

    id: str
    name: str
    arguments: str
    """The arguments as the JSON text the model wrote (possibly invalid)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of the conversation, in a form that both providers translate."""

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    """For `role="tool"`: the id of the call whose result this message carries."""
    is_error: bool = False
    """For `role="tool"`: the call failed."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "text": self.text}
        if self.tool_calls:
            data["toolCalls"] = [
                {"id": call.id, "name": call.name, "arguments": call.arguments}
                for call in self.tool_calls
            ]
        if self.role == "tool":
            data["toolCallId"] = self.tool_call_id
            data["isError"] = self.is_error
        return data


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function tool offered to the model: name, description and JSON Schema of its input."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens counted by the provider for one or more requests."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens}


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """One assistant turn: its text, the function calls it requests and the tokens used."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None


class Provider(Protocol):
    """A chat model that can call function tools."""

    name: str
    model: str

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[FunctionSpec],
        max_tokens: int,
        on_text: TextCallback | None = None,
    ) -> ModelResponse:
        """Send the conversation and return the model's next turn."""
        ...

    async def aclose(self) -> None: ...


class OpenAIProvider:
    """Any OpenAI-compatible chat completions endpoint: OpenAI, vLLM, llama.cpp, Ollama.

    `base_url` selects a server other than OpenAI's, such as
    `http://localhost:11434/v1` for Ollama.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 600.0,  # seconds per HTTP request
        max_retries: int = 2,
    ):
        import openai  # imported here: the SDK takes seconds to import

        self.model = model
        self.base_url = base_url
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[FunctionSpec],
        max_tokens: int,
        on_text: TextCallback | None = None,
    ) -> ModelResponse:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, *_openai_messages(messages)],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        # OpenAI's own models take `max_completion_tokens` and reject `max_tokens` for
        # reasoning models; the local servers (vLLM, llama.cpp, Ollama) read `max_tokens`.
        if self.base_url is None:
            request["max_completion_tokens"] = max_tokens
        else:
            request["max_tokens"] = max_tokens
        if tools:
            request["tools"] = [_openai_tool(spec) for spec in tools]
        import openai

        try:
            stream = await self._client.chat.completions.create(**request)
            return await _read_openai_stream(stream, on_text)
        except openai.APIError as error:
            raise ModelError(f"{self.model}: {_describe_api_error(error)}") from error

    async def aclose(self) -> None:
        await self._client.close()


def _openai_tool(spec: FunctionSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


def _openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    converted: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            converted.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
            )
        elif message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in message.tool_calls
                ]
            converted.append(entry)
        else:
            converted.append({"role": "user", "content": message.text})
    return converted


async def _read_openai_stream(stream: Any, on_text: TextCallback | None) -> ModelResponse:
    """Assemble the streamed chunks: text deltas, tool calls in parts by index, usage last."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage = Usage()
    stop_reason = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                text.append(delta.content)
                if on_text is not None:
                    on_text(delta.content)
            for part in delta.tool_calls or ():
                call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": []})
                if part.id:
                    call["id"] = part.id
                if part.function is not None:
                    # OpenAI sends the name once; a server that repeats it gets the same name.
                    name = part.function.name or ""
                    if name != call["name"]:
                        call["name"] += name
                    call["arguments"].append(part.function.arguments or "")
            if choice.finish_reason is not None:
                stop_reason = choice.finish_reason
    tool_calls = tuple(
        ToolCall(
            id=call["id"] or f"call_{index}",
            name=call["name"],
            arguments="".join(call["arguments"]),
        )
        for index, call in sorted(calls.items())
    )
    return ModelResponse("".join(text), tool_calls, usage, stop_reason)


class AnthropicProvider:
    """Anthropic's Messages API, or a server that speaks it at `base_url`."""

    name = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 600.0,  # seconds per HTTP request
        max_retries: int = 2,
    ):
        import anthropic  # imported here: the SDK takes seconds to import

        self.model = model
        self.base_url = base_url
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[FunctionSpec],
        max_tokens: int,
        on_text: TextCallback | None = None,
    ) -> ModelResponse:
        request: dict[str, Any] = {
            "model": self.model,
            "system": system,
            "messages": _anthropic_messages(messages),
            "max_tokens": max_tokens,
        }
        if tools:
            request["tools"] = [_anthropic_tool(spec) for spec in tools]
        import anthropic

        try:
            async with self._client.messages.stream(**request) as stream:
                async for event in stream:
                    if event.type == "text" and on_text is not None:
                        on_text(event.text)
                final = await stream.get_final_message()
        except anthropic.APIError as error:
            raise ModelError(f"{self.model}: {_describe_api_error(error)}") from error
        return _anthropic_response(final)

    async def aclose(self) -> None:
        await self._client.close()


def _anthropic_tool(spec: FunctionSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


def _anthropic_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Translate the conversation; the results of one turn's calls share one user message."""
    converted: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.text,
                "is_error": message.is_error,
            }
            previous = converted[-1] if converted else None
            if previous is not None and previous["role"] == "user" and previous["tool_results"]:
                previous["content"].append(block)
            else:
                converted.append({"role": "user", "content": [block], "tool_results": True})
        elif message.role == "assistant":
            content: list[dict[str, Any]] = []
            if message.text:
                content.append({"type": "text", "text": message.text})
            for call in message.tool_calls:
                content.append(
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": _arguments_object(call.arguments),
                    }
                )
            converted.append({"role": "assistant", "content": content})
        else:
            converted.append(
                {
                    "role": "user",
                    "content": [{"type": "text", "text": message.text}],
                    "tool_results": False,
                }
            )
    for entry in converted:
        entry.pop("tool_results", None)
    return converted


def _arguments_object(arguments: str) -> dict[str, Any]:
    # Anthropic takes the input as an object; its own tool calls always parse.
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _anthropic_response(message: anthropic.types.Message) -> ModelResponse:
    text: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            text.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(block.id, block.name, json.dumps(block.input)))
    usage = Usage(message.usage.input_tokens, message.usage.output_tokens)
    return ModelResponse("".join(text), tuple(calls), usage, message.stop_reason)


def _describe_api_error(error: openai.APIError | anthropic.APIError) -> str:
    status = getattr(error, "status_code", None)
    prefix = f"the provider returned HTTP {status}" if status else "the request failed"
    return f"{prefix}: {error.message}"
