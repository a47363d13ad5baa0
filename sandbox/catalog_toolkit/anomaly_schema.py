"""Schema anomalies of a table: a column whose type changed, a column probably renamed.

Judged against the last earlier run that held the table. A rename is a column gone and one
new, of the same type, whose figures (null rate, distinct count, min, max, mean, median, text
length) agree: a reader's query still fails on the old name, but no data was lost.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit.schema_rules import normalize_type, widens
from catalog_toolkit.values import as_float

# Figures that must agree for a rename, each with its tolerance (relative; null rate absolute).
RENAME_FIGURES = {
    "distinct": 0.1,
    "min": 0.05,
    "max": 0.05,
    "mean": 0.05,
    "median": 0.05,
    "length_mean": 0.1,
}
NULL_RATE_TOLERANCE = 0.02
RENAME_MIN_FIGURES = 2  # a pair needs at least this many figures to compare


def schema_anomalies(
    table: str, now: dict[str, Any], earlier: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Type changes and probable renames of `table`'s columns since the last earlier run."""
    if not earlier:
        return []
    then = {c["name"]: c for c in earlier[-1].get("columns", [])}
    current = {c["name"]: c for c in now.get("columns", [])}
    findings = []
    for name in [n for n in current if n in then]:
        before, after = normalize_type(then[name]["type"]), normalize_type(current[name]["type"])
        if before != after:
            findings.append(_type_change(table, name, before, after))
    gone = [then[n] for n in then if n not in current]
    new = [current[n] for n in current if n not in then]
    for old, renamed, agreed in _renames(gone, new):
        message = f"probably renamed from {old['name']}: same type and {agreed} matching figures"
        findings.append(
            _finding(
                table,
                renamed["name"],
                "column_renamed",
                "neutral",
                "medium",
                old["name"],
                renamed["name"],
                float(agreed),
                message,
            )
        )
    return findings


def _type_change(table: str, column: str, before: str, after: str) -> dict[str, Any]:
    wider = widens(before, after)
    return _finding(
        table,
        column,
        "type_changed",
        "neutral" if wider else "bad",
        "medium" if wider else "high",
        before,
        after,
        None,
        f"type changed from {before} to {after}"
        + ("; a wider type keeps every value" if wider else "; readers may break or lose data"),
    )


def _finding(
    table: str,
    column: str,
    kind: str,
    severity: str,
    priority: str,
    baseline: Any,
    value: Any,
    score: float | None,
    message: str,
) -> dict[str, Any]:
    return {
        "table": table,
        "column": column,
        "category": "schema",
        "kind": kind,
        "metric": "type" if kind == "type_changed" else "name",
        "severity": severity,
        "priority": priority,
        "value": value,
        "baseline": baseline,
        "spread": None,
        "score": score,
        "baseline_runs": 1,
        "seasonal": False,
        "message": message,
        "history": [],
        "marks": [],
    }


def _renames(
    gone: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any], int]]:
    """(old column, new column, figures that agree), best match first, each column once."""
    pairs = []
    for old in gone:
        for column in new:
            agreed = _agreement(old, column)
            if agreed is not None:
                pairs.append((agreed, old["name"], column["name"], old, column))
    chosen: list[tuple[dict[str, Any], dict[str, Any], int]] = []
    used: set[str] = set()
    for agreed, old_name, new_name, old, column in sorted(pairs, key=lambda p: -p[0]):
        if old_name not in used and new_name not in used:
            used |= {old_name, new_name}
            chosen.append((old, column, agreed))
    return chosen


def _agreement(old: dict[str, Any], new: dict[str, Any]) -> int | None:
    """How many figures agree, or None if the types differ, one disagrees or too few exist."""
    if normalize_type(old.get("type", "")) != normalize_type(new.get("type", "")):
        return None
    agreed = 0
    a, b = old.get("null_rate"), new.get("null_rate")
    if a is not None and b is not None:
        if abs(a - b) > NULL_RATE_TOLERANCE:
            return None
        agreed += 1
    for figure, tolerance in RENAME_FIGURES.items():
        x, y = _figure(old, figure), _figure(new, figure)
        if x is None or y is None:
            continue
        if abs(x - y) > tolerance * max(abs(x), abs(y), 1e-9):
            return None
        agreed += 1
    return agreed if agreed >= RENAME_MIN_FIGURES else None


def _figure(column: dict[str, Any], figure: str) -> float | None:
    if figure == "median":
        return as_float((column.get("quantiles") or {}).get("p50"))
    return as_float(column.get(figure))
