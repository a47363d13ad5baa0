"""Histograms of the number and time columns, counted in the database in one query per table.

Bins are equal-width between the column's min and max (from pass 1); integers and dates whose
range holds at most BINS values get one bin per value. A value's bin comes from comparisons with
the bin edges, nested as a binary search (about 5 for 20 bins), in SQL that DuckDB, PostgreSQL
and MariaDB all run: no floor of a float division (whose rounding could put a value on an edge
in the next bin) and no epoch conversion (MySQL's UNIX_TIMESTAMP depends on the session's time
zone and gives 0 before 1970). Time edges are compared as the driver gave the min and max (naive
or with a zone), so a naive TIMESTAMP is never shifted by a time zone. A value outside [min, max]
(another sample's) lands in an end bin rather than nowhere.

The query is one `GROUP BY bin` per column, joined by UNION ALL. Measured on 5M rows and 8
columns against the alternatives in one scan (a filtered count per bin, a CASE sum per edge,
GROUPING SETS, GROUP BY of several columns' bins at once), it was the fastest on DuckDB (a
column store reads one column per branch) and as fast as any on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import math
from typing import Any

import ibis
from ibis import _

from catalog_toolkit.database import Database
from catalog_toolkit.values import as_float, to_json

BINS = 20
KINDS = ("number", "time")
_DAY = dt.timedelta(days=1)


def histograms(db: Database, source: Any, columns: list[dict[str, Any]], scope: str) -> None:
    """Write `histogram` (`[[low, high, count], ...]`, lowest first) into each number and time
    column with values, from one query over `source` (the table, or the profile's sample)."""
    planned = plan(columns)
    if not planned:
        return
    parts = []
    for i, edges in planned:
        value = source[columns[i]["name"]]
        grouped = (
            source.filter(value.notnull()).group_by(b=bin_of(value, edges)).aggregate(n=_.count())
        )
        parts.append(grouped.mutate(c=ibis.literal(i, type="int32")))
    counts: dict[tuple[int, int], int] = {
        (int(row["c"]), int(row["b"])): int(row["n"])
        for row in db.fetch(ibis.union(*parts, distinct=False))
    }
    write(columns, planned, counts, scope)


def plan(columns: list[dict[str, Any]]) -> list[tuple[int, list[Any]]]:
    """The columns that get a histogram (their index), each with its bin edges."""
    return [(i, edges) for i, c in enumerate(columns) if (edges := _edges(c)) is not None]


def bin_of(value: Any, edges: list[Any]) -> Any:
    """The bin number of `value` (int32; a NULL value lands in the first bin: filter it)."""
    return _bin(value, edges, 0, len(edges) - 2)


def write(
    columns: list[dict[str, Any]],
    planned: list[tuple[int, list[Any]]],
    counts: dict[tuple[int, int], int],
    scope: str,
) -> None:
    """Each planned column's `histogram` from `counts`, keyed (column index, bin)."""
    how = "exact" if scope == "full" else "exact, sample"
    for i, edges in planned:
        # One bin per value: written as (value, value), the way a single value's bin reads.
        single = _one_value_a_bin(columns[i], edges)
        columns[i]["histogram"] = [
            [to_json(low), to_json(low if single else high), counts.get((i, j), 0)]
            for j, (low, high) in enumerate(itertools.pairwise(edges))
        ]
        columns[i]["how"]["histogram"] = how


def _bin(value: Any, edges: list[Any], first: int, last: int) -> Any:
    """The bin of `value` among bins `first` to `last` (bin j holds edges[j] <= value <
    edges[j + 1], the last one its upper edge too), as a binary search of CASEs."""
    if first == last:
        return ibis.literal(first, type="int32")
    middle = (first + last + 1) // 2
    return ibis.ifelse(
        value < _literal(edges[middle], value.type()),
        _bin(value, edges, first, middle - 1),
        _bin(value, edges, middle, last),
    )


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
    # Rounded for the page and the SQL, to 6 significant digits of the width at least.
    places = max(6, 6 - math.floor(math.log10(width)))
    inner = [round(low + j * width, places) for j in range(1, BINS)]
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


def _literal(edge: Any, dtype: Any) -> Any:
    """An edge in the column's own kind, so no row is converted to compare (a PostgreSQL
    NUMERIC cast to float for each comparison tripled the time of its column)."""
    if isinstance(edge, dt.datetime):
        if edge.tzinfo is None:
            return ibis.literal(edge, type="timestamp")
        # In UTC: ibis writes DuckDB's literal from the fields and names the zone UTC.
        return ibis.literal(edge.astimezone(dt.UTC), type="timestamp('UTC')")
    if isinstance(edge, dt.date):
        return ibis.literal(edge, type="date")
    if dtype.is_integer():  # for integers, x < 49.95 holds exactly when x < 50
        return ibis.literal(math.ceil(edge), type="int64")
    if dtype.is_decimal():  # typed with the edge's own scale: untyped, ibis rounds it
        exact = decimal.Decimal(str(edge))
        scale = max(-int(exact.as_tuple().exponent), dtype.scale or 0, 0)
        scale = min(scale, 30)  # MySQL's most; ibis compares only to a scale at least the column's
        return ibis.literal(exact, type=f"decimal(38, {scale})")
    return ibis.literal(float(edge), type="float64")
