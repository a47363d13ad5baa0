"""What the held-out anomalies set injects, and its special histories (learning, constant,
slow drift, a past one-off load, a missed run, the debatable ones)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from heldout2.anomaly_world import Tab

if TYPE_CHECKING:
    from heldout2.anomaly_set import Case, Expect, World

Apply = Callable[[random.Random, Tab], "Expect | None"]


def _expect(t: Tab, categories: str, columns: str = "", direction: str = "") -> Expect:
    from heldout2.anomaly_set import Expect

    return Expect(t.name, frozenset(columns.split()), frozenset(categories.split()), direction)


def drop(r: random.Random, t: Tab) -> Expect:
    """A partial load: this run added a twentieth of its usual rows."""
    t.rows[-1] = t.rows[-2] + (t.rows[-1] - t.rows[-2]) // 20
    return _expect(t, "volume", direction="down")


def truncate(r: random.Random, t: Tab) -> Expect:
    t.rows[-1] = t.rows[-2] // 10
    return _expect(t, "volume", direction="down")


def double(r: random.Random, t: Tab) -> Expect:
    """A bad deploy loaded everything twice."""
    t.rows[-1] = t.rows[-2] * 2
    return _expect(t, "volume", direction="up")


def purge(r: random.Random, t: Tab) -> Expect:
    t.rows[-1] = int(t.rows[-2] * 0.6)
    return _expect(t, "volume", direction="down")


def stale(r: random.Random, t: Tab) -> Expect:
    """The loader stopped: no new rows and the newest timestamp stuck, for the last two runs."""
    created = t.col("created_at")
    for j in (-2, -1):
        t.rows[j] = t.rows[-3]
        created.newest[j] = created.newest[-3]
    return _expect(t, "freshness volume", direction="down")


def null_jump(r: random.Random, t: Tab) -> Expect:
    column = r.choice(["note", "amount"])
    t.col(column).null_rate[-1] = min(1.0, t.col(column).null_rate[-2] + r.uniform(0.25, 0.5))
    return _expect(t, "distribution", column)


def retype(r: random.Random, t: Tab) -> Expect:
    t.col("cust_ref").types[len(t.rows) - 1] = "string"
    return _expect(t, "schema", "cust_ref")


def rename(r: random.Random, t: Tab) -> Expect:
    t.col("cust_ref").names[len(t.rows) - 1] = "customer_ref"
    return _expect(t, "schema", "cust_ref customer_ref")


def unit_change(r: random.Random, t: Tab) -> Expect:
    """Amounts arrive in cents: the mean is a hundred times bigger."""
    t.col("amount").mean[-1] *= 100
    return _expect(t, "distribution", "amount")


def collapse(r: random.Random, t: Tab) -> Expect:
    """A default value overwrote the notes: a handful of distinct values left."""
    t.col("note").distinct[-1] = 3
    return _expect(t, "distribution", "note")


def nothing(r: random.Random, t: Tab) -> None:
    return None


@dataclass(frozen=True)
class Spec:
    name: str
    apply: Apply
    patterns: list[str]
    repeat: int = 1
    group: str = "injected"
    weekday: int | None = None
    why: str = ""


ALL = ["hourly", "daily", "retention", "shrinking", "static", "ledger"]
INJECTIONS = [
    Spec("drop", drop, ["hourly", "daily"], 5),
    Spec("weekday-drop", drop, ["seasonal"], 4, weekday=2),
    Spec("truncate", truncate, ["hourly", "daily", "retention", "static"], 2),
    Spec("double", double, ["hourly", "daily", "retention", "static", "ledger"], 2),
    Spec("purge", purge, ["retention", "shrinking"], 3),
    Spec("stale", stale, ["hourly"], 8),
    Spec("null-jump", null_jump, ["hourly", "daily", "retention", "static"], 4),
    Spec("retype", retype, ["hourly", "daily", "static"], 2),
    Spec("rename", rename, ["hourly", "daily", "static"], 2),
    Spec("unit-change", unit_change, ["daily", "retention", "ledger"], 2),
    Spec("collapse", collapse, ["daily", "hourly"], 4),
    Spec("clean", nothing, ALL, 6, group="clean"),
    Spec("clean-saturday", nothing, ["seasonal"], 4, group="clean", weekday=6),
    Spec("clean-sunday", nothing, ["seasonal"], 3, group="clean", weekday=0),
    Spec("clean-monday", nothing, ["seasonal"], 3, group="clean", weekday=1),
]

WorldMaker = Callable[..., "World"]


def special_cases(rng: random.Random, world: WorldMaker, last: Callable[..., Any]) -> list[Case]:
    out: list[Case] = []
    out += [_creep(rng, world, last, k) for k in range(6)]
    out += [_past_spike(rng, world, last, k) for k in range(5)]
    out += [_missed_run(rng, world, last, k) for k in range(4)]
    out += [_constant(rng, world, last, k) for k in range(12)]
    out += [_learning(rng, world, last, k) for k in range(16)]
    out += [_closing_day(rng, world, last, k) for k in range(3)]
    out += [_stale_third(rng, world, last, k) for k in range(3)]
    return out


def _creep(rng: random.Random, world: WorldMaker, last: Callable[..., Any], k: int) -> Case:
    """The note's null rate creeps up a fifth of a point a run, the amount's mean 0.3%: drift
    that builds slowly, which a baseline of recent runs should follow without alerting."""
    w = world(rng, "daily", 40, last(rng, "daily"))
    note, amount = w.subject.col("note"), w.subject.col("amount")
    for i in range(len(w.times)):
        note.null_rate[i] = min(1.0, 0.02 + 0.002 * i + rng.gauss(0, 0.0005))
        amount.mean[i] = amount.mean[0] * (1.003**i)
    return w.case(f"slow-creep-daily-{k}", "clean")


def _past_spike(rng: random.Random, world: WorldMaker, last: Callable[..., Any], k: int) -> Case:
    """A one-off double load six runs ago stays in the append-only table; now all is normal."""
    w = world(rng, "daily", rng.randint(16, 30), last(rng, "daily"))
    rows = w.subject.rows
    extra = rows[-7]
    for j in range(len(rows) - 6, len(rows) + 1):
        rows[j - 1] += extra
    return w.case(f"past-spike-daily-{k}", "clean")


def _missed_run(rng: random.Random, world: WorldMaker, last: Callable[..., Any], k: int) -> Case:
    """The hourly job skipped two runs: the last run comes three hours after the one before,
    with three hours of rows."""
    w = world(rng, "hourly", 24, last(rng, "hourly"))
    for j in (-2, -3):
        del w.times[j]
        del w.subject.rows[j]
        for t in [w.subject, *w.others]:
            for c in t.cols:
                for values in (c.null_rate, c.mean, c.distinct, c.newest):
                    if values:
                        del values[j]
        for o in w.others:
            del o.rows[j]
    return w.case(f"missed-run-hourly-{k}", "clean")


def _constant(rng: random.Random, world: WorldMaker, last: Callable[..., Any], k: int) -> Case:
    """Every run identical: static tables, nothing moves (the last adds a row when k is odd)."""
    w = world(rng, "static", rng.randint(5, 25), last(rng, "static"))
    for t in [w.subject, *w.others]:
        t.rows = [t.rows[0]] * len(w.times)
        for c in t.cols:
            c.null_rate = [c.null_rate[0]] * len(w.times)
            c.mean = [c.mean[0]] * len(w.times) if c.mean else []
            c.distinct = [c.distinct[0]] * len(w.times) if c.distinct else []
            c.newest = [c.newest[0]] * len(w.times) if c.newest else []
    if k % 2:
        w.subject.rows[-1] += 1
    return w.case(f"constant-{k}", "constant")


def _learning(rng: random.Random, world: WorldMaker, last: Callable[..., Any], k: int) -> Case:
    """One to three earlier runs, then a wild change: too little history to judge."""
    pattern = ["hourly", "daily", "static", "retention"][k % 4]
    w = world(rng, pattern, 2 + k % 3, last(rng, pattern))
    [truncate, double, null_jump, unit_change][k // 4](rng, w.subject)
    return w.case(f"learning-{pattern}-{k}", "learning")


def _closing_day(rng: random.Random, world: WorldMaker, last: Callable[..., Any], k: int) -> Case:
    w = world(rng, "ledger", 95, last(rng, "ledger").replace(day=1))
    return w.case(
        f"closing-day-ledger-{k}",
        "debatable",
        why="the monthly closing load is normal, but a 14-run baseline cannot know it",
    )


def _stale_third(rng: random.Random, world: WorldMaker, last: Callable[..., Any], k: int) -> Case:
    w = world(rng, "hourly", 30, last(rng, "hourly"))
    created = w.subject.col("created_at")
    for j in (-3, -2, -1):
        w.subject.rows[j] = w.subject.rows[-4]
        created.newest[j] = created.newest[-4]
    return w.case(
        f"stale-third-run-hourly-{k}",
        "debatable",
        why="still stale, but after three runs the stale state may be the new normal",
    )
