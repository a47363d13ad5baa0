"""The pii agent's findings, counts, digest, stored data and HTML, from find_pii's result.

Everything here reads the result only, which holds shares and masked examples, never a value;
every value in the HTML is escaped all the same.
"""

from __future__ import annotations

from html import escape
from typing import Any

LABELS = {
    "email": "an email address",
    "phone": "a phone number",
    "payment_card": "a payment card number",
    "iban": "an IBAN",
    "ssn": "a US social security number",
    "ip_address": "an IP address",
    "person_name": "a person's name",
    "postal_address": "a postal address",
    "date_of_birth": "a date of birth",
    "free_text": "free text holding personal data",
}
# Numbers that open an account or an identity on their own: worth a warning wherever they sit.
_BAD = frozenset({"payment_card", "iban", "ssn"})
MAX_DIGEST_ITEMS = 20


def evidence(verdict: dict[str, Any]) -> str:
    """`"98% of 1,000 sampled values match"`, or what the name alone says."""
    if verdict["basis"] == "name only":
        return "name only: the column had no value to check"
    text = f"{verdict['share']:.0%} of {verdict['sampled']:,} sampled values match"
    if verdict["basis"] == "name and values":
        text += " (name and values agree)"
    elif verdict["basis"] == "values, mixed":
        text += " (the column mixes kinds)"
    return text


def _severity(verdict: dict[str, Any]) -> str:
    kinds = {verdict["type"], *verdict.get("contains", [])}
    return "bad" if kinds & _BAD else "neutral"


def findings(tables: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One finding per tagged column and type, in the shape compare.py's findings have."""
    found = []
    for table, entry in tables.items():
        for column in entry["columns"]:
            for verdict in column["pii"]:
                what = LABELS[verdict["type"]]
                if verdict.get("contains"):
                    what += f" ({', '.join(verdict['contains'])})"
                found.append(
                    {
                        "severity": _severity(verdict),
                        "table": table,
                        "column": column["name"],
                        "kind": verdict["type"],
                        "message": f"holds {what}",
                        "reason": evidence(verdict)
                        + (f"; {verdict['name_rule']}" if verdict["name_rule"] else ""),
                        "confidence": verdict["confidence"],
                    }
                )
    return found


def counts(tables: dict[str, dict[str, Any]], found: list[dict[str, Any]]) -> dict[str, Any]:
    by_type: dict[str, int] = {}
    for finding in found:
        by_type[finding["kind"]] = by_type.get(finding["kind"], 0) + 1
    return {
        "tables": len(tables),
        "columns_checked": sum(len(e["columns"]) for e in tables.values()),
        "sensitive_columns": len({(f["table"], f["column"]) for f in found}),
        "bad": sum(f["severity"] == "bad" for f in found),
        "neutral": sum(f["severity"] == "neutral" for f in found),
        "by_type": by_type,
        "names_overruled": sum(len(c["notes"]) for e in tables.values() for c in e["columns"]),
        "failed_reads": sum(len(e["errors"]) for e in tables.values()),
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def headline(found: list[dict[str, Any]], count: dict[str, Any]) -> str:
    """One sentence for the summary: `3 sensitive columns in 2 tables, 1 with card numbers.`"""
    columns = {(f["table"], f["column"]) for f in found}
    if not columns:
        return f"No personal data found in {_plural(count.get('tables', 0), 'table')} checked."
    tables = len({table for table, _ in columns})
    text = f"{_plural(len(columns), 'sensitive column')} in {_plural(tables, 'table')}"
    cards = len({(f["table"], f["column"]) for f in found if f["kind"] == "payment_card"})
    if cards:
        text += f", {cards} with card numbers"
    bad = len({(f["table"], f["column"]) for f in found if f["severity"] == "bad"}) - cards
    if bad > 0:
        text += f", {bad} more with IBANs or SSNs"
    return text + "."


def digest(result: dict[str, Any]) -> dict[str, Any]:
    """A headline and short facts, for the offline agent's prose."""
    count = result["counts"]
    tables_hit = len({f["table"] for f in result["findings"]})
    kinds = ", ".join(sorted(count["by_type"])) or "none"
    headline = (
        f"{count['sensitive_columns']} of {count['columns_checked']} columns checked hold "
        f"personal data, in {tables_hit} of {count['tables']} tables (types: {kinds})"
    )
    items = [
        f"{f['table']}.{f['column']} {f['message']}: confidence {f['confidence']:.2f}, "
        f"{f['reason']}"
        for f in result["findings"]
    ]
    for table, entry in result["tables"].items():
        items += [f"{table}: reading {e['pass']} failed ({e['error']})" for e in entry["errors"]]
    return {
        "headline": headline,
        "items": items[:MAX_DIGEST_ITEMS],
        "counts": count,
    }


def _cell(value: Any) -> str:
    return escape("" if value is None else str(value))


def render(data: dict[str, Any]) -> str:
    """An HTML fragment: what was checked, a table of sensitive columns, names overruled."""
    count = data.get("counts", {})
    settings = data.get("settings", {})
    intro = (
        f"<p>Checked {_cell(count.get('columns_checked', 0))} columns of "
        f"{_cell(count.get('tables', 0))} tables on samples of up to "
        f"{_cell(settings.get('sample_rows'))} rows each, read in the database and judged in "
        "the sandbox. Examples are masked; no value left the sandbox unmasked.</p>"
    )
    rows = "".join(_finding_row(data, f) for f in data.get("findings", []))
    table = (
        "<table><thead><tr><th>table</th><th>column</th><th>type</th><th>confidence</th>"
        f"<th>evidence</th><th>masked examples</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p>No column holds personal data that the checks recognize.</p>"
    )
    return (
        f"<section><h2>Sensitive columns ({_cell(count.get('sensitive_columns', 0))})</h2>"
        f"{intro}{table}{_overruled(data)}{_errors(data)}</section>"
    )


def _finding_row(data: dict[str, Any], finding: dict[str, Any]) -> str:
    column: dict[str, Any] = next(
        (
            c
            for c in data["tables"].get(finding["table"], {}).get("columns", [])
            if c["name"] == finding["column"]
        ),
        {"pii": []},
    )
    verdict: dict[str, Any] = next((v for v in column["pii"] if v["type"] == finding["kind"]), {})
    examples = ", ".join(f"<code>{_cell(e)}</code>" for e in verdict.get("examples", []))
    color = "#991b1b" if finding["severity"] == "bad" else "#374151"
    confidence = f"{finding['confidence']:.2f}"
    return (
        f"<tr><td>{_cell(finding['table'])}</td><td>{_cell(finding['column'])}</td>"
        f'<td style="color:{color}">{_cell(finding["message"].removeprefix("holds "))}</td>'
        f"<td>{confidence}</td><td>{_cell(finding['reason'])}</td>"
        f"<td>{examples}</td></tr>"
    )


def _overruled(data: dict[str, Any]) -> str:
    notes = [
        f"<li>{_cell(table)}.{_cell(c['name'])}: {_cell(note)}</li>"
        for table, entry in data.get("tables", {}).items()
        for c in entry.get("columns", [])
        for note in c.get("notes", [])
    ]
    if not notes:
        return ""
    return (
        f"<details><summary>Names overruled by their values ({len(notes)})</summary>"
        f"<ul>{''.join(notes)}</ul></details>"
    )


def _errors(data: dict[str, Any]) -> str:
    failed = [
        f"<li>{_cell(table)}: {_cell(e['pass'])}: {_cell(e['error'])}</li>"
        for table, entry in data.get("tables", {}).items()
        for e in entry.get("errors", [])
    ]
    return f"<p>Reads that failed:</p><ul>{''.join(failed)}</ul>" if failed else ""
