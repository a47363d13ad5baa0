"""The anomalies agent's kit: its digest for the offline agent, its JSON and its HTML figures.

Every value from the data is escaped; each finding with a history gets a sparkline of the
figure over the baseline's runs, anomalous runs (earlier ones left out, and this one) in red.
"""

from __future__ import annotations

from html import escape
from typing import Any

from catalog_toolkit import record
from catalog_toolkit.anomalies import find_anomalies
from catalog_toolkit.charts import sparkline

MAX_ITEMS = 20
# Prompt limits find_anomalies takes.
LIMITS = ("sensitivity", "min_runs", "window", "persist", "min_change", "min_change_rows")
_SEVERITY = {"good": ("✔", "#166534"), "bad": ("✖", "#991b1b"), "neutral": ("•", "#374151")}
_ORDER = {"bad": 0, "neutral": 1, "good": 2}


def anomalies_export(
    *,
    history_dir: str = "",
    current_timestamp: str = "",
    limits: dict[str, float | int] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """`anomalies.json`: what the agent recorded for this run, or computed now if it did not."""
    recorded = record.recalled("anomalies")
    if recorded is not None and recorded.get("current") == current_timestamp:
        return recorded
    options = {k: v for k, v in (limits or {}).items() if k in LIMITS}
    return find_anomalies(history_dir, current_timestamp, **options)  # type: ignore[arg-type]


def anomalies_digest(**context: Any) -> dict[str, Any]:
    """Find (and record) the anomalies; a headline and one short line per finding."""
    result = anomalies_export(**context)
    findings = sorted(result["findings"], key=lambda f: _ORDER.get(f["severity"], 1))
    counts = result["counts"]
    if result["state"] != "ready":
        headline = f"No alerts: {result.get('note', result['state'])}."
    else:
        headline = (
            f"{len(findings)} anomalies against {result['runs'] - 1} earlier runs: "
            f"{counts['bad']} bad, {counts['neutral']} neutral, {counts['good']} good."
        )
    items = [
        f"{f['severity']}: {'.'.join(x for x in (f['table'], f['column']) if x)}: {f['message']}"
        for f in findings[:MAX_ITEMS]
    ]
    return {"headline": headline, "items": items, "state": result["state"], "counts": counts}


def render_anomalies(data: dict[str, Any]) -> str:
    """The figures of the anomalies page: the state, then one row per finding."""
    findings = sorted(data.get("findings", []), key=lambda f: _ORDER.get(f["severity"], 1))
    counts = data.get("counts", {})
    state = data.get("state", "")
    intro = (
        f"<p>This run: <code>{escape(str(data.get('current', '')))}</code>. Runs with catalog "
        f"data: {int(data.get('runs', 0))}. State: <strong>{escape(str(state))}</strong>"
        + (f" ({escape(str(data['note']))})" if data.get("note") else "")
        + f". Findings: {int(counts.get('bad', 0))} bad, {int(counts.get('neutral', 0))} "
        f"neutral, {int(counts.get('good', 0))} good.</p>"
    )
    if not findings:
        return intro + "<p>No anomalies.</p>"
    head = (
        "<table><thead><tr><th></th><th>table</th><th>column</th><th>finding</th>"
        "<th>value</th><th>baseline</th><th>score</th><th>trend</th></tr></thead><tbody>"
    )
    return intro + head + "".join(_row(f) for f in findings) + "</tbody></table>"


def _row(finding: dict[str, Any]) -> str:
    mark, color = _SEVERITY.get(finding["severity"], ("•", "#374151"))
    score = finding.get("score")
    cells = [
        f'<td style="color:{color}" title="{escape(finding["severity"])}">{mark} '
        f"{escape(finding['severity'])}, {escape(str(finding.get('priority', '')))}</td>",
        f"<td>{_cell(finding.get('table'))}</td><td>{_cell(finding.get('column'))}</td>",
        f"<td>{_cell(finding.get('message'), 300)}</td>",
        f"<td>{_cell(finding.get('value'))}</td><td>{_cell(finding.get('baseline'))}</td>",
        f"<td>{'' if score is None else escape(f'{score:+.1f}')}</td>",
        f"<td>{_trend(finding)}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _trend(finding: dict[str, Any]) -> str:
    """A sparkline of the figure over the baseline's runs (kept apart: the chart code is shared)."""
    history = finding.get("history") or []
    if len(history) < 2:
        return ""
    name = ".".join(str(x) for x in (finding.get("table"), finding.get("column")) if x)
    label = f"{finding.get('metric', '')} of {name} over {len(history)} runs"
    return sparkline(history, label=label, marks=finding.get("marks") or [])


def _cell(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    text = f"{value:,.6g}" if isinstance(value, float) else str(value)
    return escape(text if len(text) <= limit else text[:limit] + "…")
