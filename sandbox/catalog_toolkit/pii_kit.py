"""The pii agent's kit for the pipeline (kits.py): its digest, its stored data, its HTML.

Each takes the run's context by keyword (`con`, `tables`, `limits`, ...) and ignores the rest,
so the engine can pass every agent the same arguments.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit import pii_report, record
from catalog_toolkit.pii import FORMAT, find_pii

# The prompt's limits that find_pii reads, by the name of its argument.
_LIMITS = {
    "sample_rows": "sample_rows",
    "min_share": "min_share",
    "min_text_share": "min_text_share",
    "query_timeout_s": "timeout_s",
    "max_tables": "max_tables",
}


def _options(limits: dict[str, Any] | None) -> dict[str, Any]:
    return {arg: (limits or {})[name] for name, arg in _LIMITS.items() if name in (limits or {})}


def pii_digest(
    *,
    con: Any = None,
    tables: list[str] | None = None,
    limits: dict[str, Any] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Find the sensitive columns (recording the result) and say what stands out."""
    return {
        "title": "Personal data",
        **pii_report.digest(find_pii(con, tables, **_options(limits))),
    }


def pii_export(
    *,
    con: Any = None,
    tables: list[str] | None = None,
    limits: dict[str, Any] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """The result the agent recorded, or one computed now if it recorded none (or left out a
    requested table); with no connection, an empty result that says nothing was checked."""
    recalled = record.recalled("pii")
    if recalled is not None and set(tables or []) <= set(recalled["tables"]):
        return recalled
    if con is None:
        empty: dict[str, Any] = {"format": FORMAT, "kind": "pii", "settings": {}, "tables": {}}
        counts = pii_report.counts({}, [])
        headline = "No tables checked: no database connection."
        return empty | {"findings": [], "counts": counts, "headline": headline}
    return find_pii(con, tables, **_options(limits))


def pii_render(data: dict[str, Any]) -> str:
    return pii_report.render(data)
