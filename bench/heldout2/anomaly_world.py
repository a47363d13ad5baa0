"""Run histories for the held-out anomalies set: tables whose figures evolve run by run, written
out as the catalog.json each run would have stored (the shape profile_table returns).

A `Tab` holds one list per figure, one value per run; scenarios edit the lists (an injected
anomaly is an edit of the last values) and `catalog(i)` renders run i.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any


def stamp(at: dt.datetime) -> str:
    """A run's folder name: UTC, milliseconds, fixed width."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class Col:
    name: str
    kind: str  # key, num, text, time
    type: str
    null_rate: list[float]
    mean: list[float] = field(default_factory=list)  # num
    distinct: list[int] = field(default_factory=list)  # text
    newest: list[dt.datetime] = field(default_factory=list)  # time
    oldest: dt.datetime = dt.datetime(2020, 1, 1)
    names: dict[int, str] = field(default_factory=dict)  # run -> another name (a rename)
    types: dict[int, str] = field(default_factory=dict)  # run -> another type (a type change)


@dataclass
class Tab:
    name: str
    rows: list[int]
    cols: list[Col] = field(default_factory=list)

    def col(self, name: str) -> Col:
        return next(c for c in self.cols if c.name == name)


def noisy(rng: random.Random, base: float, share: float, n: int) -> list[float]:
    return [base * (1 + rng.gauss(0, share)) for _ in range(n)]


def grown(rng: random.Random, start: int, growth: list[float], noise: float) -> list[int]:
    """Row counts from `start`, adding each run's expected growth with some noise."""
    rows, out = float(start), []
    for g in growth:
        rows += max(0.0, g * (1 + rng.gauss(0, noise))) if g >= 0 else g * (1 + rng.gauss(0, noise))
        out.append(int(rows))
    return out


def standard_cols(rng: random.Random, n: int, times: list[dt.datetime], lag_h: float) -> list[Col]:
    """An id, an amount, a status, a nullable note, a user reference and a fresh timestamp."""
    lag = [t - dt.timedelta(hours=lag_h * rng.uniform(0.3, 1.0)) for t in times]
    return [
        Col("id", "key", "int64", [0.0] * n),
        Col("amount", "num", "float64", [0.0] * n, mean=noisy(rng, rng.uniform(20, 400), 0.004, n)),
        Col("status", "text", "string", [0.0] * n, distinct=[rng.choice([4, 5, 6])] * n),
        Col(
            "cust_ref", "num", "int64", [0.0] * n, mean=noisy(rng, rng.uniform(5e3, 5e4), 0.003, n)
        ),
        Col(
            "note",
            "text",
            "string",
            [max(0.0, x) for x in noisy(rng, rng.uniform(0.02, 0.3), 0.03, n)],
            distinct=[int(x) for x in noisy(rng, 900, 0.01, n)],
        ),
        Col("created_at", "time", "timestamp(6)", [0.0] * n, newest=lag),
    ]


def _column(c: Col, i: int, rows: int) -> dict[str, Any]:
    nulls = round(c.null_rate[i] * rows)
    if i in c.types:  # a numeric column now stored as text: text figures
        c = Col(
            c.names.get(i, c.name),
            "text",
            c.types[i],
            c.null_rate,
            distinct=[int(rows * 0.6)] * (i + 1),
        )
    out: dict[str, Any] = {
        "name": c.names.get(i, c.name),
        "type": c.type,
        "nullable": c.kind != "key",
        "comment": None,
        "nulls": nulls,
        "null_rate": round(c.null_rate[i], 6),
    }
    if c.kind == "key":
        out.update(
            distinct=rows,
            min=1,
            max=rows,
            mean=(rows + 1) / 2,
            key="declared",
            duplicates=0,
            quantiles={
                "p05": rows * 0.05,
                "p25": rows / 4,
                "p50": rows / 2,
                "p75": rows * 0.75,
                "p95": rows * 0.95,
            },
        )
    elif c.kind == "num":
        m = c.mean[i]
        out.update(
            distinct=max(1, min(rows, int(rows * 0.6))),
            min=0,
            max=round(m * 4, 2),
            mean=round(m, 6),
            std=round(m * 0.5, 6),
            quantiles={
                "p05": m * 0.2,
                "p25": m * 0.6,
                "p50": m * 0.9,
                "p75": m * 1.3,
                "p95": m * 2.1,
            },
        )
    elif c.kind == "text":
        out.update(
            distinct=min(rows, c.distinct[i]),
            min="a",
            max="z",
            length_min=1,
            length_mean=8.0,
            length_max=40,
        )
    else:
        newest = c.newest[i].replace(microsecond=0)
        span = newest - c.oldest
        out.update(
            distinct=rows,
            min=c.oldest.isoformat(),
            max=newest.isoformat(),
            quantiles={
                k: (c.oldest + span * q).replace(microsecond=0).isoformat()
                for k, q in (
                    ("p05", 0.05),
                    ("p25", 0.25),
                    ("p50", 0.5),
                    ("p75", 0.75),
                    ("p95", 0.95),
                )
            },
        )
    return out


def profile(t: Tab, i: int, at: dt.datetime) -> dict[str, Any]:
    rows = t.rows[i]
    return {
        "format": 1,
        "table": t.name,
        "backend": "duckdb",
        "profiled_at": at.isoformat(timespec="seconds") + "+00:00",
        "errors": [],
        "comment": None,
        "row_estimate": rows,
        "scope": {"kind": "full", "row_budget": 10_000_000},
        "primary_key": ["id"] if any(c.kind == "key" for c in t.cols) else [],
        "unique": [],
        "foreign_keys": [],
        "columns": [_column(c, i, rows) for c in t.cols],
        "rows": rows,
        "how": {"rows": "exact"},
        "samples": [],
        "flags": [],
        "seconds": 0.4,
    }


def catalog(tabs: list[Tab], i: int, at: dt.datetime) -> dict[str, Any]:
    return {
        "format": 1,
        "kind": "catalog",
        "headline": f"{len(tabs)} tables profiled.",
        "counts": {"tables": len(tabs), "warnings": 0},
        "requested": [t.name for t in tabs],
        "tables": {t.name: profile(t, i, at) for t in tabs},
    }
