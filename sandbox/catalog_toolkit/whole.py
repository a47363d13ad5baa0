"""A small DuckDB table's figures from one fetch of its rows as Arrow, reduced in-process.

On DuckDB, a table of at most WHOLE_ROWS rows (by the catalog's estimate) is read once, every
column as Arrow (which DuckDB hands over without converting a value), and every figure is
computed from it by sample_stats.py, the kernels detail.py uses on a big table's sample: here
the "sample" is the whole table, so every figure is exact and labelled `exact`, distinct counts
included (Arrow counts every value; the database path estimated them by HyperLogLog, then
counted again below EXACT_DISTINCT_BELOW). One query in place of three (the aggregate, the
UNION ALL of counts and bins, the sample rows: the first rows fetched, as `LIMIT` gives them),
and none of them compiled by ibis: on 10 tables
of 100,000 rows, ibis's compiling and DuckDB's passes took 3x what the fetch and Arrow take.
Wide tables go in batches of columns of at most detail.DETAIL_VALUES values, as detail.py's
sample does. A column Arrow cannot reduce (an unusual type) leaves the whole table to the
database's passes: `reduce` raises and profile.py runs them instead.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog_toolkit import detail, grouped, passes, sample_stats
from catalog_toolkit.database import Database, TableName

WHOLE_ROWS = 200_000  # DuckDB: tables up to this many rows (by the estimate) are fetched whole
_RANGED = ("number", "time", "text", "orderable")  # what passes.aggregate takes a min and max of


def fits(db: Database, estimate: int | None, columns: list[dict[str, Any]]) -> bool:
    """Whether `columns` of a table of `estimate` rows are profiled from one fetch."""
    kinds_ok = all(c["_kind"] != "orderable" for c in columns)  # UUIDs: no Arrow min and max
    return db.backend == "duckdb" and estimate is not None and estimate <= WHOLE_ROWS and kinds_ok


def reduce(db: Database, name: TableName, profile: dict[str, Any], limit: int) -> None:
    """Every column figure of table `name` from its rows fetched as Arrow (the module notes),
    written into `profile` (its `rows`, `how`, and columns) as profile.py's passes write them."""
    columns = profile["columns"]
    size = max(1, detail.DETAIL_VALUES // max(1, int(profile["row_estimate"] or 1)))
    fetched: list[pa.Table] = []
    for start in range(0, len(columns), size):
        names = ", ".join(_quoted(c["name"]) for c in columns[start : start + size])
        # Identifiers only, each quoted (_quoted): no value reaches the SQL.
        fetched.append(db.arrow(f"SELECT {names} FROM {_relation(name)}"))  # noqa: S608
    rows = fetched[0].num_rows
    # The sample rows too, as `LIMIT` would give them: the first ones, in the table's order.
    heads = [table.slice(0, int(profile["_head"])).to_pylist() for table in fetched]
    merged = zip(*heads, strict=True)  # the same rows in each batch of columns
    profile["_head"] = [{k: v for part in parts for k, v in part.items()} for parts in merged]
    arrays = [table.column(i) for table in fetched for i in range(table.num_columns)]
    passes.fill_statistics(db, columns, _scan_row(columns, arrays, rows), rows, "full")
    profile["rows"], profile["how"] = rows, {"rows": "exact"}
    grouped.declared_keys(columns, profile, rows)
    for column, values in zip(columns, arrays, strict=True):
        if column["_kind"] == "other":
            continue
        present = pc.drop_null(values)
        detail.reduce_column(column, present, "exact", limit)
        if not len(present):
            column["distinct"], column["how"]["distinct"] = 0, "exact"
        elif column.get("key") != "declared":
            counts = sample_stats.value_counts(present)
            detail.count_values(column, counts, rows, profile, limit, whole=True)


def _scan_row(columns: list[dict[str, Any]], arrays: list[Any], rows: int) -> dict[str, Any]:
    """What passes.aggregate's scan would have returned (`c{i}_n`, `c{i}_min`, `c{i}_max`)."""
    row: dict[str, Any] = {"__rows": rows}
    for i, (column, values) in enumerate(zip(columns, arrays, strict=True)):
        row[f"c{i}_n"] = rows - values.null_count
        if column["_kind"] in _RANGED:
            found = pc.min_max(values)
            row[f"c{i}_min"], row[f"c{i}_max"] = found["min"].as_py(), found["max"].as_py()
    return row


def _relation(name: TableName) -> str:
    """The table as DuckDB names it, schema and table quoted."""
    parts = [*name.schema.split("."), name.name] if name.schema else [name.name]
    return ".".join(_quoted(part) for part in parts)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
