"""Findings about a table's shape between two runs: columns, types, nullability, keys.

Readers' queries break on these changes, so a removal or a narrowing is bad, an addition is
neutral, and a new guarantee (NOT NULL, a foreign key) is good.
"""

from __future__ import annotations

import json
import re
from typing import Any

from catalog_toolkit.findings import add

_TIMESTAMP = re.compile(r"timestamp\((?:'([^']*)')?[^)]*\)")
_STRING = re.compile(r"string\(\d+\)")
_WIDENING_ORDER = ["int8", "int16", "int32", "int64", "float32", "float64"]
# (severity, kind, message, reason) for a foreign key that appeared, then one that went away.
_FK_CHANGES = (
    ("good", "added", "new foreign key to {}", "the database now checks this relation"),
    ("bad", "removed", "foreign key to {} removed", "orphan rows are no longer prevented"),
)


def normalize_type(text: str) -> str:
    """Types that mean the same for a reader count as equal: ibis maps varchar, text and char to
    `string` (with a length for varchar(n), dropped here), and timestamp precision and the `!`
    (not null) mark are dropped too."""
    text = _STRING.sub("string", text.lstrip("!"))
    return _TIMESTAMP.sub(lambda m: "timestamp with time zone" if m[1] else "timestamp", text)


def widens(before: str, after: str) -> bool:
    if before in _WIDENING_ORDER and after in _WIDENING_ORDER:
        return _WIDENING_ORDER.index(after) > _WIDENING_ORDER.index(before)
    return before.startswith("decimal") and after.startswith("decimal")


def compare_schema(
    result: dict[str, Any], name: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    """Add the findings about columns, types, nullability and keys of table `name`."""
    now_columns = {c["name"]: c for c in now.get("columns", [])}
    then_columns = {c["name"]: c for c in then.get("columns", [])}
    for column in [c for c in now_columns if c not in then_columns]:
        add(
            result,
            "neutral",
            name,
            column,
            "column_added",
            "new column",
            f"type {now_columns[column]['type']}; existing queries are unaffected",
        )
    for column in [c for c in then_columns if c not in now_columns]:
        add(
            result,
            "bad",
            name,
            column,
            "column_removed",
            "column removed",
            "queries that select it will fail",
        )
    for column in [c for c in now_columns if c in then_columns]:
        _compare_column(result, name, column, then_columns[column], now_columns[column])
    if (then.get("primary_key") or []) != (now.get("primary_key") or []):
        add(
            result,
            "bad" if not now.get("primary_key") else "neutral",
            name,
            None,
            "key_changed",
            f"primary key changed from {then.get('primary_key') or 'none'} "
            f"to {now.get('primary_key') or 'none'}",
            "joins and deduplication that rely on the key may change meaning",
        )
    _compare_foreign_keys(result, name, now, then)


def _compare_column(
    result: dict[str, Any], name: str, column: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    old_type, new_type = normalize_type(before["type"]), normalize_type(after["type"])
    if old_type != new_type:
        widened = widens(old_type, new_type)
        add(
            result,
            "neutral" if widened else "bad",
            name,
            column,
            "type_changed",
            f"type changed from {old_type} to {new_type}",
            "a wider type keeps every value"
            if widened
            else "readers that expect the old type may break or lose precision",
        )
    if before.get("nullable") != after.get("nullable"):
        now_nullable = after.get("nullable")
        add(
            result,
            "neutral" if now_nullable else "good",
            name,
            column,
            "nullability_changed",
            "now accepts nulls" if now_nullable else "now declared NOT NULL",
            "readers must handle missing values"
            if now_nullable
            else "the database now guarantees a value",
        )


def _compare_foreign_keys(
    result: dict[str, Any], name: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    then_fks = {json.dumps(f, sort_keys=True) for f in then.get("foreign_keys", [])}
    now_fks = {json.dumps(f, sort_keys=True) for f in now.get("foreign_keys", [])}
    changes = (now_fks - then_fks, then_fks - now_fks)
    for texts, (severity, kind, message, reason) in zip(changes, _FK_CHANGES, strict=True):
        for text in sorted(texts):
            fk = json.loads(text)
            add(
                result,
                severity,
                name,
                ", ".join(fk["columns"]),
                f"foreign_key_{kind}",
                message.format(fk["references"]["table"]),
                reason,
            )
