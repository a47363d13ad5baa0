"""Tables that live through runs, profiled as the catalog agent stores them in `catalog.json`.

Append-only tables grow by a batch per hour of elapsed time (noisy, optionally growing, with
quiet weekends when asked), so their whole-table figures (null rates, means, distinct counts)
move slowly, as cumulative figures do. A snapshot table is reloaded in full each time: its
figures are this load's. A static table never changes. Each `step` moves a table to a run's
time and returns its profile in the shape `profile_table` writes (checked against a real one).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

Profile = dict[str, Any]


def _how(*names: str) -> dict[str, str]:
    return dict.fromkeys(names, "exact")


def numeric(
    name: str, kind: str, rows: int, nulls: int, distinct: int, mean: float, lo: float, hi: float
) -> dict[str, Any]:
    """A numeric column's entry; quantiles follow the mean, as they do on stable data."""
    q = {"p05": 0.2, "p25": 0.55, "p50": 0.85, "p75": 1.25, "p95": 2.3}
    return {
        "name": name,
        "type": kind,
        "nullable": True,
        "comment": None,
        "how": _how("nulls", "distinct", "quantiles", "min", "max", "mean", "std"),
        "nulls": nulls,
        "null_rate": round(nulls / rows, 6) if rows else None,
        "distinct": distinct,
        "min": lo,
        "max": hi,
        "mean": round(mean, 6),
        "std": round(mean * 0.9, 6),
        "quantiles": {k: round(mean * f, 6) for k, f in q.items()},
    }


def key(name: str, rows: int, first: int = 1) -> dict[str, Any]:
    entry = numeric(name, "int64", rows, 0, rows, first + rows / 2, first, first + rows - 1)
    entry.update(nullable=False, key="declared")
    return entry


def text(
    name: str, rows: int, nulls: int, distinct: int, length: float, top: list[str] | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "type": "string",
        "nullable": True,
        "comment": None,
        "how": _how("nulls", "distinct", "min", "max"),
        "nulls": nulls,
        "null_rate": round(nulls / rows, 6) if rows else None,
        "distinct": distinct,
        "min": "a",
        "max": "z",
        "length_min": 1,
        "length_mean": length,
        "length_max": int(length * 3),
    }
    if top:
        share = (rows - nulls) // len(top)
        entry["top_values"] = [{"value": t, "count": share} for t in top]
    return entry


def times(
    name: str, kind: str, rows: int, nulls: int, oldest: dt.datetime, newest: dt.datetime
) -> dict[str, Any]:
    fmt = "%Y-%m-%d" if kind == "date" else "%Y-%m-%dT%H:%M:%S"
    return {
        "name": name,
        "type": kind,
        "nullable": True,
        "comment": None,
        "how": _how("nulls", "distinct", "min", "max"),
        "nulls": nulls,
        "null_rate": round(nulls / rows, 6) if rows else None,
        "distinct": max(rows - nulls, 0),
        "min": oldest.strftime(fmt),
        "max": newest.strftime(fmt),
    }


def profile(table: str, rows: int, columns: list[dict[str, Any]], at: dt.datetime) -> Profile:
    return {
        "format": 1,
        "table": table,
        "backend": "postgres",
        "profiled_at": at.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "errors": [],
        "comment": None,
        "row_estimate": rows,
        "scope": {"kind": "full", "row_budget": 10_000_000},
        "primary_key": [columns[0]["name"]],
        "unique": [],
        "foreign_keys": [],
        "columns": columns,
        "rows": rows,
        "how": {"rows": "exact"},
        "samples": [],
        "flags": [],
    }


def naive(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None)


class Orders:
    """shop.orders: append-only, about `per_day` orders a day, optionally a trend."""

    name = "shop.orders"

    def __init__(
        self,
        rng: random.Random,
        start: dt.datetime,
        per_day: float,
        trend: float,
        weekly: bool = False,
    ) -> None:
        self.rng, self.rate, self.trend, self.weekly = rng, per_day / 24, trend, weekly
        self.rows = int(per_day * rng.uniform(200, 600))
        self.amount_sum = self.rows * 54.2
        self.no_coupon = self.rows * 0.85
        self.unshipped = per_day * 0.86  # the steady state of the update in step()
        self.first = naive(start) - dt.timedelta(days=self.rows / per_day)
        self.newest = naive(start) - dt.timedelta(hours=1)

    def step(
        self, at: dt.datetime, hours: float, factor: float = 1.0, frozen: bool = False
    ) -> Profile:
        rng = self.rng
        if not frozen:
            quiet = self.weekly and (at - dt.timedelta(hours=12)).weekday() >= 5
            batch = self.rate * hours * (0.35 if quiet else 1.0) * factor
            batch = max(0.0, batch * (1 + rng.gauss(0, 0.06)))
            self.rows += int(batch)
            self.amount_sum += batch * rng.gauss(54.2, 1.0)
            self.no_coupon += batch * min(1.0, rng.gauss(0.85, 0.01))
            self.unshipped = self.unshipped * 0.3 + batch * 0.6  # the last day ships tomorrow
            self.newest = naive(at) - dt.timedelta(hours=rng.uniform(0.05, 1.5))
        self.rate *= (1 + self.trend) ** (hours / 24)
        return self.profile(at)

    def profile(self, at: dt.datetime) -> Profile:
        r = self.rows
        customers = int(60_000 * (1 - math.exp(-r / 60_000)))
        cols = [
            key("order_id", r),
            numeric("customer_id", "int64", r, 0, customers, 30_000.0, 1, 60_000),
            numeric("amount", "float64", r, 0, min(r, 40_000), self.amount_sum / r, 0.5, 2999.0),
            text("status", r, 0, 5, 7.2, ["delivered", "shipped", "paid", "new", "returned"]),
            text("coupon_code", r, int(self.no_coupon), 42, 7.0),
            times("created_at", "timestamp(6)", r, 0, self.first, self.newest),
            times(
                "shipped_at",
                "timestamp(6)",
                r,
                int(self.unshipped),
                self.first,
                self.newest - dt.timedelta(hours=20),
            ),
        ]
        return profile(self.name, r, cols, at)


class PageViews:
    """events.page_views: a big append-only event table, quiet at weekends when `weekly`."""

    name = "events.page_views"

    def __init__(self, rng: random.Random, start: dt.datetime, weekly: bool) -> None:
        self.rng, self.weekly = rng, weekly
        self.rate = rng.uniform(150_000, 260_000) / 24
        self.rows = int(self.rate * 24 * rng.uniform(20, 40))
        self.no_country = self.rows * 0.03
        self.duration_sum = self.rows * 5300.0
        self.first = naive(start) - dt.timedelta(days=45)
        self.newest = naive(start)

    def step(
        self, at: dt.datetime, hours: float, factor: float = 1.0, frozen: bool = False
    ) -> Profile:
        rng = self.rng
        if not frozen:
            quiet = self.weekly and (at - dt.timedelta(hours=12)).weekday() >= 5
            batch = self.rate * hours * (0.35 if quiet else 1.0) * factor
            batch = max(0.0, batch * (1 + rng.gauss(0, 0.05)))
            self.rows += int(batch)
            self.no_country += batch * min(1.0, max(0.0, rng.gauss(0.03, 0.003)))
            self.duration_sum += batch * rng.gauss(5300, 80)
            self.newest = naive(at) - dt.timedelta(minutes=rng.uniform(2, 20))
        return self.profile(at)

    def profile(self, at: dt.datetime) -> Profile:
        r = self.rows
        users = int(900_000 * (1 - math.exp(-r / 4_000_000)))
        cols = [
            key("event_id", r),
            numeric("user_id", "int64", r, 0, users, 450_000.0, 1, 900_000),
            numeric("duration_ms", "int64", r, 0, 30_000, self.duration_sum / r, 0, 1_800_000),
            text("country", r, int(self.no_country), 190, 2.0),
            text("path", r, 0, 4_200, 23.5),
            times("ts", "timestamp(6)", r, 0, self.first, self.newest),
        ]
        return profile(self.name, r, cols, at)


class Employees:
    """hr.employees: reloaded in full each night from the HR system; hires start on Mondays."""

    name = "hr.employees"

    def __init__(self, rng: random.Random, start: dt.datetime) -> None:
        self.rng, self.rows = rng, rng.randint(900, 1500)
        self.salary = rng.uniform(70_000, 95_000)
        self.no_manager = 12

    def step(
        self, at: dt.datetime, hours: float, factor: float = 1.0, frozen: bool = False
    ) -> Profile:
        rng = self.rng
        if not frozen:
            self.rows += round(rng.gauss(0.4, 1.5) * hours / 24)
            self.salary *= 1 + rng.gauss(0.0001, 0.0005)
            self.no_manager = max(1, self.no_manager + rng.choice([-1, 0, 0, 0, 1]))
        return self.profile(at)

    def profile(self, at: dt.datetime) -> Profile:
        r, day = self.rows, naive(at).date()
        monday = day - dt.timedelta(days=day.weekday())
        newest = dt.datetime.combine(monday, dt.time())
        cols = [
            key("emp_id", r, 1001),
            text("email", r, 0, r, 24.0),
            numeric("department_id", "int64", r, 0, 40, 45.0, 10, 420),
            numeric("manager_id", "int64", r, self.no_manager, 130, 1100.0, 1001, 2800),
            numeric("salary", "float64", r, 0, r - 40, self.salary, 31_000.0, 410_000.0),
            times("hired_on", "date", r, 0, dt.datetime(2009, 3, 2), newest),
        ]
        return profile(self.name, r, cols, at)


class Static:
    """A reference table nobody writes to: every figure the same at every run."""

    def __init__(self, name: str, rows: int, with_time: bool = False) -> None:
        self.name, self.rows, self.with_time = name, rows, with_time

    def step(
        self, at: dt.datetime, hours: float, factor: float = 1.0, frozen: bool = False
    ) -> Profile:
        r = self.rows
        cols = [
            key("id", r),
            text("code", r, 0, r, 3.0),
            text("name", r, 0, r, 11.4),
            numeric("minor_units", "int64", r, 0, 4, 1.9, 0, 3),
        ]
        if self.with_time:
            moment = dt.datetime(2021, 6, 30, 14, 2, 11)
            cols.append(times("updated_at", "timestamp(6)", r, 0, moment, moment))
        return profile(self.name, r, cols, at)
