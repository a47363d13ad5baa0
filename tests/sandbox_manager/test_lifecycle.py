"""A lease's life through real gRPC against a real manager with Docker containers."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from catalog.v1 import sandbox_pb2 as pb
from google.protobuf import duration_pb2

from tests.sandbox_manager.conftest import StartManager


async def run(stub, lease_id: str, code: str, **fields) -> list[pb.ExecuteResponse]:
    return [
        event
        async for event in stub.Execute(pb.ExecuteRequest(lease_id=lease_id, code=code, **fields))
    ]


def stdout(events: list[pb.ExecuteResponse]) -> str:
    return "".join(e.stdout.text for e in events if e.WhichOneof("event") == "stdout")


def finished(events: list[pb.ExecuteResponse]) -> pb.ExecutionFinished:
    assert events[-1].WhichOneof("event") == "finished"
    return events[-1].finished


async def test_acquire_execute_reset_release(start_manager: StartManager) -> None:
    manager = await start_manager()
    stub = manager.stub
    acquired = await stub.AcquireSandbox(pb.AcquireSandboxRequest(client_id="test"))
    lease = acquired.lease
    assert lease.lease_id.startswith(f"{manager.manager_id}.")
    assert lease.sandbox_id.startswith(f"{manager.manager_id}.")
    first = await run(stub, lease.lease_id, "x = 6 * 7\nprint('hello')\nx")
    assert stdout(first) == "hello\n"
    assert [e.result.text_plain for e in first if e.WhichOneof("event") == "result"] == ["42"]
    assert finished(first).status == pb.EXECUTION_STATUS_OK
    second = await run(stub, lease.lease_id, "x + 1")
    assert second[0].result.text_plain == "43"
    reset = await stub.ResetSandbox(pb.ResetSandboxRequest(lease_id=lease.lease_id))
    assert reset.duration.ToMilliseconds() < 1000
    after = await run(stub, lease.lease_id, "x")
    assert finished(after).status == pb.EXECUTION_STATUS_ERROR
    assert after[0].error.ename == "NameError"
    released = await stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=lease.lease_id))
    assert released.released
    again = await stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=lease.lease_id))
    assert not again.released  # idempotent


async def test_bad_requests_get_statuses_that_say_what_to_fix(start_manager: StartManager) -> None:
    manager = await start_manager(
        max_code_bytes="1000", max_output_bytes="1000", output_bytes_ceiling="4096"
    )
    stub = manager.stub
    lease = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease

    async def status_of(call) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        return caught.value.code(), caught.value.details() or ""

    code, message = await status_of(run(stub, lease.lease_id, "   "))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "code is empty" in message
    code, message = await status_of(run(stub, lease.lease_id, "x = 1\n" * 200))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "over the limit" in message
    code, message = await status_of(run(stub, lease.lease_id, "1", max_output_bytes=5000))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        "max_output_bytes of 5000" in message and "CATALOG_SANDBOX_OUTPUT_BYTES_CEILING" in message
    )
    unknown = f"{manager.manager_id}.nosuchlease"
    code, message = await status_of(run(stub, unknown, "1"))
    assert code == grpc.StatusCode.NOT_FOUND and "unknown" in message
    code, message = await status_of(run(stub, "othermanager.abc", "1"))
    assert code == grpc.StatusCode.NOT_FOUND and "belongs to manager 'othermanager'" in message
    await stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=lease.lease_id))
    code, message = await status_of(run(stub, lease.lease_id, "1"))
    assert code == grpc.StatusCode.NOT_FOUND and "was released" in message


async def test_an_unused_lease_expires_and_says_so(start_manager: StartManager) -> None:
    manager = await start_manager()
    lease = (
        await manager.stub.AcquireSandbox(
            pb.AcquireSandboxRequest(lease_ttl=duration_pb2.Duration(seconds=1))
        )
    ).lease
    await asyncio.sleep(2.5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run(manager.stub, lease.lease_id, "1")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "expired" in (caught.value.details() or "")


async def test_a_full_pool_waits_then_answers_resource_exhausted(
    start_manager: StartManager,
) -> None:
    manager = await start_manager(min_warm="1", max_size="1")
    stub = manager.stub
    held = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AcquireSandbox(
            pb.AcquireSandboxRequest(wait_timeout=duration_pb2.Duration(seconds=1))
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # A waiting caller gets a sandbox as soon as the released one is replaced.
    waiting = asyncio.ensure_future(
        stub.AcquireSandbox(
            pb.AcquireSandboxRequest(wait_timeout=duration_pb2.Duration(seconds=30))
        )
    )
    await asyncio.sleep(0.5)
    await stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=held.lease_id))
    second = (await waiting).lease
    assert second.sandbox_id != held.sandbox_id  # a lease's sandbox never serves another


async def test_a_released_sandbox_is_destroyed_not_reused(start_manager: StartManager) -> None:
    manager = await start_manager(min_warm="1", max_size="1")
    stub = manager.stub
    first = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    described = await stub.DescribeSandbox(pb.DescribeSandboxRequest(sandbox_id=first.sandbox_id))
    await run(stub, first.lease_id, "secret = 'tenant A'\nopen('/tmp/a.txt', 'w').write('A')")
    await stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=first.lease_id))
    second = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    assert second.sandbox_id != first.sandbox_id
    events = await run(stub, second.lease_id, "import os\nprint(os.listdir('/tmp'))\nsecret")
    assert stdout(events) == "[]\n"
    assert any(e.error.ename == "NameError" for e in events if e.WhichOneof("event") == "error")
    inspect = await asyncio.create_subprocess_exec(
        "docker", "inspect", described.sandbox.container_id, stdout=asyncio.subprocess.DEVNULL
    )
    assert await inspect.wait() != 0  # the first tenant's container no longer exists


async def test_a_cancelled_call_interrupts_the_cell_and_keeps_the_container(
    start_manager: StartManager,
) -> None:
    manager = await start_manager()
    stub = manager.stub
    lease = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    await run(stub, lease.lease_id, "kept = 'yes'")
    call = stub.Execute(
        pb.ExecuteRequest(
            lease_id=lease.lease_id, code="import time\nprint('go', flush=True)\ntime.sleep(60)"
        )
    )
    async for event in call:
        if event.WhichOneof("event") == "stdout":
            call.cancel()
            break
    events = await run(stub, lease.lease_id, "kept")  # waits for the interrupt to land
    assert events[0].result.text_plain == "'yes'"
    listed = await stub.ListSandboxes(pb.ListSandboxesRequest(state=pb.SANDBOX_STATE_LEASED))
    assert [s.sandbox_id for s in listed.sandboxes] == [lease.sandbox_id]


async def test_a_container_killed_mid_cell_breaks_the_lease_not_the_pool(
    start_manager: StartManager,
) -> None:
    manager = await start_manager()
    stub = manager.stub
    lease = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    sandbox = (
        await stub.DescribeSandbox(pb.DescribeSandboxRequest(sandbox_id=lease.sandbox_id))
    ).sandbox
    call = stub.Execute(
        pb.ExecuteRequest(
            lease_id=lease.lease_id, code="import time\nprint('go', flush=True)\ntime.sleep(60)"
        )
    )
    events = []
    async for event in call:
        events.append(event)
        if event.WhichOneof("event") == "stdout":
            killer = await asyncio.create_subprocess_exec(
                "docker", "kill", sandbox.container_id, stdout=asyncio.subprocess.DEVNULL
            )
            await killer.wait()
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-2:] == ["error", "finished"]
    assert events[-2].error.ename == "SandboxLost"
    assert (finished(events).status, finished(events).state_lost) == (
        pb.EXECUTION_STATUS_CRASHED,
        True,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run(stub, lease.lease_id, "1")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=lease.lease_id))
    fresh = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    assert fresh.sandbox_id != lease.sandbox_id
    assert (await run(stub, fresh.lease_id, "1 + 1"))[0].result.text_plain == "2"


async def test_a_session_opens_the_database_read_only(
    start_manager: StartManager, postgres_table: tuple[str, str]
) -> None:
    server, schema = postgres_table
    manager = await start_manager()
    acquired = await manager.stub.AcquireSandbox(
        pb.AcquireSandboxRequest(session=pb.SessionConfig(db_dsn=server))
    )
    assert (acquired.session.backend, acquired.session.read_only) == ("postgres", True)
    events = await run(
        manager.stub,
        acquired.lease.lease_id,
        f"int(con.table('orders', database='{schema}').count().execute())",
    )
    assert events[0].result.text_plain == "1000"


async def test_a_second_concurrent_execute_is_aborted(start_manager: StartManager) -> None:
    manager = await start_manager()
    stub = manager.stub
    lease = (await stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    first = stub.Execute(
        pb.ExecuteRequest(
            lease_id=lease.lease_id, code="import time\nprint('go', flush=True)\ntime.sleep(30)"
        )
    )
    async for event in first:
        if event.WhichOneof("event") == "stdout":
            break
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run(stub, lease.lease_id, "1")
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert "running another Execute" in (caught.value.details() or "")
    first.cancel()
