"""The workflow DBOS starts at each tick of a schedule: start the tick's run, or skip it.

DBOS fires a tick on every replica that runs the schedule, but under one workflow id per
tick (`sched-{schedule}-{tick}`), and the run it starts has one id per tick too
(`{schedule_id}@{tick}`): however many replicas fire, one run starts. The tick's outcome (its
run, or why it skipped) is this workflow's output, which GetSchedule lists.

Skipped: a tick whose next tick had already come when it was enqueued (a missed one that
DBOS back-filled at start-up: catch_up LATEST runs only the latest), and, with overlap SKIP,
a tick while the schedule's last run is still queued or running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dbos import DBOS, DBOSContextSetAuth, SetWorkflowID

from services.orchestrator.deliveries import start_deliveries
from services.orchestrator.schedules import ScheduleSpec, missed, tick_stamp
from services.orchestrator.steps.runtime import runtime
from services.orchestrator.workflows import WORKFLOW_NAME, CatalogInput, catalog_workflow

TICK_WORKFLOW = "schedule_tick"
RUN_QUEUE = "catalogs"
TICK_QUEUE = "schedule_ticks"
_LIVE = ["ENQUEUED", "DELAYED", "PENDING"]


@dataclass(frozen=True)
class TickOutcome:
    tick: str  # UTC ISO 8601
    catalog_id: str = ""  # the run started; "" when skipped
    skipped: str = ""  # why


def run_id(schedule_id: str, tick: datetime) -> str:
    return f"{schedule_id}@{tick_stamp(tick)}"


@DBOS.workflow(name=TICK_WORKFLOW)
async def schedule_tick(tick: datetime, spec: ScheduleSpec) -> TickOutcome:
    stamp = tick_stamp(tick)
    own = await DBOS.get_workflow_status_async(DBOS.workflow_id or "")
    created_ms = own.created_at if own else None
    enqueued = datetime.fromtimestamp((created_ms or 0) / 1000, tz=UTC)
    if created_ms and missed(spec, tick, enqueued):
        return TickOutcome(stamp, skipped="missed while no orchestrator ran; a later tick ran")
    if spec.overlap == "SKIP":
        live = await DBOS.list_workflows_async(
            name=WORKFLOW_NAME,
            workflow_id_prefix=f"{spec.schedule_id}@",
            status=_LIVE,
            limit=1,
            load_input=False,
            load_output=False,
        )
        if live:
            return TickOutcome(stamp, skipped=f"the last run, {live[0].workflow_id}, still runs")
    catalog_id = run_id(spec.schedule_id, tick)
    with SetWorkflowID(catalog_id), DBOSContextSetAuth(spec.tenant, None):
        await DBOS.enqueue_workflow_async(RUN_QUEUE, catalog_workflow, _run_input(spec, stamp))
    await start_deliveries(catalog_id, spec.all_webhooks)
    return TickOutcome(stamp, catalog_id=catalog_id)


def _run_input(spec: ScheduleSpec, stamp: str) -> CatalogInput:
    return CatalogInput(
        sealed_conn=spec.sealed_conn,
        tables=list(spec.tables),
        s3_prefix=spec.s3_prefix,
        allow_writable=spec.allow_writable,
        tenant=spec.tenant,
        agents=tuple(runtime().pipeline.plan(spec.agents)),
        max_cost_usd=spec.max_cost_usd,
        schedule_id=spec.schedule_id,
        tick_time=stamp,
        sources=spec.sources,
    )
