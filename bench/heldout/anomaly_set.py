"""The held-out anomalies set: run histories of four tables, with one anomaly or none.

Each case is a list of (timestamp, catalog data) runs, oldest first, the last one judged. The
tables (anomaly_sim.py): shop.orders and events.page_views grow by the hour, hr.employees is
reloaded nightly, ref.currencies never changes. Runs are daily (some twice a day) with a few
minutes of jitter.

Injected (the current run): a row drop or spike, a load that stopped (stale), a null-rate jump
(on columns that had a steady rate and on columns that never had a null), a type change, a
rename, a unit change (x100, x1000), distinct values collapsing to one, and a weekday that
loaded a weekend's volume in a history with quiet weekends. Three in ten also hold a one-off
anomaly of the same table in their past.
Clean (nothing to find): noise only; orders growing 2% a day; quiet weekends over three to six
weeks; a one-off anomaly a few runs back; runs missed for days before this one; one null
appearing in a column that never had one; histories where nothing ever changes; learning
histories (1 to 3 earlier runs) with or without a gross anomaly, where nothing may be said.
Unscored: a frozen reference table with a timestamp column (is a table nobody writes to ever
"stale"? reasonable people differ), reported apart.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from heldout import anomaly_edits as ed
from heldout.anomaly_sim import Employees, Orders, PageViews, Profile, Static

SEED = 4242
Catalog = dict[str, Any]
Edit = Callable[[Catalog], None]
ORDERS, VIEWS, EMPS = "shop.orders", "events.page_views", "hr.employees"


@dataclass
class Case:
    name: str
    kind: str
    runs: list[tuple[str, Catalog]]
    table: str | None = None  # where the anomaly is; None for a clean history
    columns: tuple[str, ...] = ()  # empty: the table as a whole
    accept: frozenset[str] = frozenset()  # finding categories that name it
    scored: bool = True
    note: str = ""


@dataclass
class Plan:
    """How one history unfolds: its shape, and what happens at which run (-1: the current)."""

    earlier: int
    every_h: float = 24.0
    weekly: bool = False
    trend: float = 0.0
    gap_days: int = 0
    current_weekday: int | None = None
    static_only: bool = False
    static_time: bool = False
    factors: dict[tuple[int, str], float] = field(default_factory=dict)
    frozen: set[tuple[int, str]] = field(default_factory=set)
    edits: dict[int, list[Edit]] = field(default_factory=dict)


def stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _times(rng: random.Random, plan: Plan) -> list[dt.datetime]:
    current = dt.datetime(2024, 2, 5, 6, 0, tzinfo=dt.UTC) + dt.timedelta(days=rng.randint(0, 180))
    if plan.current_weekday is not None:
        current += dt.timedelta(days=(plan.current_weekday - current.weekday()) % 7)
    step = dt.timedelta(hours=plan.every_h)
    out = [current]
    for k in range(plan.earlier):
        extra = dt.timedelta(days=plan.gap_days) if k == 0 else dt.timedelta()
        out.append(out[-1] - step - extra)
    jittered = [t + dt.timedelta(seconds=rng.randint(-600, 600)) for t in reversed(out[1:])]
    return [*jittered, current + dt.timedelta(seconds=rng.randint(0, 300))]


def simulate(rng: random.Random, plan: Plan) -> list[tuple[str, Catalog]]:
    """The runs of `plan`, oldest first: each table stepped to each run's time and profiled."""
    at = _times(rng, plan)
    tables: list[Any]
    if plan.static_only or plan.static_time:
        tables = [
            Static("ref.currencies", 160, plan.static_time),
            Static("ref.countries", 249),
            Static("hr.departments", 40),
        ]
    else:
        tables = [
            Orders(rng, at[0], rng.uniform(800, 5000), plan.trend, plan.weekly),
            PageViews(rng, at[0], plan.weekly),
            Employees(rng, at[0]),
            Static("ref.currencies", 160),
        ]
    runs = []
    n = len(at)
    for i, when in enumerate(at):
        hours = (when - at[i - 1]).total_seconds() / 3600 if i else plan.every_h
        back = i - n  # -1 is the current run
        found: dict[str, Profile] = {}
        for t in tables:
            found[t.name] = t.step(
                when, hours, plan.factors.get((back, t.name), 1.0), (back, t.name) in plan.frozen
            )
        catalog: Catalog = {
            "format": 1,
            "kind": "catalog",
            "requested": sorted(found),
            "tables": found,
        }
        for edit in plan.edits.get(back, []):
            edit(catalog)
        runs.append((stamp(when), catalog))
    return runs


# -- injected anomalies: (table, columns, categories, what it does to the plan) ----------------


def _at(plan: Plan, back: int, edit: Edit) -> None:
    plan.edits.setdefault(back, []).append(edit)


def inject(
    rng: random.Random, plan: Plan, kind: str, back: int = -1
) -> tuple[str, tuple[str, ...]]:
    """Put an anomaly of `kind` into run `back` of `plan`; returns where it is."""
    if kind == "drop":
        table = rng.choice([ORDERS, VIEWS, EMPS])
        _at(plan, back, ed.drop(table, rng.uniform(0.3, 0.7)))
        return table, ()
    if kind == "spike":
        table = rng.choice([ORDERS, VIEWS, EMPS])
        if table == EMPS:  # the nightly load ran twice: every row duplicated
            _at(plan, back, ed.duplicate(table, rng.uniform(1.8, 2.0)))
        else:
            plan.factors[(back, table)] = rng.uniform(5, 12)
        return table, ()
    if kind == "stale":
        table = rng.choice([ORDERS, VIEWS])
        plan.frozen.add((back, table))
        return table, ()
    if kind == "null_jump":
        table, column = rng.choice(
            [(EMPS, "manager_id"), (EMPS, "email"), (VIEWS, "country"), (ORDERS, "customer_id")]
        )
        _at(plan, back, ed.nulls(table, column, rng.uniform(0.15, 0.45)))
        return table, (column,)
    if kind == "type_change":
        table, column, to = rng.choice(
            [
                (ORDERS, "amount", "string"),
                (EMPS, "hired_on", "string"),
                (VIEWS, "duration_ms", "float64"),
                (EMPS, "salary", "string"),
            ]
        )
        _at(plan, back, ed.retype(table, column, to))
        return table, (column,)
    if kind == "rename":
        table, old, new = rng.choice(
            [
                (ORDERS, "customer_id", "cust_id"),
                (EMPS, "department_id", "dept_id"),
                (VIEWS, "duration_ms", "duration"),
                (ORDERS, "created_at", "created_ts"),
            ]
        )
        _at(plan, back, ed.rename(table, old, new))
        return table, (old, new)
    if kind == "unit_change":
        table, column, k = rng.choice([(EMPS, "salary", 100.0), (VIEWS, "duration_ms", 1000.0)])
        _at(plan, back, ed.scale(table, column, k))
        return table, (column,)
    if kind == "distinct_collapse":
        table, column = rng.choice([(EMPS, "department_id"), (ORDERS, "status")])
        _at(plan, back, ed.collapse(table, column))
        return table, (column,)
    if kind == "seasonal_drop":  # a weekday with a weekend's volume
        plan.factors[(back, VIEWS)] = 0.35
        return VIEWS, ()
    raise ValueError(kind)


ACCEPT = {
    "drop": {"volume"},
    "spike": {"volume"},
    "stale": {"freshness", "volume"},
    "null_jump": {"distribution"},
    "type_change": {"schema"},
    "rename": {"schema"},
    "unit_change": {"distribution"},
    "distinct_collapse": {"distribution"},
    "seasonal_drop": {"volume"},
}
# A volume finding names the anomaly only when it goes the injected way: a "spike" reported
# for rows that dropped is a wrong finding, not a detection.
DIRECTION = {"drop": "drop", "spike": "spike", "stale": "drop", "seasonal_drop": "drop"}
INJECTED = {
    "drop": 24,
    "spike": 24,
    "stale": 20,
    "null_jump": 24,
    "type_change": 16,
    "rename": 16,
    "unit_change": 10,
    "distinct_collapse": 10,
    "seasonal_drop": 10,
}


def _injected(rng: random.Random, kind: str, i: int) -> Case:
    if kind == "seasonal_drop":
        plan = Plan(rng.randint(22, 42), weekly=True, current_weekday=rng.randint(1, 4))
    else:
        plan = Plan(rng.randint(6, 40), every_h=rng.choice([24.0, 24.0, 24.0, 12.0]))
    table, columns = inject(rng, plan, kind)
    note = ""
    if rng.random() < 0.3 and plan.earlier >= 8:
        back = -rng.randint(3, min(7, plan.earlier))
        if table == EMPS:  # a past double load the baseline must leave out
            _at(plan, back, ed.duplicate(table, 2.0))
        else:  # a past spike the baseline must leave out
            plan.factors[(back, table)] = rng.uniform(6, 10)
        note = f"past spike at run {back}"
    runs = simulate(rng, plan)
    return Case(f"{kind}/{i}", kind, runs, table, columns, frozenset(ACCEPT[kind]), note=note)


def _clean(rng: random.Random, kind: str, i: int) -> Case:
    plan = Plan(rng.randint(5, 40), every_h=rng.choice([24.0, 24.0, 12.0]))
    scored, note = True, ""
    if kind == "growth":
        plan = Plan(rng.randint(15, 40), trend=0.02)
    elif kind == "weekly":
        plan = Plan(rng.randint(22, 42), weekly=True, current_weekday=rng.randint(0, 6))
    elif kind == "past_anomaly":
        plan = Plan(rng.randint(10, 35))
        back = -rng.randint(2, 6)
        past = rng.choice(["spike", "null_jump", "stale", "drop_fixed"])
        if past == "drop_fixed":  # rows deleted by mistake, restored by the next run
            _at(plan, back, ed.drop(rng.choice([ORDERS, VIEWS]), 0.5))
        else:
            table, _ = inject(rng, plan, past, back)
            if past == "stale":  # the load caught up at the next run
                plan.factors[(back + 1, table)] = 2.0
        note = f"past {past} at run {back}"
    elif kind == "gap":
        plan = Plan(rng.randint(8, 30), gap_days=rng.randint(2, 4))
    elif kind == "tiny_move":
        _at(plan, -1, ed.nulls(EMPS, "email", None))  # one null where there never was one
    elif kind == "constant":
        plan = Plan(rng.randint(5, 30), static_only=True)
    elif kind == "static_time":
        plan = Plan(rng.randint(6, 30), static_time=True)
        scored, note = False, "a frozen table's timestamp only ages: stale or not, debatable"
    elif kind == "learning":
        plan = Plan(rng.randint(1, 3))
        if rng.random() < 0.6:
            gross = rng.choice(["drop", "spike", "null_jump", "type_change", "stale"])
            inject(rng, plan, gross)
            note = f"learning, with a {gross} injected"
    return Case(f"{kind}/{i}", kind, simulate(rng, plan), scored=scored, note=note)


CLEAN = {
    "noise": 30,
    "growth": 15,
    "weekly": 15,
    "past_anomaly": 20,
    "gap": 10,
    "tiny_move": 10,
    "constant": 10,
    "learning": 20,
    "static_time": 5,
}


def cases() -> list[Case]:
    """Every history, each from its own seed."""
    out: list[Case] = []
    n = 0
    for kind, count in INJECTED.items():
        for i in range(count):
            n += 1
            out.append(_injected(random.Random(SEED * 1000 + n), kind, i))
    for kind, count in CLEAN.items():
        for i in range(count):
            n += 1
            out.append(_clean(random.Random(SEED * 1000 + n), kind, i))
    return out
