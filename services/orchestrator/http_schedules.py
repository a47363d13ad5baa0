"""HTTP routes under /schedules, beside `POST /catalog` (http_api.py), in the same shapes.

POST   /schedules                 {"schedule": {cron, time_zone, request, webhooks,
                                   overlap, catch_up}} -> 201 {"schedule_id", "schedule"}
GET    /schedules                 the caller's schedules
GET    /schedules/{id}            one, with next fire times, last runs, skipped ticks
PUT    /schedules/{id}            {"schedule": {...}} replaces its definition
POST   /schedules/{id}/pause | /resume | /trigger
DELETE /schedules/{id}            204
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, SecretStr

from services.orchestrator.auth import ApiGuard, Caller
from services.orchestrator.catalog_models import StartRequest
from services.orchestrator.schedule_ops import ScheduleOperations, ScheduleRequest, ScheduleView
from services.orchestrator.sources import Source
from services.orchestrator.webhook_spec import Webhook


class SourceBody(BaseModel):
    name: str = Field(description="a short identifier, e.g. `billing`; unique in the run")
    db_conn_string: SecretStr = Field(
        default=SecretStr(""),
        description="database URL, never shown; in a schedule's PUT, empty keeps the stored one",
    )
    tables: list[str] = Field(default=[], description="`table` or `schema.table` names")


def sources(bodies: list[SourceBody]) -> tuple[Source, ...]:
    return tuple(
        Source(b.name, b.db_conn_string.get_secret_value(), tuple(b.tables)) for b in bodies
    )


class WebhookBody(BaseModel):
    url: str
    events: list[str] = Field(default=[], description="empty: every event")


class ScheduledRequest(BaseModel):
    db_conn_string: SecretStr = Field(
        default=SecretStr(""), description="database URL; on PUT, empty keeps the stored one"
    )
    tables: list[str] = Field(default=[])
    sources: list[SourceBody] = Field(
        default=[], description="several databases; on PUT, an empty DSN keeps the source's"
    )
    s3_prefix: str = ""
    allow_writable: bool = False
    agents: list[str] = []
    max_cost_usd: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    webhooks: list[WebhookBody] = []


class ScheduleBody(BaseModel):
    cron: str
    time_zone: str = ""
    request: ScheduledRequest
    webhooks: list[WebhookBody] = []
    overlap: str = "SKIP"
    catch_up: str = "LATEST"


class ScheduleEnvelope(BaseModel):
    schedule: ScheduleBody


def webhooks(bodies: list[WebhookBody]) -> tuple[Webhook, ...]:
    return tuple(Webhook(b.url, tuple(b.events)) for b in bodies)


def _request(body: ScheduleBody) -> ScheduleRequest:
    r = body.request
    start = StartRequest(
        db_conn_string=r.db_conn_string.get_secret_value(),
        tables=r.tables,
        s3_prefix=r.s3_prefix,
        allow_writable=r.allow_writable,
        agents=r.agents,
        max_cost_usd=r.max_cost_usd,
        webhooks=webhooks(r.webhooks),
        sources=sources(r.sources),
    )
    return ScheduleRequest(
        body.cron, body.time_zone, start, webhooks(body.webhooks), body.overlap, body.catch_up
    )


def as_json(view: ScheduleView) -> dict[str, Any]:
    spec = asdict(view.spec)
    spec.pop("sealed_conn")  # sealed, and never shown
    spec["sources"] = [{"name": n, "tables": t} for n, t in view.spec.request_sources()]
    return {
        "schedule_id": view.spec.schedule_id,
        **spec,
        "paused": view.paused,
        "next_fire_times": [t.isoformat() for t in view.next_fire_times],
        "recent_runs": [asdict(r) for r in view.recent_runs],
        "skipped_ticks": [{"tick": s.tick, "reason": s.skipped} for s in view.skipped_ticks],
    }


def schedule_routes(schedules: ScheduleOperations, guard: ApiGuard) -> APIRouter:
    router = APIRouter(prefix="/schedules")
    as_caller = Depends(guard.http_caller())

    @router.post("", status_code=201)
    async def create(body: ScheduleEnvelope, caller: Caller = as_caller) -> dict[str, Any]:
        view = await schedules.create(_request(body.schedule), caller.tenant)
        return {"schedule_id": view.spec.schedule_id, "schedule": as_json(view)}

    @router.get("")
    async def list_all(
        page_size: int = 0, page_token: str = "", caller: Caller = as_caller
    ) -> dict[str, Any]:
        views, token = await schedules.list(caller.tenant, page_size, page_token)
        return {"schedules": [as_json(v) for v in views], "next_page_token": token}

    @router.get("/{schedule_id}")
    async def get(schedule_id: str, caller: Caller = as_caller) -> dict[str, Any]:
        return {"schedule": as_json(await schedules.get(schedule_id, caller.tenant))}

    @router.put("/{schedule_id}")
    async def update(
        schedule_id: str, body: ScheduleEnvelope, caller: Caller = as_caller
    ) -> dict[str, Any]:
        view = await schedules.update(schedule_id, _request(body.schedule), caller.tenant)
        return {"schedule": as_json(view)}

    @router.post("/{schedule_id}/pause")
    async def pause(schedule_id: str, caller: Caller = as_caller) -> dict[str, Any]:
        return {"schedule": as_json(await schedules.pause(schedule_id, caller.tenant))}

    @router.post("/{schedule_id}/resume")
    async def resume(schedule_id: str, caller: Caller = as_caller) -> dict[str, Any]:
        return {"schedule": as_json(await schedules.resume(schedule_id, caller.tenant))}

    @router.post("/{schedule_id}/trigger")
    async def trigger(schedule_id: str, caller: Caller = as_caller) -> dict[str, str]:
        outcome = await schedules.trigger(schedule_id, caller.tenant)
        return {"catalog_id": outcome.catalog_id, "skipped": outcome.skipped}

    @router.delete("/{schedule_id}", status_code=204)
    async def delete(schedule_id: str, caller: Caller = as_caller) -> Response:
        await schedules.delete(schedule_id, caller.tenant)
        return Response(status_code=204)

    return router
