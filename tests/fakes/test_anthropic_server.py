"""The fake Messages API, driven by the real `anthropic` SDK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from anthropic.types import TextBlock, ToolUseBlock

from tests.fakes.anthropic_server import (
    FakeAnthropic,
    HttpError,
    Overloaded,
    Reply,
    StreamError,
    last_tool_result,
    text,
    tool_use,
)

MODEL = "claude-sonnet-4-6"
TOOLS: list[Any] = [
    {
        "name": "execute_python",
        "description": "Run Python code in the sandbox kernel.",
        "input_schema": {
            "type": "object",
            "properties": {"code": {"type": "string"}},
            "required": ["code"],
        },
    },
    {
        "name": "submit_html",
        "description": "Submit the final HTML document.",
        "input_schema": {
            "type": "object",
            "properties": {"content": {"type": "string"}},
            "required": ["content"],
        },
        "cache_control": {"type": "ephemeral"},
    },
]
USER: list[Any] = [{"role": "user", "content": "Document the database."}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key="test-key", base_url=fake.base_url, max_retries=2
    ) as sdk:
        yield sdk


def _tool_reply() -> Reply:
    return Reply(
        text("Let me look at the tables."),
        tool_use("execute_python", {"code": "print(con.list_tables())", "n": [1, 2]}, id="toolu_1"),
        input_tokens=1200,
        output_tokens=85,
        cache_creation_input_tokens=3000,
        cache_read_input_tokens=450,
    )


def _check_tool_message(message: anthropic.types.Message) -> None:
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert message.id.startswith("msg_")
    assert message.stop_reason == "tool_use"
    assert message.stop_sequence is None
    first, second = message.content
    assert isinstance(first, TextBlock)
    assert first.text == "Let me look at the tables."
    assert isinstance(second, ToolUseBlock)
    assert second.id == "toolu_1"
    assert second.name == "execute_python"
    assert second.input == {"code": "print(con.list_tables())", "n": [1, 2]}
    usage = message.usage
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    ) == (1200, 85, 3000, 450)


async def test_non_streaming_reply_parses_into_sdk_types(fake, client):
    fake.script(_tool_reply())
    message = await client.messages.create(
        model=MODEL,
        max_tokens=1024,
        system=[
            {
                "type": "text",
                "text": "You are a catalog agent.",
                "cache_control": {"type": "ephemeral"},
            }
        ],
        tools=TOOLS,
        tool_choice={"type": "auto"},
        messages=USER,
    )
    _check_tool_message(message)
    assert message._request_id is not None and message._request_id.startswith("req_")

    (sent,) = fake.requests
    assert sent.path == "/v1/messages"
    assert sent.status == 200
    assert not sent.stream
    assert sent.system[0]["cache_control"] == {"type": "ephemeral"}
    assert [t["name"] for t in sent.tools] == ["execute_python", "submit_html"]
    assert sent.tools[1]["cache_control"] == {"type": "ephemeral"}
    assert sent.tool_choice == {"type": "auto"}
    assert sent.messages == USER
    assert sent.body["max_tokens"] == 1024


async def test_streaming_reply_assembles_text_and_tool_input(fake, client):
    fake.script(_tool_reply())
    seen: list[str] = []
    async with client.messages.stream(
        model=MODEL, max_tokens=1024, tools=TOOLS, messages=USER
    ) as stream:
        async for event in stream:
            seen.append(event.type)
        final = await stream.get_final_message()
    _check_tool_message(final)
    assert fake.requests[0].stream
    assert seen[0] == "message_start"
    assert "input_json" in seen  # the SDK's own event for each input_json_delta
    assert seen[-1] == "message_stop"


async def test_streaming_create_yields_raw_events(fake, client):
    fake.script(Reply("Hello there, this text is longer than one chunk."))
    stream = await client.messages.create(model=MODEL, max_tokens=64, messages=USER, stream=True)
    pieces = []
    async for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            pieces.append(event.delta.text)
        if event.type == "message_delta":
            assert event.delta.stop_reason == "end_turn"
            assert event.usage.output_tokens >= 1
    assert len(pieces) > 1
    assert "".join(pieces) == "Hello there, this text is longer than one chunk."


async def test_default_usage_is_realistic(fake, client):
    fake.script(Reply("short"))
    message = await client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0


async def test_overloaded_is_retried_by_the_sdk(fake, client):
    fake.script(Overloaded(retry_after_ms=10), Reply("recovered"))
    message = await client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert message.content[0].type == "text" and message.content[0].text == "recovered"
    assert [r.status for r in fake.requests] == [529, 200]
    assert fake.requests[1].headers["x-stainless-retry-count"] == "1"


async def test_overloaded_streaming_is_retried_too(fake, client):
    fake.script(Overloaded(), Overloaded(), Reply("third time"))
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "third time"
    assert [r.status for r in fake.requests] == [529, 529, 200]


async def test_overloaded_past_max_retries_raises(fake, client):
    fake.script(Overloaded(), Overloaded(), Overloaded(), Reply("never"))
    with pytest.raises(anthropic.OverloadedError) as raised:
        await client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert raised.value.status_code == 529
    assert raised.value.type == "overloaded_error"
    assert len(fake.requests) == 3
    assert fake.remaining == 1


async def test_http_error_rate_limit(fake, client):
    fake.script(HttpError(429, "rate_limit_error", "slow down"), Reply("ok"))
    message = await client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert message.content[0].type == "text"
    assert [r.status for r in fake.requests] == [429, 200]


async def test_stream_error_before_content_raises_and_is_not_retried(fake, client):
    fake.script(StreamError(after_events=0), Reply("must stay unused"))
    with pytest.raises(anthropic.APIStatusError) as raised:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream:
            await stream.get_final_message()
    error = raised.value
    assert type(error) is anthropic.APIStatusError  # status 200: no more specific class
    assert isinstance(error, anthropic.APIError)
    assert error.status_code == 200
    assert error.type == "overloaded_error"
    assert len(fake.requests) == 1
    assert fake.remaining == 1


async def test_stream_error_after_some_content(fake, client):
    fake.script(StreamError(after_events=4, reply=Reply("partial words that go on and on")))
    stream = await client.messages.create(model=MODEL, max_tokens=64, messages=USER, stream=True)
    types = []

    async def drain():
        async for event in stream:
            types.append(event.type)

    with pytest.raises(anthropic.APIStatusError):
        await drain()
    # message_start, (ping is dropped by the SDK), content_block_start, one text delta
    assert types == ["message_start", "content_block_start", "content_block_delta"]


async def test_unanswered_tool_use_is_a_bad_request(fake, client):
    fake.script(Reply("unused"))
    messages: list[Any] = [
        *USER,
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_x", "name": "execute_python", "input": {}}
            ],
        },
        {"role": "user", "content": "go on"},
    ]
    with pytest.raises(anthropic.BadRequestError) as raised:
        await client.messages.create(model=MODEL, max_tokens=64, messages=messages)
    assert raised.value.type == "invalid_request_error"
    assert "toolu_x" in str(raised.value.api_message)
    assert fake.requests[0].status == 400
    assert fake.remaining == 1  # a rejected request consumes no scripted reply


async def test_unknown_tool_result_and_empty_messages_are_bad_requests(fake, client):
    with pytest.raises(anthropic.BadRequestError, match="at least one message"):
        await client.messages.create(model=MODEL, max_tokens=64, messages=[])
    orphan: list[Any] = [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_nope"}]}
    ]
    with pytest.raises(anthropic.BadRequestError, match="unexpected `tool_use_id`"):
        await client.messages.create(model=MODEL, max_tokens=64, messages=orphan)


async def test_empty_script_fails_loudly_without_retries(fake, client):
    with pytest.raises(anthropic.InternalServerError, match="no scripted reply left"):
        await client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert len(fake.requests) == 1


async def test_callable_reply_sees_the_last_tool_result(fake, client):
    seen: list[Any] = []

    def after_tool(request: dict[str, Any]) -> Reply:
        seen.append(last_tool_result(request))
        result_text, is_error = last_tool_result(request) or ("", False)
        return Reply(f"The kernel said {result_text!r} (error={is_error}).")

    fake.script(Reply(tool_use("execute_python", {"code": "1/0"})), after_tool)
    first = await client.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=USER)
    assert first.stop_reason == "tool_use"
    call = first.content[0]
    assert isinstance(call, ToolUseBlock)
    assert call.id.startswith("toolu_")
    messages: list[Any] = [
        *USER,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": [{"type": "text", "text": "ZeroDivisionError"}],
                    "is_error": True,
                }
            ],
        },
    ]
    second = await client.messages.create(
        model=MODEL, max_tokens=64, tools=TOOLS, messages=messages
    )
    assert seen == [("ZeroDivisionError", True)]
    assert second.content[0].type == "text"
    assert second.content[0].text == "The kernel said 'ZeroDivisionError' (error=True)."
    assert last_tool_result(fake.requests[1]) == ("ZeroDivisionError", True)
    assert last_tool_result(fake.requests[0]) is None


async def test_async_callable_may_return_a_fault(fake, client):
    async def overloaded_once(request: dict[str, Any]) -> Overloaded:
        await asyncio.sleep(0)
        return Overloaded()

    fake.script(overloaded_once, Reply("fine"))
    message = await client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert message.content[0].type == "text"
    assert [r.status for r in fake.requests] == [529, 200]


async def test_api_key_header_is_recorded(fake, client):
    fake.script(Reply("hi"))
    await client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    sent = fake.requests[0]
    assert sent.api_key == "test-key"
    assert (
        sent.headers.get("x-api-key") == "test-key"
        or sent.headers.get("authorization") == "Bearer test-key"
    )
    assert "anthropic-version" in sent.headers


async def test_wrong_api_key_is_rejected():
    async with (
        FakeAnthropic(api_key="right") as fake,
        anthropic.AsyncAnthropic(api_key="wrong", base_url=fake.base_url, max_retries=0) as sdk,
    ):
        fake.script(Reply("unused"))
        with pytest.raises(anthropic.AuthenticationError):
            await sdk.messages.create(model=MODEL, max_tokens=64, messages=USER)


def test_sync_use_in_a_background_thread():
    with FakeAnthropic() as fake:
        fake.script(Reply("from a thread"))
        with anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=0) as sdk:
            message = sdk.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert message.content[0].type == "text" and message.content[0].text == "from a thread"
