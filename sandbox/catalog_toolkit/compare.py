"""Compare this run's catalog data with earlier runs: what changed, and is it good or bad.

Reads `{history_dir}/{timestamp}/catalog.json` for every run up to `current_timestamp`. Row
counts are judged against a baseline of up to `BASELINE_RUNS` earlier runs, not only the last
one. Figures made differently (a sample against a full scan, a failed profile) are not compared
but listed as incomparable, with the reason.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
from typing import Any

from catalog_toolkit import record
from catalog_toolkit.values import as_datetime, as_float

FORMAT = 1
BASELINE_RUNS = 5
NULL_JUMP = 0.05  # absolute change in null rate worth reporting...
NULL_JUMP_RATIO = 1.5  # ...when it is also this many times the earlier rate
DISTINCT_CHANGE = 0.10  # relative change in distinct count, beyond the approximation error
HLL_ERROR = 0.02
SHARE_CHANGE = 0.10  # change in a top value's share of the rows
MEDIAN_SHIFT_IQR = 0.5  # median moved by this many interquartile ranges
RENAME_SIMILARITY = 0.8


def compare_runs(history_dir: str, current_timestamp: str) -> dict[str, Any]:
    """Findings for the run `current_timestamp`, against the runs before it in `history_dir`."""
    runs = _load_runs(history_dir, current_timestamp)
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
        _add(
            result,
            "bad",
            None,
            None,
            "no_data",
            "this run stored no catalog data",
            "the catalog agent's profiles are missing, so nothing can be compared",
        )
    elif not earlier:
        _add(
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
    record.remember_comparison(result)
    return result


def _load_runs(history_dir: str, current: str) -> list[tuple[str, dict[str, Any]]]:
    runs = []
    names = sorted(os.listdir(history_dir)) if history_dir and os.path.isdir(history_dir) else []
    for timestamp in names:
        path = os.path.join(history_dir, timestamp, "catalog.json")
        if timestamp > current or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("tables"), dict):
            runs.append((timestamp, data))
    return runs


def _add(
    result: dict[str, Any],
    severity: str,
    table: str | None,
    column: str | None,
    kind: str,
    message: str,
    reason: str,
) -> None:
    result["findings"].append(
        {
            "severity": severity,
            "table": table,
            "column": column,
            "kind": kind,
            "message": message,
            "reason": reason,
        }
    )


def _compare(
    result: dict[str, Any], current: dict[str, Any], earlier: list[tuple[str, dict[str, Any]]]
) -> None:
    previous_ts, previous = earlier[-1]
    result["compared_with"] = previous_ts
    result["baseline_runs"] = [ts for ts, _ in earlier[-BASELINE_RUNS:]]
    now_tables, then_tables = current["tables"], previous["tables"]
    added = sorted(set(now_tables) - set(then_tables))
    removed = sorted(set(then_tables) - set(now_tables))
    for old, new, similarity in _renames(removed, added, then_tables, now_tables):
        removed.remove(old)
        added.remove(new)
        result["tables"]["renamed"].append({"from": old, "to": new, "similarity": similarity})
        _add(
            result,
            "neutral",
            new,
            None,
            "table_renamed",
            f"probably renamed from {old}",
            f"{old} is gone and {new} is new, with {similarity:.0%} of the same columns",
        )
    for name in added:
        result["tables"]["added"].append(name)
        _add(
            result,
            "neutral",
            name,
            None,
            "table_added",
            "new table in the catalog",
            f"it was not in the run of {previous_ts}",
        )
    for name in removed:
        result["tables"]["removed"].append(name)
        _add(
            result,
            "bad",
            name,
            None,
            "table_removed",
            "table no longer in the catalog",
            "queries and reports that read it will fail if it was dropped",
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


def _renames(
    removed: list[str], added: list[str], then: dict[str, Any], now: dict[str, Any]
) -> list[tuple[str, str, float]]:
    pairs: list[tuple[str, str, float]] = []
    for old in removed:
        old_columns = {c["name"] for c in then[old].get("columns", [])}
        best: tuple[float, str] | None = None
        for new in added:
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
    scope = profile.get("scope", {})
    return (scope.get("kind"), scope.get("fraction"))


def _compare_table(
    result: dict[str, Any],
    name: str,
    now: dict[str, Any],
    then: dict[str, Any],
    history: list[dict[str, Any] | None],
) -> None:
    _compare_schema(result, name, now, then)
    why = _failed(now) or _failed(then)
    if why:
        result["incomparable"].append({"table": name, "reason": why})
        return
    _compare_rows(result, name, now, [h for h in history if h and not _failed(h)])
    if _scope_key(now) != _scope_key(then):
        result["incomparable"].append(
            {
                "table": name,
                "reason": f"column figures come from different scopes ({_scope_text(then)} then, "
                f"{_scope_text(now)} now), so they are not compared",
            }
        )
    else:
        _compare_columns(result, name, now, then)
    _compare_flags(result, name, now, then)


def _scope_text(profile: dict[str, Any]) -> str:
    scope = profile.get("scope", {})
    if scope.get("kind") == "sample":
        return f"a {scope.get('fraction', 0):.2%} sample"
    return "a full scan"


_TIMESTAMP = re.compile(r"timestamp\((?:'([^']*)')?[^)]*\)")
_STRING = re.compile(r"string\(\d+\)")


def normalize_type(text: str) -> str:
    """Types that mean the same for a reader count as equal: ibis maps varchar, text and char to
    `string` (with a length for varchar(n), dropped here), and timestamp precision and the `!`
    (not null) mark are dropped too."""
    text = _STRING.sub("string", text.lstrip("!"))
    return _TIMESTAMP.sub(lambda m: "timestamp with time zone" if m[1] else "timestamp", text)


def _widening(before: str, after: str) -> bool:
    order = ["int8", "int16", "int32", "int64", "float32", "float64"]
    if before in order and after in order:
        return order.index(after) > order.index(before)
    return before.startswith("decimal") and after.startswith("decimal")


def _compare_schema(
    result: dict[str, Any], name: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    now_columns = {c["name"]: c for c in now.get("columns", [])}
    then_columns = {c["name"]: c for c in then.get("columns", [])}
    for column in [c for c in now_columns if c not in then_columns]:
        _add(
            result,
            "neutral",
            name,
            column,
            "column_added",
            "new column",
            f"type {now_columns[column]['type']}; existing queries are unaffected",
        )
    for column in [c for c in then_columns if c not in now_columns]:
        _add(
            result,
            "bad",
            name,
            column,
            "column_removed",
            "column removed",
            "queries that select it will fail",
        )
    for column in [c for c in now_columns if c in then_columns]:
        before, after = then_columns[column], now_columns[column]
        old_type, new_type = normalize_type(before["type"]), normalize_type(after["type"])
        if old_type != new_type:
            widened = _widening(old_type, new_type)
            _add(
                result,
                "neutral" if widened else "bad",
                name,
                column,
                "type_changed",
                f"type changed from {old_type} to {new_type}",
                "a wider type keeps every value"
                if widened
                else "readers that expect the old type may break or lose precision",
            )
        if before.get("nullable") != after.get("nullable"):
            now_nullable = after.get("nullable")
            _add(
                result,
                "neutral" if now_nullable else "good",
                name,
                column,
                "nullability_changed",
                "now accepts nulls" if now_nullable else "now declared NOT NULL",
                "readers must handle missing values"
                if now_nullable
                else "the database now guarantees a value",
            )
    for key, label in (("primary_key", "primary key"),):
        if (then.get(key) or []) != (now.get(key) or []):
            severity = "bad" if not now.get(key) else "neutral"
            _add(
                result,
                severity,
                name,
                None,
                "key_changed",
                f"{label} changed from {then.get(key) or 'none'} to {now.get(key) or 'none'}",
                "joins and deduplication that rely on the key may change meaning",
            )
    then_fks = {json.dumps(f, sort_keys=True) for f in then.get("foreign_keys", [])}
    now_fks = {json.dumps(f, sort_keys=True) for f in now.get("foreign_keys", [])}
    for text in sorted(now_fks - then_fks):
        fk = json.loads(text)
        _add(
            result,
            "good",
            name,
            ", ".join(fk["columns"]),
            "foreign_key_added",
            f"new foreign key to {fk['references']['table']}",
            "the database now checks this relation",
        )
    for text in sorted(then_fks - now_fks):
        fk = json.loads(text)
        _add(
            result,
            "bad",
            name,
            ", ".join(fk["columns"]),
            "foreign_key_removed",
            f"foreign key to {fk['references']['table']} removed",
            "orphan rows are no longer prevented",
        )


def _compare_rows(
    result: dict[str, Any], name: str, now: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    counts = [int(h["rows"]) for h in history if h.get("rows") is not None]
    rows = int(now["rows"])
    if not counts:
        return
    previous = counts[-1]
    baseline = statistics.median(counts)
    steps = [b - a for a, b in itertools.pairwise(counts)]
    grew_before = any(step > 0 for step in steps)
    if rows == 0 and previous > 0:
        _add(
            result,
            "bad",
            name,
            None,
            "rows_emptied",
            f"the table is empty (was {previous:,})",
            "every row was deleted or the load failed",
        )
    elif rows < previous:
        _add(
            result,
            "bad",
            name,
            None,
            "rows_decreased",
            f"{previous - rows:,} fewer rows ({_pct(rows, previous)}), now {rows:,}",
            f"rows were deleted; baseline of {len(counts)} runs is {baseline:,.0f}",
        )
    elif rows == previous:
        quiet = _same_tail(counts)  # earlier runs, back from the last, with this same count
        if quiet >= 2 or grew_before:
            _add(
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
    else:
        growth = rows - previous
        typical = statistics.median([s for s in steps if s > 0]) if any(s > 0 for s in steps) else 0
        if typical and growth > 3 * typical:
            _add(
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
            _add(
                result,
                "good",
                name,
                None,
                "rows_grew",
                f"{growth:,} new rows ({_pct(rows, previous)}), now {rows:,}",
                "the table keeps receiving data"
                + (f"; in line with {typical:,.0f} rows per run" if typical else ""),
            )
    _compare_freshness(result, name, now, history)


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
            _add(
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


def _compare_columns(
    result: dict[str, Any], name: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    then_columns = {c["name"]: c for c in then.get("columns", [])}
    for column in now.get("columns", []):
        before = then_columns.get(column["name"])
        if before is None or normalize_type(before["type"]) != normalize_type(column["type"]):
            continue
        _compare_nulls(result, name, column, before)
        _compare_distinct(result, name, column, before)
        _compare_duplicates(result, name, column, before)
        _compare_quantiles(result, name, column, before)
        _compare_top_values(result, name, column, before, now.get("rows"), then.get("rows"))


def _compare_nulls(
    result: dict[str, Any], table: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    new, old = now.get("null_rate"), then.get("null_rate")
    if new is None or old is None or abs(new - old) < NULL_JUMP:
        return
    if new > old and new >= old * NULL_JUMP_RATIO:
        _add(
            result,
            "bad",
            table,
            now["name"],
            "null_rate_up",
            f"null rate rose from {old:.1%} to {new:.1%}",
            "values that used to be filled in are now missing",
        )
    elif new < old and old >= new * NULL_JUMP_RATIO:
        _add(
            result,
            "good",
            table,
            now["name"],
            "null_rate_down",
            f"null rate fell from {old:.1%} to {new:.1%}",
            "more values are filled in",
        )


def _compare_distinct(
    result: dict[str, Any], table: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    new, old = now.get("distinct"), then.get("distinct")
    if not new or not old:
        return
    approx = "approx" in now.get("how", {}).get("distinct", "") or "approx" in then.get(
        "how", {}
    ).get("distinct", "")
    error = 3 * HLL_ERROR if approx else 0.0
    change = (new - old) / old
    if new == 1 and old > 1:
        _add(
            result,
            "bad",
            table,
            now["name"],
            "became_constant",
            f"only one distinct value now (was {old:,})",
            "the column no longer varies",
        )
    elif abs(change) > max(DISTINCT_CHANGE, error):
        _add(
            result,
            "neutral",
            table,
            now["name"],
            "distinct_changed",
            f"distinct values {old:,} → {new:,} ({change:+.0%})",
            "beyond the approximation error" if approx else "exact counts",
        )


def _compare_duplicates(
    result: dict[str, Any], table: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    new, old = now.get("duplicates"), then.get("duplicates")
    if new and old == 0:
        _add(
            result,
            "bad",
            table,
            now["name"],
            "key_duplicates",
            f"{new:,} duplicate values in a column that had none",
            "it was unique in the earlier run; joins on it will now multiply rows",
        )
    elif new == 0 and old:
        _add(
            result,
            "good",
            table,
            now["name"],
            "key_deduplicated",
            f"no duplicates any more (had {old:,})",
            "the column is unique again",
        )


def _compare_quantiles(
    result: dict[str, Any], table: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    new, old = now.get("quantiles") or {}, then.get("quantiles") or {}
    if not now.get("type", "").startswith(("int", "float", "decimal", "uint")):
        return
    raw = (old.get("p25"), old.get("p50"), old.get("p75"), new.get("p50"))
    values = [v for x in raw if (v := as_float(x)) is not None]
    if len(values) < len(raw):
        return
    p25, p50, p75, median = values
    spread = (p75 - p25) or abs(p50) * 0.2 or 1.0
    if abs(median - p50) > MEDIAN_SHIFT_IQR * spread:
        _add(
            result,
            "neutral",
            table,
            now["name"],
            "distribution_shift",
            f"median moved from {p50:g} to {median:g}",
            f"more than {MEDIAN_SHIFT_IQR:g}x the earlier interquartile range ({spread:g})",
        )


def _compare_top_values(
    result: dict[str, Any],
    table: str,
    now: dict[str, Any],
    then: dict[str, Any],
    rows_now: int | None,
    rows_then: int | None,
) -> None:
    new, old = now.get("top_values"), then.get("top_values")
    if not new or not old or not rows_now or not rows_then:
        return
    old_share = {json.dumps(v["value"]): v["count"] / rows_then for v in old}
    for entry in new:
        key, share = json.dumps(entry["value"]), entry["count"] / rows_now
        if key not in old_share and len(old) < 10:
            _add(
                result,
                "neutral",
                table,
                now["name"],
                "new_value",
                f"new value {entry['value']!r} ({share:.1%} of rows)",
                "it did not occur among the values of the earlier run",
            )
        elif key in old_share and abs(share - old_share[key]) >= SHARE_CHANGE:
            _add(
                result,
                "neutral",
                table,
                now["name"],
                "share_changed",
                f"{entry['value']!r} went from {old_share[key]:.1%} to {share:.1%} of rows",
                "the mix of values shifted",
            )


def _compare_flags(
    result: dict[str, Any], name: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    def keys(profile: dict[str, Any]) -> dict[tuple[Any, str], dict[str, Any]]:
        return {(f.get("column"), f["code"]): f for f in profile.get("flags", [])}

    now_flags, then_flags = keys(now), keys(then)
    for key in now_flags.keys() - then_flags.keys():
        flag = now_flags[key]
        if flag["severity"] == "warning":
            _add(
                result,
                "bad",
                name,
                flag.get("column"),
                f"new_flag:{flag['code']}",
                f"new data-quality flag: {flag['message']}",
                "it was not raised in the earlier run",
            )
    for key in then_flags.keys() - now_flags.keys():
        flag = then_flags[key]
        if flag["severity"] == "warning":
            _add(
                result,
                "good",
                name,
                flag.get("column"),
                f"resolved_flag:{flag['code']}",
                f"resolved: {flag['message']}",
                "it was raised in the earlier run",
            )
