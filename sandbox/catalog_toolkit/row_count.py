"""A sampled table's row count: exact by `COUNT(*)`, or PostgreSQL's planner estimate.

When a profile reads a sample (the table is over the row budget), its row count needs a pass of
its own. Up to `exact_count_max_rows` rows (by the catalog's estimate) that pass is an exact
`COUNT(*)`, a scan of the whole table. Above it, on PostgreSQL, the planner's own estimate
stands in, as the planner makes it: `pg_class.reltuples` (from the last VACUUM or ANALYZE) per
page, times the table's pages now (`pg_relation_size`), so rows added since are counted by the
space they take; labelled `estimate` with where it came from. MySQL's `table_rows` and DuckDB's
estimated size are rougher, so they still count.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit.database import Database, TableName

DEFAULT_EXACT_COUNT_MAX_ROWS = 10_000_000  # PostgreSQL: above, the planner's row estimate
ESTIMATED = "estimate (PostgreSQL's planner: pg_class.reltuples per page, times its pages now)"

_PLANNER_ROWS = (
    "SELECT CASE WHEN c.relpages > 0 AND c.reltuples >= 0"
    " THEN c.reltuples / c.relpages"
    " * (pg_relation_size(c.oid) / current_setting('block_size')::int)"
    " ELSE c.reltuples END AS estimate"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s"
)


def by_estimate(db: Database, estimate: int | None, exact_count_max_rows: int) -> bool:
    """Whether the row count of a sampled table is the planner's (the module notes)."""
    return db.backend == "postgres" and (estimate or 0) > exact_count_max_rows


def planner_rows(db: Database, name: TableName) -> int | None:
    """PostgreSQL's planner estimate of `name`'s rows now, or None if it has none."""
    schema = name.schema or str(db.query("SELECT current_schema() AS s")[0]["s"])
    found = db.query(_PLANNER_ROWS, (schema, name.name))
    value: Any = found[0]["estimate"] if found else None
    return round(float(value)) if value is not None and float(value) >= 0 else None
