"""Run histories with plausible drift, for the anomalies benchmark, its tests and the demo.

`earlier_runs(current, current_timestamp, runs=N, seed=S)` takes one run's `catalog.json` data
and makes the N runs before it, oldest first: tables grow (or stay put) at a steady pace with
noise, fresh time columns advance with each run, null rates and figures wobble a little, key
columns' counts follow the rows. `inject(catalog, kind, rng, previous=...)` then puts one
anomaly of a known kind into a run and says where it is. `synthetic_catalog(rng, at)` makes a
small catalog to start from when there is no database. Standard library only, seeded.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from typing import Any

KINDS = ("drop", "spike", "null_jump", "stale", "type_change", "rename")
# The finding category that should report each injected kind.
CATEGORY = {
    "drop": "volume",
    "spike": "volume",
    "null_jump": "distribution",
    "stale": "freshness",
    "type_change": "schema",
    "rename": "schema",
}
FRESH_DAYS = 7  # a time column whose newest value is this recent advances with the runs
WEEKEND_SHARE = 0.2  # with `weekly`, weekend runs receive this share of a weekday's rows

Catalog = dict[str, Any]


def stamp(at: dt.datetime) -> str:
    """A run's folder name: UTC ISO 8601 with milliseconds, fixed width."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def earlier_runs(
    current: Catalog,
    current_timestamp: str,
    *,
    runs: int,
    seed: int,
    every: dt.timedelta = dt.timedelta(days=1),
    weekly: bool = False,
    noise: float = 1.0,
) -> list[tuple[str, Catalog]]:
    """The `runs` runs before `current`, oldest first, as (timestamp, catalog data)."""
    rng = random.Random(seed)
    now = parse(current_timestamp)
    times = [now - every * k for k in range(runs, 0, -1)]
    made: list[tuple[str, Catalog]] = [(stamp(t), _blank(current)) for t in times]
    for name, profile in current["tables"].items():
        counts = _row_counts(rng, profile.get("rows"), [*times, now], weekly, noise)
        for (_, run), rows, at in zip(made, counts, times, strict=False):
            run["tables"][name] = _drifted(rng, profile, rows, at, now, noise)
    return made


def _blank(current: Catalog) -> Catalog:
    """An earlier run's data, of the current one's format: a format-2 run (several sources)
    keeps its sources' names, backends and tables, and none failed."""
    blank: Catalog = {
        "format": current.get("format", 1),
        "kind": "catalog",
        "requested": list(current["tables"]),
        "tables": {},
    }
    if "sources" in current:
        blank["sources"] = {
            name: {**{k: v for k, v in source.items() if k != "failed"}, "failed": {}}
            for name, source in current["sources"].items()
        }
    return blank


def _row_counts(
    rng: random.Random, rows: int | None, times: list[dt.datetime], weekly: bool, noise: float
) -> list[int | None]:
    """Counts for each time (the last is the current run's), each run adding its growth."""
    if rows is None:
        return [None] * len(times)
    rate = 0.0 if rng.random() < 0.3 else rng.uniform(0.002, 0.02)
    counts: list[int | None] = [int(rows)]
    for at in reversed(times[1:]):
        share = WEEKEND_SHARE if weekly and at.weekday() >= 5 else 1.0
        growth = rate * rows * share * max(0.0, 1 + rng.gauss(0, 0.2 * noise))
        counts.append(max(0, round((counts[-1] or 0) - growth)))
    return list(reversed(counts))[:-1]


def _drifted(
    rng: random.Random,
    profile: dict[str, Any],
    rows: int | None,
    at: dt.datetime,
    now: dt.datetime,
    noise: float,
) -> dict[str, Any]:
    run = copy.deepcopy(profile)
    run["rows"] = rows
    now_rows = profile.get("rows") or 0
    ratio = rows / now_rows if rows is not None and now_rows else 1.0
    run["columns"] = [
        _column(rng, c, rows, now_rows, ratio if _is_key(c, now_rows) else None, at, now, noise)
        for c in run.get("columns", [])
    ]
    return run


def _column(
    rng: random.Random,
    column: dict[str, Any],
    rows: int | None,
    total: int,
    key_ratio: float | None,
    at: dt.datetime,
    now: dt.datetime,
    noise: float,
) -> dict[str, Any]:
    """One column at an earlier run; `key_ratio` (rows then / rows now) for a key-like column,
    whose distinct count and values follow the row count."""
    rate = column.get("null_rate")
    if rate is not None and 0 < rate < 1:
        rate = min(1.0, max(0.0, rate + rng.gauss(0, (0.002 + 0.01 * rate) * noise)))
        column["null_rate"] = round(rate, 6)
        column["nulls"] = round(rate * rows) if rows is not None else column.get("nulls")
    distinct = column.get("distinct")
    if distinct and key_ratio is not None:
        column["distinct"] = max(1, round(distinct * key_ratio))
    elif distinct and distinct > 100:
        column["distinct"] = max(1, round(distinct * (1 + rng.gauss(0, 0.003 * noise))))
    for entry in column.get("top_values") or []:
        entry["count"] = max(1, round(entry["count"] * (rows or 0) / max(1, total)))
    if str(column.get("type", "")).startswith(("int", "uint", "float", "decimal")):
        _numbers(rng, column, key_ratio, noise)
    elif str(column.get("type", "")).startswith(("timestamp", "date")):
        _newest(rng, column, at, now)
    return column


def _is_key(column: dict[str, Any], rows: int) -> bool:
    """Declared or candidate key, or (nearly) one value per row: it grows with the table."""
    non_null = rows * (1 - (column.get("null_rate") or 0))
    return column.get("key") is not None or (
        non_null > 0 and (column.get("distinct") or 0) >= 0.95 * non_null
    )


def _numbers(rng: random.Random, column: dict[str, Any], scale: float | None, noise: float) -> None:
    """Means and quantiles wobble by about half a percent; a key's follow its row count."""
    factor = scale if scale is not None else 1 + rng.gauss(0, 0.005 * noise)
    for key in ("mean", "max") if scale is not None else ("mean",):
        if isinstance(column.get(key), int | float) and not isinstance(column.get(key), bool):
            column[key] = _like(column[key], column[key] * factor)
    quantiles = column.get("quantiles") or {}
    for key, value in quantiles.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            quantiles[key] = _like(value, value * factor)


def _like(original: Any, value: float) -> Any:
    return round(value) if isinstance(original, int) else round(value, 6)


def _newest(rng: random.Random, column: dict[str, Any], at: dt.datetime, now: dt.datetime) -> None:
    """A fresh column's newest value was as old, at each earlier run, as it is now (± jitter)."""
    try:
        newest = dt.datetime.fromisoformat(str(column.get("max")))
    except ValueError:
        return
    aware = newest if newest.tzinfo else newest.replace(tzinfo=dt.UTC)
    if aware > now or now - aware > dt.timedelta(days=FRESH_DAYS):
        return  # a value in the future, or a column that does not advance: it stays
    jitter = dt.timedelta(minutes=rng.gauss(0, 20))
    moved = newest - (now - at) + jitter
    column["max"] = moved.isoformat() if "T" in str(column["max"]) else moved.date().isoformat()


def synthetic_catalog(rng: random.Random, at: dt.datetime, *, tables: int = 3) -> Catalog:
    """A small catalog of `tables` tables, made up with `rng`: keys, amounts, codes, times."""
    made: dict[str, Any] = {}
    for t in range(tables):
        rows = rng.choice([200, 5_000, 80_000, 1_500_000])
        lag = dt.timedelta(hours=rng.uniform(1, 12))
        columns = [
            _synthetic("id", "int64", rows, 0.0, rows, mean=rows / 2, p50=rows / 2, key=True),
            _synthetic("amount", "float64", rows, rng.uniform(0, 0.1), rows // 3,
                       mean=rng.uniform(10, 500), p50=rng.uniform(10, 300)),
            _synthetic("status", "string", rows, 0.0, rng.randint(2, 8)),
            _synthetic("note", "string", rows, rng.uniform(0.2, 0.6), rows // 2),
            _synthetic("updated_at", "timestamp", rows, 0.0, rows, newest=at - lag),
        ]  # fmt: skip
        if rng.random() < 0.5:
            columns.append(_synthetic("currency", "string", rows, 0.0, 1))
        made[f"table_{t}"] = {
            "table": f"table_{t}",
            "rows": rows,
            "scope": {"kind": "full"},
            "errors": [],
            "columns": columns,
            "flags": [],
        }
    return {"format": 1, "kind": "catalog", "requested": list(made), "tables": made}


def _synthetic(
    name: str,
    kind: str,
    rows: int,
    null_rate: float,
    distinct: int,
    *,
    mean: float | None = None,
    p50: float | None = None,
    key: bool = False,
    newest: dt.datetime | None = None,
) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": kind,
        "nullable": not key,
        "how": {},
        "nulls": round(null_rate * rows),
        "null_rate": round(null_rate, 6),
        "distinct": max(1, distinct),
    }
    if mean is not None:
        column.update(mean=round(mean, 3), quantiles={"p50": round(p50 or mean, 3)})
    if key:
        column.update(key="candidate", duplicates=0, min=1, max=rows)
    if newest is not None:
        column["max"] = newest.replace(tzinfo=None).isoformat(timespec="seconds")
    if kind == "string":
        column.update(length_min=1, length_mean=8.0, length_max=20)
    return column


def inject(
    catalog: Catalog,
    kind: str,
    rng: random.Random,
    *,
    previous: Catalog,
    earlier: Catalog,
    strong: bool = False,
) -> tuple[str, str | None]:
    """Put one anomaly of `kind` into `catalog` (a run; `previous` is the run before it and
    `earlier` one a few runs back). Returns (table, column) where it is, the column of a
    rename being its new name. Sizes are drawn from a range; `strong` keeps its upper half."""
    table = rng.choice(sorted(catalog["tables"]))
    profile, before = catalog["tables"][table], previous["tables"][table]
    columns = profile["columns"]
    if kind in ("drop", "spike"):
        base = before["rows"]
        low, high = (0.1, 0.6) if kind == "drop" else (0.1, 1.0)
        change = rng.uniform((low + high) / 2 if strong else low, high)
        profile["rows"] = max(0, round(base * (1 - change if kind == "drop" else 1 + change)))
        return table, None
    if kind == "null_jump":
        column = rng.choice([c for c in columns if (c.get("null_rate") or 0) < 0.6])
        column["null_rate"] = round(
            min(1.0, column["null_rate"] + rng.uniform(0.2 if strong else 0.05, 0.4)), 6
        )
        return table, column["name"]
    if kind == "stale":
        fresh = [c for c in columns if str(c.get("type", "")).startswith("timestamp")]
        column = rng.choice(fresh)
        old = {c["name"]: c for c in earlier["tables"][table]["columns"]}[column["name"]]
        column["max"] = old["max"]  # the newest value stopped where it was a few runs ago
        return table, column["name"]
    if kind == "type_change":
        column = rng.choice([c for c in columns if c["type"] != "string"])
        column["type"] = "string"
        for key in ("mean", "quantiles", "min", "max"):
            column.pop(key, None)
        column.update(length_min=1, length_mean=6.0, length_max=12)
        return table, column["name"]
    column = rng.choice([c for c in columns if c["name"] != "id"])
    column["name"] = rng.choice(["{}_v2", "new_{}", "{}_value", "src_{}"]).format(column["name"])
    return table, column["name"]


def constant_runs(
    current: Catalog, current_timestamp: str, *, runs: int
) -> list[tuple[str, Catalog]]:
    """`runs` earlier runs identical to `current`: nothing ever changes, nothing is anomalous."""
    now = parse(current_timestamp)
    return [(stamp(now - dt.timedelta(days=k)), copy.deepcopy(current)) for k in range(runs, 0, -1)]
