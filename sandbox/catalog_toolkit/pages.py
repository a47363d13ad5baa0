"""HTML for the catalog and summary pages, built from the toolkit's own data.

Every value from the data is escaped (a cell holding `<script>` shows as text). Pages stay
readable at 50 tables: a table of contents with one line per table, compact column tables, top
values and samples folded in `<details>`, and values cut at `CELL_CHARS` characters. Over
compact_page.COMPACT_OVER tables, the page takes compact_page's form instead (a few hundred
bytes a table, so 3,000 tables fit the runner's page cap).
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from catalog_toolkit import charts
from catalog_toolkit.compact_page import compact_over, render_compact
from catalog_toolkit.values import as_datetime, as_float

# A page's prose may carry this marker; the runner replaces it with the rendered figures.
REPORT_MARKER = "[[catalog-toolkit-report]]"
CELL_CHARS = 60
BARS = 5  # top values drawn as bars; all of them are listed underneath
_SEVERITY = {"good": ("✔", "#166534"), "bad": ("✖", "#991b1b"), "neutral": ("•", "#374151")}
_FLAG_COLOR = {"warning": "#991b1b", "info": "#374151"}


def _text(value: Any, limit: int = CELL_CHARS) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    else:
        text = str(value)
    return escape(text if len(text) <= limit else text[:limit] + "…")


def _anchor(prefix: str, name: str) -> str:
    return prefix + "-" + "".join(ch if ch.isalnum() else "-" for ch in name.lower())


def render_catalog(profiles: list[dict[str, Any]], compact: bool | None = None) -> str:
    """The figures of a catalog page: contents, then one section per table; the compact
    form when `compact` says so (None: when there are over compact_over() tables)."""
    if compact if compact is not None else len(profiles) > compact_over():
        return render_compact(profiles, _anchor, _text)
    names = {p["table"] for p in profiles}
    inbound: dict[str, list[str]] = {}
    for profile in profiles:
        for fk in profile.get("foreign_keys", []):
            target = fk["references"]["table"]
            inbound.setdefault(target, []).append(f"{profile['table']}({', '.join(fk['columns'])})")
    rows = "".join(
        f'<tr><td><a href="#{_anchor("t", p["table"])}">{_text(p["table"], 120)}</a></td>'
        f"<td>{_text(p.get('rows'))}</td><td>{len(p.get('columns', []))}</td>"
        f"<td>{_flag_counts(p)}</td></tr>"
        for p in profiles
    )
    toc = (
        f"<nav><h2>Tables ({len(profiles)})</h2><table><thead><tr><th>table</th><th>rows</th>"
        f"<th>columns</th><th>flags</th></tr></thead><tbody>{rows}</tbody></table></nav>"
    )
    sections = "".join(_table_section(p, names, inbound.get(p["table"], [])) for p in profiles)
    return toc + sections


def render_source(
    name: str, info: dict[str, Any], profiles: list[dict[str, Any]], compact: bool = False
) -> str:
    """One source's section of a catalog page of several sources: what it is, its tables'
    figures (compact when the whole page is), and the tables that could not be profiled."""
    what = ", ".join(_text(v, 200) for v in (info.get("backend"), info.get("version")) if v)
    heading = f"<h2>Source <code>{_text(name, 120)}</code>{f' ({what})' if what else ''}</h2>"
    tables = len(info.get("tables", []))
    summary = f"<p>{len(profiles)} of {tables} table{'s' * (tables != 1)} profiled.</p>"
    body = render_catalog(profiles, compact) if profiles else ""
    return (
        f'<section id="{_anchor("source", name)}">{heading}{summary}'
        f"{render_failed(info.get('failed', {}))}{body}</section>"
    )


def render_failed(failed: dict[str, str]) -> str:
    """The tables that could not be profiled at all, and why (a lost source's, say)."""
    if not failed:
        return ""
    items = "".join(
        f"<li><strong>{_text(t, 120)}</strong>: <code>{_text(why, 500)}</code></li>"
        for t, why in failed.items()
    )
    return f"<h3>Could not be profiled ({len(failed)})</h3><ul>{items}</ul>"


def _flag_counts(profile: dict[str, Any]) -> str:
    warnings = sum(f["severity"] == "warning" for f in profile.get("flags", []))
    errors = len(profile.get("errors", []))
    parts = [f"{warnings} warning{'s' * (warnings != 1)}"] if warnings else []
    parts += [f"{errors} failed pass{'es' * (errors != 1)}"] if errors else []
    return escape(", ".join(parts)) or "—"


def _overview(profile: dict[str, Any]) -> str:
    how = profile.get("how", {}).get("rows", "")
    scope = profile.get("scope", {})
    if scope.get("kind") == "sample":
        read = scope.get("rows_read")
        scope_text = (
            f"column figures from a random {scope.get('fraction', 0):.2%} sample "
            f"({_text(read)} rows; row budget {_text(scope.get('row_budget'))})"
        )
    else:
        scope_text = "column figures from a full scan"
    detail = scope.get("detail")
    if detail:  # a big table: only counts and ranges from the scan (detail.py)
        read, method = _text(detail.get("rows_read")), escape(str(detail.get("method", "")))
        scope_text += f" (counts and ranges; the rest from a sample of {read} rows, {method})"
    parts = [f"<strong>{_text(profile.get('rows'))}</strong> rows ({escape(how)})", scope_text]
    if profile.get("row_estimate") is not None:
        parts.append(f"catalog estimate {_text(profile['row_estimate'])}")
    parts.append(
        f"profiled in {_text(profile.get('seconds'))} s on {_text(profile.get('backend'))}"
    )
    comment = f"<p><em>{_text(profile['comment'], 500)}</em></p>" if profile.get("comment") else ""
    return comment + "<p>" + "; ".join(parts) + ".</p>"


def _keys(profile: dict[str, Any], names: set[str], inbound: list[str]) -> str:
    items = []
    if profile.get("primary_key"):
        items.append(f"primary key ({_text(', '.join(profile['primary_key']), 200)})")
    items += [f"unique ({_text(', '.join(u), 200)})" for u in profile.get("unique", [])]
    for fk in profile.get("foreign_keys", []):
        target = fk["references"]["table"]
        link = (
            f'<a href="#{_anchor("t", target)}">{_text(target, 120)}</a>'
            if target in names
            else _text(target, 120)
        )
        items.append(
            f"({_text(', '.join(fk['columns']), 200)}) → {link}"
            f"({_text(', '.join(fk['references']['columns']), 200)})"
        )
    items += [f"referenced by {_text(source, 200)}" for source in inbound]
    if not items:
        return "<p>No keys or relations declared.</p>"
    return "<p>Keys and relations:</p><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _flags(profile: dict[str, Any]) -> str:
    items = [
        f'<li style="color:{_FLAG_COLOR.get(f["severity"], "#374151")}">{escape(f["severity"])}: '
        f"{'<code>' + _text(f['column'], 120) + '</code> ' if f.get('column') else ''}"
        f"{_text(f['message'], 300)}</li>"
        for f in profile.get("flags", [])
    ]
    items += [
        f'<li style="color:#991b1b">failed pass {_text(e["pass"])}: {_text(e["error"], 300)}</li>'
        for e in profile.get("errors", [])
    ]
    return f"<p>Data quality:</p><ul>{''.join(items)}</ul>" if items else ""


_COLUMN_HEADERS = (
    "column",
    "type",
    "nulls",
    "distinct",
    "min",
    "max",
    "mean",
    "std",
    "p05 / p50 / p95",
    "length",
    "distribution",
)


def _column_row(column: dict[str, Any]) -> str:
    how = column.get("how", {})
    nulls = column.get("nulls")
    rate = column.get("null_rate")
    null_text = f"{_text(nulls)} ({rate:.1%})" if nulls is not None and rate is not None else ""
    quantiles = column.get("quantiles") or {}
    q_text = " / ".join(
        _text(quantiles.get(k), 24) for k in ("p05", "p50", "p95") if k in quantiles
    )
    length = ""
    if column.get("length_max") is not None:
        length = (
            f"{_text(column.get('length_min'))} to {_text(column.get('length_max'))}"
            f" (mean {_text(column.get('length_mean'))})"
        )
    key = " <small>(key)</small>" if column.get("key") == "declared" else ""
    if column.get("masked"):
        key += f" <small>(masked: {_text(', '.join(column['masked']), 80)})</small>"
    dupes = column.get("duplicates")
    distinct = _text(column.get("distinct"))
    if dupes:
        distinct += f" ({_text(dupes)} dup.)"
    nullable = "" if column.get("nullable", True) else " not null"
    comment = f"<br><small>{_text(column['comment'], 200)}</small>" if column.get("comment") else ""
    cells = [
        f"<code>{_text(column['name'], 80)}</code>{key}{comment}",
        f"{_text(column.get('type'), 40)}{nullable}",
        _with_how(null_text, how.get("nulls")),
        _with_how(distinct, how.get("distinct")),
        _text(column.get("min"), 30),
        _text(column.get("max"), 30),
        _with_how(_text(column.get("mean")), how.get("mean")),
        _with_how(_text(column.get("std")), how.get("std")),
        _with_how(q_text, how.get("quantiles")),
        _with_how(length, how.get("lengths")),
        _distribution(column),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _distribution(column: dict[str, Any]) -> str:
    """A number or time column's histogram, else bars of its top values; the top values' text
    folded underneath."""
    how = column.get("how", {})
    name = str(column.get("name"))
    top = column.get("top_values") or []
    chart = _histogram(column)
    if chart:
        chart = _with_how(chart, how.get("histogram"))
    elif top:
        items = [(str(v["value"]), int(v["count"])) for v in top[:BARS]]
        chart = _with_how(charts.bars(items, label=f"top values of {name}"), how.get("top_values"))
    if top:
        rest = "".join(f"<li>{_text(v['value'], 80)}: {_text(v['count'])}</li>" for v in top)
        chart += f"<details><summary>top {len(top)}</summary><ul>{rest}</ul></details>"
    return chart


def _histogram(column: dict[str, Any]) -> str:
    """The histogram's bins as numbers: time edges (ISO text) as epoch seconds, drawn as dates."""
    bins = column.get("histogram") or []
    times = bool(bins) and isinstance(bins[0][0], str)
    edge = _epoch if times else as_float
    drawn: list[tuple[float, float, int]] = []
    for low, high, count in bins:
        first, last = edge(low), edge(high)
        if first is None or last is None:
            return ""
        drawn.append((first, last, int(count)))
    if not drawn:
        return ""
    label = f"distribution of {column.get('name')}: {len(drawn)} bins"
    if not times:
        return charts.histogram(drawn, label=label)
    form = "%Y-%m-%d" if drawn[-1][1] - drawn[0][0] >= 2 * 86400 else "%m-%d %H:%M"
    return charts.histogram(
        drawn, label=label, axis=lambda x: dt.datetime.fromtimestamp(x, dt.UTC).strftime(form)
    )


def _epoch(value: Any) -> float | None:
    moment = as_datetime(value)
    return moment.timestamp() if moment else None


def _with_how(text: str, how: str | None) -> str:
    return f"{text} <small>({escape(how)})</small>" if text and how and how != "exact" else text


def _samples(profile: dict[str, Any]) -> str:
    samples = profile.get("samples") or []
    if not samples:
        return ""
    columns = list(samples[0])
    head = "".join(f"<th>{_text(c, 40)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_text(row.get(c), 40)}</td>" for c in columns) + "</tr>"
        for row in samples
    )
    return (
        f'<details><summary>{len(samples)} sample rows</summary><div style="overflow-x:auto">'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></details>"
    )


def _masking(profile: dict[str, Any]) -> str:
    masked = [c["name"] for c in profile.get("columns", []) if c.get("masked")]
    if not masked:
        return ""
    return (
        f"<p><small>Personal data masked in {_text(', '.join(masked), 300)}: sample rows, top "
        "values and ranges show values like <code>j***@e***.com</code>, never the value "
        "itself.</small></p>"
    )


def _table_section(profile: dict[str, Any], names: set[str], inbound: list[str]) -> str:
    head = "".join(f"<th>{h}</th>" for h in _COLUMN_HEADERS)
    body = "".join(_column_row(c) for c in profile.get("columns", []))
    return (
        f'<section><h2 id="{_anchor("t", profile["table"])}">{_text(profile["table"], 200)}</h2>'
        f"{_overview(profile)}{_masking(profile)}{_keys(profile, names, inbound)}{_flags(profile)}"
        f'<div style="overflow-x:auto"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{_samples(profile)}</section>"
    )


def render_summary(comparison: dict[str, Any]) -> str:
    """The figures of a summary page: counts, runs compared, findings by table."""
    findings = comparison.get("findings", [])
    counts = {s: sum(f["severity"] == s for f in findings) for s in _SEVERITY}
    runs = comparison.get("runs", [])
    intro = (
        f"<p>This run: <code>{_text(comparison.get('current'))}</code>. "
        f"Runs with catalog data: {len(runs)}"
        + (
            f"; compared with <code>{_text(comparison['compared_with'])}</code>, row counts "
            f"against a baseline of {_runs(len(comparison.get('baseline_runs', [])))}"
            if comparison.get("compared_with")
            else ""
        )
        + f". Findings: {counts['bad']} bad, {counts['good']} good, "
        f"{counts['neutral']} neutral.</p>" + _anomalies_line(comparison.get("anomalies"))
    )
    by_table: dict[str, list[dict[str, Any]]] = {}
    for finding in findings:
        by_table.setdefault(finding.get("table") or "(run)", []).append(finding)
    toc = "".join(
        f'<li><a href="#{_anchor("s", table)}">{_text(table, 120)}</a>: '
        f"{sum(f['severity'] == 'bad' for f in items)} bad, "
        f"{sum(f['severity'] == 'good' for f in items)} good</li>"
        for table, items in by_table.items()
    )
    sections = "".join(
        f'<section><h2 id="{_anchor("s", table)}">{_text(table, 200)}</h2><table><thead><tr>'
        "<th></th><th>column</th><th>finding</th><th>why</th></tr></thead><tbody>"
        + "".join(_finding_row(f) for f in items)
        + "</tbody></table></section>"
        for table, items in by_table.items()
    )
    incomparable = comparison.get("incomparable", [])
    skipped = (
        "<h2>Not compared</h2><ul>"
        + "".join(
            f"<li>{_text(i['table'], 120)}: {_text(i['reason'], 300)}</li>" for i in incomparable
        )
        + "</ul>"
        if incomparable
        else ""
    )
    nav = f"<nav><ul>{toc}</ul></nav>" if toc else ""
    return intro + nav + sections + skipped


def _anomalies_line(anomalies: dict[str, Any] | None) -> str:
    """Where the judgements against the baseline went, with the anomalies agent's counts."""
    if not anomalies:
        return ""
    counts = anomalies.get("counts", {})
    return (
        "<p>Volume, freshness, null rates, distinct counts, medians and column types are judged "
        f'against the baseline on <a href="{escape(str(anomalies.get("page", "")))}">the '
        f"anomalies page</a>: {int(counts.get('bad', 0))} bad, "
        f"{int(counts.get('neutral', 0))} neutral, {int(counts.get('good', 0))} good.</p>"
    )


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _finding_row(finding: dict[str, Any]) -> str:
    mark, color = _SEVERITY.get(finding["severity"], ("•", "#374151"))
    return (
        f'<tr><td style="color:{color}" title="{escape(finding["severity"])}">{mark} '
        f"{escape(finding['severity'])}</td><td>{_text(finding.get('column'), 80)}</td>"
        f"<td>{_text(finding['message'], 300)}</td><td>{_text(finding['reason'], 300)}</td></tr>"
    )


def render_run_agents(agents: list[dict[str, Any]]) -> str:
    """This run's agents as a table: what each found (its counts) and a link to its page,
    relative (`pii.html`): the pages of a run share one folder."""
    if not agents:
        return ""
    rows = "".join(
        f"<tr><td>{_page_link(a)}</td><td>{_counts_text(a.get('counts', {}))}</td>"
        f"<td>{_text(a.get('headline'), 300)}</td></tr>"
        for a in agents
    )
    return (
        "<h2>This run's agents</h2><table><thead><tr><th>agent</th><th>found</th>"
        f"<th>in short</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _page_link(agent: dict[str, Any]) -> str:
    name, page = str(agent.get("agent", "")), str(agent.get("page", ""))
    if page and page == f"{name}.html" and name.replace("_", "").isalnum():
        return f'<a href="{escape(page)}">{escape(name)}</a>'
    return f"{_text(name, 40)} (no page)"


def _counts_text(counts: dict[str, Any]) -> str:
    # The labels are JSON keys (`sensitive_columns`); a page says them as words.
    return (
        ", ".join(f"{_text(v)} {_text(str(k).replace('_', ' '), 40)}" for k, v in counts.items())
        or "—"
    )
