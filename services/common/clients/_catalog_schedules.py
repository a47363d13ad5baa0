"""CatalogClient's schedule calls (docs/schedules.md), apart so each module stays short.

schedule = await catalogs.create_schedule(
    "0 3 * * *", dsn, ["shop.orders"], "s3://bucket/shop", time_zone="Europe/Paris",
    webhooks=[Webhook("https://hooks.example.com/catalog", ("catalog.failed",))],
)
run_id = await catalogs.trigger_schedule(schedule.schedule_id)  # a run now

Several databases: `create_schedule("0 3 * * *", s3_prefix=..., sources=[Source(...), ...])`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from catalog.v1 import catalog_pb2 as pb

from services.common.clients._catalog_models import Source
from services.common.clients._schedule_models import (
    CatchUp,
    Overlap,
    Schedule,
    ScheduleList,
    Webhook,
    schedule_from_proto,
)

if TYPE_CHECKING:
    from catalog.v1.catalog_pb2_grpc import CatalogServiceAsyncStub as _Stub

_T = TypeVar("_T")


def schedule_message(
    cron: str,
    db_conn_string: str,
    tables: Sequence[str],
    s3_prefix: str,
    *,
    sources: Sequence[Source] = (),
    schedule_id: str = "",
    time_zone: str = "",
    agents: Sequence[str] = (),
    max_cost_usd: float = 0.0,
    allow_writable: bool = False,
    webhooks: Sequence[Webhook] = (),
    overlap: Overlap = Overlap.SKIP,
    catch_up: CatchUp = CatchUp.LATEST,
) -> pb.Schedule:
    request = pb.StartCatalogRequest(
        db_conn_string=db_conn_string,
        tables=list(tables),
        s3_prefix=s3_prefix,
        allow_writable=allow_writable,
        agents=list(agents),
        max_cost_usd=max_cost_usd,
        sources=[s.to_proto() for s in sources],
    )
    return pb.Schedule(
        schedule_id=schedule_id,
        cron=cron,
        time_zone=time_zone,
        request=request,
        webhooks=[w.to_proto() for w in webhooks],
        overlap=overlap.to_proto(),
        catch_up=catch_up.to_proto(),
    )


class ScheduleCalls:
    """Mixed into CatalogClient, whose `_unary` retries each call on UNAVAILABLE."""

    async def _unary(
        self, what: str, call: Callable[[_Stub, float], Awaitable[_T]], timeout_s: float | None
    ) -> _T:
        raise NotImplementedError  # CatalogClient's

    async def create_schedule(
        self,
        cron: str,
        db_conn_string: str = "",
        tables: Sequence[str] = (),
        s3_prefix: str = "",
        *,
        sources: Sequence[Source] = (),
        time_zone: str = "",
        agents: Sequence[str] = (),
        max_cost_usd: float = 0.0,
        allow_writable: bool = False,
        webhooks: Sequence[Webhook] = (),
        overlap: Overlap = Overlap.SKIP,
        catch_up: CatchUp = CatchUp.LATEST,
        timeout_s: float | None = None,
    ) -> Schedule:
        """A schedule running this request at each tick of `cron` (5 fields, or 6 with
        seconds first) in `time_zone` (IANA; "" is UTC). Raises CatalogInvalidRequest naming
        the field for a bad cron or zone, or one firing too often. Several databases are
        `sources` instead of `db_conn_string` and `tables`, as `start` takes them."""
        message = schedule_message(
            cron, db_conn_string, tables, s3_prefix, sources=sources, time_zone=time_zone,
            agents=agents,
            max_cost_usd=max_cost_usd, allow_writable=allow_writable, webhooks=webhooks,
            overlap=overlap, catch_up=catch_up,
        )  # fmt: skip
        request = pb.CreateScheduleRequest(schedule=message)
        reply = await self._unary(
            "CreateSchedule", lambda stub, t: stub.CreateSchedule(request, timeout=t), timeout_s
        )
        return schedule_from_proto(reply.schedule)

    async def update_schedule(
        self,
        schedule_id: str,
        cron: str,
        tables: Sequence[str] = (),
        s3_prefix: str = "",
        *,
        db_conn_string: str = "",
        sources: Sequence[Source] = (),
        time_zone: str = "",
        agents: Sequence[str] = (),
        max_cost_usd: float = 0.0,
        allow_writable: bool = False,
        webhooks: Sequence[Webhook] = (),
        overlap: Overlap = Overlap.SKIP,
        catch_up: CatchUp = CatchUp.LATEST,
        timeout_s: float | None = None,
    ) -> Schedule:
        """Replace a schedule's definition, as create_schedule takes it; an empty
        `db_conn_string` keeps the stored one, as does a source's empty one (by its name).
        Its id, pause and history stay."""
        message = schedule_message(
            cron, db_conn_string, tables, s3_prefix, sources=sources, schedule_id=schedule_id,
            time_zone=time_zone, agents=agents, max_cost_usd=max_cost_usd,
            allow_writable=allow_writable, webhooks=webhooks, overlap=overlap, catch_up=catch_up,
        )  # fmt: skip
        request = pb.UpdateScheduleRequest(schedule=message)
        reply = await self._unary(
            "UpdateSchedule", lambda stub, t: stub.UpdateSchedule(request, timeout=t), timeout_s
        )
        return schedule_from_proto(reply.schedule)

    async def get_schedule(self, schedule_id: str, *, timeout_s: float | None = None) -> Schedule:
        """The schedule with its next five fire times, last runs and skipped ticks."""
        request = pb.GetScheduleRequest(schedule_id=schedule_id)
        reply = await self._unary(
            "GetSchedule", lambda stub, t: stub.GetSchedule(request, timeout=t), timeout_s
        )
        return schedule_from_proto(reply.schedule)

    async def list_schedules(
        self, *, page_size: int = 0, page_token: str = "", timeout_s: float | None = None
    ) -> ScheduleList:
        """One page of the caller's schedules, by id (without runs and skipped ticks)."""
        request = pb.ListSchedulesRequest(page_size=page_size, page_token=page_token)
        reply = await self._unary(
            "ListSchedules", lambda stub, t: stub.ListSchedules(request, timeout=t), timeout_s
        )
        found = tuple(schedule_from_proto(s) for s in reply.schedules)
        return ScheduleList(found, reply.next_page_token)

    async def pause_schedule(self, schedule_id: str, *, timeout_s: float | None = None) -> Schedule:
        request = pb.PauseScheduleRequest(schedule_id=schedule_id)
        reply = await self._unary(
            "PauseSchedule", lambda stub, t: stub.PauseSchedule(request, timeout=t), timeout_s
        )
        return schedule_from_proto(reply.schedule)

    async def resume_schedule(
        self, schedule_id: str, *, timeout_s: float | None = None
    ) -> Schedule:
        request = pb.ResumeScheduleRequest(schedule_id=schedule_id)
        reply = await self._unary(
            "ResumeSchedule", lambda stub, t: stub.ResumeSchedule(request, timeout=t), timeout_s
        )
        return schedule_from_proto(reply.schedule)

    async def trigger_schedule(self, schedule_id: str, *, timeout_s: float | None = None) -> str:
        """A run of the schedule now; returns its catalog id, or "" when the overlap policy
        (SKIP, while the last run still runs) skipped it."""
        request = pb.TriggerScheduleRequest(schedule_id=schedule_id)
        reply = await self._unary(
            "TriggerSchedule", lambda stub, t: stub.TriggerSchedule(request, timeout=t), timeout_s
        )
        return reply.catalog_id

    async def delete_schedule(self, schedule_id: str, *, timeout_s: float | None = None) -> None:
        """Delete the schedule; its runs stay."""
        request = pb.DeleteScheduleRequest(schedule_id=schedule_id)
        await self._unary(
            "DeleteSchedule", lambda stub, t: stub.DeleteSchedule(request, timeout=t), timeout_s
        )
