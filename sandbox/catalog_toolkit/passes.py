"""The column passes of a profile (profile.py's notes list them all), one function each.

Each pass is one query over the table or its sample and writes its figures into the column
entries, with how each was made in `how`, so profile_table only decides which passes run.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from catalog_toolkit.database import Database, TableName
from catalog_toolkit.values import as_float, to_json

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
LOW_CARDINALITY = 50  # top values for columns with at most this many distinct values
QUANTILE_SAMPLE_ROWS = 100_000  # quantiles of bigger tables come from a sample this size
EXACT_DISTINCT_BELOW = 100_000  # DuckDB's HyperLogLog is off by up to 25% on small counts:
# a column it puts under this many values gets an exact count (a small hash table)
SEED = 42
AGGREGATE_ENTRIES = 600  # figures in one query at most (each a select-list entry)


def aggregate(
    db: Database,
    source: Any,
    columns: list[dict[str, Any]],
    count_distinct: bool,
    quantiles: bool,
    *,
    scan_only: bool = False,
) -> dict[str, Any]:
    """Pass 1: one aggregate of every column's counts, range, moments and lengths (and, when
    `quantiles`, its quantiles); the row it returns, keyed `c{i}_...`. With `scan_only`, the
    non-null counts, mins and maxes alone (detail.py finds the rest on a sample)."""
    aggs: dict[str, Any] = {"__rows": source.count()}
    for i, column in enumerate(columns):
        c, kind = source[column["name"]], column["_kind"]
        aggs[f"c{i}_n"] = c.count()
        if kind == "other":
            continue
        if scan_only:
            aggs.update(_range(i, column, c))
            continue
        if count_distinct:
            aggs[f"c{i}_d"] = c.approx_nunique()
        aggs.update(_range(i, column, c))
        if kind == "number":
            number = c.cast("float64")
            aggs[f"c{i}_mean"] = number.mean()
            aggs[f"c{i}_std"] = number.std()
            if quantiles:
                aggs[f"c{i}_q"] = number.quantile(list(QUANTILES))
        elif kind == "time" and quantiles:
            aggs[f"c{i}_q"] = c.quantile(list(QUANTILES))
        elif kind == "text":
            length = c.length()
            aggs[f"c{i}_lmin"] = length.min()
            aggs[f"c{i}_lmean"] = length.cast("float64").mean()
            aggs[f"c{i}_lmax"] = length.max()
    # A wide table in batches of columns: PostgreSQL takes at most 1,664 entries in a select
    # list, MySQL 4,096 columns. Each batch reads the same rows (a seeded sample), except on
    # MySQL, whose samples take no seed: there the first batch's row count stands.
    items = list(aggs.items())[1:]
    row: dict[str, Any] = {}
    for start in range(0, max(len(items), 1), AGGREGATE_ENTRIES):
        batch = dict(items[start : start + AGGREGATE_ENTRIES], __rows=aggs["__rows"])
        found = db.fetch(source.aggregate(**batch))[0]
        row = {**found, **row}
    return row


def _range(i: int, column: dict[str, Any], c: Any) -> dict[str, Any]:
    # A decimal's min and max as stored (the driver's Decimal, written as a number): a cast to
    # float of every row cost PostgreSQL a third of the scan.
    if column["_kind"] not in ("number", "time", "text", "orderable"):
        return {}
    return {f"c{i}_min": c.min(), f"c{i}_max": c.max()}


def fill_statistics(
    db: Database, columns: list[dict[str, Any]], row: dict[str, Any], rows: int, scope: str
) -> None:
    """Write pass 1's `row` into the column entries, labelled with how each figure was made."""
    distinct_how = "approx" if db.backend == "duckdb" else "exact"
    for i, column in enumerate(columns):
        how = column["how"]
        non_null = int(row[f"c{i}_n"] or 0)
        column["nulls"] = rows - non_null
        column["null_rate"] = round((rows - non_null) / rows, 6) if rows else None
        how["nulls"] = label("exact", scope)
        if f"c{i}_d" in row:
            distinct = int(row[f"c{i}_d"] or 0)
            # HyperLogLog may overshoot; a column cannot hold more values than non-null rows.
            column["distinct"] = min(distinct, non_null)
            how["distinct"] = label(distinct_how, scope)
        for stat in ("min", "max", "mean", "std", "lmin", "lmean", "lmax"):
            if f"c{i}_{stat}" in row:
                value = to_json(row[f"c{i}_{stat}"])
                column[
                    {"lmin": "length_min", "lmean": "length_mean", "lmax": "length_max"}.get(
                        stat, stat
                    )
                ] = round(value, 6) if isinstance(value, float) and stat not in _KEPT else value
        if f"c{i}_q" in row and row[f"c{i}_q"] is not None:
            column["quantiles"] = _quantiles_from(row[f"c{i}_q"])
            how["quantiles"] = label("exact", scope)
        for stat in ("min", "max", "mean", "std"):
            if stat in column:
                how[stat] = label("exact", scope)


# A min or max is a stored value, kept whole: rounded, a column of values a millionth apart
# would have its histogram's range (and bins) wrong.
_KEPT = ("min", "max")


def label(method: str, scope: str) -> str:
    return method if scope == "full" else f"{method}, sample"


def _quantile_key(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _quantiles_from(values: Any) -> dict[str, Any]:
    """The database's quantiles as `{"p05": ..., "p95": ...}` (a single value when it gives one)."""
    values = values if isinstance(values, list | tuple) else [values]
    return {_quantile_key(q): to_json(v) for q, v in zip(QUANTILES, values, strict=False)}


def key_candidates(
    columns: list[dict[str, Any]], profile: dict[str, Any], rows_read: int
) -> list[int]:
    """Declared single-column keys, and columns whose distinct count says they might be one."""
    declared = {tuple(profile.get("primary_key") or [])} | {tuple(u) for u in profile["unique"]}
    chosen = []
    for i, column in enumerate(columns):
        non_null = rows_read - column.get("nulls", 0)
        if not column["_keyable"] or non_null <= 0:
            continue
        distinct = column.get("distinct")
        looks_unique = distinct is not None and distinct >= 0.95 * non_null and non_null > 1
        if (column["name"],) in declared or looks_unique:
            chosen.append(i)
    return chosen


def postgres_distinct(
    db: Database, name: TableName, columns: list[dict[str, Any]], estimate: int | None
) -> None:
    """Distinct counts from the planner's statistics (`pg_stats.n_distinct`; a negative value
    is a fraction of the rows), for tables too big to count exactly."""
    schema = name.schema or str(db.query("SELECT current_schema() AS s")[0]["s"])
    stats = {
        row["attname"]: row["n_distinct"]
        for row in db.query(
            "SELECT attname::text AS attname, n_distinct FROM pg_stats"
            " WHERE schemaname = %s AND tablename = %s",
            (schema, name.name),
        )
    }
    total = float(estimate or 0)
    for column in columns:
        n_distinct = stats.get(column["name"])
        if n_distinct is None:
            column["how"]["distinct"] = "unknown (the table has not been analyzed)"
            continue
        value = -n_distinct * total if n_distinct < 0 else n_distinct
        column["distinct"] = round(value)
        column["how"]["distinct"] = "estimate (pg_stats)"


def sampled_quantiles(
    db: Database, t: Any, columns: list[dict[str, Any]], rows: int | None
) -> None:
    """Quantiles of the number and time columns from a random sample of about
    QUANTILE_SAMPLE_ROWS rows: in the database where it has quantile functions (PostgreSQL
    samples whole blocks, DuckDB rows), in Python for MySQL, which has none."""
    wanted = [c for c in columns if c["_kind"] in ("number", "time")]
    if not wanted or not rows:
        return
    fraction = min(1.0, QUANTILE_SAMPLE_ROWS / rows)
    if db.backend == "mysql":
        source = t if fraction >= 1.0 else t.sample(fraction, method="row")
        picked = source.select(*[c["name"] for c in wanted]).limit(QUANTILE_SAMPLE_ROWS)
        fetched = db.fetch(picked)
        for column in wanted:
            values = [r[column["name"]] for r in fetched if r[column["name"]] is not None]
            if values:
                column["quantiles"] = _quantiles_of(values, column["_kind"])
                column["how"]["quantiles"] = f"exact, sample of {len(fetched):,} rows"
        return
    method = "block" if db.backend == "postgres" else "row"
    source = t if fraction >= 1.0 else t.sample(fraction, method=method, seed=SEED)
    aggs: dict[str, Any] = {"__n": source.count()}
    for i, column in enumerate(wanted):
        c = source[column["name"]]
        aggs[f"q{i}"] = (c.cast("float64") if column["_kind"] == "number" else c).quantile(
            list(QUANTILES)
        )
    row = db.fetch(source.aggregate(**aggs))[0]
    for i, column in enumerate(wanted):
        if row[f"q{i}"] is None:
            continue
        column["quantiles"] = _quantiles_from(row[f"q{i}"])
        column["how"]["quantiles"] = f"exact, sample of {int(row['__n']):,} rows"


def _quantiles_of(values: list[Any], kind: str) -> dict[str, Any]:
    if kind == "number":
        numbers = sorted(x for v in values if (x := as_float(v)) is not None)
        if len(numbers) == 1:
            return {_quantile_key(q): numbers[0] for q in QUANTILES}
        cuts = statistics.quantiles(numbers, n=100, method="inclusive")
        return {_quantile_key(q): round(cuts[round(q * 100) - 1], 6) for q in QUANTILES}
    ordered = sorted(values)
    last = len(ordered) - 1
    return {_quantile_key(q): to_json(ordered[math.floor(q * last)]) for q in QUANTILES}
