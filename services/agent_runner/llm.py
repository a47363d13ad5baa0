"""The Anthropic Messages API, behind one small interface. The only module that imports the SDK.

Every response is streamed. The SDK retries 408/409/429/5xx (529 too) before a stream starts;
an ``event: error`` inside a stream it does not retry, so this module retries a stream that
failed before any content arrived. Once content has arrived, a failure is final: what was
streamed cannot be taken back. The system prompt and the tools carry cache breakpoints, so the
long, unchanging prefix of every request is read from the prompt cache.

Each call is a `chat` span (OpenTelemetry's GenAI conventions): the provider, the request and
response model, the four token counts and the stop reason; never the prompt or the reply.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import anthropic
from opentelemetry import trace

from services.agent_runner.errors import LlmError
from services.agent_runner.tools import cached_tools
from services.common.telemetry import span
from services.common.usage import TokenUsage

STREAM_RETRIES = 3


@dataclass(frozen=True)
class ModelReply:
    content: list[dict[str, Any]]  # the assistant's blocks, ready to send back in the history
    stop_reason: str
    usage: TokenUsage
    model: str = ""  # the model that answered, as the API names it


class Llm:
    def __init__(self, api_key: str, base_url: str, max_retries: int) -> None:
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url or None, max_retries=max_retries
        )

    async def close(self) -> None:
        await self._client.close()

    async def respond(
        self,
        *,
        model: str,
        system: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        tool_choice: dict[str, Any] | None = None,
    ) -> ModelReply:
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            "tools": cached_tools(),
            "messages": messages,
        }
        if tool_choice is not None:
            request["tool_choice"] = tool_choice
        with span(
            f"chat {model}", _request_attributes(model, max_tokens), trace.SpanKind.CLIENT
        ) as call:
            reply = await self._respond(request)
            call.set_attributes(_reply_attributes(reply))
        return reply

    async def _respond(self, request: dict[str, Any]) -> ModelReply:
        for attempt in range(STREAM_RETRIES + 1):
            try:
                return await self._stream_once(request)
            except _EarlyStreamError as early:
                if attempt == STREAM_RETRIES:
                    raise LlmError(
                        f"the model's stream failed {attempt + 1} times before any "
                        f"content: {early.cause}"
                    ) from early.cause
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt) * (0.5 + random.random()))  # noqa: S311 (jitter)
        raise AssertionError("unreachable")

    async def _stream_once(self, request: dict[str, Any]) -> ModelReply:
        got_content = False
        try:
            async with self._client.messages.stream(**request) as stream:
                async for event in stream:
                    if event.type in ("content_block_start", "content_block_delta"):
                        got_content = True
                message = await stream.get_final_message()
        except anthropic.APIConnectionError as exc:
            if not got_content:
                raise _EarlyStreamError(exc) from exc
            raise LlmError(f"the connection to the model broke mid-response: {exc}") from exc
        except anthropic.APIStatusError as exc:
            # An error event inside a 200 stream; HTTP errors were already retried by the SDK.
            if not got_content and exc.status_code == 200:
                raise _EarlyStreamError(exc) from exc
            raise LlmError(f"the model's API answered {exc.status_code}: {exc.message}") from exc
        return ModelReply(
            content=[_block(b) for b in message.content],
            stop_reason=str(message.stop_reason or ""),
            model=str(message.model or ""),
            usage=TokenUsage(
                input_tokens=message.usage.input_tokens,
                output_tokens=message.usage.output_tokens,
                cache_creation_input_tokens=message.usage.cache_creation_input_tokens or 0,
                cache_read_input_tokens=message.usage.cache_read_input_tokens or 0,
            ),
        )


class _EarlyStreamError(Exception):
    """A stream that failed before any content: safe to send again."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _request_attributes(model: str, max_tokens: int) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.system": "anthropic",  # the name before gen_ai.provider.name, for older backends
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": max_tokens,
    }


def _reply_attributes(reply: ModelReply) -> dict[str, Any]:
    usage = reply.usage
    return {
        "gen_ai.response.model": reply.model,
        "gen_ai.response.finish_reasons": [reply.stop_reason],
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_creation_input_tokens,
    }


def _block(block: Any) -> dict[str, Any]:
    """An SDK content block as the plain dict the next request sends back."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    dumped: dict[str, Any] = block.model_dump(exclude_none=True)
    return dumped
