"""Schedules in domain terms: create, read, list, update, pause, resume, delete, trigger.

Both APIs translate to and from this module. DBOS stores and fires the schedules
(`DBOS.create_schedule` and friends); the schedule's name in DBOS is its id, its context a
ScheduleSpec. A schedule belongs to the tenant that made it: another tenant's is NotFound
with the very message an unknown id gets.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

from services.common import paging
from services.common.errors import InvalidArgument, NotFound
from services.orchestrator.catalog_models import StartRequest
from services.orchestrator.schedule_tick import TICK_QUEUE, TICK_WORKFLOW, TickOutcome
from services.orchestrator.schedule_tick import schedule_tick as tick_workflow
from services.orchestrator.schedules import (
    ScheduleSpec,
    cron_problems,
    next_ticks,
    policy_problems,
    zone,
)
from services.orchestrator.service import CatalogOperations
from services.orchestrator.sources import run_tables
from services.orchestrator.tenants import Tenant
from services.orchestrator.webhook_spec import Webhook

_TICK: Any = tick_workflow  # DBOS types a scheduled workflow as returning None
_HISTORY = 20  # ticks GetSchedule looks back over


@dataclass(frozen=True)
class ScheduleRequest:
    """A schedule as a caller writes it (`schedule: {cron, time_zone, request, ...}`)."""

    cron: str
    time_zone: str
    request: StartRequest
    webhooks: Sequence[Webhook] = ()
    overlap: str = "SKIP"
    catch_up: str = "LATEST"


@dataclass(frozen=True)
class RunOfSchedule:
    catalog_id: str
    tick: str
    status: str  # as CatalogView.status


@dataclass(frozen=True)
class ScheduleView:
    spec: ScheduleSpec
    paused: bool
    next_fire_times: list[datetime] = field(default_factory=list)
    recent_runs: list[RunOfSchedule] = field(default_factory=list)
    skipped_ticks: list[TickOutcome] = field(default_factory=list)


class ScheduleOperations:
    def __init__(self, catalogs: CatalogOperations, min_interval_s: float) -> None:
        self._catalogs = catalogs
        self._min_interval_s = min_interval_s

    async def create(self, request: ScheduleRequest, tenant: Tenant) -> ScheduleView:
        spec = self._spec(request, tenant, f"sch_{uuid.uuid4().hex}", sealed="")
        await DBOS.create_schedule_async(
            schedule_name=spec.schedule_id,
            workflow_fn=_TICK,
            schedule=spec.cron,
            context=spec,
            automatic_backfill=spec.catch_up == "LATEST",
            cron_timezone=spec.time_zone or None,
            queue_name=TICK_QUEUE,
        )
        return await self.get(spec.schedule_id, tenant)

    async def update(
        self, schedule_id: str, request: ScheduleRequest, tenant: Tenant
    ) -> ScheduleView:
        old = await self._owned(schedule_id, tenant)
        spec = self._spec(request, tenant, schedule_id, sealed=old.sealed_conn)
        entry: Any = {
            "schedule_name": schedule_id,
            "workflow_fn": _TICK,
            "schedule": spec.cron,
            "context": spec,
            "automatic_backfill": spec.catch_up == "LATEST",
            "cron_timezone": spec.time_zone or None,
            "queue_name": TICK_QUEUE,
        }
        await DBOS.apply_schedules_async([entry])  # keeps the id, status and last tick
        return await self.get(schedule_id, tenant)

    def _spec(
        self, request: ScheduleRequest, tenant: Tenant, schedule_id: str, *, sealed: str
    ) -> ScheduleSpec:
        """The spec, once every field is checked (all problems at once, each named)."""
        start = request.request
        problems = cron_problems(request.cron, request.time_zone, self._min_interval_s)
        problems += policy_problems(request.overlap, request.catch_up)
        problems += self._catalogs.webhook_problems(request.webhooks, "schedule.webhooks")
        if start.idempotency_key:
            problems.append(
                ("schedule.request.idempotency_key", "leave it empty: each tick keys its run")
            )
        # an update keeps the stored DSN of each source (by name) it gives none for
        start = start.with_kept_dsns(self._catalogs.stored_dsns(sealed))
        try:
            prefix = self._catalogs.check(start, tenant, field_prefix="schedule.request.")
        except InvalidArgument as exc:
            problems = list(exc.field_violations) + problems
        if problems:
            named = "; ".join(f"{name}: {why}" for name, why in problems)
            raise InvalidArgument(f"the schedule is invalid: {named}", field_violations=problems)
        sources = start.run_sources()
        return ScheduleSpec(
            schedule_id=schedule_id,
            tenant=tenant.name,
            cron=request.cron,
            time_zone=request.time_zone,
            sealed_conn=self._catalogs.seal_sources(start),
            tables=tuple(run_tables(sources)),
            s3_prefix=prefix,
            allow_writable=start.allow_writable,
            agents=tuple(start.agents),
            max_cost_usd=start.max_cost_usd,
            request_webhooks=tuple(start.webhooks),
            webhooks=tuple(request.webhooks),
            overlap=request.overlap,
            catch_up=request.catch_up,
            sources=tuple(s.name for s in sources) if start.sources else (),
        )

    async def _owned(self, schedule_id: str, tenant: Tenant) -> ScheduleSpec:
        found = await DBOS.get_schedule_async(schedule_id) if schedule_id else None
        spec = found["context"] if found else None
        if not isinstance(spec, ScheduleSpec) or spec.tenant != tenant.name:
            raise NotFound(f"no schedule has the id {schedule_id!r}")
        return spec

    async def get(self, schedule_id: str, tenant: Tenant) -> ScheduleView:
        await self._owned(schedule_id, tenant)
        found = await DBOS.get_schedule_async(schedule_id)
        if found is None:
            raise NotFound(f"no schedule has the id {schedule_id!r}")
        view = _view(found)
        runs, skipped = await _history(schedule_id, self._catalogs)
        return replace(view, recent_runs=runs, skipped_ticks=skipped)

    async def list(
        self, tenant: Tenant, page_size: int, page_token: str
    ) -> tuple[list[ScheduleView], str]:
        offset = paging.page_offset(page_token, "schedules")
        size = paging.page_size(page_size, 50, 200)
        found = await DBOS.list_schedules_async(workflow_name=TICK_WORKFLOW)
        mine = [
            s
            for s in found
            if isinstance(s["context"], ScheduleSpec) and s["context"].tenant == tenant.name
        ]
        mine.sort(key=lambda s: s["schedule_name"])
        page = [_view(s) for s in mine[offset : offset + size]]
        more = len(mine) > offset + size
        return page, (paging.page_token(offset + size, "schedules") if more else "")

    async def pause(self, schedule_id: str, tenant: Tenant) -> ScheduleView:
        await self._owned(schedule_id, tenant)
        await asyncio.to_thread(DBOS.pause_schedule, schedule_id)
        return await self.get(schedule_id, tenant)

    async def resume(self, schedule_id: str, tenant: Tenant) -> ScheduleView:
        await self._owned(schedule_id, tenant)
        await asyncio.to_thread(DBOS.resume_schedule, schedule_id)
        return await self.get(schedule_id, tenant)

    async def delete(self, schedule_id: str, tenant: Tenant) -> None:
        await self._owned(schedule_id, tenant)
        await DBOS.delete_schedule_async(schedule_id)

    async def trigger(self, schedule_id: str, tenant: Tenant) -> TickOutcome:
        """A tick now; the overlap policy applies. Returns what the tick did."""
        await self._owned(schedule_id, tenant)
        handle: Any = await asyncio.to_thread(DBOS.trigger_schedule, schedule_id)
        result = await asyncio.to_thread(handle.get_result)
        assert isinstance(result, TickOutcome)
        return result


def _view(found: Any) -> ScheduleView:
    spec: ScheduleSpec = found["context"]
    ticks = next_ticks(spec.cron, zone(spec.time_zone), datetime.now(UTC), 5)
    return ScheduleView(spec, paused=found["status"] != "ACTIVE", next_fire_times=ticks)


async def _history(
    schedule_id: str, catalogs: CatalogOperations
) -> tuple[list[RunOfSchedule], list[TickOutcome]]:
    ticks = await DBOS.list_workflows_async(
        name=TICK_WORKFLOW, schedule_name=schedule_id, status=["SUCCESS"], limit=_HISTORY,
        sort_desc=True, load_input=False,
    )  # fmt: skip
    outcomes = [t.output for t in ticks if isinstance(t.output, TickOutcome)]
    runs = []
    for outcome in outcomes:
        if outcome.catalog_id:
            status = await catalogs.status_of(outcome.catalog_id)
            runs.append(RunOfSchedule(outcome.catalog_id, outcome.tick, status))
    return runs, [o for o in outcomes if o.skipped]
