"""What the cross-source checks know of each table: rows, columns and types, single-column
keys, and the ranges of its id-like and time columns.

From the table's recorded profile when there is one (no query; the ranges are queried again
only when the profile read a sample, since a sample's newest timestamp is not the table's),
else from the database: the catalog's declarations and one aggregate (the row count, and
the min and max of each id-like and time column). A column of personal data (masked in its
profile, or personal by its name: `birth_date`) has no range: its min and max would be
someone's values. A time column with values dated in the future (a planted 2031 order, a
clock gone wrong) has its newest value read again up to now, so two copies compare by what
they hold of the past rather than by one bad row; `future` names those columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import ibis

from catalog_toolkit import sources
from catalog_toolkit.database import Database, TableName
from catalog_toolkit.failures import connection_lost as lost
from catalog_toolkit.failures import failure_text
from catalog_toolkit.metadata import read_declared
from catalog_toolkit.pii_rules import name_rule
from catalog_toolkit.relation_facts import kind_of
from catalog_toolkit.relation_names import tokens
from catalog_toolkit.values import as_datetime, to_json

# Type families: two sources' types compare by family (int32 and int64 are both integer).
_FAMILIES = (
    *(("int", "integer"), ("uint", "integer"), ("decimal", "decimal"), ("float", "float")),
    *(("string", "text"), ("timestamp", "timestamp"), ("date", "date"), ("time", "time")),
    *(("bool", "boolean"), ("uuid", "uuid"), ("json", "json"), ("binary", "binary")),
)


@dataclass
class Facts:
    table: str  # the run's name: `warehouse/orders`, or bare for the first source
    source: str
    bare: str  # its name in its database: `schema.table` or `table`
    rows: int | None = None
    rows_how: str = "exact"  # or "estimate"
    columns: dict[str, str] = field(default_factory=dict)  # name -> ibis type text
    keys: list[str] = field(default_factory=list)  # declared single-column keys
    ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # (min, max) as JSON
    origin: str = "profile"  # or "query"
    future: list[str] = field(default_factory=list)  # time columns whose max is capped at now

    @property
    def name(self) -> str:
        """The table's own name, lower case, without its schema (`orders`)."""
        return self.bare.rpartition(".")[2].lower()

    def kind(self, column: str) -> str:
        """integer, text, uuid or other: what a key of this column could match."""
        return kind_of(self.columns.get(column, ""))


def family(type_text: str) -> str:
    text = type_text.lstrip("!").lower()
    for prefix, name in _FAMILIES:
        if text.startswith(prefix):
            return name
    return text.split("(")[0]


def id_like(column: str, type_text: str, keys: list[str]) -> bool:
    """An integer key or a column named like one (`id`, `customer_id`)."""
    words = tokens(column)
    named = bool(words) and words[-1] == "id"
    return family(type_text) == "integer" and (named or column in keys)


def ranged(column: str, type_text: str, keys: list[str]) -> bool:
    """Whether the checks compare this column's range: id-like, or a time not of a person."""
    if family(type_text) in ("timestamp", "date"):
        return name_rule(column) is None
    return id_like(column, type_text, keys)


def from_profile(table: str, source: str, bare: str, profile: dict[str, Any]) -> Facts:
    """Facts from a recorded profile (profile.py's shape), without a query."""
    singles = [profile.get("primary_key") or [], *(profile.get("unique") or [])]
    keys = [k[0] for k in singles if len(k) == 1]
    facts = Facts(table, source, bare, profile.get("rows"), keys=keys)
    facts.rows_how = str((profile.get("how") or {}).get("rows", "exact"))
    for column in profile.get("columns", []):
        facts.columns[column["name"]] = str(column.get("type", ""))
        if column.get("masked") or not ranged(column["name"], facts.columns[column["name"]], keys):
            continue
        facts.ranges[column["name"]] = (column.get("min"), column.get("max"))
    return facts


def from_database(db: Database, table: str, source: str, bare: str) -> Facts:
    """Facts read from the database: its declarations, then one aggregate."""
    name = TableName.parse(bare)
    t = db.table(name)
    facts = Facts(table, source, bare, origin="query")
    facts.columns = {c: str(dtype.copy(nullable=True)) for c, dtype in t.schema().items()}
    try:
        declared = read_declared(db, name)
        singles = [declared.primary_key, *declared.unique]
        facts.keys = [k[0] for k in singles if len(k) == 1]
    except Exception as exc:
        if lost(exc):
            raise
    facts.rows, facts.ranges = query_ranges(db, t, facts)
    return facts


def query_ranges(db: Database, t: Any, facts: Facts) -> tuple[int, dict[str, tuple[Any, Any]]]:
    """One aggregate: the row count, and the min and max of each ranged column."""
    wanted = [c for c, type_text in facts.columns.items() if ranged(c, type_text, facts.keys)]
    aggs: dict[str, Any] = {"rows": t.count()}
    for i, column in enumerate(wanted):
        aggs[f"lo{i}"], aggs[f"hi{i}"] = t[column].min(), t[column].max()
    row = db.fetch(t.aggregate(**aggs))[0]
    found = {c: (to_json(row[f"lo{i}"]), to_json(row[f"hi{i}"])) for i, c in enumerate(wanted)}
    return int(row["rows"]), found


def refresh_sampled(db: Database, facts: Facts, profile: dict[str, Any]) -> None:
    """A profile made on a sample: its ranges (and row count, if it had none) from the table."""
    if (profile.get("scope") or {}).get("kind") != "sample" or not facts.ranges:
        return
    rows, ranges = query_ranges(db, db.table(TableName.parse(facts.bare)), facts)
    facts.ranges = {c: ranges[c] for c in facts.ranges if c in ranges}
    if facts.rows is None:
        facts.rows, facts.rows_how = rows, "exact"


def cap_future(db: Database, facts: Facts) -> None:
    """Each time column whose newest value is in the future: its newest up to now instead."""
    now = dt.datetime.now(dt.UTC)
    ahead = [
        c
        for c, (_, hi) in facts.ranges.items()
        if family(facts.columns.get(c, "")) in ("timestamp", "date")
        and (when := as_datetime(hi)) is not None
        and when > now
    ]
    if not ahead:
        return
    t = db.table(TableName.parse(facts.bare))
    aggs: dict[str, Any] = {}
    for i, column in enumerate(ahead):
        bound = ibis.today() if family(facts.columns[column]) == "date" else ibis.now()
        aggs[f"hi{i}"] = t[column].max(where=t[column] <= bound)
    row = db.fetch(t.aggregate(**aggs))[0]
    for i, column in enumerate(ahead):
        facts.ranges[column] = (facts.ranges[column][0], to_json(row[f"hi{i}"]))
        facts.future.append(column)


def gather(
    cons: Any,
    tables: list[str],
    profiles: dict[str, dict[str, Any]],
    dbs: dict[str, Database],
    timeout_s: float,
) -> tuple[list[Facts], dict[str, str], list[dict[str, Any]]]:
    """Facts of every table that could be read; the sources lost (name -> error); and an
    error per table that could not be read. A lost source's other tables are not tried.
    `dbs` gets each source's Database, for the checks that follow."""
    facts: list[Facts] = []
    dead: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for table in tables:
        try:
            source = sources.source_of(table, cons)
            con, bare = sources.connection_for(cons, table)
        except (sources.UnknownSource, ValueError) as exc:
            errors.append({"table": table, "error": str(exc)})
            continue
        if source in dead:
            errors.append({"table": table, "source": source, "error": dead[source]})
            continue
        db = dbs.setdefault(source, Database(con, timeout_s))
        try:
            facts.append(_read(db, table, source, bare, profiles.get(table)))
        except Exception as exc:
            errors.append({"table": table, "source": source, "error": failure_text(exc)})
            if lost(exc):
                dead[source] = failure_text(exc)
    return facts, dead, errors


def _read(
    db: Database, table: str, source: str, bare: str, profile: dict[str, Any] | None
) -> Facts:
    if profile is None or "error" in profile:
        facts = from_database(db, table, source, bare)
    else:
        facts = from_profile(table, source, bare, profile)
        refresh_sampled(db, facts, profile)
    cap_future(db, facts)
    return facts
