"""What the relations agent knows of each table before any inclusion check: column kinds,
counts, ranges and declared keys.

They come from this run's `catalog.json` when the catalog agent wrote one (no query at all), or
else from the database: the catalog's declarations (metadata.py) and one aggregate per table
(the row count, and per key-like column its non-null and exact distinct counts and range).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from catalog_toolkit.database import Database, TableName
from catalog_toolkit.metadata import read_declared
from catalog_toolkit.values import to_json

_INTEGER_TYPES = ("int", "uint")
NEARLY_UNIQUE = 0.99  # distinct / non-null at which an undeclared column may be referenced


@dataclass
class ColumnFacts:
    table: str
    name: str
    kind: str  # integer, text, uuid, or other (never a key: floats, times, JSON ...)
    non_null: int | None = None
    distinct: int | None = None
    distinct_exact: bool = False
    low: Any = None
    high: Any = None
    declared_key: bool = False  # a declared single-column primary key or unique constraint

    @property
    def uniqueness(self) -> float | None:
        """Distinct values per non-null value (1.0 for a declared key)."""
        if self.declared_key:
            return 1.0
        if self.distinct is None or not self.non_null:
            return None
        return min(self.distinct / self.non_null, 1.0)

    def key_like(self) -> bool:
        """Unique or nearly so, so another table's column may refer to it."""
        unique = self.uniqueness
        return self.kind != "other" and unique is not None and unique >= NEARLY_UNIQUE


@dataclass
class TableFacts:
    name: str
    rows: int | None
    columns: list[ColumnFacts]
    primary_key: list[str] = field(default_factory=list)
    unique: list[list[str]] = field(default_factory=list)
    foreign_keys: list[dict[str, Any]] = field(default_factory=list)
    source: str = "catalog.json"  # or "queries"


def kind_of(type_text: str) -> str:
    """The key kind of an ibis type (`int32`, `!string`, `uuid`, `decimal(10, 2)` ...)."""
    text = type_text.lstrip("!").lower()
    if text.startswith(_INTEGER_TYPES):
        return "integer"
    if text.startswith("string"):
        return "text"
    if text.startswith("uuid"):
        return "uuid"
    return "other"


def load_catalog(history_dir: str, current_timestamp: str) -> dict[str, dict[str, Any]]:
    """This run's catalog profiles by table, or {} when the catalog agent left none."""
    if not history_dir or not current_timestamp:
        return {}
    path = os.path.join(history_dir, current_timestamp, "catalog.json")
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return {}
    tables = data.get("tables") if isinstance(data, dict) else None
    return tables if isinstance(tables, dict) else {}


def from_profile(profile: dict[str, Any]) -> TableFacts:
    """Facts from a catalog profile (profile.py's shape), without a query."""
    keys = _single_keys(profile)
    scope = profile.get("scope") or {}
    read = scope.get("rows_read") if scope.get("kind") == "sample" else profile.get("rows")
    columns = []
    for column in profile.get("columns", []):
        how = str((column.get("how") or {}).get("distinct", ""))
        nulls = column.get("nulls")
        columns.append(
            ColumnFacts(
                table=profile["table"],
                name=column["name"],
                kind=kind_of(str(column.get("type", ""))),
                non_null=read - nulls if read is not None and nulls is not None else None,
                distinct=column.get("distinct"),
                distinct_exact=how.startswith("exact") and "sample" not in how,
                # A masked range (masking.py) keeps no order: unknown, so no evidence.
                low=None if column.get("masked") else column.get("min"),
                high=None if column.get("masked") else column.get("max"),
                declared_key=column["name"] in keys,
            )
        )
    return TableFacts(
        name=profile["table"],
        rows=profile.get("rows"),
        columns=columns,
        primary_key=list(profile.get("primary_key") or []),
        unique=[list(u) for u in profile.get("unique") or []],
        foreign_keys=list(profile.get("foreign_keys") or []),
    )


def _single_keys(declared: dict[str, Any]) -> set[str]:
    keys = [declared.get("primary_key") or [], *(declared.get("unique") or [])]
    return {k[0] for k in keys if len(k) == 1}


def from_database(db: Database, table: str) -> TableFacts:
    """Facts read from the database: its declarations, then one aggregate (counts, ranges)."""
    name = TableName.parse(table)
    declared = read_declared(db, name).to_json()
    keys = _single_keys(declared)
    t = db.table(name)
    columns = [
        ColumnFacts(str(name), column, kind_of(str(dtype)), declared_key=column in keys)
        for column, dtype in t.schema().items()
    ]
    aggs: dict[str, Any] = {"rows": t.count()}
    for i, column in enumerate(columns):
        if column.kind == "other":
            continue
        c = t[column.name]
        aggs.update({f"n{i}": c.count(), f"d{i}": c.nunique(), f"lo{i}": c.min()})
        aggs[f"hi{i}"] = c.max()
    row = db.fetch(t.aggregate(**aggs))[0]
    for i, column in enumerate(columns):
        if f"n{i}" in row:
            column.non_null, column.distinct = int(row[f"n{i}"]), int(row[f"d{i}"])
            column.distinct_exact = True
            column.low, column.high = to_json(row[f"lo{i}"]), to_json(row[f"hi{i}"])
    return TableFacts(
        name=str(name),
        rows=int(row["rows"]),
        columns=columns,
        primary_key=list(declared["primary_key"]),
        unique=[list(u) for u in declared["unique"]],
        foreign_keys=list(declared["foreign_keys"]),
        source="queries",
    )


def candidate_keys(facts: TableFacts) -> list[dict[str, Any]]:
    """Single columns that are unique and never null over the whole table (by exact counts),
    yet not declared a key: what a primary key or unique constraint could be built on."""
    found = []
    for column in facts.columns:
        if column.declared_key or column.kind == "other" or not column.distinct_exact:
            continue
        rows = facts.rows or 0
        if rows > 1 and column.non_null == rows and column.distinct == rows:
            found.append({"table": facts.name, "columns": [column.name], "rows": rows})
    return found
