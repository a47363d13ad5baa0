"""A cell that floods its output, and a caller that stops reading: the manager's memory must stay
bounded, and the flood must not reach the caller uncapped."""

from __future__ import annotations

import asyncio
from pathlib import Path

from catalog.v1 import sandbox_pb2 as pb
from google.protobuf import duration_pb2

from tests.sandbox_manager.conftest import StartManager
from tests.sandbox_manager.test_lifecycle import finished, run, stdout

FLOOD = "import sys\nline = 'x' * 8191 + '\\n'\nwhile True:\n    sys.stdout.write(line)"
MAX_GROWTH_BYTES = 64 * 2**20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def test_an_output_flood_is_capped_for_the_caller(start_manager: StartManager) -> None:
    manager = await start_manager()
    lease = (await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    events = await run(
        manager.stub,
        lease.lease_id,
        FLOOD,
        timeout=duration_pb2.Duration(seconds=3),
        max_output_bytes=100_000,
    )
    received = sum(len(e.stdout.text) for e in events if e.WhichOneof("event") == "stdout")
    done = finished(events)
    assert received <= 2 * 100_000  # head and tail, never the gigabytes the cell wrote
    assert done.stdout_bytes_omitted > 10 * 2**20


async def test_a_caller_that_stops_reading_does_not_grow_the_manager(
    start_manager: StartManager,
) -> None:
    manager = await start_manager()
    lease = (await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    before = rss_bytes(manager.process.pid)
    call = manager.stub.Execute(
        pb.ExecuteRequest(
            lease_id=lease.lease_id,
            code=FLOOD,
            timeout=duration_pb2.Duration(seconds=12),
            max_output_bytes=1024 * 1024,
        )
    )
    await call.read()  # one message, then the caller stalls while the cell floods
    peak = before
    for _ in range(16):
        await asyncio.sleep(0.5)
        peak = max(peak, rss_bytes(manager.process.pid))
    call.cancel()
    assert peak - before < MAX_GROWTH_BYTES, f"the manager grew by {(peak - before) >> 20} MiB"
    # The lease still works once the stalled call is gone.
    events = await run(manager.stub, lease.lease_id, "print('after')")
    assert stdout(events) == "after\n"
