"""Findings about a table's rows: counts against a baseline of earlier runs, and freshness.

A single earlier run says little about a table that grows in bursts, so growth is judged
against the usual growth across the baseline, and a count that stalls is bad only when the
table grew before.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from catalog_toolkit.findings import add
from catalog_toolkit.values import as_datetime

ROW_ESTIMATE_ERROR = 0.02  # how far a planner's row estimate drifts without a real change


def compare_rows(
    result: dict[str, Any], name: str, now: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    """Judge `now`'s row count against `history` (the baseline runs, oldest first)."""
    counts = [int(h["rows"]) for h in history if h.get("rows") is not None]
    rows = int(now["rows"])
    if not counts:
        return
    previous = counts[-1]
    steps = [b - a for a, b in itertools.pairwise(counts)]
    if _within_estimate(now, history[-1], rows, previous):
        _compare_freshness(result, name, now, history)  # the planner's count moved, no more
        return
    if rows == 0 and previous > 0:
        add(
            result,
            "bad",
            name,
            None,
            "rows_emptied",
            f"the table is empty (was {previous:,})",
            "every row was deleted or the load failed",
        )
    elif rows < previous:
        add(
            result,
            "bad",
            name,
            None,
            "rows_decreased",
            f"{previous - rows:,} fewer rows ({_pct(rows, previous)}), now {rows:,}",
            f"rows were deleted; baseline of {len(counts)} runs is "
            f"{statistics.median(counts):,.0f}",
        )
    elif rows == previous:
        _no_new_rows(result, name, rows, counts, grew_before=any(step > 0 for step in steps))
    else:
        _rows_grew(result, name, rows, counts, steps)
    _compare_freshness(result, name, now, history)


def _within_estimate(now: dict[str, Any], then: dict[str, Any], rows: int, previous: int) -> bool:
    """Whether either count is the planner's estimate (row_count.py) and they differ by less
    than such an estimate drifts between two ANALYZEs: not a change worth a finding."""
    estimated = any(
        str((p.get("how") or {}).get("rows", "")).startswith("estimate") for p in (now, then)
    )
    return estimated and rows > 0 and abs(rows - previous) <= ROW_ESTIMATE_ERROR * previous


def _no_new_rows(
    result: dict[str, Any], name: str, rows: int, counts: list[int], *, grew_before: bool
) -> None:
    quiet = _same_tail(counts)  # earlier runs, back from the last, with this same count
    if quiet >= 2 or grew_before:
        add(
            result,
            "bad" if grew_before else "neutral",
            name,
            None,
            "no_new_rows",
            f"no new rows for {quiet} run{'s' if quiet > 1 else ''} (still {rows:,})",
            "the table grew before, so its load may have stopped"
            if grew_before
            else "the table has not changed across these runs",
        )


def _rows_grew(
    result: dict[str, Any], name: str, rows: int, counts: list[int], steps: list[int]
) -> None:
    previous = counts[-1]
    growth = rows - previous
    typical = statistics.median([s for s in steps if s > 0]) if any(s > 0 for s in steps) else 0
    if typical and growth > 3 * typical:
        add(
            result,
            "neutral",
            name,
            None,
            "rows_spike",
            f"{growth:,} new rows ({_pct(rows, previous)}), now {rows:,}",
            f"{growth / typical:.1f}x the usual growth of {typical:,.0f} rows per run "
            f"(baseline of {len(counts)} runs)",
        )
    else:
        add(
            result,
            "good",
            name,
            None,
            "rows_grew",
            f"{growth:,} new rows ({_pct(rows, previous)}), now {rows:,}",
            "the table keeps receiving data"
            + (f"; in line with {typical:,.0f} rows per run" if typical else ""),
        )


def _same_tail(counts: list[int]) -> int:
    """How many runs at the end of `counts` hold the same count as the last one."""
    same = 0
    for count in reversed(counts):
        if count != counts[-1]:
            break
        same += 1
    return same


def _compare_freshness(
    result: dict[str, Any], name: str, now: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    previous = history[-1]
    then_columns = {c["name"]: c for c in previous.get("columns", [])}
    for column in now.get("columns", []):
        if not column.get("type", "").startswith(("timestamp", "date")):
            continue
        newest, before = (
            as_datetime(column.get("max")),
            as_datetime(then_columns.get(column["name"], {}).get("max")),
        )
        if newest is None or before is None:
            continue
        if newest < before:
            add(
                result,
                "bad",
                name,
                column["name"],
                "newest_went_back",
                f"the newest value went back from {before.isoformat()} to {newest.isoformat()}",
                "the most recent rows were deleted or rewritten",
            )


def _pct(now: float, then: float) -> str:
    return f"{(now - then) / then:+.1%}" if then else "new"
