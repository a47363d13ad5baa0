"""What the catalog client's schedule calls take and return: dataclasses over catalog.v1's
Schedule and Webhook messages (docs/schedules.md). Enum values this client does not know
read as UNSPECIFIED, as in _catalog_models.py."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from catalog.v1 import catalog_pb2 as pb

from services.common.clients._catalog_models import CatalogStatus, enum_from_proto, qualified


@dataclass(frozen=True)
class Webhook:
    """Where to POST a run's outcome when it ends; `events` among Webhook.EVENTS (empty:
    all). The orchestrator signs each delivery per Standard Webhooks."""

    EVENTS: ClassVar[tuple[str, ...]] = ("catalog.succeeded", "catalog.failed", "catalog.cancelled")

    url: str
    events: tuple[str, ...] = ()

    def to_proto(self) -> pb.Webhook:
        return pb.Webhook(url=self.url, events=list(self.events))

    @classmethod
    def parse(cls, text: str) -> Webhook:
        """`URL[,event...]`, as the CLI's --webhook takes it."""
        url, *events = [part.strip() for part in text.split(",")]
        return cls(url, tuple(e for e in events if e))


class Overlap(enum.StrEnum):
    """A tick while the schedule's last run still runs: SKIP it (recorded) or ALLOW it."""

    UNSPECIFIED = "UNSPECIFIED"
    SKIP = "SKIP"
    ALLOW = "ALLOW"

    def to_proto(self) -> pb.ScheduleOverlap.ValueType:
        return pb.ScheduleOverlap.Value(f"SCHEDULE_OVERLAP_{self.value}")


class CatchUp(enum.StrEnum):
    """Ticks missed while no orchestrator ran: run the LATEST once at start-up, or SKIP all."""

    UNSPECIFIED = "UNSPECIFIED"
    LATEST = "LATEST"
    SKIP = "SKIP"

    def to_proto(self) -> pb.ScheduleCatchUp.ValueType:
        return pb.ScheduleCatchUp.Value(f"SCHEDULE_CATCH_UP_{self.value}")


@dataclass(frozen=True)
class ScheduleRun:
    """A run a schedule started, for the tick at `tick_time`."""

    catalog_id: str
    tick_time: datetime | None
    status: CatalogStatus


@dataclass(frozen=True)
class SkippedTick:
    tick_time: datetime | None
    reason: str  # e.g. the last run still runs, or it was missed while no orchestrator ran


@dataclass(frozen=True)
class Schedule:
    """A schedule as the orchestrator shows it. Never holds the connection string (sealed).
    `recent_runs` and `skipped_ticks` (newest first) are filled by get_schedule only."""

    schedule_id: str
    cron: str
    time_zone: str  # IANA name; "" is UTC
    tables: tuple[str, ...]  # as runs name them: a source's `source/table`
    s3_prefix: str
    agents: tuple[str, ...]
    max_cost_usd: float
    request_webhooks: tuple[Webhook, ...]  # the request's own
    webhooks: tuple[Webhook, ...]  # the schedule's
    overlap: Overlap
    catch_up: CatchUp
    paused: bool
    next_fire_times: tuple[datetime, ...]  # the next five, UTC
    recent_runs: tuple[ScheduleRun, ...]
    skipped_ticks: tuple[SkippedTick, ...]
    sources: tuple[str, ...] = ()  # its sources by name; () for one db_conn_string


@dataclass(frozen=True)
class ScheduleList:
    """One page of ListSchedules, by id; `next_page_token` is "" on the last page."""

    schedules: tuple[Schedule, ...]
    next_page_token: str


def _when(message: pb.ScheduleRun | pb.SkippedTick) -> datetime | None:
    return message.tick_time.ToDatetime(tzinfo=UTC) if message.HasField("tick_time") else None


def _hooks(messages: Sequence[pb.Webhook]) -> tuple[Webhook, ...]:
    return tuple(Webhook(m.url, tuple(m.events)) for m in messages)


def schedule_from_proto(message: pb.Schedule) -> Schedule:
    request = message.request
    runs = (
        ScheduleRun(
            r.catalog_id,
            _when(r),
            enum_from_proto(CatalogStatus, pb.CatalogStatus.Name, r.status, "CATALOG_STATUS_"),
        )
        for r in message.recent_runs
    )
    return Schedule(
        schedule_id=message.schedule_id,
        cron=message.cron,
        time_zone=message.time_zone,
        tables=tuple(request.tables)
        + tuple(qualified(s.name, t) for s in request.sources for t in s.tables),
        s3_prefix=request.s3_prefix,
        agents=tuple(request.agents),
        max_cost_usd=request.max_cost_usd,
        request_webhooks=_hooks(request.webhooks),
        webhooks=_hooks(message.webhooks),
        overlap=enum_from_proto(
            Overlap, pb.ScheduleOverlap.Name, message.overlap, "SCHEDULE_OVERLAP_"
        ),
        catch_up=enum_from_proto(
            CatchUp, pb.ScheduleCatchUp.Name, message.catch_up, "SCHEDULE_CATCH_UP_"
        ),
        paused=message.paused,
        next_fire_times=tuple(t.ToDatetime(tzinfo=UTC) for t in message.next_fire_times),
        recent_runs=tuple(runs),
        skipped_ticks=tuple(SkippedTick(_when(s), s.reason) for s in message.skipped_ticks),
        sources=tuple(s.name for s in request.sources),
    )
