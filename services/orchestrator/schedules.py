"""A schedule as stored and as checked: cron, time zone, policies, the sealed request.

DBOS keeps schedules (`DBOS.create_schedule`, in its system database) and fires them; a
schedule's DBOS context is a `ScheduleSpec`, pickled there, so nothing in it is secret: the
DSN is sealed as a run's is (sealing.py). The checks here are pure: cron and zone parse, and
the cron does not fire more often than CATALOG_SCHEDULE_MIN_INTERVAL_S.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]

from services.common.source_names import split
from services.orchestrator.webhook_spec import Webhook

OVERLAPS = ("SKIP", "ALLOW")
CATCH_UPS = ("LATEST", "SKIP")
_PROBE_TICKS = 64  # the gaps between this many coming ticks bound the interval


@dataclass(frozen=True)
class ScheduleSpec:
    """What DBOS stores as the schedule's context and passes to each tick."""

    schedule_id: str
    tenant: str
    cron: str
    time_zone: str  # IANA name; "" is UTC
    # every source's DSN in one token (sources.seal_sources); opened only in the run's steps
    sealed_conn: str = field(repr=False)
    tables: tuple[str, ...]  # the run's table names (`billing/invoices` for a source's)
    s3_prefix: str  # validated and normalised
    allow_writable: bool = False
    agents: tuple[str, ...] = ()  # as the request named them (planned at each tick)
    max_cost_usd: float = 0.0
    request_webhooks: tuple[Webhook, ...] = ()  # the request's own
    webhooks: tuple[Webhook, ...] = ()  # the schedule's
    overlap: str = "SKIP"
    catch_up: str = "LATEST"
    # the run's sources by name, in request order; () for the shorthand (one, "default"), as
    # in schedules made before sources
    sources: tuple[str, ...] = ()

    @property
    def all_webhooks(self) -> tuple[Webhook, ...]:
        return self.webhooks + self.request_webhooks

    def request_sources(self) -> list[tuple[str, list[str]]]:
        """(name, tables as the request gave them) of each source; [] for the shorthand."""
        split_tables = [split(t) for t in self.tables]
        return [(n, [bare for s, bare in split_tables if s == n]) for n in self.sources]


def zone(name: str) -> ZoneInfo | None:
    """The zone named (None for "" = UTC); raises KeyError for an unknown name."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise KeyError(name) from exc


def cron_problems(cron: str, time_zone: str, min_interval_s: float) -> list[tuple[str, str]]:
    """Problems with the cron and the zone, each naming its field of `schedule`."""
    try:
        tz = zone(time_zone)
    except KeyError:
        return [("schedule.time_zone", f"{time_zone[:60]!r} is no IANA time zone, e.g. UTC")]
    fields = cron.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(cron, second_at_beginning=True):
        return [
            (
                "schedule.cron",
                "a cron expression of 5 fields (minute hour day month weekday) or 6 "
                "(seconds first), e.g. `0 3 * * *`",
            )
        ]
    ticks = next_ticks(cron, tz, datetime.now(UTC), _PROBE_TICKS)
    gap = min((b - a).total_seconds() for a, b in itertools.pairwise(ticks))
    if gap < min_interval_s:
        return [
            (
                "schedule.cron",
                f"fires every {gap:g} s at times; the shortest interval allowed is "
                f"{min_interval_s:g} s (CATALOG_SCHEDULE_MIN_INTERVAL_S)",
            )
        ]
    return []


def next_ticks(cron: str, tz: ZoneInfo | None, after: datetime, count: int) -> list[datetime]:
    """The next `count` ticks after `after`, in UTC (as DBOS computes them)."""
    it = croniter(cron, after.astimezone(tz or UTC), second_at_beginning=True)
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


def policy_problems(overlap: str, catch_up: str) -> list[tuple[str, str]]:
    problems = []
    if overlap not in OVERLAPS:
        problems.append(("schedule.overlap", f"one of {', '.join(OVERLAPS)}"))
    if catch_up not in CATCH_UPS:
        problems.append(("schedule.catch_up", f"one of {', '.join(CATCH_UPS)}"))
    return problems


def missed(spec: ScheduleSpec, tick: datetime, enqueued: datetime) -> bool:
    """A tick is a missed one (back-filled at start-up) when the tick after it had already
    come when it was enqueued; a live tick is enqueued within a tenth of its interval."""
    following = next_ticks(spec.cron, zone(spec.time_zone), tick, 1)[0]
    return following <= enqueued


def tick_stamp(tick: datetime) -> str:
    """A tick as it appears in a run's id: UTC, to the millisecond."""
    return tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{tick.microsecond // 1000:03d}Z"
