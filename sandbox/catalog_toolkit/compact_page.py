"""The catalog's figures for many tables: bounded bytes per table, navigable without a script.

Over `COMPACT_OVER` tables (the catalog prompt's `compact_over` limit may set it) the full
figures of pages.py would take about 16 kB a table (charts, samples, top values): 48 MB for
3,000 tables, far over the runner's page cap (2 MiB). The compact form keeps what a reader
scans for, one folded `<details>` per table:

    summary  the table's name, rows, columns, warnings (always visible: the page's search)
    columns  one aligned text line each: name, type (not null), null share, distinct count
    flags    the first few warnings, on their column's line; keys and relations declared

Charts, samples, top values, ranges and quantiles are left out: they stay in catalog.json.
The page's sanitizer removes every script, so the search is the browser's own find (every
table's name is in its visible summary), with a contents of jump links to each block of
`BLOCK` tables in name order and a list of the tables with warnings.
"""

from __future__ import annotations

from html import escape
from typing import Any

from catalog_toolkit import record

COMPACT_OVER = 200  # more tables than this on one page: the compact form
BLOCK = 100  # tables per jump link of the contents
FLAGGED = 100  # tables with warnings listed at the top, at most
FLAGS_PER_TABLE = 3  # warnings shown per table; the rest are in catalog.json
NAME_CHARS = 40  # a column's name on its line, cut here
_HEAD = ("column", "type", "nulls", "distinct")


def compact_over() -> int:
    """The threshold: the prompt's `compact_over` when the run passed its limits, else ours."""
    try:
        return max(1, int(record.page_limits.get("compact_over") or COMPACT_OVER))
    except (TypeError, ValueError):
        return COMPACT_OVER


def render_compact(profiles: list[dict[str, Any]], anchor: Any, names: Any) -> str:
    """The contents, then one folded section per table; `anchor(prefix, name)` and
    `names(value, limit)` are pages.py's, so links and text read as on the full page."""
    ordered = sorted(profiles, key=lambda p: str(p["table"]))
    return _contents(ordered, anchor, names) + "".join(_section(p, anchor, names) for p in ordered)


def _contents(profiles: list[dict[str, Any]], anchor: Any, names: Any) -> str:
    blocks = [profiles[i : i + BLOCK] for i in range(0, len(profiles), BLOCK)]
    jumps = " · ".join(
        f'<a href="#{anchor("t", b[0]["table"])}">{names(b[0]["table"], 40)} to '
        f"{names(b[-1]['table'], 40)}</a>"
        for b in blocks
    )
    flagged = [p for p in profiles if _warnings(p)]
    listed = ", ".join(
        f'<a href="#{anchor("t", p["table"])}">{names(p["table"], 80)}</a>'
        for p in flagged[:FLAGGED]
    )
    more = f" and {len(flagged) - FLAGGED:,} more" if len(flagged) > FLAGGED else ""
    warned = f"<p>With warnings ({len(flagged):,}): {listed}{more}.</p>" if flagged else ""
    return (
        f"<nav><h2>Tables ({len(profiles):,})</h2><p>A compact page: each table's columns "
        "with their type, nulls and distinct values; charts, samples and value ranges are in "
        "catalog.json. Find a table with your browser's search (Ctrl+F): each name is on a "
        f"line of its own below, in name order; open it for its columns.</p><p>{jumps}</p>"
        f"{warned}</nav>"
    )


def _section(profile: dict[str, Any], anchor: Any, names: Any) -> str:
    columns = profile.get("columns", [])
    warnings = _warnings(profile)
    failed = len(profile.get("errors", []))
    facts = [f"{names(profile.get('rows'))} rows", f"{len(columns)} columns"]
    facts += [f"{len(warnings)} warning{'s' * (len(warnings) != 1)}"] if warnings else []
    facts += [f"{failed} failed pass{'es' * (failed != 1)}"] if failed else []
    # A column's warning goes on its line; the table's own ones (and the rest) above.
    by_column: dict[str, str] = {}
    own = []
    for flag in warnings[:FLAGS_PER_TABLE]:
        if flag.get("column") and str(flag["column"]) not in by_column:
            by_column[str(flag["column"])] = str(flag.get("message", ""))[:120]
        else:
            own.append(names(flag.get("message"), 160))
    if len(warnings) > FLAGS_PER_TABLE:
        own.append(f"{len(warnings) - FLAGS_PER_TABLE} more warnings in catalog.json")
    said = f"<p>{'; '.join(own)}</p>" if own else ""
    return (
        f'<details id="{anchor("t", profile["table"])}"><summary><b>'
        f"{names(profile['table'], 200)}</b> {', '.join(facts)}</summary>"
        f"{_keys(profile, names)}{said}<pre>{_column_lines(columns, by_column)}</pre></details>"
    )


def _warnings(profile: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in profile.get("flags", []) if f.get("severity") == "warning"]


def _keys(profile: dict[str, Any], names: Any) -> str:
    parts = []
    if profile.get("primary_key"):
        parts.append(f"primary key ({names(', '.join(profile['primary_key']), 120)})")
    for fk in profile.get("foreign_keys", []):
        parts.append(
            f"({names(', '.join(fk['columns']), 120)}) → {names(fk['references']['table'], 120)}"
        )
    return f"<p>{'; '.join(parts)}</p>" if parts else ""


def _column_lines(columns: list[dict[str, Any]], flagged: dict[str, str]) -> str:
    """One aligned line per column, its warning after it (no tag per cell: a table's markup
    would double the section's size)."""
    rows = [_HEAD] + [_column_cells(c) for c in columns]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    lines = [
        f"{r[0]:<{widths[0]}} {r[1]:<{widths[1]}} {r[2]:>{widths[2]}} {r[3]:>{widths[3]}}"
        for r in rows
    ]
    for i, column in enumerate(columns, start=1):
        warning = flagged.get(str(column.get("name", "")))
        lines[i] += f"  ! {warning}" if warning else ""
    return escape("\n".join(line.rstrip() for line in lines))


def _column_cells(column: dict[str, Any]) -> tuple[str, str, str, str]:
    name = str(column.get("name", ""))
    name = name if len(name) <= NAME_CHARS else name[:NAME_CHARS] + "…"
    kind = str(column.get("type", ""))[:30] + ("" if column.get("nullable", True) else " not null")
    rate = column.get("null_rate")
    nulls = "" if not isinstance(rate, int | float) else f"{rate:.0%}" if rate else "0"
    nulls = "<1%" if nulls == "0%" else nulls  # a few nulls are not none
    distinct = column.get("distinct")
    how = (column.get("how") or {}).get("distinct")
    count = f"{distinct:,}" if isinstance(distinct, int) else ""
    approx = "~" if count and how and how != "exact" else ""
    return name, kind, nulls, approx + count
