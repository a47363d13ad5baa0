"""The same table in two sources, and how the two copies differ: no query, only the facts.

Two tables of different sources match by name (the same table name, schema and case
ignored) or, failing that, by their columns (a Jaccard index of the column names of at least
MIN_JACCARD, with at least MIN_SHARED columns in common); `matched_by` says which. A pair is
compared on its row counts, its schemas (columns only one side has, shared columns whose
type families differ) and the ranges of its shared columns: the min and max of id-like
integer columns, and the newest value of timestamp and date columns, with the lag between
the two copies. Each difference is a finding (`severity`, `kind`, `tables`, `text`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from catalog_toolkit.cross_facts import Facts, family, id_like
from catalog_toolkit.values import as_datetime

MIN_JACCARD = 0.6
MIN_SHARED = 3


def _lower(facts: Facts) -> dict[str, str]:
    return {c.lower(): c for c in facts.columns}


def match(facts: list[Facts], max_pairs: int) -> tuple[list[tuple[Facts, Facts, str]], int]:
    """Pairs of tables of different sources that are the same table, in source order; and
    how many more there were beyond `max_pairs`."""
    pairs = []
    for i, left in enumerate(facts):
        for right in facts[i + 1 :]:
            if left.source == right.source:
                continue
            how = _how(left, right)
            if how:
                pairs.append((left, right, how))
    return pairs[:max_pairs], max(len(pairs) - max_pairs, 0)


def _how(left: Facts, right: Facts) -> str:
    if left.name == right.name:
        return "name"
    a, b = set(_lower(left)), set(_lower(right))
    shared = len(a & b)
    if shared >= MIN_SHARED and shared / len(a | b) >= MIN_JACCARD:
        return "columns"
    return ""


def compare(left: Facts, right: Facts, how: str) -> dict[str, Any]:
    """One pair's differences, and its findings."""
    a, b = _lower(left), _lower(right)
    shared = [k for k in a if k in b]
    pair: dict[str, Any] = {
        "left": left.table,
        "right": right.table,
        "matched_by": how,
        "jaccard": round(len(shared) / len(set(a) | set(b)), 3) if a or b else 0.0,
        "shared_columns": len(shared),
        "rows": {"left": left.rows, "right": right.rows, "how": _rows_how(left, right)},
        "only_left": [a[k] for k in a if k not in b],
        "only_right": [b[k] for k in b if k not in a],
        "type_differences": [
            {"column": a[k], "left": left.columns[a[k]], "right": right.columns[b[k]]}
            for k in shared
            if family(left.columns[a[k]]) != family(right.columns[b[k]])
        ],
        "key_ranges": [],
        "newest": [],
        "findings": [],
    }
    _ranges(pair, left, right, [(a[k], b[k]) for k in shared])
    pair["findings"] = _findings(pair)
    return pair


def _rows_how(left: Facts, right: Facts) -> str:
    return "exact" if left.rows_how == right.rows_how == "exact" else "estimate"


def _ranges(pair: dict[str, Any], left: Facts, right: Facts, shared: list[tuple[str, str]]) -> None:
    for lc, rc in shared:
        if lc not in left.ranges or rc not in right.ranges:
            continue
        (llo, lhi), (rlo, rhi) = left.ranges[lc], right.ranges[rc]
        rtype = right.columns[rc]
        kinds = family(left.columns[lc]), family(rtype)
        if all(k in ("timestamp", "date") for k in kinds):
            newest = _newest(lc, lhi, rhi)
            if newest:
                newest["future_left_out"] = lc in left.future or rc in right.future
                pair["newest"].append(newest)
        elif id_like(lc, left.columns[lc], left.keys) and id_like(rc, rtype, right.keys):
            pair["key_ranges"].append({"column": lc, "left": [llo, lhi], "right": [rlo, rhi]})


def _newest(column: str, left: Any, right: Any) -> dict[str, Any] | None:
    a, b = as_datetime(left), as_datetime(right)
    if a is None or b is None:
        return None
    return {"column": column, "left": left, "right": right, "lag_seconds": (a - b).total_seconds()}


def _findings(pair: dict[str, Any]) -> list[dict[str, Any]]:
    tables = [pair["left"], pair["right"]]
    found = [_rows_finding(pair)] if None not in pair["rows"].values() else []
    found += _schema_findings(pair)
    for item in pair["key_ranges"]:
        same = item["left"] == item["right"]
        l_text, r_text = _span(item["left"]), _span(item["right"])
        text = (
            f"`{item['column']}` runs {l_text} in both `{tables[0]}` and `{tables[1]}`"
            if same
            else f"`{item['column']}` runs {l_text} in `{tables[0]}` and {r_text} in `{tables[1]}`"
        )
        found.append(_finding("good" if same else "neutral", "key_range", tables, text))
    for item in pair["newest"]:
        found.append(_newest_finding(item, tables))
    return found


def _rows_finding(pair: dict[str, Any]) -> dict[str, Any]:
    left, right = pair["left"], pair["right"]
    a, b = int(pair["rows"]["left"]), int(pair["rows"]["right"])
    note = " (by estimate)" if pair["rows"]["how"] != "exact" else ""
    if a == b:
        text = f"`{left}` and `{right}` have the same number of rows, {a:,}{note}"
        return _finding("good", "row_count", [left, right], text)
    more, less = (left, right) if a > b else (right, left)
    text = (
        f"`{more}` has {abs(a - b):,} rows more than `{less}` "
        f"({max(a, b):,} against {min(a, b):,}){note}"
    )
    return _finding("bad", "row_count", [left, right], text)


def _schema_findings(pair: dict[str, Any]) -> list[dict[str, Any]]:
    tables = [pair["left"], pair["right"]]
    found = []
    for side, (mine, other) in (("only_left", tables), ("only_right", tables[::-1])):
        names = pair[side]
        if names:
            noun = "column" if len(names) == 1 else "columns"
            listed = ", ".join(f"`{n}`" for n in names)
            text = f"`{mine}` has {len(names)} {noun} that `{other}` lacks: {listed}"
            found.append(_finding("neutral", "schema_drift", tables, text))
    for item in pair["type_differences"]:
        text = (
            f"`{item['column']}` is {family(item['left'])} ({item['left']}) in `{tables[0]}` "
            f"and {family(item['right'])} ({item['right']}) in `{tables[1]}`"
        )
        found.append(_finding("bad", "type_difference", tables, text))
    if not found:
        text = f"`{tables[0]}` and `{tables[1]}` have the same columns, of the same types"
        found.append(_finding("good", "schema", tables, text))
    return found


def _newest_finding(item: dict[str, Any], tables: list[str]) -> dict[str, Any]:
    lag = float(item["lag_seconds"])
    column = item["column"]
    if lag == 0:
        same = f"the same in `{tables[0]}` and `{tables[1]}`"
        text = f"the newest `{column}` is {same}: {item['left']}"
        return _finding("good", "newest", tables, text)
    later, earlier = (0, 1) if lag > 0 else (1, 0)
    values = (item["left"], item["right"])
    text = (
        f"`{tables[later]}`'s newest `{column}` ({values[later]}) is {duration(abs(lag))} later "
        f"than `{tables[earlier]}`'s ({values[earlier]})"
    )
    if item.get("future_left_out"):
        text += " (values dated in the future left out)"
    return _finding("bad", "newest", tables, text)


def _span(values: list[Any]) -> str:
    low, high = values
    return f"from {_number(low)} to {_number(high)}"


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def duration(seconds: float) -> str:
    """`2 days`, `5 hours`, `40 minutes`, `12 seconds`: the largest whole unit."""
    delta = dt.timedelta(seconds=seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if delta.total_seconds() >= size:
            count = int(delta.total_seconds() // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


def _finding(severity: str, kind: str, tables: list[str], text: str) -> dict[str, Any]:
    return {"severity": severity, "kind": kind, "tables": list(tables), "text": text}
