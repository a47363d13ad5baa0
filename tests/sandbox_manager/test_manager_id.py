"""A manager's id belongs to one live manager: a second refuses it instead of removing the
first one's sandboxes, and a killed manager's id is free again for its restart."""

from __future__ import annotations

import asyncio
import signal
import sys

from catalog.v1 import sandbox_pb2 as pb

from services.common.ports import free_port
from tests.sandbox_manager.conftest import StartManager, labelled_containers


async def test_a_second_manager_refuses_the_id_of_a_live_one(start_manager: StartManager) -> None:
    first = await start_manager()
    lease = (await first.stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    second = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.sandbox_manager",
        env={**first.env, "CATALOG_SANDBOX_PORT": str(free_port())},
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(second.communicate(), 30)
    finally:
        if second.returncode is None:  # it started: the failure this test guards against
            second.send_signal(signal.SIGTERM)
            await second.wait()
    message = stderr.decode()
    assert second.returncode == 1
    assert "CATALOG_SANDBOX_MANAGER_ID" in message and repr(first.manager_id) in message
    assert "Traceback" not in message
    request = pb.ExecuteRequest(lease_id=lease.lease_id, code="6 * 7")
    events = [event async for event in first.stub.Execute(request)]
    assert events[0].result.text_plain == "42"  # the first manager's lease still works


async def test_a_killed_managers_id_is_free_for_its_restart(start_manager: StartManager) -> None:
    first = await start_manager()
    left = labelled_containers(first.manager_id)
    assert left
    await first.stop(signal.SIGKILL)
    again = await start_manager(first.manager_id)
    await again.stub.AcquireSandbox(pb.AcquireSandboxRequest())
    assert not set(left) & set(labelled_containers(again.manager_id))  # it removed the old ones
