"""An asyncio client for one sandbox kernel, over any byte channel that carries its protocol.

The channel is a child process's stdio (``python -m catalog_kernel`` for the process backend and
fast tests, ``docker run -i`` in tests) or a container's attached stdio through the Docker API
(the Docker backend). The framing and the messages are defined once, in
``catalog_kernel.protocol``.

Each call's events wait in a queue of its own until its caller takes them; that queue holds at
most ``max_queued_events`` (CATALOG_SANDBOX_EXEC_QUEUE_EVENTS). When it is full the client stops
reading the channel, so a slow caller holds the kernel's output back in the kernel (which then
blocks on its stdout) instead of the manager's memory growing with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from catalog_kernel.protocol import FrameDecoder, Message, encode_frame

# How long an abandoned cell may take to stop after its interrupt (the kernel kills it after ~1 s).
INTERRUPT_WAIT_S = 10.0
DEFAULT_QUEUED_EVENTS = 256


class KernelError(Exception):
    """The kernel is unreachable, died, or broke the protocol; the sandbox must be replaced."""


@dataclass(frozen=True)
class DatabaseState:
    """What the kernel made of one database of the session."""

    name: str
    backend: str
    read_only: bool
    connect_error: str


@dataclass(frozen=True)
class KernelSession:
    backend: str  # these three describe the first database (`con`)
    read_only: bool
    connect_error: str
    duration_ms: float
    databases: tuple[DatabaseState, ...] = ()  # each database, in the session's order


@dataclass
class CellResult:
    """A finished cell, accumulated from its events."""

    status: str = ""
    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: Message | None = None
    duration_ms: float = 0.0
    state_lost: bool = False
    bytes_omitted: dict[str, int] = field(default_factory=dict)
    events: list[Message] = field(default_factory=list)

    def add(self, event: Message) -> None:
        self.events.append(event)
        kind = event["ev"]
        if kind == "stdout":
            self.stdout += event["text"]
        elif kind == "stderr":
            self.stderr += event["text"]
        elif kind == "result":
            self.result = event["text_plain"]
        elif kind == "error":
            self.error = event
        elif kind == "truncated":
            self.bytes_omitted[event["stream"]] = event["bytes_omitted"]
        elif kind == "done":
            self.status = event["status"]
            self.duration_ms = event["duration_ms"]
            self.state_lost = event["state_lost"]


class KernelChannel(Protocol):
    """The byte channel to one kernel: its stdin and stdout, however they are reached."""

    async def read(self) -> bytes:
        """The next bytes of the kernel's stdout; b"" once it is closed."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close(self, grace_s: float) -> None:
        """Close the kernel's stdin, give it grace_s to exit, then stop it by force."""
        ...


class ProcessChannel:
    """A kernel that is a child process of ours: `python -m catalog_kernel`, `docker run -i`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout

    async def read(self) -> bytes:
        return await self._stdout.read(65536)

    async def write(self, data: bytes) -> None:
        self._stdin.write(data)
        await self._stdin.drain()

    async def close(self, grace_s: float) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), grace_s)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class KernelClient:
    """Requests go out as frames; events come back to whichever request's id they carry."""

    def __init__(
        self, channel: KernelChannel, max_queued_events: int = DEFAULT_QUEUED_EVENTS
    ) -> None:
        self._channel = channel
        self._ids = itertools.count(1)
        self._max_queued = max_queued_events
        self._queues: dict[object, asyncio.Queue[Message | None]] = {}
        self._ended = False  # the channel closed: no event will come any more
        self._hello: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._read_task = asyncio.create_task(self._read_loop())

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        ready_timeout_s: float = 120,
        max_queued_events: int = DEFAULT_QUEUED_EVENTS,
    ) -> KernelClient:
        """Start a kernel process and wait until it says hello (its imports are loaded)."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        client = cls(ProcessChannel(process), max_queued_events)
        await client.wait_ready(ready_timeout_s)
        return client

    async def wait_ready(self, timeout_s: float) -> Message:
        """Wait for the kernel's hello; close it and raise KernelError if it does not come."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._hello), timeout_s)
        except (TimeoutError, KernelError) as exc:
            await self.close()
            raise KernelError(f"the kernel did not become ready within {timeout_s:g} s") from exc

    @property
    def alive(self) -> bool:
        return not self._read_task.done()

    @property
    def hello(self) -> Message:
        return self._hello.result()

    async def _read_loop(self) -> None:
        decoder = FrameDecoder()
        error: BaseException = KernelError("the kernel closed its channel")
        try:
            while data := await self._channel.read():
                for event in decoder.feed(data):
                    await self._route(event)
        except Exception as exc:  # a broken channel fails every waiter below
            error = exc
        finally:  # cancelled (close) too: no waiter may wait for ever
            self._ended = True
            if not self._hello.done():
                self._hello.set_exception(error)
                self._hello.exception()  # observed here: nobody may be waiting any more
            for queue in self._queues.values():
                if not queue.full():  # a full one's reader learns it when it has drained it
                    queue.put_nowait(None)

    async def _route(self, event: Message) -> None:
        if event.get("ev") == "hello" and not self._hello.done():
            self._hello.set_result(event)
        elif (queue := self._queues.get(event.get("id"))) is not None:
            await queue.put(event)  # full: the caller is slow, and the kernel waits for it

    def _forget(self, request_id: object) -> None:
        """Drop a call's queue, emptied so that a read loop waiting to put into it goes on."""
        queue = self._queues.pop(request_id, None)
        while queue is not None and not queue.empty():
            queue.get_nowait()

    async def _request(
        self, op: str, **fields: Any
    ) -> tuple[object, asyncio.Queue[Message | None]]:
        if self._read_task.done():
            raise KernelError("the kernel is gone")
        request_id = next(self._ids)
        queue: asyncio.Queue[Message | None] = asyncio.Queue(self._max_queued)
        self._queues[request_id] = queue
        try:
            await self._channel.write(encode_frame({"op": op, "id": request_id, **fields}))
        except (ConnectionError, RuntimeError, OSError) as exc:
            self._forget(request_id)
            raise KernelError(f"cannot write to the kernel: {exc}") from exc
        return request_id, queue

    async def _next(self, queue: asyncio.Queue[Message | None]) -> Message:
        event = None if queue.empty() and self._ended else await queue.get()
        if event is None:
            raise KernelError("the kernel died")
        if event.get("ev") == "protocol_error":
            raise KernelError(f"the kernel refused the request: {event.get('message')}")
        return event

    async def _single(self, op: str, **fields: Any) -> Message:
        request_id, queue = await self._request(op, **fields)
        try:
            return await self._next(queue)
        finally:
            self._forget(request_id)

    async def start_session(self, session: dict[str, Any]) -> KernelSession:
        return _session_info(await self._single("start_session", session=session))

    async def reset(self, session: dict[str, Any] | None = None) -> KernelSession:
        """A fresh worker and an empty scratch folder; with ``session``, new settings."""
        fields = {} if session is None else {"session": session}
        return _session_info(await self._single("reset", **fields))

    async def end_session(self) -> float:
        return float((await self._single("end_session"))["duration_ms"])

    async def ping(self) -> Message:
        return await self._single("ping")

    async def stream(
        self, code: str, timeout_s: float | None = None, max_output_bytes: int | None = None
    ) -> AsyncGenerator[Message, None]:
        """Run a cell and yield its events as they arrive, ending with "done".

        If the consumer stops early or is cancelled, the cell is interrupted.
        """
        fields: dict[str, Any] = {"code": code}
        if timeout_s is not None:
            fields["timeout_s"] = timeout_s
        if max_output_bytes is not None:
            fields["max_output_bytes"] = max_output_bytes
        request_id, queue = await self._request("execute", **fields)
        finished = False
        try:
            while True:
                event = await self._next(queue)
                finished = event["ev"] == "done"
                yield event
                if finished:
                    return
        finally:
            if not finished and not self._read_task.done():
                # Stop the cell and wait for its end, so the kernel is free for the next one.
                with contextlib.suppress(KernelError, TimeoutError):
                    interrupt_id, _ = await self._request("interrupt")
                    self._forget(interrupt_id)  # its answer, if any, is not awaited
                    await asyncio.wait_for(self._until_done(queue), INTERRUPT_WAIT_S)
            self._forget(request_id)

    async def _until_done(self, queue: asyncio.Queue[Message | None]) -> None:
        while (await self._next(queue))["ev"] != "done":
            pass

    async def execute(self, code: str, **options: Any) -> CellResult:
        result = CellResult()
        async for event in self.stream(code, **options):
            result.add(event)
        return result

    async def close(self, grace_s: float = 5.0) -> None:
        """Ask the kernel to stop; stop it by force if it has not within the grace period."""
        if self.alive:
            with contextlib.suppress(ConnectionError, RuntimeError, OSError):
                await self._channel.write(encode_frame({"op": "shutdown", "id": 0}))
        await self._channel.close(grace_s)
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task


def _session_info(event: Message) -> KernelSession:
    return KernelSession(
        backend=event["backend"],
        read_only=event["read_only"],
        connect_error=event["connect_error"],
        duration_ms=event["duration_ms"],
        databases=tuple(
            DatabaseState(
                str(each.get("name", "")),
                str(each.get("backend", "")),
                bool(each.get("read_only")),
                str(each.get("connect_error", "")),
            )
            for each in event.get("databases") or []
        ),
    )
