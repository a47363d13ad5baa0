"""The schedule API around the ticks: the `/schedules` HTTP routes, UpdateSchedule,
TriggerSchedule, and schedules across tenants, against a real orchestrator process whose runs
fail fast (no manager is there). Crons here fire at 03:00 at the soonest, so no tick lands
while a test runs: every run seen is one a test asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from catalog.v1 import catalog_pb2 as pb

from tests.orchestrator.schedule_kit import DSN, PASSWORD, env_for, request
from tests.orchestrator.stack import Orchestrator, start_orchestrator

NIGHTLY = "0 3 * * *"


def body(out: Path, cron: str = NIGHTLY, **fields: Any) -> dict[str, Any]:
    run = {"db_conn_string": DSN, "tables": ["t"], "s3_prefix": f"file://{out}"}
    return {"schedule": {"cron": cron, "request": run, **fields}}


async def test_the_schedule_routes_create_read_change_run_and_delete_a_schedule(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        made = await http.post("/schedules", json=body(tmp_path, time_zone="Asia/Tokyo"))
        assert made.status == 201, await made.text()
        created = await made.json()
        schedule_id = created["schedule_id"]
        assert created["schedule"]["time_zone"] == "Asia/Tokyo"
        assert len(created["schedule"]["next_fire_times"]) == 5
        assert PASSWORD not in json.dumps(created)

        got = await (await http.get(f"/schedules/{schedule_id}")).json()
        assert got["schedule"]["cron"] == NIGHTLY and got["schedule"]["tables"] == ["t"]
        listed = await (await http.get("/schedules")).json()
        assert [s["schedule_id"] for s in listed["schedules"]] == [schedule_id]

        paused = await (await http.post(f"/schedules/{schedule_id}/pause")).json()
        assert paused["schedule"]["paused"] is True
        changed = body(tmp_path, "30 4 * * 1", overlap="ALLOW")
        changed["schedule"]["request"]["db_conn_string"] = ""  # keeps the sealed one
        put = await http.put(f"/schedules/{schedule_id}", json=changed)
        assert put.status == 200, await put.text()
        updated = (await put.json())["schedule"]
        assert (updated["schedule_id"], updated["cron"]) == (schedule_id, "30 4 * * 1")
        assert updated["overlap"] == "ALLOW" and updated["paused"] is True
        resumed = await (await http.post(f"/schedules/{schedule_id}/resume")).json()
        assert resumed["schedule"]["paused"] is False

        triggered = await (await http.post(f"/schedules/{schedule_id}/trigger")).json()
        catalog = await (await http.get(f"/catalog/{triggered['catalog_id']}")).json()
        assert catalog["schedule_id"] == schedule_id, catalog

        deleted = await http.delete(f"/schedules/{schedule_id}")
        assert deleted.status == 204
        gone = await http.get(f"/schedules/{schedule_id}")
        assert gone.status == 404 and schedule_id in (await gone.json())["detail"]


async def test_the_schedule_routes_answer_bad_input_with_422_naming_the_field(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        bad_cron = await http.post("/schedules", json=body(tmp_path, "61 * * * *"))
        assert bad_cron.status == 422
        assert [d["loc"] for d in (await bad_cron.json())["detail"]] == [
            ["body", "schedule", "cron"]
        ]
        bad_zone = await http.post("/schedules", json=body(tmp_path, time_zone="Mars/Olympus"))
        assert bad_zone.status == 422
        assert ["body", "schedule", "time_zone"] in [
            d["loc"] for d in (await bad_zone.json())["detail"]
        ]
        no_cron = await http.post("/schedules", json={"schedule": {"request": {}}})
        assert no_cron.status == 422
        assert ["body", "schedule", "cron"] in [d["loc"] for d in (await no_cron.json())["detail"]]
        for method, path in (("GET", ""), ("POST", "/pause"), ("POST", "/trigger")):
            unknown = await http.request(method, f"/schedules/sch_nobody{path}")
            assert unknown.status == 404, (method, path)
        put = await http.put("/schedules/sch_nobody", json=body(tmp_path))
        assert put.status == 404


async def test_update_schedule_keeps_the_id_and_status_and_changes_the_cron_and_request(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    stub = orchestrator.stub
    schedule = pb.Schedule(cron=NIGHTLY, request=request(tmp_path))
    made = (await stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule))).schedule
    await stub.PauseSchedule(pb.PauseScheduleRequest(schedule_id=made.schedule_id))
    change = pb.Schedule(
        schedule_id=made.schedule_id,
        cron="15 5 * * *",
        time_zone="America/New_York",
        request=pb.StartCatalogRequest(tables=["t", "u"], s3_prefix=f"file://{tmp_path}/v2"),
    )  # no db_conn_string: the stored one is kept
    updated = (await stub.UpdateSchedule(pb.UpdateScheduleRequest(schedule=change))).schedule
    assert updated.schedule_id == made.schedule_id and updated.paused
    assert (updated.cron, updated.time_zone) == ("15 5 * * *", "America/New_York")
    assert list(updated.request.tables) == ["t", "u"]
    first = updated.next_fire_times[0].ToDatetime()
    assert (first.hour, first.minute) in {(9, 15), (10, 15)}  # 05:15 in New York, in UTC
    got = await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=made.schedule_id))
    assert got.schedule.cron == "15 5 * * *" and got.schedule.paused

    started = await stub.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=made.schedule_id))
    run = (await stub.GetCatalog(pb.GetCatalogRequest(catalog_id=started.catalog_id))).catalog
    assert list(run.tables) == ["t", "u"] and run.s3_prefix.endswith("/v2")

    change.cron = "not a cron"
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.UpdateSchedule(pb.UpdateScheduleRequest(schedule=change))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "schedule.cron" in (bad.value.details() or "")
    change.schedule_id = "sch_nobody"
    change.cron = NIGHTLY
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.UpdateSchedule(pb.UpdateScheduleRequest(schedule=change))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_trigger_schedule_starts_a_run_now_that_carries_the_schedule_id(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    stub = orchestrator.stub
    schedule = pb.Schedule(cron=NIGHTLY, request=request(tmp_path))
    made = (await stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule))).schedule
    started = await stub.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=made.schedule_id))
    assert started.catalog_id.startswith(f"{made.schedule_id}@")
    run = (await stub.GetCatalog(pb.GetCatalogRequest(catalog_id=started.catalog_id))).catalog
    assert run.schedule_id == made.schedule_id and run.tick_time.seconds
    listed = await stub.ListCatalogs(pb.ListCatalogsRequest(schedule_id=made.schedule_id))
    assert [c.catalog_id for c in listed.catalogs] == [started.catalog_id]
    got = await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=made.schedule_id))
    assert [r.catalog_id for r in got.schedule.recent_runs] == [started.catalog_id]
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.TriggerSchedule(pb.TriggerScheduleRequest())
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "schedule_id" in (empty.value.details() or "")


ACME_KEY, GLOBEX_KEY = "k-acme-sched-51c2", "k-globex-sched-9e04"


def bearer(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
async def tenants(tmp_path: Path) -> Any:
    for name in ("acme", "globex"):
        (tmp_path / name).mkdir()
    config = {
        name: {"keys": [key], "prefixes": [f"file://{tmp_path}/{name}"]}
        for name, key in (("acme", ACME_KEY), ("globex", GLOBEX_KEY))
    }
    env = env_for(tmp_path, CATALOG_TENANTS=json.dumps(config))
    started = await start_orchestrator(env, tmp_path / "orchestrator.log")
    yield started
    await started.stop()


async def test_another_tenants_schedule_is_not_found_over_grpc_and_http(
    tenants: Orchestrator, tmp_path: Path
) -> None:
    stub = tenants.stub
    schedule = pb.Schedule(cron=NIGHTLY, request=request(tmp_path / "acme"))
    made = await stub.CreateSchedule(
        pb.CreateScheduleRequest(schedule=schedule), metadata=bearer(ACME_KEY)
    )
    schedule_id = made.schedule.schedule_id
    theirs = bearer(GLOBEX_KEY)
    calls = [
        stub.GetSchedule(pb.GetScheduleRequest(schedule_id=schedule_id), metadata=theirs),
        stub.PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule_id), metadata=theirs),
        stub.ResumeSchedule(pb.ResumeScheduleRequest(schedule_id=schedule_id), metadata=theirs),
        stub.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=schedule_id), metadata=theirs),
        stub.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=schedule_id), metadata=theirs),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await call
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    schedule.schedule_id = schedule_id
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.UpdateSchedule(pb.UpdateScheduleRequest(schedule=schedule), metadata=theirs)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListSchedules(pb.ListSchedulesRequest(), metadata=theirs)
    assert not listed.schedules

    headers = {"Authorization": f"Bearer {GLOBEX_KEY}"}
    async with aiohttp.ClientSession(tenants.http_url, headers=headers) as http:
        assert (await http.get(f"/schedules/{schedule_id}")).status == 404
        assert (await http.post(f"/schedules/{schedule_id}/trigger")).status == 404
        assert (await http.delete(f"/schedules/{schedule_id}")).status == 404
        assert (await (await http.get("/schedules")).json())["schedules"] == []

    mine = await stub.GetSchedule(
        pb.GetScheduleRequest(schedule_id=schedule_id), metadata=bearer(ACME_KEY)
    )
    assert not mine.schedule.paused and not mine.schedule.recent_runs  # untouched by globex
