"""The second held-out anomalies set: run histories from seven kinds of tables, with injected
anomalies, clean controls, constant and learning histories, and debatable cases.

Kinds of tables (the `subject` of a case, beside two companions that behave normally: a slowly
growing `customers` and a static `currencies`): hourly-loaded `events`, daily `orders`, daily
`orders` with weekday seasonality, a `sessions` table kept at a steady size by a retention job,
an `audit_log` shrinking steadily under a tightening retention, a static `ref_regions`, and a
`ledger_entries` table loaded once a month at closing. The current run is always the last.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from heldout2 import anomaly_inject as inj
from heldout2.anomaly_world import Col, Tab, catalog, grown, stamp, standard_cols

SEED = 7_2026
SUBJECT = {
    "hourly": "events",
    "daily": "orders",
    "seasonal": "orders",
    "retention": "sessions",
    "shrinking": "audit_log",
    "static": "ref_regions",
    "ledger": "ledger_entries",
}


@dataclass(frozen=True)
class Expect:
    table: str
    columns: frozenset[str]  # empty: any column (a table's figure)
    categories: frozenset[str]
    direction: str = ""  # up or down, for a volume finding


@dataclass
class Case:
    name: str
    group: str  # injected, clean, constant, learning, debatable
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    expect: Expect | None = None
    why: str = ""


@dataclass
class World:
    times: list[dt.datetime]
    subject: Tab
    others: list[Tab]

    def case(self, name: str, group: str, expect: Expect | None = None, why: str = "") -> Case:
        tabs = [self.subject, *self.others]
        runs = [(stamp(t), catalog(tabs, i, t)) for i, t in enumerate(self.times)]
        return Case(name, group, runs, expect, why)


def _times(rng: random.Random, pattern: str, n: int, last: dt.datetime) -> list[dt.datetime]:
    step = dt.timedelta(hours=1) if pattern == "hourly" else dt.timedelta(days=1)
    jitter = 2 if pattern == "hourly" else 6
    return [
        last - step * (n - 1 - k) + dt.timedelta(minutes=rng.uniform(0, jitter)) for k in range(n)
    ]


def _growth(rng: random.Random, pattern: str, times: list[dt.datetime], base: float) -> list[float]:
    if pattern == "hourly":
        return [base] * len(times)
    if pattern == "seasonal":  # a run at 02:00 loads the day before; weekends are quiet
        return [base * (0.15 if (t - dt.timedelta(days=1)).weekday() >= 5 else 1.0) for t in times]
    if pattern == "ledger":
        return [base * 40 if t.day == 1 else 0.0 for t in times]
    if pattern == "shrinking":
        return [-base] * len(times)
    if pattern in ("retention", "static"):
        return [0.0] * len(times)
    return [base] * len(times)


def world(rng: random.Random, pattern: str, n: int, last: dt.datetime) -> World:
    times = _times(rng, pattern, n, last)
    base = rng.uniform(3000, 4000) if pattern == "hourly" else rng.uniform(400, 6000)
    start = rng.randint(200_000, 2_000_000)
    if pattern == "retention":
        rows = [int(start * (1 + rng.gauss(0, 0.002))) for _ in times]
    else:
        rows = grown(rng, start, _growth(rng, pattern, times, base), 0.06)
    lag = {"hourly": 0.1, "static": 0.0}.get(pattern, 3.0)
    subject = Tab(SUBJECT[pattern], rows, standard_cols(rng, n, times, lag))
    created = subject.col("created_at")
    if pattern == "static":
        created.newest = [dt.datetime(2023, 6, 1, 9, 30)] * n
    if pattern == "ledger":  # the newest posting is the last closing day
        created.newest = [
            t.replace(day=1, hour=0, minute=0) - dt.timedelta(minutes=1) for t in times
        ]
    return World(times, subject, companions(rng, times))


def companions(rng: random.Random, times: list[dt.datetime]) -> list[Tab]:
    n = len(times)
    hours = max(1.0, (times[-1] - times[0]).total_seconds() / 3600 / max(1, n - 1))
    customers = Tab(
        "customers",
        grown(rng, rng.randint(20_000, 90_000), [40 * hours / 24] * n, 0.15),
        standard_cols(rng, n, times, 12.0),
    )
    currencies = Tab(
        "currencies",
        [40] * n,
        [
            Col("id", "key", "int64", [0.0] * n),
            Col("code", "text", "string", [0.0] * n, distinct=[40] * n),
            Col(
                "updated_at",
                "time",
                "timestamp(6)",
                [0.0] * n,
                newest=[dt.datetime(2024, 1, 15)] * n,
            ),
        ],
    )
    return [customers, currencies]


def _last(rng: random.Random, pattern: str, weekday: int | None = None) -> dt.datetime:
    day = dt.datetime(2025, 5, 1, 2, 0) + dt.timedelta(days=rng.randint(0, 120))
    if pattern == "ledger":
        day = day.replace(day=rng.randint(3, 27))
    if weekday is not None:
        day += dt.timedelta(days=(weekday - day.weekday()) % 7)
    return day


def cases() -> list[Case]:
    rng = random.Random(SEED)
    out: list[Case] = []
    for spec in inj.INJECTIONS:
        for k, pattern in enumerate(spec.patterns * spec.repeat):
            n = 36 if pattern == "seasonal" else rng.randint(12, 40)
            w = world(rng, pattern, n, _last(rng, pattern, spec.weekday))
            expect = spec.apply(rng, w.subject)
            out.append(w.case(f"{spec.name}-{pattern}-{k}", spec.group, expect, spec.why))
    out += inj.special_cases(rng, world, _last)
    return out
