"""A fake sandbox kernel in this process, speaking `catalog_kernel.protocol` over memory.

`KernelClient(FakeKernel().channel())` is a real client on a real framed channel, with no
process, container or Python worker behind it, so the pool's upkeep, leases and crash handling
run in milliseconds. Cells are not Python; the code names what the cell does:

    "hang"   runs until interrupted (its "done" then says interrupted)
    "die"    prints a line, then the kernel dies mid-cell (its channel closes)
    "fail"   ends with an error event and status "error"
    "lines:N" prints N lines, one stdout event each, as fast as it can
    other    prints the code back and ends "ok"

`kernel.die()` kills the kernel from outside, as a container that stops; an op in
`kernel.die_on` kills it when that request arrives (a kernel that dies as a lease begins).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from catalog_kernel.protocol import PROTOCOL_VERSION, FrameDecoder, Message, encode_frame


class FakeKernel:
    def __init__(self, pid: int = 4242) -> None:
        self.requests: list[Message] = []  # every request, in order
        self.session: dict[str, Any] | None = None
        self.die_on: set[str] = set()
        self.dead = False
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self._decoder = FrameDecoder()
        self._cells: dict[object, asyncio.Event] = {}  # running cell id -> its interrupt
        self._tasks: set[asyncio.Task[None]] = set()
        self._emit({"ev": "hello", "protocol": PROTOCOL_VERSION, "pid": pid, "preload_ms": 0.0})

    def channel(self) -> MemoryChannel:
        return MemoryChannel(self)

    def ops(self) -> list[str]:
        return [str(r["op"]) for r in self.requests]

    def unread(self) -> int:
        """Frames the kernel has written that the client has not read yet."""
        return self._out.qsize()

    def die(self) -> None:
        """The kernel is gone: its channel ends, and every running cell with it."""
        if self.dead:
            return
        self.dead = True
        for task in self._tasks:
            task.cancel()
        self._out.put_nowait(b"")

    # --- the kernel's side of the channel ------------------------------------------------
    def _emit(self, event: Message) -> None:
        if not self.dead:
            self._out.put_nowait(encode_frame(event))

    def receive(self, data: bytes) -> None:
        for request in self._decoder.feed(data):
            self.requests.append(request)
            self._handle(request)

    def _handle(self, request: Message) -> None:
        op, rid = request.get("op"), request.get("id")
        if op in self.die_on:
            self.die()
        elif op in ("start_session", "reset"):
            self.session = request.get("session", self.session) or {}
            self._emit(_session_event(rid, self.session))
        elif op == "end_session":
            self.session = None
            self._emit({"ev": "session_ended", "id": rid, "duration_ms": 0.1})
        elif op == "ping":
            self._emit({"ev": "pong", "id": rid, "worker_alive": True, "busy": bool(self._cells)})
        elif op == "execute":
            self._cells[rid] = asyncio.Event()
            task = asyncio.get_running_loop().create_task(self._execute(rid, request["code"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif op == "interrupt":
            for interrupted in self._cells.values():
                interrupted.set()
        elif op == "shutdown":
            self.die()
        else:
            self._emit({"ev": "protocol_error", "id": rid, "message": f"unknown op {op!r}"})

    async def _execute(self, rid: object, code: str) -> None:
        status = "ok"
        try:
            if code == "hang":
                await self._cells[rid].wait()
                status = "interrupted"
            elif code == "die":
                self._emit({"ev": "stdout", "id": rid, "text": "about to die\n"})
                await asyncio.sleep(0)
                self.die()
                return
            elif code == "fail":
                self._emit(_error_event(rid))
                status = "error"
            elif code.startswith("lines:"):
                for n in range(int(code.removeprefix("lines:"))):
                    self._emit({"ev": "stdout", "id": rid, "text": f"line {n}\n"})
            else:
                self._emit({"ev": "stdout", "id": rid, "text": f"{code}\n"})
        finally:
            self._cells.pop(rid, None)
        self._emit(_done_event(rid, status))


class MemoryChannel:
    """The client's end: a `kernel_client.KernelChannel` with the fake kernel on the other."""

    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel

    async def read(self) -> bytes:
        data = await self.kernel._out.get()
        if not data:
            self.kernel._out.put_nowait(b"")  # stays closed for any later read
        return data

    async def write(self, data: bytes) -> None:
        if self.kernel.dead:
            raise ConnectionError("the fake kernel is dead")
        self.kernel.receive(data)

    async def close(self, grace_s: float) -> None:
        self.kernel.die()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self.kernel._tasks, return_exceptions=True)


def _session_event(rid: object, session: dict[str, Any]) -> Message:
    dsn = str(session.get("db_dsn") or "")
    return {
        "ev": "session",
        "id": rid,
        "backend": dsn.split(":", 1)[0] if dsn else "",
        "read_only": bool(dsn),
        "connect_error": "",
        "duration_ms": 0.1,
    }


def _error_event(rid: object) -> Message:
    return {
        "ev": "error",
        "id": rid,
        "ename": "ValueError",
        "evalue": "the cell failed",
        "traceback": "Traceback (most recent call last):\nValueError: the cell failed",
    }


def _done_event(rid: object, status: str) -> Message:
    return {
        "ev": "done",
        "id": rid,
        "status": status,
        "duration_ms": 0.1,
        "state_lost": False,
        "stdout_bytes_omitted": 0,
        "stderr_bytes_omitted": 0,
    }
