"""One call's events wait in a bounded queue: a slow caller holds the kernel's output back in the
kernel instead of filling the manager's memory, and loses none of it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from services.sandbox_manager.kernel_client import KernelClient, KernelError
from tests.fakes.kernel import FakeKernel

BOUND = 8


async def test_a_slow_caller_holds_the_kernel_back_and_still_gets_every_event() -> None:
    kernel = FakeKernel()
    client = KernelClient(kernel.channel(), max_queued_events=BOUND)
    await client.wait_ready(5)
    stream = client.stream("lines:1000")
    first = await anext(stream)
    await asyncio.sleep(0.05)  # the client's read loop runs while the caller does not read
    assert kernel.unread() >= 1000 - BOUND - 2  # the rest waits on the kernel's side
    events = [first, *[event async for event in stream]]
    texts = [e["text"] for e in events if e["ev"] == "stdout"]
    assert texts == [f"line {n}\n" for n in range(1000)] and events[-1]["ev"] == "done"
    assert (await client.ping())["ev"] == "pong"
    await client.close()


async def test_a_caller_that_gives_up_on_a_full_queue_leaves_the_kernel_usable() -> None:
    kernel = FakeKernel()
    client = KernelClient(kernel.channel(), max_queued_events=BOUND)
    await client.wait_ready(5)
    async with contextlib.aclosing(client.stream("lines:1000")) as stream:
        await anext(stream)
        await asyncio.sleep(0.05)  # its queue fills; then it stops reading
    assert "interrupt" in kernel.ops()
    assert (await asyncio.wait_for(client.ping(), 5))["ev"] == "pong"
    await client.close()


async def test_a_kernel_closed_behind_a_full_queue_ends_the_call_with_an_error() -> None:
    kernel = FakeKernel()
    client = KernelClient(kernel.channel(), max_queued_events=BOUND)
    await client.wait_ready(5)
    stream = client.stream("lines:1000")
    await anext(stream)
    await asyncio.sleep(0.05)
    await client.close()  # its read loop is stopped while waiting on the full queue
    with pytest.raises(KernelError):
        await asyncio.wait_for(_drain(stream), 5)  # the events held, then the error; no hang


async def _drain(stream) -> None:  # type: ignore[no-untyped-def]
    async for _ in stream:
        pass
