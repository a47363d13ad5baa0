"""Profile one table inside the database, in a few passes, and say how each number was made.

Passes (each one query, under the statement time limit):
1. one aggregate over the table, or over a sample when the table holds more rows than the
   row budget: per column the non-null count, distinct count, min, max, mean, standard
   deviation and string lengths, and on tables of at most QUANTILE_SAMPLE_ROWS rows the
   quantiles too;
2. an exact `COUNT(*)` over the whole table when pass 1 read a sample, or first when the
   catalog has no row estimate (a PostgreSQL table never analyzed) to choose the scope;
3. one query (grouped.py) for what needs pass 1's figures: exact distinct counts of columns
   that look like keys (giving exact duplicates; a declared single-column key needs none, the
   database enforces it) and, on DuckDB, of columns its HyperLogLog puts under
   EXACT_DISTINCT_BELOW; the top values of every low-cardinality column; and the histogram
   counts of every number and time column (histograms.py), between the min and max pass 1
   found, over the same rows as pass 1 (the table or a sample);
4. on bigger tables, quantiles from a random sample of about QUANTILE_SAMPLE_ROWS rows (in the
   database; in Python for MySQL, which has no quantile function): exact quantiles sort every
   column, which costs more than everything else together;
5. a few sample rows (`LIMIT`).
A table over detail.DETAIL_ABOVE rows takes two passes instead of 1, 3 and 4: an aggregate of
the non-null counts, mins and maxes alone (what one plain pass costs), then one bounded sample
fetched once for every other figure (detail.py, labelled with the sample's size).
Nothing pulls a whole table into memory. A pass that fails is recorded in `errors`; the others
still run.

Every figure carries its method in `how`: `exact`, `approx` (DuckDB's HyperLogLog distinct
count), `estimate` (the catalog's row estimate, PostgreSQL's pg_stats), with `, sample` or
`sample of N rows` when it was computed on a sample, and the profile's `scope` says whether the
column figures come from a full scan or a sample (with the fraction and the rows read).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from catalog_toolkit import grouped, passes, record, sources
from catalog_toolkit.database import Database, QueryTimeout, TableName
from catalog_toolkit.detail import is_big, sample_figures
from catalog_toolkit.flags import quality_flags
from catalog_toolkit.metadata import read_declared
from catalog_toolkit.values import to_json

FORMAT = 1
DEFAULT_ROW_BUDGET = 10_000_000
DEFAULT_ESTIMATE_ROWS_ABOVE = 100_000_000  # PostgreSQL: above, the row count is its estimate
DEFAULT_TIMEOUT_S = 120.0
TOP_VALUES = 10
SAMPLE_ROWS = 5
EXACT_DISTINCT_ROWS = 1_000_000  # above this (by estimate), distinct counts may be approximate
_PRIVATE_KEYS = ("_kind", "_decimal", "_keyable")  # what the passes need, not the page


def profile_table(
    con: Any,
    table: str,
    *,
    row_budget: int = DEFAULT_ROW_BUDGET,
    estimate_rows_above: int = DEFAULT_ESTIMATE_ROWS_ABOVE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sample_rows: int = SAMPLE_ROWS,
    top_values: int = TOP_VALUES,
) -> dict[str, Any]:
    """Profile `table` (`schema.table` or `table`, `source/schema.table` with `cons`) through
    `con`: one ibis connection, or the mapping of every source's connection (sources.py).

    Returns a JSON-ready dict (see the module notes for its passes and labels). Tables above
    `row_budget` rows (by the catalog's estimate) are profiled on a random sample of about that
    many rows; the row count stays exact, except on PostgreSQL tables whose estimate passes
    `estimate_rows_above` rows, where the planner's estimate stands in (labelled `estimate`)
    rather than a count that reads the whole table. Each query stops after `timeout_s` seconds.
    """
    connection, bare = sources.connection_for(con, table)
    return profile_on(
        connection,
        bare,
        sources.run_name(con, table),
        row_budget=row_budget,
        estimate_rows_above=estimate_rows_above,
        timeout_s=timeout_s,
        sample_rows=sample_rows,
        top_values=top_values,
    )


def profile_on(
    con: Any,
    table: str,
    label: str,
    *,
    row_budget: int = DEFAULT_ROW_BUDGET,
    estimate_rows_above: int = DEFAULT_ESTIMATE_ROWS_ABOVE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sample_rows: int = SAMPLE_ROWS,
    top_values: int = TOP_VALUES,
) -> dict[str, Any]:
    """profile_table of `table` in the one connection `con`, named `label` (its run name:
    `billing/invoices`, or bare for the default source) in the profile and the record."""
    started = time.perf_counter()
    db = Database(con, timeout_s)
    name = TableName.parse(table)
    origin = sources.source_name(label)
    profile: dict[str, Any] = {
        "format": FORMAT,
        "table": sources.qualify(origin, str(name)),
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
        counted = estimate = _count_rows(profile, db, t)
    scope = _choose_scope(estimate, row_budget)
    big = (estimate or 0) > estimate_rows_above and scope["kind"] == "sample"
    if db.backend == "postgres" and counted is None and big:
        scope["rows_from"] = "estimate"  # pg_class.reltuples: no full count (_fill_rows)
    source = t if scope["kind"] == "full" else t.sample(scope["fraction"], **_sample_args(db))
    profile["comment"] = declared.comment if declared else None
    profile["row_estimate"] = estimate
    profile["scope"] = scope
    profile.update(declared.to_json() if declared else {"primary_key": [], "unique": []})
    profile.setdefault("foreign_keys", [])
    # A declared key stays within its source; copies, as the declarations are cached.
    profile["foreign_keys"] = [
        {
            **fk,
            "references": {
                **fk["references"],
                "table": sources.qualify(origin, fk["references"]["table"]),
            },
        }
        for fk in profile["foreign_keys"]
    ]
    profile["columns"] = [_column_entry(c, dtype, declared) for c, dtype in schema.items()]
    _column_passes(profile, db, t, source, resolved, counted, top_values)
    samples = _attempt(profile, "sample rows", lambda: db.fetch(t.limit(sample_rows)))
    profile["samples"] = [{k: to_json(v) for k, v in row.items()} for row in samples or []]
    profile["flags"] = quality_flags(profile)
    profile["seconds"] = round(time.perf_counter() - started, 3)
    for column in profile["columns"]:
        for key in _PRIVATE_KEYS:
            column.pop(key, None)
    record.remember_profile(profile)
    return profile


def _column_passes(
    profile: dict[str, Any],
    db: Database,
    t: Any,
    source: Any,
    resolved: TableName,
    counted: int | None,
    limit: int,
) -> None:
    """Passes 1 to 4 (the module notes list them): which run, and on what, for this table."""
    columns, estimate, scope = profile["columns"], profile["row_estimate"], profile["scope"]
    if is_big(estimate):
        _scan_and_sample(profile, db, t, source, counted, limit)
        return
    # PostgreSQL counts distinct values by sorting each column: on big tables its planner's
    # estimate (pg_stats) stands in, labelled as such.
    big = (estimate or 0) > EXACT_DISTINCT_ROWS
    count_distinct = not (db.backend == "postgres" and big)
    # Exact quantiles sort every column: on small tables they ride along in the aggregate, on
    # bigger ones they come from a bounded sample (a pass of their own, labelled so).
    quantiles_here = db.backend != "mysql" and (estimate or 0) <= passes.QUANTILE_SAMPLE_ROWS
    aggregated = _attempt(
        profile,
        "column statistics",
        lambda: passes.aggregate(db, source, columns, count_distinct, quantiles_here),
    )
    rows_read = int(aggregated["__rows"]) if aggregated else None
    _fill_rows(profile, db, t, rows_read, counted)
    if not aggregated:
        return
    passes.fill_statistics(db, columns, aggregated, rows_read or 0, scope["kind"])
    if not count_distinct:
        _attempt(
            profile,
            "distinct estimates",
            lambda: passes.postgres_distinct(db, resolved, columns, estimate),
        )
    _attempt(
        profile,
        "distinct counts, top values and histograms",
        lambda: grouped.counts(db, source, columns, profile, rows_read or 0, limit),
    )
    if not quantiles_here:  # sampled from the whole table, so sized by its row count
        total = profile["rows"]
        _attempt(profile, "quantiles", lambda: passes.sampled_quantiles(db, t, columns, total))


def _scan_and_sample(
    profile: dict[str, Any], db: Database, t: Any, source: Any, counted: int | None, limit: int
) -> None:
    """A big table's passes: one scan of what a plain aggregate reads (non-null counts, mins
    and maxes), then the rest from one bounded sample (detail.py)."""
    columns, scope = profile["columns"], profile["scope"]
    aggregated = _attempt(
        profile,
        "column statistics",
        lambda: passes.aggregate(db, source, columns, False, False, scan_only=True),
    )
    rows_read = int(aggregated["__rows"]) if aggregated else None
    _fill_rows(profile, db, t, rows_read, counted)
    if not aggregated:
        return
    passes.fill_statistics(db, columns, aggregated, rows_read or 0, scope["kind"])
    grouped.declared_keys(columns, profile, rows_read or 0)
    _attempt(
        profile,
        "distinct counts, moments, quantiles, top values and histograms (sample)",
        lambda: sample_figures(db, t, columns, profile, limit),
    )


def _fill_rows(
    profile: dict[str, Any], db: Database, t: Any, rows_read: int | None, counted: int | None
) -> None:
    """The row count: what pass 1 read on a full scan; on a sample, an exact count (pass 2)."""
    scope = profile["scope"]
    if scope["kind"] == "sample":
        scope["rows_read"] = rows_read
        if counted is None and scope.get("rows_from") != "estimate":
            counted = _count_rows(profile, db, t)
        profile["rows"] = counted if counted is not None else profile["row_estimate"]
        profile["how"] = {"rows": "exact" if counted is not None else "estimate"}
    else:
        profile["rows"] = rows_read
        profile["how"] = {"rows": "exact"}


def _count_rows(profile: dict[str, Any], db: Database, t: Any) -> int | None:
    found = _attempt(profile, "row count", lambda: db.fetch(t.aggregate(n=t.count())))
    return int(found[0]["n"]) if found else None


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
    return {"method": "row"} if db.backend == "mysql" else {"method": "row", "seed": passes.SEED}


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
