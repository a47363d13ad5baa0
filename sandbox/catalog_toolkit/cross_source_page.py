"""The catalog page's "Across sources" section: the matched tables and their differences, the
sampled key checks across sources, and what could not be read. Every value is escaped."""

from __future__ import annotations

from html import escape
from typing import Any

from catalog_toolkit.cross_inclusion import sentence

_MARK = {"bad": "&#9888; ", "good": "&#10003; ", "neutral": ""}
_STYLE = ' style="border-collapse:collapse"'
_CELL = ' style="border:1px solid #ccc;padding:2px 6px;vertical-align:top"'


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def render_cross_source(data: dict[str, Any]) -> str:
    parts = [
        '<section id="across-sources"><h2>Across sources</h2>',
        f"<p>{_e(data.get('headline', ''))}</p>",
        _pairs(data.get("pairs", [])),
        _checks(data.get("inclusions", []), data.get("limits", {})),
        _failures(data),
        "</section>",
    ]
    return "".join(parts)


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}{_CELL}>{c}</{tag}>" for c in cells) + "</tr>"


def _pairs(pairs: list[dict[str, Any]]) -> str:
    if not pairs:
        return "<p>No table was found in two sources (by name or by column overlap).</p>"
    head = _row(["Table", "Same as", "Matched by", "Rows", "Differences"], "th")
    body = "".join(_pair_row(p) for p in pairs)
    return f"<h3>The same table in two sources</h3><table{_STYLE}>{head}{body}</table>"


def _pair_row(pair: dict[str, Any]) -> str:
    how = pair["matched_by"]
    matched = "name" if how == "name" else f"columns ({pair['shared_columns']} shared, "
    matched += "" if how == "name" else f"Jaccard {pair['jaccard']:.2f})"
    rows = pair["rows"]
    counts = f"{_count(rows['left'])} / {_count(rows['right'])}"
    if rows.get("how") != "exact":
        counts += " (estimate)"
    items = "".join(
        f"<li>{_MARK.get(f['severity'], '')}{_e(f['text'])}</li>" for f in pair["findings"]
    )
    cells = [_e(pair["left"]), _e(pair["right"]), _e(matched), _e(counts), f"<ul>{items}</ul>"]
    return _row(cells)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _checks(checks: list[dict[str, Any]], limits: dict[str, Any]) -> str:
    if not checks:
        return "<p>No column looks like a key into another source's table.</p>"
    limit = limits.get("sample_limit")
    note = (
        "<p>Each check takes up to "
        f"{_e(f'{limit:,}' if isinstance(limit, int) else limit)} distinct values of the column "
        "in its own database and looks them up in the other source: the shares are a sample's, "
        "not the whole column's.</p>"
    )
    head = _row(["Column", "Looked up in", "Sample", "Found", "Result"], "th")
    body = "".join(_check_row(c) for c in checks)
    return f"<h3>Keys into another source (sampled)</h3>{note}<table{_STYLE}>{head}{body}</table>"


def _check_row(item: dict[str, Any]) -> str:
    ref = item["references"]
    where, into = f"{item['table']}.{item['column']}", f"{ref['table']}.{ref['column']}"
    if "error" in item:
        return _row([_e(where), _e(into), "", "", f"not checked: {_e(item['error'])}"])
    how = "all" if item.get("complete") else item.get("sample", "")
    sampled = f"{item['sampled']:,} distinct" + (f" ({how})" if how else "")
    share = item.get("share")
    found = f"{item['found']:,}" + (f" ({share:.1%})" if share is not None else "")
    return _row([_e(where), _e(into), _e(sampled), _e(found), _e(sentence(item))])


def _failures(data: dict[str, Any]) -> str:
    errors = data.get("errors", [])
    if not errors:
        return ""
    items = "".join(
        f"<li><strong>{_e(e.get('table', ''))}</strong>: {_e(e.get('error', ''))}</li>"
        for e in errors
    )
    return f"<h3>Tables not compared</h3><ul>{items}</ul>"
