"""Ticks missed while no orchestrator ran: with catch_up LATEST the latest of them runs once at
start-up and the others are recorded as skipped; with catch_up SKIP none runs.

The cron fires at four given seconds of each minute: one while the orchestrator runs (DBOS
backfills only after a schedule has fired once), then three while it is stopped, then none
for the rest of the minute. So every run after the restart is a catch-up run, and the test
counts them exactly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from catalog.v1 import catalog_pb2 as pb

from tests.orchestrator.schedule_kit import env_for, request, wait_for
from tests.orchestrator.stack import Orchestrator, start_orchestrator

LIVE_LEAD_S = 4  # from now to the tick that fires live
DOWN_TICKS = (8, 9, 10)  # seconds after it, while the orchestrator is stopped


def cron_at(first: int) -> str:
    seconds = sorted((first + offset) % 60 for offset in (0, *DOWN_TICKS))
    return f"{','.join(map(str, seconds))} * * * * *"


async def runs_of(o: Orchestrator, schedule_id: str) -> list[pb.Catalog]:
    found = await o.stub.ListCatalogs(pb.ListCatalogsRequest(schedule_id=schedule_id))
    return list(found.catalogs)


async def make(o: Orchestrator, cron: str, catch_up: int, out: Path) -> str:
    schedule = pb.Schedule(
        cron=cron, overlap=pb.SCHEDULE_OVERLAP_ALLOW, catch_up=catch_up, request=request(out)
    )
    made = await o.stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule))
    return made.schedule.schedule_id


async def test_ticks_missed_while_down_run_the_latest_once_or_none_as_catch_up_says(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path)
    o = await start_orchestrator(env, tmp_path / "orchestrator.log")
    first = int(time.time()) + LIVE_LEAD_S
    cron = cron_at(first)
    latest = await make(o, cron, pb.SCHEDULE_CATCH_UP_LATEST, tmp_path)
    skip = await make(o, cron, pb.SCHEDULE_CATCH_UP_SKIP, tmp_path)

    async def both_fired() -> bool:
        return all([await runs_of(o, latest), await runs_of(o, skip)])

    await wait_for(both_fired, LIVE_LEAD_S + 5)
    await o.stop()
    assert time.time() < first + DOWN_TICKS[0], "the orchestrator took too long to stop"
    await asyncio.sleep(first + DOWN_TICKS[-1] + 1 - time.time())  # every down tick is past
    o = await start_orchestrator(env, tmp_path / "orchestrator.log")
    try:

        async def caught_up() -> pb.Schedule | None:
            got = await o.stub.GetSchedule(pb.GetScheduleRequest(schedule_id=latest))
            return got.schedule if len(got.schedule.skipped_ticks) == 2 else None

        schedule = await wait_for(caught_up)
        await asyncio.sleep(2)  # room for a wrong second catch-up run to show
        ticks = sorted(r.tick_time.seconds for r in await runs_of(o, latest))
        assert ticks == [first, first + DOWN_TICKS[-1]]
        skipped = sorted(t.tick_time.seconds for t in schedule.skipped_ticks)
        assert skipped == [first + s for s in DOWN_TICKS[:-1]]
        assert all("missed" in t.reason for t in schedule.skipped_ticks)
        assert [r.tick_time.seconds for r in await runs_of(o, skip)] == [first]
    finally:
        await o.stop()
