"""The detail figures of a big table, from one bounded random sample it fetches once.

On a table over DETAIL_ABOVE rows, the scan of the whole table (pass 1) keeps to what one
aggregate pass reads as fast as any: the row count and each column's non-null count, min and
max, exact. Everything else, which costs several times that pass over the whole table (DuckDB's
HyperLogLog alone took 5x the count, min and max; string lengths and moments 1x each; the
GROUP BYs of top values and histogram bins 5x), comes from a random sample of about DETAIL_ROWS
rows, fetched once and reduced in-process by Arrow and NumPy (sample_stats.py): distinct counts,
mean, standard deviation, string lengths, quantiles, top values and histograms (between the
table's own min and max, with the database's bins).

The sample is drawn in the database (sampling.py): whole blocks on DuckDB and PostgreSQL, ranges
of an integer primary key on MySQL (rows by `RAND()` without one); `scope.detail` says which
and how many rows.

Labels: each figure from the sample says so, `exact, sample of N rows` (top values and histogram
counts are the sample's own counts); a distinct count is the table's, estimated from the
sample's (Haas and Stokes' Duj1, the estimator PostgreSQL's ANALYZE uses), `estimate, sample of
N rows`; duplicates of a column that looks like a key are the table's non-null rows less that
estimate (at least those the sample holds), labelled the same. A declared key keeps its exact
figures (the database enforces it).
"""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc

from catalog_toolkit import histograms, sample_stats, sampling
from catalog_toolkit.database import Database
from catalog_toolkit.passes import LOW_CARDINALITY

DETAIL_ABOVE = 1_000_000  # rows (by the estimate) above which the details come from a sample
DETAIL_ROWS = 50_000  # about this many rows in the sample (PostgreSQL's ANALYZE reads 30,000)
DETAIL_VALUES = 5_000_000  # values a fetch holds at most: wide tables go in batches of columns


def is_big(estimate: int | None) -> bool:
    """Whether a table of `estimate` rows takes one scan and one sample (the module notes)."""
    return (estimate or 0) > DETAIL_ABOVE


def sample_figures(
    db: Database, t: Any, columns: list[dict[str, Any]], profile: dict[str, Any], limit: int
) -> None:
    """Fill `columns`' detail figures (see the module notes) from a sample of `t`, `limit` top
    values a column; pass 1's exact nulls, min and max stay."""
    wanted = [c for c in columns if c["_kind"] != "other"]
    rows = int(profile["rows"] or 0)
    if not wanted or rows <= 0:
        return
    key = _integer_key(columns, profile)
    # A wide table in batches of columns, each the same seeded rows, so no fetch holds more
    # than DETAIL_VALUES values (500 columns of 100,000 rows would be 50M Python objects).
    size = max(1, DETAIL_VALUES // DETAIL_ROWS)
    for start in range(0, len(wanted), size):
        batch = wanted[start : start + size]
        names = [c["name"] for c in batch]
        sample, method = sampling.draw(db, t, names, rows, DETAIL_ROWS, key)
        how = f"exact, sample of {sample.num_rows:,} rows"
        for column in batch:
            values = pc.drop_null(sample.column(column["name"]))
            reduce_column(column, values, how, limit)
            if column.get("key") != "declared":  # its figures are exact (the longest count)
                counts = sample_stats.value_counts(values)
                count_values(column, counts, sample.num_rows, profile, limit)
        profile["scope"].setdefault("detail", {"rows_read": sample.num_rows, "method": method})


def _integer_key(columns: list[dict[str, Any]], profile: dict[str, Any]) -> dict[str, Any] | None:
    """The single-column primary key, when it holds integers (pass 1 found its range)."""
    key = profile.get("primary_key") or []
    found = [c for c in columns if len(key) == 1 and c["name"] == key[0]]
    if not found or not all(isinstance(found[0].get(k), int) for k in ("min", "max")):
        return None
    return found[0]


def reduce_column(column: dict[str, Any], values: Any, how: str, limit: int) -> None:
    """One column's moments, lengths, quantiles and histogram from its sample `values`
    (non-null), each labelled `how`."""
    kind, labels = column["_kind"], column["how"]
    if not len(values):
        return
    if kind == "number":
        column.update(sample_stats.moments(values))
        labels["mean"] = labels["std"] = how
    if kind == "text":
        column.update(sample_stats.lengths(values))
        labels["lengths"] = how
    if kind in histograms.KINDS:
        column["quantiles"] = sample_stats.quantiles(values, kind)
        labels["quantiles"] = how
    planned = histograms.plan([column])  # between the table's own min and max (pass 1)
    if planned:
        edges = planned[0][1]
        counted = sample_stats.bin_counts(values, edges)
        histograms.write([column], planned, {(0, j): n for j, n in counted.items()}, "full")
        labels["histogram"] = how


def count_values(
    column: dict[str, Any],
    counts: sample_stats.Counts,
    read: int,
    profile: dict[str, Any],
    limit: int,
    *,
    whole: bool = False,
) -> None:
    """Top values of a column with few values in the sample; the table's distinct count,
    estimated from the sample's (Duj1); duplicates of a column that looks like a key. With
    `whole`, the sample is the whole table (whole.py): the same figures, exact."""
    labels = column["how"]
    if counts.distinct <= LOW_CARDINALITY and counts.non_null:
        column["top_values"] = counts.top(limit)
        labels["top_values"] = "exact" if whole else f"exact, sample of {read:,} rows"
    if counts.non_null <= 0:
        return
    if whole:
        _counted(column, counts)
        return
    total = _non_null(column, profile)
    # The scan's exact range bounds it: a min and a max apart are two values at least, so a
    # sample that missed the rarer one does not call the column constant.
    ranged = column.get("min") is not None and column.get("min") != column.get("max")
    seen = max(counts.distinct, 2 if ranged else 1)
    column["distinct"] = duj1(counts.non_null, seen, counts.once, total)
    labels["distinct"] = f"estimate, sample of {read:,} rows"
    if _looks_like_key(column, total):
        column["duplicates"] = max(total - column["distinct"], counts.non_null - counts.distinct)
        column["key"] = "candidate"
        labels["duplicates"] = labels["distinct"]


def _counted(column: dict[str, Any], counts: sample_stats.Counts) -> None:
    """Every value counted: the exact distinct count, and a key-like column's duplicates."""
    column["distinct"] = counts.distinct
    column["how"]["distinct"] = "exact"
    if _looks_like_key(column, counts.non_null):
        column["duplicates"] = counts.non_null - counts.distinct
        column["key"] = "candidate"
        column["how"]["duplicates"] = "exact"


def _non_null(column: dict[str, Any], profile: dict[str, Any]) -> int:
    """The table's non-null rows of `column`: over the row budget, pass 1 counted the nulls of
    the budget's sample, so its null rate scales to the table's rows."""
    rows = int(profile["rows"] or 0)
    if profile["scope"]["kind"] == "sample":
        return rows - round(rows * float(column.get("null_rate") or 0))
    return rows - int(column.get("nulls") or 0)


def duj1(sampled: int, distinct: int, once: int, total: int) -> int:
    """Haas and Stokes' Duj1: `sampled` non-null values held `distinct` values, `once` of them
    once; the estimate for `total` non-null values, between `distinct` and `total`."""
    if sampled <= 0 or total <= 0:
        return 0
    denominator = sampled - once + once * sampled / total
    estimate = sampled * distinct / denominator if denominator > 0 else total
    return round(min(max(estimate, distinct), total))


def _looks_like_key(column: dict[str, Any], non_null: int) -> bool:
    distinct = column.get("distinct")
    looks_unique = distinct is not None and distinct >= 0.95 * non_null
    return bool(column["_keyable"]) and non_null > 1 and looks_unique
