"""Profile one table inside the database, in a few passes, and say how each number was made.

Passes (each one query, under the statement time limit):
1. one aggregate over the table, or over a sample when the table holds more rows than the
   row budget: per column the non-null count, distinct count, min, max, mean, standard
   deviation and string lengths, and on tables of at most QUANTILE_SAMPLE_ROWS rows the
   quantiles too;
2. an exact `COUNT(*)` over the whole table when pass 1 read a sample, or first when the
   catalog has no row estimate (a PostgreSQL table never analyzed) to choose the scope;
3. one aggregate of exact distinct counts: for columns that look like keys (giving exact
   duplicates) and, on DuckDB, for columns its HyperLogLog puts under EXACT_DISTINCT_BELOW.
   A declared single-column key needs none: the database enforces it;
4. one small GROUP BY per low-cardinality column, for its top values;
5. on bigger tables, quantiles from a random sample of about QUANTILE_SAMPLE_ROWS rows (in the
   database; in Python for MySQL, which has no quantile function): exact quantiles sort every
   column, which costs more than everything else together;
6. a few sample rows (`LIMIT`).
Nothing pulls a whole table into memory. A pass that fails is recorded in `errors`; the others
still run.

Every figure carries its method in `how`: `exact`, `approx` (DuckDB's HyperLogLog distinct
count), `estimate` (the catalog's row estimate, PostgreSQL's pg_stats), with `, sample` or
`sample of N rows` when it was computed on a sample, and the profile's `scope` says whether the
column figures come from a full scan or a sample (with the fraction and the rows read).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from typing import Any

import ibis
from ibis import _

from catalog_toolkit import record
from catalog_toolkit.database import Database, QueryTimeout, TableName
from catalog_toolkit.flags import quality_flags
from catalog_toolkit.metadata import read_declared
from catalog_toolkit.values import as_float, to_json

FORMAT = 1
DEFAULT_ROW_BUDGET = 10_000_000
DEFAULT_TIMEOUT_S = 120.0
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP_VALUES = 10
LOW_CARDINALITY = 50  # top values for columns with at most this many distinct values
SAMPLE_ROWS = 5
QUANTILE_SAMPLE_ROWS = 100_000  # quantiles of bigger tables come from a sample this size
EXACT_DISTINCT_ROWS = 1_000_000  # above this (by estimate), distinct counts may be approximate
EXACT_DISTINCT_BELOW = 100_000  # DuckDB's HyperLogLog is off by up to 25% on small counts:
# a column it puts under this many values gets an exact count (a small hash table)
SEED = 42


def profile_table(
    con: Any,
    table: str,
    *,
    row_budget: int = DEFAULT_ROW_BUDGET,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sample_rows: int = SAMPLE_ROWS,
    top_values: int = TOP_VALUES,
) -> dict[str, Any]:
    """Profile `table` (`schema.table` or `table`) through the ibis connection `con`.

    Returns a JSON-ready dict (see the module notes for its passes and labels). Tables above
    `row_budget` rows (by the catalog's estimate) are profiled on a random sample of about that
    many rows; the row count stays exact. Each query stops after `timeout_s` seconds.
    """
    started = time.perf_counter()
    db = Database(con, timeout_s)
    name = TableName.parse(table)
    profile: dict[str, Any] = {
        "format": FORMAT,
        "table": str(name),
        "backend": db.backend,
        "profiled_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "errors": [],
    }
    t = db.table(name)
    schema = t.schema()
    declared = _attempt(profile, "keys and comments", lambda: read_declared(db, name))
    estimate = declared.row_estimate if declared else None
    # The schema the catalog resolved (the default one for a bare `table`), for later lookups.
    resolved = TableName(declared.schema, name.name) if declared and declared.schema else name
    counted = None
    if estimate is None:  # never analyzed (PostgreSQL) or not known: count, then decide
        found = _attempt(profile, "row count", lambda: db.fetch(t.aggregate(n=t.count())))
        counted = estimate = int(found[0]["n"]) if found else None
    scope = _choose_scope(estimate, row_budget)
    source = t if scope["kind"] == "full" else t.sample(scope["fraction"], **_sample_args(db))
    profile["comment"] = declared.comment if declared else None
    profile["row_estimate"] = estimate
    profile["scope"] = scope
    profile.update(declared.to_json() if declared else {"primary_key": [], "unique": []})
    profile.setdefault("foreign_keys", [])

    columns = [_column_entry(column, dtype, declared) for column, dtype in schema.items()]
    profile["columns"] = columns
    # PostgreSQL counts distinct values by sorting each column: on big tables its planner's
    # estimate (pg_stats) stands in, labelled as such.
    big = (estimate or 0) > EXACT_DISTINCT_ROWS
    count_distinct = not (db.backend == "postgres" and big)
    # Exact quantiles sort every column: on small tables they ride along in the aggregate, on
    # bigger ones they come from a bounded sample (a pass of their own, labelled so).
    quantiles_here = db.backend != "mysql" and (estimate or 0) <= QUANTILE_SAMPLE_ROWS
    aggregated = _attempt(
        profile,
        "column statistics",
        lambda: _aggregate(db, source, columns, count_distinct, quantiles_here),
    )
    rows_read = int(aggregated["__rows"]) if aggregated else None
    if scope["kind"] == "sample":
        scope["rows_read"] = rows_read
        if counted is None:
            found = _attempt(profile, "row count", lambda: db.fetch(t.aggregate(n=t.count())))
            counted = int(found[0]["n"]) if found else None
        profile["rows"] = counted if counted is not None else estimate
        profile["how"] = {"rows": "exact" if counted is not None else "estimate"}
    else:
        profile["rows"] = rows_read
        profile["how"] = {"rows": "exact"}
    if aggregated:
        _fill_statistics(db, columns, aggregated, rows_read or 0, scope["kind"])
        if not count_distinct:
            _attempt(
                profile,
                "distinct estimates",
                lambda: _postgres_distinct(db, resolved, columns, estimate),
            )
        _attempt(
            profile,
            "exact distinct counts",
            lambda: _exact_distinct(db, source, columns, profile, rows_read or 0),
        )
        _attempt(
            profile,
            "top values",
            lambda: _top_values(db, source, columns, top_values, scope["kind"]),
        )
        if not quantiles_here:  # sampled from the whole table, so sized by its row count
            total = profile["rows"]
            _attempt(profile, "quantiles", lambda: _sampled_quantiles(db, t, columns, total))
    samples = _attempt(profile, "sample rows", lambda: db.fetch(t.limit(sample_rows)))
    profile["samples"] = [{k: to_json(v) for k, v in row.items()} for row in samples or []]
    profile["flags"] = quality_flags(profile)
    profile["seconds"] = round(time.perf_counter() - started, 3)
    for column in columns:
        column.pop("_kind", None)
        column.pop("_decimal", None)
        column.pop("_keyable", None)
    record.remember_profile(profile)
    return profile


def _attempt(profile: dict[str, Any], what: str, work: Any) -> Any:
    try:
        return work()
    except QueryTimeout as exc:
        profile["errors"].append({"pass": what, "error": str(exc), "timeout": True})
    except Exception as exc:
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        profile["errors"].append({"pass": what, "error": message})
    return None


def _choose_scope(estimate: int | None, row_budget: int) -> dict[str, Any]:
    if estimate is None or estimate <= row_budget or row_budget <= 0:
        return {"kind": "full", "row_budget": row_budget}
    fraction = max(row_budget / estimate, 1e-6)
    return {"kind": "sample", "row_budget": row_budget, "fraction": round(fraction, 6)}


def _sample_args(db: Database) -> dict[str, Any]:
    # Row sampling (Bernoulli) is unbiased; PostgreSQL and DuckDB can repeat it with a seed,
    # MySQL samples with RAND() and ibis takes no seed there.
    return {"method": "row"} if db.backend == "mysql" else {"method": "row", "seed": SEED}


def _kind(dtype: Any) -> str:
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_numeric():
        return "number"
    if dtype.is_timestamp() or dtype.is_date():
        return "time"
    if dtype.is_string():
        return "text"
    if dtype.is_uuid() or dtype.is_time():
        return "orderable"
    return "other"  # JSON, arrays, structs, binary: nulls only


def _column_entry(column: str, dtype: Any, declared: Any) -> dict[str, Any]:
    comments = declared.column_comments if declared else {}
    return {
        "name": column,
        "type": str(dtype.copy(nullable=True)),
        "nullable": bool(dtype.nullable),
        "comment": comments.get(column),
        "_kind": _kind(dtype),
        "_decimal": bool(dtype.is_decimal()),
        # Integers, text and UUIDs can be keys; floats and times repeat by nature.
        "_keyable": bool(dtype.is_integer() or dtype.is_string() or dtype.is_uuid()),
        "how": {},
    }


def _aggregate(
    db: Database,
    source: Any,
    columns: list[dict[str, Any]],
    count_distinct: bool,
    quantiles: bool,
) -> dict[str, Any]:
    aggs: dict[str, Any] = {"__rows": source.count()}
    for i, column in enumerate(columns):
        c, kind = source[column["name"]], column["_kind"]
        aggs[f"c{i}_n"] = c.count()
        if kind == "other":
            continue
        if count_distinct:
            aggs[f"c{i}_d"] = c.approx_nunique()
        if kind in ("number", "time", "text", "orderable"):
            value = c.cast("float64") if column["_decimal"] else c
            aggs[f"c{i}_min"] = value.min()
            aggs[f"c{i}_max"] = value.max()
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
    return db.fetch(source.aggregate(**aggs))[0]


def _fill_statistics(
    db: Database, columns: list[dict[str, Any]], row: dict[str, Any], rows: int, scope: str
) -> None:
    distinct_how = "approx" if db.backend == "duckdb" else "exact"
    for i, column in enumerate(columns):
        how = column["how"]
        non_null = int(row[f"c{i}_n"] or 0)
        column["nulls"] = rows - non_null
        column["null_rate"] = round((rows - non_null) / rows, 6) if rows else None
        how["nulls"] = _label("exact", scope)
        if f"c{i}_d" in row:
            distinct = int(row[f"c{i}_d"] or 0)
            # HyperLogLog may overshoot; a column cannot hold more values than non-null rows.
            column["distinct"] = min(distinct, non_null)
            how["distinct"] = _label(distinct_how, scope)
        for stat in ("min", "max", "mean", "std", "lmin", "lmean", "lmax"):
            if f"c{i}_{stat}" in row:
                value = to_json(row[f"c{i}_{stat}"])
                column[
                    {"lmin": "length_min", "lmean": "length_mean", "lmax": "length_max"}.get(
                        stat, stat
                    )
                ] = round(value, 6) if isinstance(value, float) else value
        if f"c{i}_q" in row and row[f"c{i}_q"] is not None:
            values = row[f"c{i}_q"]
            values = values if isinstance(values, list | tuple) else [values]
            column["quantiles"] = {
                _quantile_key(q): to_json(v) for q, v in zip(QUANTILES, values, strict=False)
            }
            how["quantiles"] = _label("exact", scope)
        for stat in ("min", "max", "mean", "std"):
            if stat in column:
                how[stat] = _label("exact", scope)


def _label(method: str, scope: str) -> str:
    return method if scope == "full" else f"{method}, sample"


def _quantile_key(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _key_candidates(
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


def _exact_distinct(
    db: Database,
    source: Any,
    columns: list[dict[str, Any]],
    profile: dict[str, Any],
    rows_read: int,
) -> None:
    """One aggregate of exact distinct counts: for key columns (giving exact duplicates), and on
    DuckDB for columns its HyperLogLog put under EXACT_DISTINCT_BELOW values."""
    declared = set(profile.get("primary_key") or []) | {
        u[0] for u in profile["unique"] if len(u) == 1
    }
    scope = profile["scope"]["kind"]
    for column in columns:
        if column["name"] in declared and len(profile.get("primary_key") or []) <= 1:
            # The database enforces a declared key: no duplicates, no count needed.
            column["distinct"] = rows_read - column.get("nulls", 0)
            column["duplicates"], column["key"] = 0, "declared"
            column["how"]["distinct"] = column["how"]["duplicates"] = "exact (enforced key)"
    keys = [
        i for i in _key_candidates(columns, profile, rows_read) if columns[i].get("key") is None
    ]
    small = [
        i
        for i, c in enumerate(columns)
        if db.backend == "duckdb"
        and i not in keys
        and c.get("key") is None
        and c["_kind"] != "other"
        and c.get("distinct") is not None
        and c["distinct"] <= EXACT_DISTINCT_BELOW
    ]
    if not keys and not small:
        return
    aggs = {f"d{i}": source[columns[i]["name"]].nunique() for i in keys + small}
    row = db.fetch(source.aggregate(**aggs))[0]
    for i in keys + small:
        column = columns[i]
        column["distinct"] = int(row[f"d{i}"] or 0)
        column["how"]["distinct"] = _label("exact", scope)
    for i in keys:
        column = columns[i]
        column["duplicates"] = rows_read - column.get("nulls", 0) - column["distinct"]
        column["key"] = "candidate"
        column["how"]["duplicates"] = _label("exact", scope)


def _postgres_distinct(
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


def _top_values(
    db: Database, source: Any, columns: list[dict[str, Any]], limit: int, scope: str
) -> None:
    for column in columns:
        distinct = column.get("distinct")
        if column["_kind"] == "other" or distinct is None or distinct > LOW_CARDINALITY:
            continue
        c = source[column["name"]]
        grouped = (
            source.filter(c.notnull())
            .group_by(value=c)
            .aggregate(count=_.count())
            .order_by([ibis.desc("count"), "value"])
            .limit(limit)
        )
        column["top_values"] = [
            {"value": to_json(row["value"]), "count": int(row["count"])}
            for row in db.fetch(grouped)
        ]
        column["how"]["top_values"] = _label("exact", scope)


def _sampled_quantiles(
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
        values = row[f"q{i}"]
        if values is None:
            continue
        values = values if isinstance(values, list | tuple) else [values]
        column["quantiles"] = {
            _quantile_key(q): to_json(v) for q, v in zip(QUANTILES, values, strict=False)
        }
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
