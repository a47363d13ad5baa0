"""Schedules and webhooks against a real orchestrator process and a real local receiver that
verifies every signature with the `standardwebhooks` package.

The runs need no sandbox: the orchestrator is pointed at a manager that is not there, so each
run fails (SANDBOX_UNAVAILABLE) after about a second; what is tested is what happens around
runs: ticks, skips, pauses, deliveries, retries, a restart.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from catalog.v1 import catalog_pb2 as pb
from cryptography.fernet import Fernet

from tests.orchestrator.schedule_kit import (
    PASSWORD,
    Receiver,
    deliveries,
    env_for,
    request,
    wait_for,
)
from tests.orchestrator.stack import Orchestrator, start_orchestrator


async def test_a_schedule_fires_skips_a_tick_while_its_run_runs_pauses_resumes_and_is_deleted(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    stub = orchestrator.stub
    made = await stub.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=pb.Schedule(
                cron="* * * * * *", time_zone="Europe/Paris", request=request(tmp_path)
            )
        )
    )
    schedule_id = made.schedule.schedule_id
    assert len(made.schedule.next_fire_times) == 5 and not made.schedule.request.db_conn_string

    async def fired_and_skipped() -> pb.Schedule | None:
        got = (await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=schedule_id))).schedule
        return got if got.recent_runs and got.skipped_ticks else None

    seen = await wait_for(fired_and_skipped)
    assert "still runs" in seen.skipped_ticks[0].reason
    listed = await stub.ListCatalogs(pb.ListCatalogsRequest(schedule_id=schedule_id))
    assert {c.catalog_id for c in listed.catalogs} >= {r.catalog_id for r in seen.recent_runs}
    assert all(c.schedule_id == schedule_id and c.tick_time.seconds for c in listed.catalogs)

    paused = await stub.PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule_id))
    assert paused.schedule.paused
    await asyncio.sleep(2)  # a tick in flight at the pause may still land
    before = len(
        (await stub.ListCatalogs(pb.ListCatalogsRequest(schedule_id=schedule_id))).catalogs
    )
    await asyncio.sleep(3)
    after = len((await stub.ListCatalogs(pb.ListCatalogsRequest(schedule_id=schedule_id))).catalogs)
    assert after == before

    await stub.ResumeSchedule(pb.ResumeScheduleRequest(schedule_id=schedule_id))

    async def more_runs() -> bool:
        runs = await stub.ListCatalogs(pb.ListCatalogsRequest(schedule_id=schedule_id))
        return len(runs.catalogs) > after

    await wait_for(more_runs)
    await stub.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=schedule_id))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=schedule_id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND

    system_db = sqlite3.connect(tmp_path / "dbos.sqlite")
    for (table,) in system_db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        for row in system_db.execute(f'SELECT * FROM "{table}"'):
            assert PASSWORD not in repr(row), f"the DSN's password is in {table}"
    system_db.close()


BAD_SCHEDULES = [
    (pb.Schedule(cron="61 * * * *"), "schedule.cron"),
    (pb.Schedule(cron="0 3 * * *", time_zone="Mars/Olympus"), "schedule.time_zone"),
    (pb.Schedule(cron="* * * * * *"), "CATALOG_SCHEDULE_MIN_INTERVAL_S"),
    (
        pb.Schedule(cron="0 3 * * *", overlap=pb.SCHEDULE_OVERLAP_SKIP),
        "schedule.request.tables[0]",
    ),
]


async def test_a_bad_schedule_is_invalid_argument_naming_its_field(tmp_path: Path) -> None:
    env = env_for(tmp_path, CATALOG_SCHEDULE_MIN_INTERVAL_S="60")
    o = await start_orchestrator(env, tmp_path / "orchestrator.log")
    try:
        for schedule, named in BAD_SCHEDULES:
            schedule.request.CopyFrom(request(tmp_path))
            if named.endswith("tables[0]"):  # an empty name (an empty list lists the schema)
                schedule.request.tables[0] = ""
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await o.stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert named in (bad.value.details() or ""), bad.value.details()
            assert PASSWORD not in (bad.value.details() or "")
    finally:
        await o.stop()


async def test_a_receiver_that_fails_twice_gets_three_attempts_with_one_id(
    orchestrator: Orchestrator, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answers = [500, 503]
    hook = pb.Webhook(url=receiver.url, events=["catalog.failed"])
    started = await orchestrator.stub.StartCatalog(request(tmp_path, hook))

    async def delivered() -> list[pb.WebhookDelivery] | None:
        found = await deliveries(orchestrator, started.catalog_id)
        return found if found and found[0].state == pb.DELIVERY_STATE_DELIVERED else None

    (record,) = await wait_for(delivered)
    assert record.attempts == 3 and record.last_status_code == 204
    assert {webhook_id for webhook_id, _ in receiver.got} == {record.webhook_id}
    payload = receiver.got[-1][1]
    assert payload["type"] == "catalog.failed"
    assert payload["data"]["catalog_id"] == started.catalog_id  # type: ignore[index]
    assert payload["data"]["error"]["code"] == "SANDBOX_UNAVAILABLE"  # type: ignore[index]
    assert PASSWORD not in repr(payload)
    got = await orchestrator.stub.GetCatalog(pb.GetCatalogRequest(catalog_id=started.catalog_id))
    assert got.catalog.status == pb.CATALOG_STATUS_FAILED  # the receiver's answers changed nothing


async def test_a_receiver_that_never_answers_is_given_up_after_the_retry_period(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.answers = [0] * 20
    env = env_for(tmp_path, CATALOG_WEBHOOK_TIMEOUT_S="0.5", CATALOG_WEBHOOK_RETRY_S="1.5")
    o = await start_orchestrator(env, tmp_path / "orchestrator.log")
    try:
        started = await o.stub.StartCatalog(request(tmp_path, pb.Webhook(url=receiver.url)))

        async def failed() -> list[pb.WebhookDelivery] | None:
            found = await deliveries(o, started.catalog_id)
            return found if found and found[0].state == pb.DELIVERY_STATE_FAILED else None

        (record,) = await wait_for(failed)
        assert "no answer within 0.5 s" in record.last_error
        assert record.attempts >= 2 and record.last_status_code == 0
    finally:
        await o.stop()


async def test_a_delivery_cut_off_by_sigkill_is_made_after_restart_with_the_same_id(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.answers = [500]
    env = env_for(tmp_path, CATALOG_WEBHOOK_BACKOFF_S="4")
    o = await start_orchestrator(env, tmp_path / "orchestrator.log")
    started = await o.stub.StartCatalog(request(tmp_path, pb.Webhook(url=receiver.url)))

    async def first_attempt() -> bool:
        return bool(receiver.got)

    await wait_for(first_attempt)
    await o.stop(signal.SIGKILL)  # during the four seconds before the second attempt
    restarted = await start_orchestrator(env, tmp_path / "orchestrator.log")
    try:

        async def delivered() -> list[pb.WebhookDelivery] | None:
            found = await deliveries(restarted, started.catalog_id)
            return found if found and found[0].state == pb.DELIVERY_STATE_DELIVERED else None

        (record,) = await wait_for(delivered, 60)
        assert len(receiver.got) == 2
        assert {webhook_id for webhook_id, _ in receiver.got} == {record.webhook_id}
    finally:
        await restarted.stop()


async def test_a_webhook_to_a_private_address_is_refused_without_the_setting(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = env_for(tmp_path, CATALOG_WEBHOOK_ALLOW_PRIVATE="")
    o = await start_orchestrator(env, tmp_path / "orchestrator.log")
    try:
        started = await o.stub.StartCatalog(request(tmp_path, pb.Webhook(url=receiver.url)))

        async def failed() -> list[pb.WebhookDelivery] | None:
            found = await deliveries(o, started.catalog_id)
            return found if found and found[0].state == pb.DELIVERY_STATE_FAILED else None

        (record,) = await wait_for(failed)
        assert "loopback" in record.last_error and not receiver.got
    finally:
        await o.stop()


@pytest.fixture
def system_database() -> Iterator[str]:
    """A fresh PostgreSQL database for DBOS, dropped after the test."""
    name = f"catalog_sched_{uuid.uuid4().hex[:10]}"
    admin_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.postgres
async def test_two_replicas_on_one_postgres_start_one_run_per_tick(
    tmp_path: Path, system_database: str
) -> None:
    shared = {
        "DBOS_SYSTEM_DATABASE_URL": system_database,
        "CATALOG_SECRET_KEY": Fernet.generate_key().decode(),
    }
    replicas = []
    try:
        for name in ("a", "b"):
            env = env_for(tmp_path, CATALOG_EXECUTOR_ID=f"replica-{name}", **shared)
            replicas.append(await start_orchestrator(env, tmp_path / f"{name}.log"))
        schedule = pb.Schedule(
            cron="* * * * * *", overlap=pb.SCHEDULE_OVERLAP_ALLOW, request=request(tmp_path)
        )
        made = await replicas[0].stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule))
        schedule_id = made.schedule.schedule_id
        await asyncio.sleep(8)
        await replicas[1].stub.PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule_id))
        await asyncio.sleep(1.5)
    finally:
        for replica in replicas:
            await replica.stop()
    with psycopg.connect(system_database) as db:
        rows = db.execute(
            "SELECT name, workflow_uuid, executor_id FROM dbos.workflow_status"
            " WHERE workflow_uuid LIKE %s OR workflow_uuid LIKE %s",
            (f"{schedule_id}@%", f"sched-{schedule_id}-%"),
        ).fetchall()
    ticks = [r for r in rows if r[0] == "schedule_tick"]
    runs = [r for r in rows if r[0] == "catalog_workflow"]
    assert len(ticks) >= 5
    assert len(runs) == len(ticks)  # one run per tick, none twice, none lost
    assert len({r[1] for r in runs}) == len(runs)
