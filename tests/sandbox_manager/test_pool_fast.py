"""The pool against a fake backend (tests/fakes/sandbox_backend.py): every kernel is a fake in
memory behind a real KernelClient, so leases, refills, expiry and crashes are checked in
milliseconds. test_lifecycle.py checks the same behaviour through gRPC on real containers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from catalog_kernel.protocol import Message

from services.sandbox_manager.config import Settings
from services.sandbox_manager.errors import (
    BackendUnavailable,
    KeyInUse,
    LeaseBroken,
    LeaseNotFound,
    PoolExhausted,
)
from services.sandbox_manager.fleet import SandboxState
from services.sandbox_manager.leases import PoolLease
from services.sandbox_manager.pool import AcquireRequest, Pool
from tests.fakes.sandbox_backend import UNREACHABLE_HOST, FakeBackend

MakePool = Callable[..., Awaitable[tuple[Pool, FakeBackend]]]
SESSION = {"db_dsn": "duckdb:///data/shop.duckdb", "statement_timeout_s": 30}


@pytest.fixture
async def make_pool() -> AsyncIterator[MakePool]:
    pools: list[Pool] = []

    async def make(
        orphans: int = 0, failing: str = "", **settings: Any
    ) -> tuple[Pool, FakeBackend]:
        backend = FakeBackend(orphans=orphans)
        backend.failing = failing
        pool = Pool(Settings(**{"manager_id": "fast", **settings}), backend)
        pools.append(pool)
        await pool.start()
        return pool, backend

    yield make
    for pool in pools:
        await pool.close()


def request(session: dict[str, Any] | None = None, ttl_s: float = 60, wait_s: float = 5):
    return AcquireRequest(dict(session or SESSION), ttl_s, wait_s, {"job": "test"}, "tester")


async def eventually(check: Callable[[], bool], within_s: float = 5) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "the pool did not get there in time"
        await asyncio.sleep(0.01)


async def warm(pool: Pool, count: int) -> None:
    await eventually(lambda: pool.counts()[SandboxState.WARM] == count)


async def run(pool: Pool, lease: PoolLease, code: str) -> list[Message]:
    return [event async for event in pool.execute(lease.lease_id, code, 5, 10_000)]


async def test_an_acquire_takes_a_warm_sandbox_opens_the_session_and_the_pool_refills(
    make_pool: MakePool,
) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=3)
    await warm(pool, 1)
    lease, info = await pool.acquire(request())
    assert lease.lease_id.startswith("fast.") and (info.backend, info.read_only) == ("duckdb", True)
    leased = backend.sandbox(lease.sandbox_id)
    assert leased.fake.session == SESSION and leased.databases == [SESSION["db_dsn"]]
    assert pool.describe(lease.sandbox_id).state is SandboxState.LEASED
    await warm(pool, 1)  # a new warm one for the next caller, started in the background
    assert len(backend.started) == 2


async def test_a_cell_streams_its_output_and_a_failing_cell_is_data(make_pool: MakePool) -> None:
    pool, _ = await make_pool(min_warm=1, max_size=1)
    lease, _ = await pool.acquire(request())
    events = await run(pool, lease, "print('hi')")
    assert [e["ev"] for e in events] == ["stdout", "done"] and events[-1]["status"] == "ok"
    failed = await run(pool, lease, "fail")
    assert [e["ev"] for e in failed] == ["error", "done"] and failed[-1]["status"] == "error"
    assert pool.lease(lease.lease_id)[0] is lease  # the lease goes on


async def test_a_released_sandbox_is_destroyed_never_reused(make_pool: MakePool) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=2)
    first, _ = await pool.acquire(request())
    assert pool.release(first.lease_id) and not pool.release(first.lease_id)  # idempotent
    await eventually(lambda: backend.sandbox(first.sandbox_id).destroyed)
    with pytest.raises(LeaseNotFound, match="was released"):
        pool.lease(first.lease_id)
    second, _ = await pool.acquire(request())
    assert second.sandbox_id != first.sandbox_id


async def test_an_unused_lease_expires_and_its_sandbox_is_destroyed(make_pool: MakePool) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=1)
    lease, _ = await pool.acquire(request(ttl_s=0.2))
    await eventually(lambda: backend.sandbox(lease.sandbox_id).destroyed, within_s=3)
    with pytest.raises(LeaseNotFound, match="expired"):
        pool.lease(lease.lease_id)


async def test_a_full_pool_waits_then_raises_pool_exhausted(make_pool: MakePool) -> None:
    pool, _ = await make_pool(min_warm=1, max_size=1)
    held, _ = await pool.acquire(request())
    started = time.monotonic()
    with pytest.raises(PoolExhausted, match="all 1 sandboxes of manager fast are busy"):
        await pool.acquire(request(wait_s=0.3))
    assert time.monotonic() - started >= 0.3
    # A waiter gets a sandbox as soon as one is free again.
    waiting = asyncio.create_task(pool.acquire(request(wait_s=5)))
    await asyncio.sleep(0.05)
    pool.release(held.lease_id)
    lease, _ = await asyncio.wait_for(waiting, 5)
    assert lease.sandbox_id != held.sandbox_id


async def test_a_kernel_that_dies_mid_cell_breaks_the_lease_not_the_pool(
    make_pool: MakePool,
) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=2)
    lease, _ = await pool.acquire(request())
    events = await run(pool, lease, "die")
    assert [e["ev"] for e in events] == ["stdout", "error", "done"]
    assert events[1]["ename"] == "SandboxLost" and events[-1]["status"] == "crashed"
    with pytest.raises(LeaseBroken, match="release it and acquire another"):
        pool.lease(lease.lease_id)
    await eventually(lambda: backend.sandbox(lease.sandbox_id).destroyed)
    other, _ = await pool.acquire(request())  # the pool still serves
    assert (await run(pool, other, "1"))[-1]["status"] == "ok"


async def test_a_kernel_that_dies_as_the_lease_begins_is_replaced_unseen(
    make_pool: MakePool,
) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=2)
    await warm(pool, 1)
    doomed = backend.started[0]
    doomed.fake.die_on.add("start_session")
    lease, info = await pool.acquire(request())
    assert lease.sandbox_id != doomed.sandbox_id and info.read_only
    await eventually(lambda: doomed.destroyed)


async def test_a_warm_kernel_that_died_is_found_by_upkeep_and_replaced(
    make_pool: MakePool,
) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=1, health_interval_s=0.1)
    await warm(pool, 1)
    dead = backend.started[0]
    dead.fake.die()
    await eventually(lambda: dead.destroyed and len(backend.live) == 1, within_s=3)
    await warm(pool, 1)


async def test_a_reset_that_kills_the_kernel_breaks_the_lease(make_pool: MakePool) -> None:
    pool, _ = await make_pool(min_warm=1, max_size=1)
    lease, _ = await pool.acquire(request())
    pool.describe(lease.sandbox_id).instance.fake.die_on.add("reset")
    with pytest.raises(LeaseBroken, match="stopped during the reset"):
        await pool.reset(lease.lease_id, None)


async def test_a_cancelled_cell_is_interrupted_and_the_lease_stays_usable(
    make_pool: MakePool,
) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=1)
    lease, _ = await pool.acquire(request())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(run(pool, lease, "hang"), 0.1)
    assert "interrupt" in backend.sandbox(lease.sandbox_id).fake.ops()
    assert (await run(pool, lease, "after"))[-1]["status"] == "ok"


async def test_an_unreachable_database_is_the_session_s_connect_error(
    make_pool: MakePool,
) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=1)
    dsn = f"postgresql://reader@{UNREACHABLE_HOST}/shop"
    lease, info = await pool.acquire(request({"db_dsn": dsn}))
    assert UNREACHABLE_HOST in info.connect_error
    assert backend.sandbox(lease.sandbox_id).fake.session == {"db_dsn": ""}  # never the DSN


async def test_a_backend_that_cannot_start_anything_is_unavailable_until_it_recovers(
    make_pool: MakePool,
) -> None:
    pool, backend = await make_pool(min_warm=1, max_size=1, failing="the engine is down")
    with pytest.raises(BackendUnavailable, match="the engine is down"):
        await pool.acquire(request(wait_s=5))
    backend.failing = ""
    await warm(pool, 1)  # the upkeep starts one after the back-off
    lease, _ = await pool.acquire(request(wait_s=5))
    assert backend.sandbox(lease.sandbox_id).fake.session == SESSION


async def test_closing_destroys_every_sandbox_and_leftovers(make_pool: MakePool) -> None:
    pool, backend = await make_pool(orphans=2, min_warm=2, max_size=3)
    await pool.acquire(request())
    await warm(pool, 2)
    await pool.close()
    assert len(backend.started) == 3 and not backend.live and backend.closed


async def test_a_repeated_acquire_must_ask_for_the_same_databases(make_pool: MakePool) -> None:
    """The idempotency key's lease is given again only for the same session, databases too."""
    pool, _ = await make_pool(min_warm=1, max_size=2)

    def keyed(databases: list[dict[str, str]]) -> AcquireRequest:
        asked = request({"databases": databases, "statement_timeout_s": 30})
        return AcquireRequest(**{**asked.__dict__, "idempotency_key": "run-7.1"})

    first = [{"name": "app", "dsn": "duckdb:///data/a.duckdb"}]
    lease, _ = await pool.acquire(keyed(first))
    again, _ = await pool.acquire(keyed([dict(first[0])]))
    assert again.lease_id == lease.lease_id
    for other in (
        [{"name": "app", "dsn": "duckdb:///data/b.duckdb"}],
        [*first, {"name": "lake", "dsn": "duckdb:///data/a.duckdb"}],
    ):
        with pytest.raises(KeyInUse, match="another session"):
            await pool.acquire(keyed(other))


async def test_an_unreachable_database_of_several_reaches_the_kernel_as_its_reason_only(
    make_pool: MakePool,
) -> None:
    """The others are opened; the kernel gets the lost one's place (so `con` stays the first)
    with no DSN and a reason that names neither its host nor its password."""
    pool, backend = await make_pool(min_warm=1, max_size=1)
    app = {"name": "app", "dsn": "duckdb:///data/a.duckdb"}
    lost = {"name": "lost", "dsn": f"postgresql://reader:pw-1234@{UNREACHABLE_HOST}/shop"}
    lease, _ = await pool.acquire(request({"databases": [lost, app]}))
    sandbox = backend.sandbox(lease.sandbox_id)
    assert sandbox.fake.session == {
        "databases": [
            {"name": "lost", "dsn": "", "connect_error": "[redacted] does not resolve"},
            app,
        ]
    }
    assert sandbox.databases == [app["dsn"]]
