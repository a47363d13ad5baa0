"""The relations agent's findings and page fragment: an ER diagram and tables of edges.

Every value from the data (table and column names) is escaped: in HTML here, in the SVG by
charts.py, whose `<img>` the runner's sanitizer keeps.
"""

from __future__ import annotations

from html import escape
from typing import Any

from catalog_toolkit.charts import Edge, graph

CELL_CHARS = 80


def _text(value: Any, limit: int = CELL_CHARS) -> str:
    text = "" if value is None else str(value)
    return escape(text if len(text) <= limit else text[:limit] + "…")


def coverage_sentence(item: dict[str, Any]) -> str:
    """`97.9% of orders.customer_id values are in customers.id` (of a sample, when it was one)."""
    ref = item["references"]
    sample = f" (a sample of {item['checked']:,} distinct values)" if item.get("sampled") else ""
    return (
        f"{item['coverage']:.1%} of {item['table']}.{item['column']} values are in "
        f"{ref['table']}.{ref['column']}{sample}"
    )


def headline(result: dict[str, Any]) -> str:
    """One sentence for the summary: `2 undeclared keys inferred, 97.9% coverage at worst.`"""
    inferred = result.get("inferred", [])
    keys = len(result.get("candidate_keys", []))
    if inferred:
        worst = min(float(i["coverage"]) for i in inferred)
        noun = "key" if len(inferred) == 1 else "keys"
        text = f"{len(inferred)} undeclared {noun} inferred, {worst:.1%} coverage at worst"
    else:
        declared = len(result.get("declared", []))
        text = f"No undeclared key inferred ({declared} declared)"
    if keys:
        text += f"; {keys} candidate {'key' if keys == 1 else 'keys'} not declared"
    return text + "."


def findings_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One finding per inferred relation and per candidate key, as compare.py's findings read:
    `table`, `column`, `severity` (good, bad or neutral), `kind`, `message`, `reason`."""
    found = []
    for item in result.get("inferred", []):
        ref = item["references"]
        orphans = item["missing"] > 0
        found.append(
            {
                "severity": "bad" if orphans else "neutral",
                "table": item["table"],
                "column": item["column"],
                "kind": "inferred_foreign_key_orphans" if orphans else "inferred_foreign_key",
                "message": f"probably refers to {ref['table']}.{ref['column']} (not declared)",
                "reason": coverage_sentence(item)
                + f"; confidence {item['confidence']:.2f}"
                + (f"; {item['missing']:,} values have no match" if orphans else ""),
            }
        )
    for key in result.get("candidate_keys", []):
        found.append(
            {
                "severity": "neutral",
                "table": key["table"],
                "column": ", ".join(key["columns"]),
                "kind": "candidate_key",
                "message": "unique and never null, but not declared a key",
                "reason": f"all {key['rows']:,} rows hold a distinct value",
            }
        )
    return found


def diagram(data: dict[str, Any]) -> str:
    """The ER diagram: tables as boxes, declared references solid, inferred ones dashed."""
    edges = [
        Edge(
            fk["table"],
            fk["references"]["table"],
            f"{', '.join(fk['columns'])} -> {', '.join(fk['references']['columns'])}",
            False,
        )
        for fk in data.get("declared", [])
    ]
    edges += [
        Edge(
            i["table"],
            i["references"]["table"],
            f"{i['column']} -> {i['references']['column']}",
            True,
        )
        for i in data.get("inferred", [])
    ]
    related = {e.source for e in edges} | {e.target for e in edges}
    nodes = [t for t in data.get("tables", []) if t in related]
    nodes += sorted(related - set(nodes))
    return graph(nodes, edges, label="Relations between the tables") if nodes else ""


def render_relations(data: dict[str, Any]) -> str:
    """The figures of a relations page: counts, the diagram, inferred and declared edges,
    candidate keys, and the pairs checked but not inferred."""
    counts = data.get("counts", {})
    intro = (
        f"<p>{_count(counts.get('tables'), 'table')}; "
        f"{_count(counts.get('declared'), 'declared relation')}; "
        f"{_count(counts.get('inferred'), 'inferred relation')} from "
        f"{_count(counts.get('checked'), 'pair')} checked in the database "
        f"({_count(counts.get('queries'), 'query', 'queries')}, at most "
        f"{_text(counts.get('max_queries_per_pair'))} per pair"
        + (
            f"; {_count(counts['over_cap'], 'pair')} over the cap not checked"
            if counts.get("over_cap")
            else ""
        )
        + f"); {_count(counts.get('candidate_keys'), 'undeclared candidate key')}.</p>"
    )
    picture = diagram(data)
    # The diagram carries its own legend; no margin, so it lines up with the text.
    figure = f'<figure style="margin:0">{picture}</figure>' if picture else ""
    return (
        intro
        + figure
        + _inferred(data)
        + _declared(data)
        + _keys(data)
        + _rejected(data)
        + _errors(data)
    )


def _count(value: Any, word: str, plural: str = "") -> str:
    n = int(value or 0)
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div style="overflow-x:auto"><table><thead><tr>{cells}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _column(table: str, column: str) -> str:
    return f"<code>{_text(table)}</code>.<code>{_text(column)}</code>"


def _inferred(data: dict[str, Any]) -> str:
    items = data.get("inferred", [])
    if not items:
        return "<h2>Inferred relations</h2><p>None found.</p>"
    rows = [
        [
            _column(i["table"], i["column"]),
            _column(i["references"]["table"], i["references"]["column"]),
            f"{i['coverage']:.1%}" + (" <small>(sample)</small>" if i.get("sampled") else ""),
            f"{i['missing']:,} of {i['checked']:,}",
            f"{i['confidence']:.2f}",
            _text(coverage_sentence(i), 300),
        ]
        for i in items
    ]
    head = ["column", "refers to", "coverage", "no match", "confidence", "evidence"]
    return "<h2>Inferred relations</h2>" + _table(head, rows)


def _declared(data: dict[str, Any]) -> str:
    items = data.get("declared", [])
    if not items:
        return "<h2>Declared relations</h2><p>None declared.</p>"
    rows = [
        [
            f"<code>{_text(fk['table'])}</code> ({_text(', '.join(fk['columns']), 200)})",
            f"<code>{_text(fk['references']['table'])}</code> "
            f"({_text(', '.join(fk['references']['columns']), 200)})",
        ]
        for fk in items
    ]
    return "<h2>Declared relations</h2>" + _table(["columns", "refer to"], rows)


def _keys(data: dict[str, Any]) -> str:
    items = data.get("candidate_keys", [])
    if not items:
        return ""
    rows = [
        [
            f"<code>{_text(k['table'])}</code>",
            _text(", ".join(k["columns"]), 200),
            _text(f"{k['rows']:,}"),
        ]
        for k in items
    ]
    return "<h2>Candidate keys (not declared)</h2>" + _table(["table", "columns", "rows"], rows)


def _rejected(data: dict[str, Any]) -> str:
    items = data.get("rejected", [])
    if not items:
        return ""
    rows = [
        [
            _column(i["table"], i["column"]),
            _column(i["references"]["table"], i["references"]["column"]),
            f"{i['coverage']:.1%}",
            _text(i["reason"], 120),
        ]
        for i in items
    ]
    table = _table(["column", "candidate", "coverage", "why not"], rows)
    return (
        f"<details><summary>{len(items)} pairs checked but not inferred</summary>{table}</details>"
    )


def _errors(data: dict[str, Any]) -> str:
    items = data.get("errors", [])
    if not items:
        return ""
    lines = "".join(
        f"<li>{_text(e.get('table') or e.get('pair'), 200)}: {_text(e['error'], 300)}</li>"
        for e in items
    )
    return f'<p style="color:#991b1b">Failed checks:</p><ul>{lines}</ul>'
