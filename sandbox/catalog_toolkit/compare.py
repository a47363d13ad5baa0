"""Compare this run's catalog data with earlier runs: what changed, and is it good or bad.

Reads `{history_dir}/{timestamp}/catalog.json` for every run up to `current_timestamp`, in
either format (history.py). Tables are matched by their run names (`billing/invoices`, bare
for the default source), so each source is compared with itself; a source added or removed
between two runs is one finding, not one per table. Row
counts are judged against a baseline of up to `BASELINE_RUNS` earlier runs, not only the last
one. Figures made differently (a sample against a full scan, a failed profile) are not compared
but listed as incomparable, with the reason.

This module matches the tables of two runs and decides what is comparable; the rules for each
kind of finding live in schema_rules, row_rules and column_rules.

When this run's anomalies agent is past learning (its `anomalies.json` is in the run's folder),
the judgements against the baseline are its own: volume, freshness, null rates, distinct counts,
medians, type changes and the columns it pairs as renames leave this list, which keeps the
structural changes, key duplicates, top values and flags, and counts its findings instead
(docs/pages.md, "Who reports what").
"""

from __future__ import annotations

import json
import os
from typing import Any

from catalog_toolkit import record
from catalog_toolkit.column_rules import compare_columns, compare_flags
from catalog_toolkit.findings import add
from catalog_toolkit.history import load_runs
from catalog_toolkit.row_rules import compare_rows
from catalog_toolkit.schema_rules import compare_schema
from catalog_toolkit.sources import source_name

FORMAT = 1
BASELINE_RUNS = 5
RENAME_SIMILARITY = 0.8
# Findings the anomalies agent owns once it has a baseline: it judges them against many runs.
ANOMALY_KINDS = frozenset(
    {
        "rows_emptied",
        "rows_decreased",
        "no_new_rows",
        "rows_spike",
        "rows_grew",
        "newest_went_back",
        "null_rate_up",
        "null_rate_down",
        "distinct_changed",
        "became_constant",
        "distribution_shift",
        "type_changed",
    }
)
# (severity, message, reason) for a table that appeared, then one that went away.
_TABLE_CHANGES = {
    "added": ("neutral", "new table in the catalog", "it was not in the run of {previous}"),
    "removed": (
        "bad",
        "table no longer in the catalog",
        "queries and reports that read it will fail if it was dropped",
    ),
}

# The same for a whole source (a database of the run).
_SOURCE_CHANGES = {
    "added": (
        "neutral",
        "source `{name}` is new in this run",
        "it was not catalogued in the run of {previous}; its tables are not compared",
    ),
    "removed": (
        "bad",
        "source `{name}` was catalogued last run and is missing now",
        "its {tables} tables were catalogued in the run of {previous}; queries and reports that "
        "read them will fail if it is gone",
    ),
}


def compare_runs(history_dir: str, current_timestamp: str) -> dict[str, Any]:
    """Findings for the run `current_timestamp`, against the runs before it in `history_dir`."""
    runs = load_runs(history_dir, current_timestamp)
    result: dict[str, Any] = {
        "format": FORMAT,
        "current": current_timestamp,
        "runs": [ts for ts, _ in runs],
        "findings": [],
        "incomparable": [],
        "tables": {"added": [], "removed": [], "renamed": []},
    }
    current = next((data for ts, data in runs if ts == current_timestamp), None)
    earlier = [(ts, data) for ts, data in runs if ts < current_timestamp]
    if current is None:
        add(
            result,
            "bad",
            None,
            None,
            "no_data",
            "this run stored no catalog data",
            "the catalog agent's profiles are missing, so nothing can be compared",
        )
    elif not earlier:
        add(
            result,
            "neutral",
            None,
            None,
            "first_run",
            "this is the first run under the prefix",
            "there is no earlier run to compare with",
        )
    else:
        _compare(result, current, earlier)
    _defer_to_anomalies(result, history_dir, current_timestamp)
    record.remember_comparison(result, history_dir)
    return result


def _compare(
    result: dict[str, Any], current: dict[str, Any], earlier: list[tuple[str, dict[str, Any]]]
) -> None:
    previous_ts, previous = earlier[-1]
    result["compared_with"] = previous_ts
    result["baseline_runs"] = [ts for ts, _ in earlier[-BASELINE_RUNS:]]
    now_tables, then_tables = current["tables"], previous["tables"]
    whole = _compare_sources(result, current, previous, previous_ts)
    failed = _failed_now(current)
    for name, why in failed.items():
        if name in then_tables:
            result["incomparable"].append({"table": name, "reason": why})
    added = sorted(t for t in set(now_tables) - set(then_tables) if source_name(t) not in whole)
    removed = sorted(
        t
        for t in set(then_tables) - set(now_tables)
        if source_name(t) not in whole and t not in failed
    )
    for old, new, similarity in _renames(removed, added, then_tables, now_tables):
        removed.remove(old)
        added.remove(new)
        result["tables"]["renamed"].append({"from": old, "to": new, "similarity": similarity})
        add(
            result,
            "neutral",
            new,
            None,
            "table_renamed",
            f"probably renamed from {old}",
            f"{old} is gone and {new} is new, with {similarity:.0%} of the same columns",
        )
    for change, names in (("added", added), ("removed", removed)):
        severity, message, reason = _TABLE_CHANGES[change]
        for name in names:
            result["tables"][change].append(name)
            add(
                result,
                severity,
                name,
                None,
                f"table_{change}",
                message,
                reason.format(previous=previous_ts),
            )
    history = [data for _, data in earlier[-BASELINE_RUNS:]]
    for name in sorted(set(now_tables) & set(then_tables)):
        _compare_table(
            result,
            name,
            now_tables[name],
            then_tables[name],
            [h["tables"].get(name) for h in history],
        )


def _compare_sources(
    result: dict[str, Any], current: dict[str, Any], previous: dict[str, Any], previous_ts: str
) -> set[str]:
    """A finding for each source added or removed since the last run (history.py reads a
    format-1 run as the one source `default`); their tables are not compared one by one."""
    now, then = current["sources"], previous["sources"]
    added, removed = [s for s in now if s not in then], [s for s in then if s not in now]
    result["sources"] = {
        "added": added,
        "removed": removed,
        "compared": [s for s in now if s in then],
    }
    for name in added:
        severity, message, reason = _SOURCE_CHANGES["added"]
        add(
            result,
            severity,
            None,
            None,
            "source_added",
            message.format(name=name),
            reason.format(previous=previous_ts),
        )
    for name in removed:
        severity, message, reason = _SOURCE_CHANGES["removed"]
        tables = len(then[name].get("tables") or [])
        add(
            result,
            severity,
            None,
            None,
            "source_removed",
            message.format(name=name),
            reason.format(tables=tables, previous=previous_ts),
        )
    return {*added, *removed}


def _failed_now(current: dict[str, Any]) -> dict[str, str]:
    """This run's tables that could not be profiled (a lost source's): not compared, and not
    reported as removed from the catalog."""
    return {
        table: f"it could not be profiled in this run ({str(why)[:120]})"
        for source in current["sources"].values()
        for table, why in (source.get("failed") or {}).items()
    }


def _defer_to_anomalies(result: dict[str, Any], history_dir: str, current: str) -> None:
    """Leave the anomalies agent's findings to it (when it judged this run) and count them."""
    try:
        with open(os.path.join(history_dir, current, "anomalies.json"), encoding="utf-8") as file:
            anomalies = json.load(file)
    except (OSError, ValueError):
        return
    if not isinstance(anomalies, dict) or anomalies.get("state") != "ready":
        return
    renamed = {
        (f.get("table"), name)
        for f in anomalies.get("findings", [])
        if f.get("kind") == "column_renamed"
        for name in (f.get("baseline"), f.get("value"))
    }
    result["findings"] = [
        f
        for f in result["findings"]
        if f["kind"] not in ANOMALY_KINDS
        and not (
            f["kind"] in ("column_added", "column_removed") and (f["table"], f["column"]) in renamed
        )
    ]
    result["anomalies"] = {"counts": anomalies.get("counts", {}), "page": "anomalies.html"}


def _renames(
    removed: list[str], added: list[str], then: dict[str, Any], now: dict[str, Any]
) -> list[tuple[str, str, float]]:
    pairs: list[tuple[str, str, float]] = []
    for old in removed:
        old_columns = {c["name"] for c in then[old].get("columns", [])}
        best: tuple[float, str] | None = None
        for new in added:
            if source_name(new) != source_name(old):
                continue  # a table moves within its source, never to another one
            new_columns = {c["name"] for c in now[new].get("columns", [])}
            union = old_columns | new_columns
            similarity = len(old_columns & new_columns) / len(union) if union else 0.0
            if similarity >= RENAME_SIMILARITY and (best is None or similarity > best[0]):
                best = (similarity, new)
        if best and best[1] not in [p[1] for p in pairs]:
            pairs.append((old, best[1], round(best[0], 3)))
    return pairs


def _failed(profile: dict[str, Any]) -> str | None:
    for error in profile.get("errors", []):
        if error.get("pass") in ("column statistics", "row count"):
            return f"its profile failed ({error.get('error', '')[:120]})"
    if profile.get("rows") is None:
        return "its profile has no row count"
    return None


def _scope_key(profile: dict[str, Any]) -> tuple[Any, ...]:
    # A big table's details come from a sample of their own (detail.py), but its nulls are
    # exact either way: column_rules compares those across the change, and only those.
    scope = profile.get("scope", {})
    return (scope.get("kind"), scope.get("fraction"))


def _compare_table(
    result: dict[str, Any],
    name: str,
    now: dict[str, Any],
    then: dict[str, Any],
    history: list[dict[str, Any] | None],
) -> None:
    compare_schema(result, name, now, then)
    why = _failed(now) or _failed(then)
    if why:
        result["incomparable"].append({"table": name, "reason": why})
        return
    compare_rows(result, name, now, [h for h in history if h and not _failed(h)])
    if _scope_key(now) != _scope_key(then):
        result["incomparable"].append(
            {
                "table": name,
                "reason": f"column figures come from different scopes ({_scope_text(then)} then, "
                f"{_scope_text(now)} now), so they are not compared",
            }
        )
    else:
        compare_columns(result, name, now, then)
    compare_flags(result, name, now, then)


def _scope_text(profile: dict[str, Any]) -> str:
    scope = profile.get("scope", {})
    if scope.get("kind") == "sample":
        return f"a {scope.get('fraction', 0):.2%} sample"
    if "detail" in scope:
        return "a full scan with the details from a sample"
    return "a full scan"
