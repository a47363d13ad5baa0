"""The figures the UI draws from a run's `catalog.json` and `summary.json`: small, kept per run.

A profile is reduced once, when its run is first indexed, to what the prefix and table pages
chart (rows, the newest timestamp, null rates, the columns and their types) and what search
reads (names, comments, descriptions). The whole document is read again only for the table
page's latest profile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_TIME_TYPES = ("timestamp", "date", "datetime", "time")


@dataclass(frozen=True)
class TableFigures:
    rows: float | None
    newest: float | None  # the newest temporal value, seconds since the epoch
    null_rates: dict[str, float]
    columns: tuple[tuple[str, str], ...]  # (name, type)
    words: tuple[tuple[str, str], ...]  # (column or "", text) for search: names, comments

    @property
    def max_null_rate(self) -> float | None:
        return max(self.null_rates.values()) if self.null_rates else None


@dataclass(frozen=True)
class RunFigures:
    tables: dict[str, TableFigures] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # the summary's bad/good/neutral


def catalog_figures(body: bytes) -> dict[str, TableFigures]:
    """Each table's figures from a catalog.json body; {} when it is not a catalog."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    tables = data.get("tables") if isinstance(data, dict) else None
    if not isinstance(tables, dict):
        return {}
    return {str(name): table_figures(p) for name, p in tables.items() if isinstance(p, dict)}


def table_figures(profile: dict[str, Any]) -> TableFigures:
    columns = [c for c in profile.get("columns") or [] if isinstance(c, dict)]
    rates = {
        str(c.get("name")): float(c["null_rate"])
        for c in columns
        if isinstance(c.get("null_rate"), int | float)
    }
    newest = [_epoch(c.get("max")) for c in columns if _is_time(str(c.get("type", "")))]
    known = [n for n in newest if n is not None]
    rows = profile.get("rows")
    return TableFigures(
        rows=float(rows) if isinstance(rows, int | float) else None,
        newest=max(known) if known else None,
        null_rates=rates,
        columns=tuple((str(c.get("name")), str(c.get("type", ""))) for c in columns),
        words=tuple(_words(profile, columns)),
    )


def _words(profile: dict[str, Any], columns: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = [("", str(profile.get(k))) for k in ("comment", "description") if profile.get(k)]
    for column in columns:
        name = str(column.get("name"))
        found.append((name, name))
        found += [(name, str(column[k])) for k in ("comment", "description") if column.get(k)]
    return found


def _is_time(type_name: str) -> bool:
    return type_name.lower().startswith(_TIME_TYPES)


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
