"""The tables a run catalogs when its request names none: listed in the sandbox.

A source given with an empty `tables` list means "every table of its database's default
schema" (PostgreSQL's `current_schema()`, MySQL's database, DuckDB's `main`), as ibis's
`list_tables()` reads it from the catalog, in one query per source. The run's limit
(`max_tables`, the catalog prompt's) is shared by the listed sources in request order: each
keeps the first tables in name order until the limit is spent; the rest are left out and
counted, so the page can say how many. A name no request could spell (a '.', '/', quote or
backtick in it, see the orchestrator's request checks) is left out too, and counted apart.

    choose_tables(cons, ["app", "billing"], 50)
        -> {"app": {"tables": ["app/orders", ...], "found": 60, "left_out": 10, "unnamed": 0},
            "billing": {"tables": [], "found": 3, "left_out": 3, "unnamed": 0}}
"""

from __future__ import annotations

import re
from typing import Any

from catalog_toolkit import sources
from catalog_toolkit.failures import failure_text

_NAMABLE = re.compile(r"^[^./\"`\x00-\x1f\x7f]{1,63}$")


def choose_tables(con: Any, listed: list[str], limit: int) -> dict[str, dict[str, Any]]:
    """Each of `listed` (source names; "default" for one connection): its tables chosen, as
    the run names them, how many it has, and how many were left out over `limit`. A source
    that cannot be listed has `error` instead (its driver's message, any address in it
    redacted)."""
    left = max(0, limit)
    chosen: dict[str, dict[str, Any]] = {}
    for name in listed:
        try:
            found = sorted(str(t) for t in _connection(con, name).list_tables())
        except Exception as exc:  # its source's failure, told per source
            chosen[name] = {"error": failure_text(exc, 500)}
            continue
        namable = [t for t in found if _NAMABLE.match(t) and t == t.strip()]
        kept = namable[:left]
        left -= len(kept)
        chosen[name] = {
            "tables": [sources.qualify(name, t) for t in kept],
            "found": len(found),
            "left_out": len(namable) - len(kept),
            "unnamed": len(found) - len(namable),
        }
    return chosen


def _connection(con: Any, name: str) -> Any:
    if sources.is_many(con):
        return con[name]
    return con
