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
fetched once for every other figure (detail.py, labelled with the sample's size). Over the row
budget, that aggregate reads the whole table on DuckDB still (it is the floor), and a block
sample of the budget's rows on PostgreSQL, whose row count is then the planner's over
`exact_count_max_rows` (row_count.py). A DuckDB table of at most whole.WHOLE_ROWS rows takes one
pass instead of 1, 3 and 4: its rows fetched as Arrow and reduced in-process (whole.py).
Nothing pulls a whole table into memory. A pass that fails is recorded in `errors`; the others
still run.

Every figure carries its method in `how`: `exact`, `approx` (DuckDB's HyperLogLog distinct
count), `estimate` (the catalog's row estimate, PostgreSQL's pg_stats), with `, sample` or
`sample of N rows` when it was computed on a sample, and the profile's `scope` says whether the
column figures come from a full scan or a sample (with the fraction and the rows read).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import time
from typing import Any

import pyarrow as pa

from catalog_toolkit import grouped, passes, record, row_count, sources, whole
from catalog_toolkit.database import Database, QueryTimeout, TableName
from catalog_toolkit.detail import is_big, sample_figures
from catalog_toolkit.flags import quality_flags
from catalog_toolkit.metadata import read_declared
from catalog_toolkit.values import to_json

FORMAT = 1
DEFAULT_ROW_BUDGET = 10_000_000
DEFAULT_EXACT_COUNT_MAX_ROWS = row_count.DEFAULT_EXACT_COUNT_MAX_ROWS
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
    exact_count_max_rows: int = DEFAULT_EXACT_COUNT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sample_rows: int = SAMPLE_ROWS,
    top_values: int = TOP_VALUES,
) -> dict[str, Any]:
    """Profile `table` (`schema.table` or `table`, `source/schema.table` with `cons`) through
    `con`: one ibis connection, or the mapping of every source's connection (sources.py).

    Returns a JSON-ready dict (see the module notes for its passes and labels). Tables above
    `row_budget` rows (by the catalog's estimate) are profiled on a random sample of about that
    many rows, except on DuckDB, whose one scan of a big table is the floor (the module notes);
    the row count stays exact, except on PostgreSQL tables whose estimate passes
    `exact_count_max_rows` rows, where the planner's estimate stands in (labelled `estimate`)
    rather than a count that reads the whole table (row_count.py). Each query stops after
    `timeout_s` seconds.
    """
    connection, bare = sources.connection_for(con, table)
    return profile_on(
        connection,
        bare,
        sources.run_name(con, table),
        row_budget=row_budget,
        exact_count_max_rows=exact_count_max_rows,
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
    exact_count_max_rows: int = DEFAULT_EXACT_COUNT_MAX_ROWS,
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
    scope = _choose_scope(db, estimate, row_budget)
    sampled = scope["kind"] == "sample"
    if sampled and counted is None and row_count.by_estimate(db, estimate, exact_count_max_rows):
        scope["rows_from"] = "estimate"  # the planner's: no full count (_fill_rows)
    source = t if not sampled else t.sample(scope["fraction"], **_sample_args(db, estimate))
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
    profile["_head"] = sample_rows  # whole.py keeps that many of the rows it fetched
    _column_passes(profile, db, t, source, resolved, counted, top_values)
    head = profile.pop("_head")
    samples = (
        head
        if isinstance(head, list)
        else _attempt(profile, "sample rows", lambda: db.fetch(t.limit(sample_rows)))
    )
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
        _scan_and_sample(profile, db, t, source, counted, limit, resolved)
        return
    fits = scope["kind"] == "full" and whole.fits(db, estimate, columns)
    if fits and _whole(profile, db, resolved, limit):
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
    _fill_rows(profile, db, t, rows_read, counted, resolved)
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


def _whole(profile: dict[str, Any], db: Database, name: TableName, limit: int) -> bool:
    """A small DuckDB table's figures from one fetch (whole.py); False, with the columns as
    they were, when Arrow could not reduce one of them (the database's passes then run)."""
    trial = {**profile, "columns": copy.deepcopy(profile["columns"])}
    try:
        whole.reduce(db, name, trial, limit)
    except QueryTimeout as exc:
        profile["errors"].append({"pass": "column statistics", "error": str(exc), "timeout": True})
        profile["rows"], profile["how"] = None, {"rows": "exact"}
        return True
    except (pa.ArrowException, TypeError, ValueError, KeyError, OverflowError):
        return False
    profile.update({k: trial[k] for k in ("columns", "rows", "how", "_head")})
    return True


def _scan_and_sample(
    profile: dict[str, Any],
    db: Database,
    t: Any,
    source: Any,
    counted: int | None,
    limit: int,
    resolved: TableName,
) -> None:
    """A big table's passes: one scan of what a plain aggregate reads (non-null counts, mins
    and maxes; over the row budget, of the budget's sample), then the rest from one bounded
    sample (detail.py)."""
    columns, scope = profile["columns"], profile["scope"]
    aggregated = _attempt(
        profile,
        "column statistics",
        lambda: passes.aggregate(db, source, columns, False, False, scan_only=True),
    )
    rows_read = int(aggregated["__rows"]) if aggregated else None
    _fill_rows(profile, db, t, rows_read, counted, resolved)
    if not aggregated:
        return
    passes.fill_statistics(db, columns, aggregated, rows_read or 0, scope["kind"])
    if scope["kind"] == "sample":
        _declared_keys_of_sampled(columns, profile)
    else:
        grouped.declared_keys(columns, profile, rows_read or 0)
    _attempt(
        profile,
        "distinct counts, moments, quantiles, top values and histograms (sample)",
        lambda: sample_figures(db, t, columns, profile, limit),
    )


def _declared_keys_of_sampled(columns: list[dict[str, Any]], profile: dict[str, Any]) -> None:
    """A declared key of a table read through a sample: no duplicates (enforced), and as many
    values as the table's non-null rows, exact only when the row count is and it holds no
    NULL (a unique key's NULLs are the sample's share, scaled)."""
    rows = int(profile["rows"] or 0)
    grouped.declared_keys(columns, profile, rows)
    for column in (c for c in columns if c.get("key") == "declared"):
        nulls = round(rows * float(column.get("null_rate") or 0))
        column["distinct"] = rows - nulls
        if profile["how"]["rows"] != "exact" or nulls:
            column["how"]["distinct"] = "estimate (enforced key; rows and nulls as labelled)"


def _fill_rows(
    profile: dict[str, Any],
    db: Database,
    t: Any,
    rows_read: int | None,
    counted: int | None,
    resolved: TableName,
) -> None:
    """The row count: what pass 1 read on a full scan; on a sample, an exact count (pass 2) or,
    over `exact_count_max_rows` on PostgreSQL, the planner's estimate (row_count.py)."""
    scope = profile["scope"]
    if scope["kind"] == "sample":
        scope["rows_read"] = rows_read
        how = "exact"
        if counted is None and scope.get("rows_from") == "estimate":
            estimated = functools.partial(row_count.planner_rows, db, resolved)
            counted = _attempt(profile, "row estimate", estimated)
            how = row_count.ESTIMATED
        elif counted is None:
            counted = _count_rows(profile, db, t)
        profile["rows"] = counted if counted is not None else profile["row_estimate"]
        profile["how"] = {"rows": how if counted is not None else "estimate"}
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


def _choose_scope(db: Database, estimate: int | None, row_budget: int) -> dict[str, Any]:
    """The whole table, or a sample of about `row_budget` rows. A big DuckDB table is read
    whole: its one scan (counts, mins, maxes) is what a plain aggregate costs, the rest comes
    from a bounded sample anyway (detail.py), and a Bernoulli sample of the scan read every row
    as well, then a COUNT(*) read them again (on 50M rows, 7.0 s and 5.0 s beside one pass of 4.4
    s and 5.3 s; one whole scan is about one pass)."""
    whole = db.backend == "duckdb" and is_big(estimate)
    if estimate is None or estimate <= row_budget or row_budget <= 0 or whole:
        return {"kind": "full", "row_budget": row_budget}
    fraction = max(row_budget / estimate, 1e-6)
    return {"kind": "sample", "row_budget": row_budget, "fraction": round(fraction, 6)}


def _sample_args(db: Database, estimate: int | None) -> dict[str, Any]:
    # Row sampling (Bernoulli) is unbiased; PostgreSQL and DuckDB can repeat it with a seed,
    # MySQL samples with RAND() and ibis takes no seed there. A big PostgreSQL table samples
    # whole pages (SYSTEM), so the scan reads the budget's pages only: BERNOULLI reads them all.
    if db.backend == "mysql":
        return {"method": "row"}
    method = "block" if db.backend == "postgres" and is_big(estimate) else "row"
    return {"method": method, "seed": passes.SEED}


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
