"""One bounded random sample of a table's rows, drawn in the database and fetched as Arrow.

How each backend draws it cheaply (detail.py reduces it):
- DuckDB: `TABLESAMPLE system`, seeded: whole vectors of 2,048 rows, which the scan skips
  without reading (a LIMIT beside it made DuckDB read the whole table; the fraction is of the
  rows pass 1 counted, so the sample stays bounded).
- PostgreSQL: `TABLESAMPLE SYSTEM`, seeded: whole pages, the ones left out never read.
- MySQL and MariaDB have no sampling. With a single-column integer primary key, the rows come
  from CHUNKS random ranges of the key (its min and max from pass 1), the first CHUNK_ROWS of
  each: InnoDB keeps rows in key order, so each range is one short index read (0.6 s against
  3 to 4 s for a `RAND()` filter over 5M rows). Without one, `RAND()` reads the whole table.
"""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa

from catalog_toolkit.database import Database

SEED = 42
CHUNKS = 200  # MySQL: ranges of the primary key
_LOW, _HIGH = -987_654_321_001, -987_654_321_002  # placeholders in the compiled range query


def draw(
    db: Database, t: Any, wanted: list[str], rows: int, target: int, key: dict[str, Any] | None
) -> tuple[pa.Table, str]:
    """About `target` random rows of `wanted` from `t` (of about `rows` rows), and how they
    were drawn; `key` is the single-column integer primary key's entry (name, min, max), if
    any, that MySQL draws ranges of."""
    fraction = min(1.0, target / rows) if rows > 0 else 1.0
    if db.backend == "mysql":
        if key is not None and fraction < 1.0:
            return _fetched(db, _key_ranges(db, t, wanted, key, target)), "random key ranges"
        source = t if fraction >= 1.0 else t.sample(fraction, method="row")
        return _fetched(db, db.sql(source.select(*wanted).limit(2 * target))), "random rows"
    source = t if fraction >= 1.0 else t.sample(fraction, method="block", seed=SEED)
    return _fetched(db, db.sql(source.select(*wanted))), "random blocks"


def _key_ranges(db: Database, t: Any, wanted: list[str], key: dict[str, Any], target: int) -> str:
    """CHUNKS queries of the first rows of a random key range each, in one UNION ALL; the
    ranges do not overlap, so no row comes twice."""
    low, high = int(key["min"]), int(key["max"])
    chunk = max(1, target // CHUNKS)
    draws = random.Random(SEED)  # noqa: S311 (a sample, not a secret)
    starts = sorted({draws.randint(low, high) for _ in range(CHUNKS)})
    value = t[key["name"]]
    # NULLs first, as MySQL sorts them: ibis's default adds a CASE that defeats the key's order.
    ordered = value.asc(nulls_first=True)
    one = t.filter((value >= _LOW) & (value < _HIGH)).order_by(ordered).limit(chunk)
    template = db.sql(one.select(*wanted))
    ends = [*starts[1:], high + 1]
    return " UNION ALL ".join(
        f"({template.replace(str(_LOW), str(s)).replace(str(_HIGH), str(e))})"
        for s, e in zip(starts, ends, strict=True)
    )


def _fetched(db: Database, sql: str) -> pa.Table:
    if db.backend == "duckdb":
        table: pa.Table = db.arrow(sql)
        return table
    names, values = db.columns(sql)
    return pa.table({name: _array(column) for name, column in zip(names, values, strict=True)})


def _array(values: list[Any]) -> pa.Array:
    """One column as Arrow, its type inferred; numbers Arrow cannot hold as decimals become
    floats, and any other value it cannot hold (a UUID, a range) its text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    try:
        return pa.array([None if v is None else float(v) for v in values])
    except (TypeError, ValueError):
        return pa.array([None if v is None else str(v) for v in values])
