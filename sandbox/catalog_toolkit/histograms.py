"""Histograms of the number and time columns, counted in the database in one query per table.

Bins are equal-width between the column's min and max (from pass 1); integers and dates whose
range holds at most BINS values get one bin per value. One aggregate counts, for every column at
once, the values at or above each inner edge (`COUNT(x) FILTER (WHERE x >= edge)`, a CASE on
MySQL): one comparison per edge and row, the same SQL on DuckDB, PostgreSQL and MariaDB, and
no epoch conversion (MySQL's UNIX_TIMESTAMP depends on the session's time zone and gives 0
before 1970). A bin's count is the difference of two neighbouring counts, so the counts sum to
the column's non-null values in the rows read, and a value outside [min, max] (another sample's)
lands in an end bin rather than nowhere.

Time edges are compared as the driver gave the min and max (naive or with a zone), so a naive
TIMESTAMP is never shifted by a time zone.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import ibis

from catalog_toolkit.database import Database
from catalog_toolkit.values import as_float, to_json

BINS = 20
KINDS = ("number", "time")
_DAY = dt.timedelta(days=1)


def histograms(db: Database, source: Any, columns: list[dict[str, Any]], scope: str) -> None:
    """Write `histogram` (`[[low, high, count], ...]`, lowest first) into each number and time
    column with values, from one aggregate over `source` (the table, or the profile's sample)."""
    planned = [(i, edges) for i, c in enumerate(columns) if (edges := _edges(c)) is not None]
    if not planned:
        return
    aggs: dict[str, Any] = {}
    for i, edges in planned:
        column = columns[i]
        value = source[column["name"]]
        value = value.cast("float64") if column["_decimal"] else value
        aggs[f"h{i}_0"] = value.count()
        for j, edge in enumerate(edges[1:-1], start=1):
            aggs[f"h{i}_{j}"] = value.count(where=value >= _literal(edge))
    row = db.fetch(source.aggregate(**aggs))[0]
    how = "exact" if scope == "full" else "exact, sample"
    for i, edges in planned:
        at_or_above = [int(row[f"h{i}_{j}"] or 0) for j in range(len(edges) - 1)] + [0]
        # One bin per value: written as (value, value), the way a single value's bin reads.
        single = _one_value_a_bin(columns[i], edges)
        columns[i]["histogram"] = [
            [to_json(low), to_json(low if single else high), at_or_above[j] - at_or_above[j + 1]]
            for j, (low, high) in enumerate(itertools.pairwise(edges))
        ]
        columns[i]["how"]["histogram"] = how


def _edges(column: dict[str, Any]) -> list[Any] | None:
    """The bin edges, lowest first (`len(bins) + 1` of them), or None for no histogram: not a
    number or time, no values, or a min or max that is not finite."""
    if column["_kind"] not in KINDS or column.get("min") is None or column.get("max") is None:
        return None
    if column["_kind"] == "number":
        low, high = as_float(column["min"]), as_float(column["max"])
        if low is None or high is None:  # NaN or infinite
            return None
        if isinstance(column["min"], int) and isinstance(column["max"], int):
            return _spaced(low, high, 1.0, lambda x: int(x) if float(x).is_integer() else x)
        return _spaced(low, high, None, float)
    first, last = _moment(column["min"]), _moment(column["max"])
    if first is None or last is None:
        return None
    whole_days = not isinstance(first, dt.datetime)
    start, end = _as_datetime(first), _as_datetime(last)
    seconds = _spaced(0.0, (end - start).total_seconds(), 86400.0 if whole_days else None, float)
    moments = [start + dt.timedelta(seconds=s) for s in seconds]
    return [_day_at_or_after(m) for m in moments] if whole_days else moments


def _as_datetime(moment: dt.date) -> dt.datetime:
    return moment if isinstance(moment, dt.datetime) else dt.datetime.combine(moment, dt.time())


def _one_value_a_bin(column: dict[str, Any], edges: list[Any]) -> bool:
    """Whether each bin holds one integer or one day (see _spaced), not a range."""
    if len(edges) == 2:
        return bool(edges[0] == edges[1])
    if column["_kind"] == "number":
        return all(isinstance(e, int) for e in edges) and edges[1] - edges[0] == 1
    return not isinstance(edges[0], dt.datetime) and edges[1] - edges[0] == _DAY


def _spaced(low: float, high: float, step: float | None, kind: Any) -> list[Any]:
    """Edges from `low` to `high`: one bin per `step` when the range holds at most BINS steps
    (integers, days), else BINS equal bins; a single value is one bin of no width."""
    if high <= low:
        return [kind(low), kind(high)]
    if step is not None and (high - low) / step + 1 <= BINS:
        count = round((high - low) / step) + 1
        return [kind(low + j * step) for j in range(count + 1)]
    width = (high - low) / BINS
    inner = [round(low + j * width, 6) for j in range(1, BINS)]
    return [kind(low), *(kind(x) for x in inner), kind(high)]


def _moment(text: Any) -> dt.date | dt.datetime | None:
    """A time column's min or max as the driver gave it (naive stays naive), from its ISO text."""
    if not isinstance(text, str):
        return None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _day_at_or_after(moment: dt.datetime) -> dt.date:
    """For DATE columns: `day >= moment` holds exactly for days from this one on."""
    day = moment.date()
    return day if moment.time() == dt.time() else day + _DAY


def _literal(edge: Any) -> Any:
    if isinstance(edge, dt.datetime):
        if edge.tzinfo is None:
            return ibis.literal(edge, type="timestamp")
        # In UTC: ibis writes DuckDB's literal from the fields and names the zone UTC.
        return ibis.literal(edge.astimezone(dt.UTC), type="timestamp('UTC')")
    if isinstance(edge, dt.date):
        return ibis.literal(edge, type="date")
    return ibis.literal(float(edge), type="float64")
