"""A fake Anthropic Messages API on loopback, for driving the real `anthropic` SDK in tests.

The wire format follows what the SDK parses (anthropic 2.13.0): a `Message` JSON for
`POST /v1/messages`, and for `"stream": true` the SSE events `message_start`, `ping`,
`content_block_start`, `content_block_delta` (`text_delta`, `input_json_delta`),
`content_block_stop`, `message_delta` and `message_stop`. Errors carry the real body,
`{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`.

Replies are scripted, one per request, in order::

    async with FakeAnthropic() as fake:
        fake.script(
            Reply(tool_use("execute_python", {"code": "1 + 1"})),
            lambda request: Reply(text(f"got {last_tool_result(request)}")),
        )
        client = anthropic.AsyncAnthropic(api_key="k", base_url=fake.base_url)

Fault entries: `Overloaded` (HTTP 529, retried by the SDK), `HttpError` (any status),
`StreamError` (an `event: error` inside a 200 stream, which the SDK does not retry).
An empty script answers 500 with `x-should-retry: false`, so a test fails at once.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiohttp import web

__all__ = [
    "FakeAnthropic",
    "HttpError",
    "Overloaded",
    "RecordedRequest",
    "Reply",
    "ScriptEntry",
    "StreamError",
    "last_tool_result",
    "text",
    "tool_results",
    "tool_use",
]

JSON: TypeAlias = dict[str, Any]

_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(_ids):020d}"


# ---------------------------------------------------------------------------------------------
# Content blocks and script entries
# ---------------------------------------------------------------------------------------------


def text(value: str) -> JSON:
    """A text content block."""
    return {"type": "text", "text": value}


def tool_use(name: str, input: Mapping[str, Any], id: str | None = None) -> JSON:
    """A tool_use content block; the id defaults to a fresh unique `toolu_...`."""
    return {"type": "tool_use", "id": id or _new_id("toolu"), "name": name, "input": dict(input)}


@dataclass(init=False)
class Reply:
    """One assistant message.

    `stop_reason` defaults to "tool_use" when a block is a tool_use, else "end_turn".
    A usage field left None gets a realistic default: input_tokens ~ request bytes / 4,
    output_tokens ~ reply bytes / 4, both cache fields 0.
    `delay_s` waits before answering; `event_delay_s` waits between streamed events.
    """

    content: list[JSON]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    model: str | None = None
    delay_s: float = 0.0
    event_delay_s: float = 0.0

    def __init__(
        self,
        *content: JSON | str,
        stop_reason: str | None = None,
        stop_sequence: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        cache_read_input_tokens: int | None = None,
        model: str | None = None,
        delay_s: float = 0.0,
        event_delay_s: float = 0.0,
    ) -> None:
        # A bare string is shorthand for text(string).
        self.content = [text(c) if isinstance(c, str) else c for c in content]
        self.stop_reason = stop_reason
        self.stop_sequence = stop_sequence
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_creation_input_tokens = cache_creation_input_tokens
        self.cache_read_input_tokens = cache_read_input_tokens
        self.model = model
        self.delay_s = delay_s
        self.event_delay_s = event_delay_s


@dataclass
class Overloaded:
    """HTTP 529 overloaded_error with a `retry-after-ms` header; the SDK retries it.

    Keep retry_after_ms small: the SDK honours it with no cap.
    """

    retry_after_ms: int = 10
    message: str = "Overloaded"


@dataclass
class HttpError:
    """Any HTTP error with a real-shaped body, e.g. HttpError(429, "rate_limit_error").

    The SDK retries 408, 409, 429 and 5xx; `should_retry` sets `x-should-retry` to force it
    either way. `retry_after_ms` adds the header (keep it small).
    """

    status: int
    error_type: str = "api_error"
    message: str = "Internal server error"
    retry_after_ms: int | None = 10
    should_retry: bool | None = None


@dataclass
class StreamError:
    """A 200 SSE stream that sends `event: error` after `after_events` events.

    The events before it are those of `reply` (default: a short text reply), starting with
    message_start then ping (which count); 0 means the error is the first event. The SDK raises
    `anthropic.APIStatusError` (status_code 200) and does not retry.
    On a non-streaming request this entry is a scripting mistake: 500, not retried.
    """

    after_events: int = 0
    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    reply: Reply | None = None


Fault: TypeAlias = Overloaded | HttpError | StreamError
StaticEntry: TypeAlias = Reply | Fault
ScriptEntry: TypeAlias = (
    StaticEntry | Callable[[JSON], StaticEntry] | Callable[[JSON], Awaitable[StaticEntry]]
)


# ---------------------------------------------------------------------------------------------
# Request helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the fake saw it; `status` is the HTTP status it answered."""

    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    body: JSON
    status: int = 0
    entry: StaticEntry | None = field(default=None, repr=False)

    @property
    def api_key(self) -> str | None:
        """The key from `x-api-key` or `Authorization: Bearer ...`."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def system(self) -> Any:
        return self.body.get("system")

    @property
    def tools(self) -> list[JSON]:
        return list(self.body.get("tools") or [])

    @property
    def tool_choice(self) -> Any:
        return self.body.get("tool_choice")

    @property
    def messages(self) -> list[JSON]:
        return list(self.body.get("messages") or [])


def _body(request: JSON | RecordedRequest) -> JSON:
    return request.body if isinstance(request, RecordedRequest) else request


def _blocks(message: JSON) -> list[JSON]:
    content = message.get("content")
    if isinstance(content, str):
        return [text(content)]
    return [b for b in content or [] if isinstance(b, dict)]


def _tool_result_text(block: JSON) -> str:
    content = block.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def tool_results(request: JSON | RecordedRequest) -> list[tuple[str, str, bool]]:
    """Every tool_result in the request, in order, as (tool_use_id, text, is_error)."""
    out = []
    for message in _body(request).get("messages") or []:
        for block in _blocks(message):
            if block.get("type") == "tool_result":
                out.append(
                    (
                        str(block.get("tool_use_id")),
                        _tool_result_text(block),
                        bool(block.get("is_error", False)),
                    )
                )
    return out


def last_tool_result(request: JSON | RecordedRequest) -> tuple[str, bool] | None:
    """The last tool_result in the request as (text, is_error), or None if there is none.

    Text blocks of a list content are joined; other blocks (images) are ignored.
    """
    results = tool_results(request)
    if not results:
        return None
    _, result_text, is_error = results[-1]
    return result_text, is_error


# ---------------------------------------------------------------------------------------------
# Validation, as the real API does it where tests depend on it
# ---------------------------------------------------------------------------------------------


def _validate(body: Any) -> str | None:
    """The invalid_request_error message for a bad request, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        is_final_assistant = i == len(messages) - 1 and message["role"] == "assistant"
        if not content and not is_final_assistant:
            return (
                f"messages.{i}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        for j, block in enumerate(_blocks(message)):
            if block.get("type") == "text" and not block.get("text"):
                return f"messages.{i}.content.{j}: text content blocks must be non-empty"
    for i, message in enumerate(messages):
        blocks = _blocks(message)
        if message["role"] == "assistant":
            use_ids = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
            nxt = messages[i + 1] if i + 1 < len(messages) else None
            answered = set()
            if nxt is not None and nxt["role"] == "user":
                answered = {
                    b.get("tool_use_id") for b in _blocks(nxt) if b.get("type") == "tool_result"
                }
            missing = [u for u in use_ids if u not in answered]
            if missing:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(map(str, missing))}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )
        else:
            prev = messages[i - 1] if i > 0 else None
            known = set()
            if prev is not None and prev["role"] == "assistant":
                known = {b.get("id") for b in _blocks(prev) if b.get("type") == "tool_use"}
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in known:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                        "block must have a corresponding `tool_use` block in the previous message."
                    )
    return None


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


def _error_body(error_type: str, message: str, request_id: str) -> JSON:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def _sse(event: str, data: JSON) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class FakeAnthropic:
    """The fake Messages API. `async with FakeAnthropic() as fake`, or `with` for sync tests
    (then the server runs on its own loop in a background thread)."""

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1") -> None:
        """`api_key`: if given, any other key gets 401 authentication_error."""
        self._host = host
        self._api_key = api_key
        self._lock = threading.Lock()
        self._script: deque[ScriptEntry] = deque()
        self.requests: list[RecordedRequest] = []
        self.port: int = 0
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # --- scripting -----------------------------------------------------------------------

    def script(self, *entries: ScriptEntry) -> FakeAnthropic:
        """Queue replies (or faults, or callables returning one), consumed one per request."""
        with self._lock:
            self._script.extend(entries)
        return self

    @property
    def remaining(self) -> int:
        """How many scripted entries have not been consumed."""
        with self._lock:
            return len(self._script)

    def clear(self) -> None:
        """Drop the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeAnthropic is not started")
        return f"http://{self._host}:{self.port}"

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> FakeAnthropic:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._handle_messages)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAnthropic:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self) -> FakeAnthropic:
        """Run the server on a fresh event loop in a daemon thread (for sync tests)."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread_loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-anthropic", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("FakeAnthropic did not start")
        return self

    def stop_thread(self) -> None:
        if self._thread is not None and self._thread_loop is not None:
            self._thread_loop.call_soon_threadsafe(self._thread_loop.stop)
            self._thread.join(10)
            self._thread = None
            self._thread_loop = None

    def __enter__(self) -> FakeAnthropic:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    # --- handlers ------------------------------------------------------------------------

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        request_id = _new_id("req")
        return web.json_response(
            _error_body("not_found_error", f"fake anthropic: no route {request.path}", request_id),
            status=404,
            headers={"request-id": request_id},
        )

    async def _handle_messages(self, request: web.Request) -> web.StreamResponse:
        request_id = _new_id("req")
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body if isinstance(body, dict) else {},
        )
        with self._lock:
            self.requests.append(record)
        response = await self._answer(request, record, body, raw, request_id)
        record.status = response.status
        return response

    async def _answer(
        self,
        request: web.Request,
        record: RecordedRequest,
        body: Any,
        raw: bytes,
        request_id: str,
    ) -> web.StreamResponse:
        def error(status: int, error_type: str, message: str, **headers: str) -> web.Response:
            return web.json_response(
                _error_body(error_type, message, request_id),
                status=status,
                headers={"request-id": request_id, **headers},
            )

        if record.api_key is None:
            return error(401, "authentication_error", "x-api-key header is required")
        if self._api_key is not None and record.api_key != self._api_key:
            return error(401, "authentication_error", "invalid x-api-key")
        problem = _validate(body)
        if problem is not None:
            return error(400, "invalid_request_error", problem)

        with self._lock:
            entry = self._script.popleft() if self._script else None
        if entry is None:
            return error(
                500,
                "api_error",
                "fake anthropic: no scripted reply left",
                **{"x-should-retry": "false"},
            )
        if callable(entry):
            produced = entry(body)
            if inspect.isawaitable(produced):
                produced = await produced
            entry = produced
        record.entry = entry

        if isinstance(entry, Overloaded):
            return error(
                529,
                "overloaded_error",
                entry.message,
                **{"retry-after-ms": str(entry.retry_after_ms)},
            )
        if isinstance(entry, HttpError):
            headers = {}
            if entry.retry_after_ms is not None:
                headers["retry-after-ms"] = str(entry.retry_after_ms)
            if entry.should_retry is not None:
                headers["x-should-retry"] = "true" if entry.should_retry else "false"
            return error(entry.status, entry.error_type, entry.message, **headers)
        if isinstance(entry, StreamError):
            if not record.stream:
                return error(
                    500,
                    "api_error",
                    "fake anthropic: StreamError scripted for a non-streaming request",
                    **{"x-should-retry": "false"},
                )
            reply = entry.reply or Reply(text("Partial answer that never finishes."))
            return await self._stream(request, reply, body, raw, request_id, fault=entry)
        if not isinstance(entry, Reply):
            return error(
                500,
                "api_error",
                f"fake anthropic: bad script entry {entry!r}",
                **{"x-should-retry": "false"},
            )

        if entry.delay_s:
            await asyncio.sleep(entry.delay_s)
        if record.stream:
            return await self._stream(request, entry, body, raw, request_id)
        message = self._message(entry, body, raw)
        return web.json_response(message, headers={"request-id": request_id})

    # --- building replies ----------------------------------------------------------------

    def _usage(self, reply: Reply, raw: bytes) -> JSON:
        content_size = len(json.dumps(reply.content))
        return {
            "input_tokens": reply.input_tokens
            if reply.input_tokens is not None
            else max(1, len(raw) // 4),
            "cache_creation_input_tokens": reply.cache_creation_input_tokens or 0,
            "cache_read_input_tokens": reply.cache_read_input_tokens or 0,
            "output_tokens": reply.output_tokens
            if reply.output_tokens is not None
            else max(1, content_size // 4),
        }

    @staticmethod
    def _stop_reason(reply: Reply) -> str:
        if reply.stop_reason is not None:
            return reply.stop_reason
        return "tool_use" if any(b.get("type") == "tool_use" for b in reply.content) else "end_turn"

    def _message(self, reply: Reply, body: JSON, raw: bytes) -> JSON:
        return {
            "id": _new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": reply.model or body.get("model", "claude-fake"),
            "content": [dict(b) for b in reply.content],
            "stop_reason": self._stop_reason(reply),
            "stop_sequence": reply.stop_sequence,
            "usage": self._usage(reply, raw),
        }

    def _events(self, reply: Reply, body: JSON, raw: bytes) -> Iterator[tuple[str, JSON]]:
        message = self._message(reply, body, raw)
        usage = message["usage"]
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        yield "message_start", {"type": "message_start", "message": start}
        yield "ping", {"type": "ping"}
        for index, block in enumerate(message["content"]):
            if block.get("type") == "text":
                yield (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                for piece in _chunks(block["text"], 16):
                    yield (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
            elif block.get("type") == "tool_use":
                yield (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {**block, "input": {}},
                    },
                )
                # The real API sends an empty partial first, then the JSON in pieces.
                for piece in ["", *_chunks(json.dumps(block["input"]), 12)]:
                    yield (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        },
                    )
            else:
                yield (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message["stop_reason"],
                    "stop_sequence": message["stop_sequence"],
                },
                "usage": usage,
            },
        )
        yield "message_stop", {"type": "message_stop"}

    async def _stream(
        self,
        request: web.Request,
        reply: Reply,
        body: JSON,
        raw: bytes,
        request_id: str,
        fault: StreamError | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": request_id,
            },
        )
        await response.prepare(request)
        try:
            for sent, (event, data) in enumerate(self._events(reply, body, raw)):
                if fault is not None and sent == fault.after_events:
                    break
                if sent and reply.event_delay_s:
                    await asyncio.sleep(reply.event_delay_s)
                await response.write(_sse(event, data))
            if fault is not None:
                await response.write(
                    _sse("error", _error_body(fault.error_type, fault.message, request_id))
                )
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away mid-stream
        return response


def _chunks(value: str, size: int) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]
