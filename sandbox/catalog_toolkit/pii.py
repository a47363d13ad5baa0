"""Find the columns that hold personal data: from names, and from a bounded sample of values.

    result = find_pii(con, ["shop.customers"])   # recorded; a dict of tables and findings

Per table, one query reads up to `sample_rows` rows (a random sample in the database when the
table is bigger, by the catalog's row estimate), plus one query per column that the sample left
with few non-null values. The values are judged here, in the sandbox, and then dropped: the
result holds shares, counts and masked examples only (pii_masks.py), never a value.

How a column is judged, per type (pii_detectors.py judges one value, pii_rules.py a name):
- values: at least `min_share` of the sampled non-null values are strong matches (an email, a
  Luhn-valid card number, ...): tagged, whatever the name says;
- name and values: the name's rule fires and the values agree (half of `min_share` strong, or
  `min_share` plausible: ten plain digits in a `phone` column): tagged, less confidently;
- name only: the name's rule fires and there is no value to look at (an empty column):
  tagged with a low confidence, and said so;
- the name's rule fires and the values disagree (`email` full of booleans): not tagged; the
  column's `notes` say why. Values decide over names;
- free text: a column of sentences in which at least `min_text_share` of the values hold PII.
Ownership: this agent tags columns; whether the data is any good is the catalog's business.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit import pii_report, record, sources
from catalog_toolkit.database import Database, TableName
from catalog_toolkit.metadata import read_declared
from catalog_toolkit.passes import SEED
from catalog_toolkit.pii_judge import DEFAULT_MIN_SHARE, DEFAULT_MIN_TEXT_SHARE, judge_column
from catalog_toolkit.pii_rules import NameRule, name_rule

FORMAT = 1
DEFAULT_SAMPLE_ROWS = 1000
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_TABLES = 50
TOP_UP_BELOW = 20  # a column with fewer non-null values in the sample gets a query of its own
MAX_TOP_UPS = 20  # such queries per table


def find_pii(
    con: Any,
    tables: list[str] | None = None,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    min_share: float = DEFAULT_MIN_SHARE,
    min_text_share: float = DEFAULT_MIN_TEXT_SHARE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_tables: int = DEFAULT_MAX_TABLES,
) -> dict[str, Any]:
    """Sensitive columns of `tables` (all tables of the default schema when empty, at most
    `max_tables`; with `cons`, each table in its source's database, `billing/invoices`);
    records and returns `{"format", "kind", "settings", "tables", "findings", "counts",
    "headline"}`. Each query stops after `timeout_s` seconds."""
    if not 0 < min_share <= 1 or not 0 < min_text_share <= 1:
        raise ValueError("min_share and min_text_share are fractions: 0 < x <= 1")
    if sample_rows < 1:
        raise ValueError("sample_rows must be a positive number of rows")
    names = list(tables) if tables else sorted(sources.first(con).list_tables())[:max_tables]
    settings = {
        "sample_rows": sample_rows,
        "min_share": min_share,
        "min_text_share": min_text_share,
    }
    result: dict[str, Any] = {"format": FORMAT, "kind": "pii", "settings": settings, "tables": {}}
    groups, unavailable = sources.plan(con, names)
    found = {  # a source the session lost: its tables say so, the others are read
        r.given: {"table": r.run, "columns": [], "errors": [{"pass": "source", "error": r.why}]}
        for r in unavailable
    }
    for group in groups.values():
        db = Database(group[0].con, timeout_s)
        for r in group:
            found[r.given] = _scan_table(db, r.bare, settings) | {"table": r.run}
    result["tables"] = {found[t]["table"]: found[t] for t in names}
    result["findings"] = pii_report.findings(result["tables"])
    result["counts"] = pii_report.counts(result["tables"], result["findings"])
    result["headline"] = pii_report.headline(result["findings"], result["counts"])
    record.remember("pii", result)
    return result


def _scan_table(db: Database, table: str, settings: dict[str, Any]) -> dict[str, Any]:
    name = TableName.parse(table)
    entry: dict[str, Any] = {"table": str(name), "columns": [], "errors": []}
    t = _attempt(entry, "schema", lambda: db.table(name))
    schema = _attempt(entry, "schema", lambda: t.schema()) if t is not None else None
    if schema is None:
        return entry
    wanted = {c: name_rule(c) for c, dtype in schema.items() if _worth_reading(dtype, name_rule(c))}
    if not wanted:
        entry["sample"] = {"rows": 0, "method": "no column could hold personal data"}
        return entry
    values = _sample(db, t, name, list(wanted), settings["sample_rows"], entry)
    for column, rule in wanted.items():
        judged = judge_column(values.get(column, []), rule, settings)
        entry["columns"].append({"name": column, "type": str(schema[column]), **judged})
    return entry


def _worth_reading(dtype: Any, rule: NameRule | None) -> bool:
    """Text and integers can hold PII whatever their name; any other type only when its name
    says so (then its values get the chance to disagree)."""
    return bool(dtype.is_string() or dtype.is_integer() or rule is not None)


def _sample(
    db: Database, t: Any, name: TableName, columns: list[str], rows: int, entry: dict[str, Any]
) -> dict[str, list[Any]]:
    """Non-null values per column, from one bounded read, topped up for sparse columns."""
    declared = _attempt(entry, "row estimate", lambda: read_declared(db, name))
    estimate = declared.row_estimate if declared else None
    if estimate is not None and estimate > 2 * rows:
        fraction = min(1.0, 2.0 * rows / estimate)  # twice what is needed, then LIMIT
        args = {"method": "row"} if db.backend == "mysql" else {"method": "row", "seed": SEED}
        source = t.sample(fraction, **args)
        method = f"random sample of about {fraction:.2%} of ~{estimate:,} rows"
    else:
        source, method = t, "the table's first rows"
    fetched = _attempt(entry, "sample", lambda: db.fetch(source.select(*columns).limit(rows)))
    fetched = fetched or []
    entry["sample"] = {"rows": len(fetched), "method": method if fetched else "no rows read"}
    values = {c: [r[c] for r in fetched if r[c] is not None] for c in columns}
    if len(fetched) == rows:  # the table may hold more: look further for sparse columns
        sparse = [c for c in columns if len(values[c]) < TOP_UP_BELOW][:MAX_TOP_UPS]
        for column in sparse:
            query = t.filter(t[column].notnull()).select(column).limit(rows)
            more = _attempt(entry, f"values of {column}", lambda q=query: db.fetch(q))
            if more:
                values[column] = [r[column] for r in more]
    return values


def _attempt(entry: dict[str, Any], what: str, work: Any) -> Any:
    try:
        return work()
    except Exception as exc:  # a failed read is reported, the other tables still run
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        entry["errors"].append({"pass": what, "error": message})
    return None
