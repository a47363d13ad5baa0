"""The sandbox client against real managers (process backend): leases, streaming, routing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from catalog.v1 import sandbox_pb2 as pb

from services.common.clients import (
    ExecutionStatus,
    LeaseLost,
    ManagerUnavailable,
    PoolBusy,
    RetryPolicy,
    SandboxClient,
    SessionSettings,
    UnknownManager,
)
from services.common.clients import _routing as routing_module
from services.common.ports import free_port
from tests.sandbox_manager.conftest import RunningManager, StartManager

FAST_RETRY = RetryPolicy(attempts=3, initial_backoff_s=0.05, max_backoff_s=0.2)


async def leased_sandboxes(manager: RunningManager) -> list[str]:
    listed = await manager.stub.ListSandboxes(
        pb.ListSandboxesRequest(state=pb.SANDBOX_STATE_LEASED), timeout=10
    )
    return [s.sandbox_id for s in listed.sandboxes]


async def wait_warm(manager: RunningManager) -> None:
    """The manager has a warm sandbox (it reports no event for that, so poll)."""
    async with asyncio.timeout(60):
        while True:
            listed = await manager.stub.ListSandboxes(pb.ListSandboxesRequest(), timeout=10)
            if listed.pool.warm:
                return
            await asyncio.sleep(0.1)


async def process_manager(start_manager: StartManager, **settings: str) -> RunningManager:
    return await start_manager(backend="process", **settings)


async def test_the_lease_block_releases_on_exit_on_error_and_on_cancel(
    start_manager: StartManager,
) -> None:
    manager = await process_manager(start_manager)
    async with SandboxClient([manager.address]) as client:
        async with client.lease(client_id="test") as lease:
            assert await leased_sandboxes(manager) == [lease.sandbox_id]
        assert await leased_sandboxes(manager) == []

        with pytest.raises(RuntimeError, match="boom"):
            async with client.lease() as lease:
                raise RuntimeError("boom")
        assert await leased_sandboxes(manager) == []
        assert not await client.release(lease.lease_id)  # already released: idempotent

        running = asyncio.Event()

        async def hold() -> None:
            async with client.lease() as held:
                await client.execute(
                    held.lease_id,
                    "import time\nprint('go', flush=True)\ntime.sleep(60)",
                    on_stdout=lambda _: running.set(),
                )

        task = asyncio.create_task(hold())
        await running.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await leased_sandboxes(manager) == []


async def test_execute_accumulates_and_streams_output_before_the_cell_ends(
    start_manager: StartManager, tmp_path: Path
) -> None:
    manager = await process_manager(start_manager)
    go_on = tmp_path / "go-on"  # the cell blocks until the client saw its first line
    code = (
        "import os, sys, time\n"
        "print('first', flush=True)\n"
        "deadline = time.monotonic() + 30\n"
        f"while not os.path.exists({str(go_on)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        f"print('saw it' if os.path.exists({str(go_on)!r}) else 'never saw it', flush=True)\n"
        "print('warning', file=sys.stderr, flush=True)\n"
        "6 * 7"
    )
    seen: list[tuple[str, str]] = []

    def on_stdout(text: str) -> None:
        seen.append(("stdout", text))
        go_on.touch()

    async def on_stderr(text: str) -> None:
        seen.append(("stderr", text))

    async with SandboxClient([manager.address]) as client, client.lease() as lease:
        run = await client.execute(
            lease.lease_id,
            code,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            on_event=lambda event: seen.append(("event", event.WhichOneof("event") or "")),
        )
    assert run.status is ExecutionStatus.OK and run.ok
    assert (run.stdout, run.stderr, run.result) == ("first\nsaw it\n", "warning\n", "42")
    assert run.error is None and not run.state_lost and run.duration_s > 0
    outputs = [entry for entry in seen if entry[0] != "event"]
    assert "".join(text for kind, text in outputs if kind == "stdout") == run.stdout
    assert "".join(text for kind, text in outputs if kind == "stderr") == run.stderr
    # chunks may split lines, but arrive in the order written: all stdout, then stderr
    order = [kind for kind, _ in outputs]
    assert order == sorted(order, key=["stdout", "stderr"].index)
    # each output callback fires just before on_event gets the same event
    for index, (kind, _) in enumerate(seen):
        if kind != "event":
            assert seen[index + 1] == ("event", kind)
    kinds = [text for kind, text in seen if kind == "event"]
    assert kinds[0] == "stdout" and kinds[-2:] == ["result", "finished"]


async def test_a_user_error_is_data_not_an_exception(start_manager: StartManager) -> None:
    manager = await process_manager(start_manager)
    async with SandboxClient([manager.address]) as client, client.lease() as lease:
        run = await client.execute(lease.lease_id, "print('before')\n1 / 0")
        assert run.status is ExecutionStatus.ERROR and not run.ok
        assert run.stdout == "before\n" and run.result is None
        assert run.error is not None and run.error.ename == "ZeroDivisionError"
        assert "1 / 0" in run.error.traceback
        # the lease is still usable, and its namespace persists until a reset
        await client.execute(lease.lease_id, "kept = 1")
        assert (await client.execute(lease.lease_id, "kept")).result == "1"
        await client.reset(lease.lease_id)
        after = await client.execute(lease.lease_id, "kept")
        assert after.error is not None and after.error.ename == "NameError"


async def test_a_cell_without_a_timeout_runs_as_long_as_the_manager_allows(
    start_manager: StartManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call's deadline follows the maximum the manager reports, not a fixed guess."""
    # The client's fixed fallback (15 minutes), shrunk so that the test takes seconds.
    monkeypatch.setattr(routing_module, "MANAGER_MAX_EXEC_S", 0.5)
    manager = await process_manager(start_manager, exec_timeout_s="4", max_exec_timeout_s="6")
    listed = await manager.stub.ListSandboxes(pb.ListSandboxesRequest(), timeout=10)
    assert listed.pool.max_exec_timeout.ToSeconds() == 6
    async with (
        SandboxClient([manager.address], call_timeout_s=1) as client,
        client.lease(wait_timeout_s=30, timeout_s=30) as lease,
    ):
        run = await client.execute(lease.lease_id, "import time\ntime.sleep(2)\n'slept'")
        assert run.status is ExecutionStatus.OK and run.result == "'slept'"


async def test_whole_stdout_is_all_of_it_or_an_error_saying_why(
    start_manager: StartManager,
) -> None:
    """For callers that read data out of a sandbox: a failed or cut cell is never data."""
    manager = await process_manager(start_manager)
    async with SandboxClient([manager.address]) as client, client.lease() as lease:
        whole = await client.execute(lease.lease_id, "print('x' * 5000)", max_output_bytes=10000)
        assert whole.whole_stdout() == "x" * 5000 + "\n"
        cut = await client.execute(lease.lease_id, "print('x' * 5000)", max_output_bytes=1000)
        with pytest.raises(ValueError, match="output was cut"):
            cut.whole_stdout()
        failed = await client.execute(lease.lease_id, "print('half')\n1 / 0")
        with pytest.raises(ValueError, match=r"ended error \(ZeroDivisionError"):
            failed.whole_stdout()


async def test_calls_about_a_lease_route_by_its_manager_prefix(
    start_manager: StartManager,
) -> None:
    first, second = await asyncio.gather(
        process_manager(start_manager), process_manager(start_manager)
    )
    addresses = [first.address, second.address]
    # Both warm first: a manager still starting its sandbox would pass the lease to the other.
    await asyncio.gather(wait_warm(first), wait_warm(second))
    async with SandboxClient(addresses) as acquirer:
        leases = [await acquirer.acquire(client_id="test") for _ in range(2)]
    assert {lease.manager_id for lease in leases} == {first.manager_id, second.manager_id}
    for lease in leases:
        assert lease.lease_id.startswith(f"{lease.manager_id}.")

    # a fresh client has learned nothing, so it asks the managers for their ids
    async with SandboxClient(addresses) as other:
        for lease in leases:
            run = await other.execute(lease.lease_id, "import os\nos.getpid()")
            assert run.ok and run.result
            assert await other.release(lease.lease_id)
    assert await leased_sandboxes(first) == await leased_sandboxes(second) == []


async def test_acquires_from_fresh_clients_spread_over_two_managers(
    start_manager: StartManager,
) -> None:
    """Many services each with its own client (the runner, the orchestrators) all name the
    same managers first: each acquire still goes to the less loaded one."""
    managers = await asyncio.gather(
        *(process_manager(start_manager, min_warm="2", max_size="4") for _ in range(2))
    )
    await asyncio.gather(*(wait_warm(m) for m in managers))
    addresses = [m.address for m in managers]
    leases = []
    for _ in range(4):
        async with SandboxClient(addresses) as client:
            leases.append(await client.acquire(client_id="test"))
    by_manager = [lease.manager_id for lease in leases]
    assert sorted(by_manager.count(m.manager_id) for m in managers) == [2, 2], by_manager
    async with SandboxClient(addresses) as client:
        for lease in leases:
            assert await client.release(lease.lease_id)


async def test_acquire_prefers_the_manager_with_fewer_leases(start_manager: StartManager) -> None:
    busy, idle = await asyncio.gather(
        *(process_manager(start_manager, min_warm="2", max_size="4") for _ in range(2))
    )
    await asyncio.gather(wait_warm(busy), wait_warm(idle))
    held = [
        (await busy.stub.AcquireSandbox(pb.AcquireSandboxRequest(), timeout=30)).lease
        for _ in range(2)
    ]
    await wait_warm(busy)
    async with SandboxClient([busy.address, idle.address]) as client:
        for _ in range(2):  # round-robin would have sent one of the two to `busy`
            lease = await client.acquire(client_id="test")
            assert lease.manager_id == idle.manager_id
    for lease in held:
        await busy.stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=lease.lease_id))


async def test_an_unknown_manager_prefix_says_so(start_manager: StartManager) -> None:
    manager = await process_manager(start_manager)
    async with SandboxClient([manager.address]) as client:
        with pytest.raises(UnknownManager, match="no configured manager has id 'nosuch'") as err:
            await client.execute("nosuch.abc", "1")
    assert manager.manager_id in str(err.value)  # it names the managers it did reach


async def test_acquire_fails_over_from_a_dead_address(start_manager: StartManager) -> None:
    manager = await process_manager(start_manager)
    dead = f"127.0.0.1:{free_port()}"
    async with SandboxClient([dead, manager.address], retry=FAST_RETRY) as client:
        for _ in range(2):  # the dead one reports no load, so it goes last
            async with client.lease() as lease:
                assert lease.manager_id == manager.manager_id
                assert (await client.execute(lease.lease_id, "1 + 1")).result == "2"


async def test_only_dead_addresses_raise_manager_unavailable_in_bounded_time() -> None:
    dead = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    async with SandboxClient([dead], retry=FAST_RETRY, call_timeout_s=5) as client:
        with pytest.raises(ManagerUnavailable, match=dead):
            await client.acquire(wait_timeout_s=1)
        with pytest.raises(ManagerUnavailable, match=dead):
            await client.renew("whoever.abc")  # nobody answers who "whoever" is
    assert time.monotonic() - started < 5


async def test_a_full_pool_raises_pool_busy(start_manager: StartManager) -> None:
    manager = await process_manager(start_manager, min_warm="1", max_size="1")
    async with SandboxClient([manager.address]) as client, client.lease():
        with pytest.raises(PoolBusy, match="RESOURCE_EXHAUSTED"):
            await client.acquire(wait_timeout_s=0.5)


async def test_acquire_moves_on_from_a_full_manager_without_waiting_there(
    start_manager: StartManager,
) -> None:
    full, free = await asyncio.gather(
        process_manager(start_manager, max_size="1"), process_manager(start_manager, max_size="1")
    )
    held = (await full.stub.AcquireSandbox(pb.AcquireSandboxRequest(), timeout=30)).lease
    await wait_warm(free)
    async with SandboxClient([full.address, free.address]) as client:
        started = time.monotonic()
        async with client.lease(wait_timeout_s=30) as lease:
            assert lease.manager_id == free.manager_id
            assert time.monotonic() - started < 10  # it did not wait 30 s at the full one
            with pytest.raises(PoolBusy) as busy:
                await client.acquire(wait_timeout_s=0.2)
            assert full.address in str(busy.value) and free.address in str(busy.value)
    await full.stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=held.lease_id), timeout=10)


async def test_execute_on_a_released_lease_raises_lease_lost(start_manager: StartManager) -> None:
    manager = await process_manager(start_manager)
    async with SandboxClient([manager.address]) as client:
        lease = await client.acquire()
        assert await client.release(lease.lease_id)
        assert not await client.release(lease.lease_id)
        with pytest.raises(LeaseLost, match="was released"):
            await client.execute(lease.lease_id, "1")


def test_session_settings_hide_secrets_from_repr() -> None:
    settings = SessionSettings(
        db_dsn="postgresql://u:hunter2@db/x",
        s3_access_key_id="AKIDEXAMPLE",
        s3_secret_access_key="s3cr3t",
        s3_session_token="t0ken",
        env={"MODE": "test"},
        statement_timeout_s=1.5,
    )
    shown = repr(settings)
    assert not any(s in shown for s in ("hunter2", "AKIDEXAMPLE", "s3cr3t", "t0ken"))
    config = settings.to_proto()
    assert config.db_dsn == settings.db_dsn and config.s3.secret_access_key == "s3cr3t"
    assert config.statement_timeout.ToMilliseconds() == 1500
    assert dict(config.env) == {"MODE": "test"}


async def test_an_acquire_repeated_with_its_idempotency_key_gets_the_same_lease(
    start_manager: StartManager,
) -> None:
    manager = await process_manager(start_manager)
    session = SessionSettings(env={"RUN": "one"})
    async with SandboxClient([manager.address]) as client:
        first = await client.acquire(session, client_id="test", idempotency_key="run-1.1")
        again = await client.acquire(session, client_id="test", idempotency_key="run-1.1")
        assert again.lease_id == first.lease_id
        assert await leased_sandboxes(manager) == [first.sandbox_id]

        # Two at once (a retry racing the first call) get one lease too.
        both = await asyncio.gather(
            *(client.acquire(session, client_id="test", idempotency_key="run-2.1") for _ in "ab")
        )
        assert both[0].lease_id == both[1].lease_id != first.lease_id

        other = SessionSettings(env={"RUN": "two"})
        with pytest.raises(LeaseLost, match=r"idempotency_key 'run-1\.1' belongs to lease"):
            await client.acquire(other, client_id="test", idempotency_key="run-1.1")

        await client.release(first.lease_id)
        fresh = await client.acquire(session, client_id="test", idempotency_key="run-1.1")
        assert fresh.lease_id != first.lease_id  # a released lease is not handed out again
        for lease in (fresh, both[0]):
            await client.release(lease.lease_id)
    assert await leased_sandboxes(manager) == []


async def test_a_cell_that_prints_tens_of_megabytes_at_once_comes_back_whole(
    start_manager: StartManager,
) -> None:
    """A catalog of 3,000 tables exports its data as one print of about 30 MB: the manager
    sends it in chunks, each under the gRPC message limits, and the client joins them."""
    manager = await process_manager(start_manager)
    code = "print('é' * (12 * 1024 * 1024) + 'end')"  # 24 MB of UTF-8 in one write
    async with SandboxClient([manager.address]) as client, client.lease() as lease:
        run = await client.execute(lease.lease_id, code, max_output_bytes=64 * 1024 * 1024)
    assert run.ok, run.error
    stdout = run.whole_stdout()
    assert len(stdout) == 12 * 1024 * 1024 + 4 and stdout.endswith("end\n")
