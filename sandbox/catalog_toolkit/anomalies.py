"""Anomalies of this run against the run history: volume, freshness, distribution and schema.

Reads `{history_dir}/{timestamp}/catalog.json` for every run up to `current_timestamp` and
judges the current run's figures, each against a robust baseline of earlier runs (baseline.py):
- volume: a table's row count, as growth per hour (a drop or a spike);
- freshness: how many hours the newest value of a time column is older than the run;
- distribution: a column's null rate, distinct count, mean and median;
- schema (anomaly_schema.py): a type change, a column probably renamed.
Until `min_runs` earlier runs exist the state is "learning" and nothing is reported. Column
figures are compared only between runs that made them the same way (same type, same scope).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalog_toolkit import record
from catalog_toolkit.anomaly_schema import schema_anomalies
from catalog_toolkit.baseline import Floor, Rules, Verdict, judge_series
from catalog_toolkit.history import load_runs
from catalog_toolkit.schema_rules import normalize_type
from catalog_toolkit.values import as_datetime, as_float

FORMAT = 1
SEVERITIES = ("bad", "good", "neutral")
HIGH_FACTOR = 2.0  # a score beyond this many times the sensitivity is high priority
KEY_SHARE = 0.95  # distinct values per non-null row that make a column key-like
_NUMERIC = ("int", "uint", "float", "decimal")
_TIME = ("timestamp", "date")

Run = tuple[dt.datetime, dict[str, Any]]


@dataclass(frozen=True)
class Metric:
    """One figure of a table (column None) or of a column, and how it is judged."""

    name: str
    category: str
    growth: bool
    floor: Floor
    read: Callable[[dict[str, Any], dt.datetime], float | None]


def _staleness(column: dict[str, Any], run_at: dt.datetime) -> float | None:
    newest = as_datetime(column.get("max"))
    if newest is None or newest > run_at:  # a future value says nothing about freshness
        return None
    return (run_at - newest).total_seconds() / 3600


def _quantile(column: dict[str, Any], _: dt.datetime) -> float | None:
    return as_float((column.get("quantiles") or {}).get("p50"))


def _field(name: str) -> Callable[[dict[str, Any], dt.datetime], float | None]:
    return lambda entry, _: as_float(entry.get(name))


# Floors: a null rate moves by a point, a count by 1% (rows) or 5% (distinct), a mean or median
# by 2%, the age of the newest value by an hour or a tenth of its usual age.
ROWS = Metric("rows", "volume", True, Floor(1, 0.01), _field("rows"))
DISTRIBUTION = "distribution"
COLUMN_METRICS = {
    "any": [
        Metric("null_rate", DISTRIBUTION, False, Floor(0.01, 0.1), _field("null_rate")),
        Metric("distinct", DISTRIBUTION, False, Floor(1, 0.05), _field("distinct")),
    ],
    "numeric": [
        Metric("mean", DISTRIBUTION, False, Floor(1e-9, 0.02), _field("mean")),
        Metric("median", DISTRIBUTION, False, Floor(1e-9, 0.02), _quantile),
    ],
    "time": [Metric("staleness_hours", "freshness", False, Floor(1.0, 0.1), _staleness)],
}


def find_anomalies(
    history_dir: str,
    current_timestamp: str,
    *,
    sensitivity: float = 3.0,
    min_runs: int = 4,
    window: int = 14,
    persist: int = 3,
    min_change: float = 0.01,
    min_change_rows: float = 10,
) -> dict[str, Any]:
    """Anomalies of the run `current_timestamp` against the earlier runs in `history_dir`.

    A score is (value - baseline) / spread; beyond `sensitivity` it is an anomaly. Each figure
    needs `min_runs` clean earlier values; the baseline holds the last `window` of them. A row
        count within both `min_change` (a share) and `min_change_rows` of its expected value is
    never an anomaly (0 for either turns this off).
    """
    if not 0 <= min_change < 1 or min_change_rows < 0:
        raise ValueError("min_change is a share (0 <= x < 1), min_change_rows a row count >= 0")
    rules = Rules(
        float(sensitivity),
        int(min_runs),
        int(window),
        int(persist),
        float(min_change),
        float(min_change_rows),
    )
    result = judge_runs(load_runs(history_dir, current_timestamp), current_timestamp, rules)
    record.remember("anomalies", result)
    return result


def judge_runs(
    stored: list[tuple[str, dict[str, Any]]], current_timestamp: str, rules: Rules
) -> dict[str, Any]:
    """find_anomalies over runs already loaded: (timestamp, catalog data), oldest first."""
    runs = _timed([(ts, data) for ts, data in stored if ts <= current_timestamp])
    result: dict[str, Any] = {
        "format": FORMAT,
        "kind": "anomalies",
        "current": current_timestamp,
        "runs": len(runs),
        "rules": {
            "sensitivity": rules.sensitivity,
            "min_runs": rules.min_runs,
            "min_change": rules.min_change,
            "min_change_rows": rules.min_change_rows,
        },
        "findings": [],
    }
    current = runs[-1] if runs and runs[-1][2] == current_timestamp else None
    earlier = len(runs) - (1 if current else 0)
    if current is None:
        result.update(state="no_data", note="this run stored no catalog data")
    elif earlier < rules.min_runs:
        note = f"{earlier} earlier runs; alerts start at {rules.min_runs}"
        result.update(state="learning", note=note)
    else:
        result["state"] = "ready"
        history = [(at, data) for at, data, _ in runs]
        for table in sorted(current[1]["tables"]):
            result["findings"] += _table_findings(history, table, rules)
    result["counts"] = {s: sum(f["severity"] == s for f in result["findings"]) for s in SEVERITIES}
    result["headline"] = _headline(result, earlier)
    return result


def _headline(result: dict[str, Any], earlier: int) -> str:
    """One sentence for the summary: `learning: 2 of 4 runs.`, `2 anomalies, 1 bad.`"""
    if result["state"] == "no_data":
        return "No catalog data in this run: nothing to judge."
    if result["state"] == "learning":
        return f"Learning: {earlier} of {result['rules']['min_runs']} earlier runs, no alerts yet."
    found, bad = len(result["findings"]), result["counts"]["bad"]
    if not found:
        return f"No anomalies against {earlier} earlier runs."
    noun = "anomaly" if found == 1 else "anomalies"
    return f"{found} {noun}, {bad} bad, against {earlier} earlier runs."


def _timed(runs: list[tuple[str, dict[str, Any]]]) -> list[tuple[dt.datetime, dict[str, Any], str]]:
    """Runs with the time they ran (their folder name), oldest first; unreadable names dropped."""
    timed = [(as_datetime(ts.replace("Z", "+00:00")), data, ts) for ts, data in runs]
    return [(at, data, ts) for at, data, ts in timed if at is not None]


def _table_findings(runs: list[Run], table: str, rules: Rules) -> list[dict[str, Any]]:
    profiles = [(at, data["tables"].get(table)) for at, data in runs]
    present = [(at, p) for at, p in profiles if isinstance(p, dict)]
    now = present[-1][1]
    findings = schema_anomalies(table, now, [p for _, p in present[:-1]])
    verdicts = judge_series(
        [at for at, _ in present],
        [ROWS.read(p, at) for at, p in present],
        growth=True,
        floor=ROWS.floor,
        rules=rules,
    )
    findings += _finding(table, None, ROWS, verdicts, rules)
    renamed = {f["column"] for f in findings if f["kind"] == "column_renamed"}
    for column in now.get("columns", []):
        if column["name"] not in renamed:
            findings += _column_findings(present, table, now, column, rules)
    return findings


def _column_findings(
    present: list[tuple[dt.datetime, dict[str, Any]]],
    table: str,
    now: dict[str, Any],
    column: dict[str, Any],
    rules: Rules,
) -> list[dict[str, Any]]:
    kind = normalize_type(column.get("type", ""))
    series: list[tuple[dt.datetime, dict[str, Any] | None]] = []
    for at, profile in present:
        same_scope = _scope(profile) == _scope(now)
        match = [c for c in profile.get("columns", []) if c.get("name") == column["name"]]
        usable = same_scope and match and normalize_type(match[0].get("type", "")) == kind
        series.append((at, match[0] if usable else None))
    metrics = [
        m for m in COLUMN_METRICS["any"] if m.name != "distinct" or not _key_like(now, column)
    ]
    metrics += COLUMN_METRICS["numeric"] if kind.startswith(_NUMERIC) else []
    metrics += COLUMN_METRICS["time"] if kind.startswith(_TIME) else []
    found: list[dict[str, Any]] = []
    for metric in metrics:
        values = [metric.read(c, at) if c else None for at, c in series]
        verdicts = judge_series(
            [at for at, _ in series], values, growth=metric.growth, floor=metric.floor, rules=rules
        )
        found += _finding(table, column["name"], metric, verdicts, rules)
    return _one_per_kind(found)


def _key_like(profile: dict[str, Any], column: dict[str, Any]) -> bool:
    """About one value per row: its distinct count is its row count, which volume judges."""
    rows, distinct = as_float(profile.get("rows")), as_float(column.get("distinct"))
    if not rows or distinct is None:
        return False
    return distinct >= KEY_SHARE * rows * (1 - (column.get("null_rate") or 0))


def _scope(profile: dict[str, Any]) -> tuple[Any, Any, bool]:
    scope = profile.get("scope") or {}
    return scope.get("kind"), scope.get("fraction"), "detail" in scope


def _one_per_kind(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A mean and a median that both moved are one distribution shift: keep the stronger."""
    best: dict[str, dict[str, Any]] = {}
    for finding in findings:
        kept = best.get(finding["kind"])
        if kept is None or abs(finding["score"]) > abs(kept["score"]):
            best[finding["kind"]] = finding
    return list(best.values())


def _finding(
    table: str, column: str | None, metric: Metric, verdicts: list[Verdict | None], rules: Rules
) -> list[dict[str, Any]]:
    verdict = verdicts[-1]
    if verdict is None or not verdict.anomaly:
        return []
    judged = _judgement(metric.name, verdict)
    if judged is None:
        return []
    kind, severity, message = judged
    shown = verdicts[-(rules.window + 1) :]
    high = abs(verdict.score) >= HIGH_FACTOR * rules.sensitivity
    return [
        {
            "table": table,
            "column": column,
            "category": metric.category,
            "kind": kind,
            "metric": metric.name,
            "severity": severity,
            "priority": "high" if high else "medium",
            "value": round(verdict.value, 6),
            "baseline": round(verdict.baseline, 6),
            "spread": round(verdict.spread, 6),
            "score": round(verdict.score, 2),
            "baseline_runs": verdict.runs,
            "seasonal": verdict.seasonal,
            "message": f"{message} (score {verdict.score:+.1f} against {verdict.runs} "
            f"{'same-weekday ' if verdict.seasonal else ''}runs)",
            "history": [v.value if v else None for v in shown],
            "marks": [i for i, v in enumerate(shown) if v is not None and v.anomaly],
        }
    ]


def _judgement(metric: str, v: Verdict) -> tuple[str, str, str] | None:
    """(kind, severity, message) of an anomalous value, or None when the direction is benign."""
    up = v.score > 0
    if metric == "rows":
        kind = "volume_spike" if up else "volume_drop"
        return kind, "bad", f"{v.value:,.0f} rows, expected about {v.baseline:,.0f}"
    if metric == "staleness_hours":
        if not up:
            return None  # fresher than usual is no anomaly
        return "stale", "bad", f"newest value {v.value:,.1f} h old, usually {v.baseline:,.1f} h"
    if metric == "null_rate":
        kind, severity = ("null_rate_up", "bad") if up else ("null_rate_down", "good")
        return kind, severity, f"null rate {v.value:.1%}, baseline {v.baseline:.1%}"
    if metric == "distinct":
        severity = "bad" if v.value <= 1 < v.baseline else "neutral"
        text = f"{v.value:,.0f} distinct values, expected about {v.baseline:,.0f}"
        return "distinct_changed", severity, text
    return "distribution_shift", "neutral", f"{metric} {v.value:.6g}, baseline {v.baseline:.6g}"
