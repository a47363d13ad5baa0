"""Findings across the sources of one run, which no single-database tool gives.

    x = find_cross_source(cons, ["app/orders", "app/customers", "warehouse/orders",
                                 "billing/customers"])

1. Facts per table (cross_facts.py): from the recorded profiles (`profiles`, by run table
   name; record.profiles by default), else one aggregate per table, in its own database.
2. The same table in two sources (cross_match.py): by name or by column overlap, compared on
   row counts, schemas, key ranges and the newest timestamps. No query.
3. Columns that look like keys into another source's table (cross_inclusion.py): an inclusion
   check on a bounded distinct sample, at most `max_checks`, each labelled as sampled.
Everything is computed inside the databases; only aggregates and the sampled key values
(never shown) reach the sandbox. A source that cannot be read, or is lost on the way, is
reported (`errors`, and a finding) and its checks say so; nothing raises for it.
The result is recorded (record.remember("cross_source", ...)); the catalog's page and its
catalog.json show it when the run has two sources or more (`cross_source_export`,
`cross_source_render`).
"""

from __future__ import annotations

import time
from typing import Any

from catalog_toolkit import record, sources
from catalog_toolkit.cross_facts import gather
from catalog_toolkit.cross_inclusion import Checker, candidates, finding
from catalog_toolkit.cross_match import compare, match
from catalog_toolkit.cross_source_page import render_cross_source
from catalog_toolkit.database import Database

FORMAT = 1
KIND = "cross_source"
DEFAULT_SAMPLE_LIMIT = 10_000
DEFAULT_MAX_PAIRS = 50
DEFAULT_MAX_CHECKS = 20
DEFAULT_TIMEOUT_S = 60.0
SEVERITIES = ("bad", "good", "neutral")
MAX_ITEMS = 20  # a kit digest's items, at most (kits.py)


def find_cross_source(
    cons: Any,
    tables: list[str] | None = None,
    profiles: dict[str, dict[str, Any]] | None = None,
    *,
    sample_limit: int = DEFAULT_SAMPLE_LIMIT,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    max_checks: int = DEFAULT_MAX_CHECKS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Matched tables across sources and their differences, and sampled key checks across
    sources, among `tables` (run table names; every recorded profile's table when empty)."""
    started = time.perf_counter()
    profiles = record.profiles if profiles is None else profiles
    tables = list(tables or profiles)
    dbs: dict[str, Database] = {}
    facts, dead, errors = gather(cons, tables, profiles, dbs, timeout_s)
    pairs, pairs_over = match(facts, max_pairs)
    compared = [compare(left, right, how) for left, right, how in pairs]
    found = candidates(facts)
    checker = Checker(dbs, dead, sample_limit)
    checks = [checker.check(c) for c in found[:max_checks]]
    result: dict[str, Any] = {
        "format": FORMAT,
        "kind": KIND,
        "sources": list(dict.fromkeys(sources.source_of(t, cons) for t in tables)),
        "pairs": compared,
        "inclusions": checks,
        "errors": errors,
        "lost_sources": dict(dead),
        "limits": {"sample_limit": sample_limit, "max_pairs": max_pairs, "max_checks": max_checks},
    }
    result["findings"] = _findings(result)
    result["counts"] = _counts(result, pairs_over, len(found) - len(checks))
    result["headline"] = headline(result)
    result["seconds"] = round(time.perf_counter() - started, 3)
    record.remember(KIND, result)
    return result


def _findings(result: dict[str, Any]) -> list[dict[str, Any]]:
    found = [
        {
            "severity": "bad",
            "kind": "source_lost",
            "tables": [e["table"] for e in result["errors"] if e.get("source") == name],
            "text": f"the source `{name}` could not be read ({error}): its cross-source "
            "checks did not run",
        }
        for name, error in result["lost_sources"].items()
    ]
    found += [f for pair in result["pairs"] for f in pair["findings"]]
    found += [finding(item) for item in result["inclusions"]]
    return found


def _counts(result: dict[str, Any], pairs_over: int, checks_over: int) -> dict[str, int]:
    findings = result["findings"]
    counts = {
        "pairs": len(result["pairs"]),
        "checks": len(result["inclusions"]),
        **{s: sum(f["severity"] == s for f in findings) for s in SEVERITIES},
        "failed": len(result["errors"]) + sum("error" in i for i in result["inclusions"]),
    }
    if pairs_over or checks_over:
        counts["over_cap"] = pairs_over + checks_over
    return counts


def headline(result: dict[str, Any]) -> str:
    """`3 sources: 1 table in two of them, 2 keys checked across sources; 3 bad, 2 good.`"""
    counts = result["counts"]
    pairs, checks = counts["pairs"], counts["checks"]
    text = (
        f"{len(result['sources'])} sources: {pairs} {'table' if pairs == 1 else 'tables'} found "
        f"in two of them, {checks} {'key' if checks == 1 else 'keys'} checked across sources; "
        + ", ".join(f"{counts[s]} {s}" for s in SEVERITIES)
    )
    if result["lost_sources"]:
        text += "; lost: " + ", ".join(f"`{name}`" for name in result["lost_sources"])
    return text + "."


def many_sources(con: Any, tables: list[str] | None) -> bool:
    """Whether `tables` span two sources or more (so there is something to compare)."""
    if not sources.is_many(con):
        return False
    return len({sources.source_of(t, con) for t in tables or []}) >= 2


def cross_source_digest(
    *, con: Any = None, tables: list[str] | None = None, **_: Any
) -> dict[str, Any]:
    """The offline agent's cell: the findings computed (and recorded), as a headline and
    items, bad ones first. `con` is the mapping of every source (`cons`)."""
    result = find_cross_source(con, tables)
    order = {"bad": 0, "neutral": 1, "good": 2}
    ranked = sorted(result["findings"], key=lambda f: order.get(f["severity"], 3))
    return {
        "headline": result["headline"],
        "items": [f"{f['severity']}: {f['text']}" for f in ranked][:MAX_ITEMS],
        "counts": result["counts"],
    }


def cross_source_export(con: Any = None, tables: list[str] | None = None) -> dict[str, Any] | None:
    """What catalog.json keeps as `cross_source`: the recorded result, else one computed now;
    None when `tables` do not span two sources (or nothing was recorded and `con` is None)."""
    if con is not None and not many_sources(con, tables):
        return None
    recalled = record.recalled(KIND)
    if recalled is not None or con is None:
        return recalled
    return find_cross_source(con, tables)


def cross_source_render(data: dict[str, Any] | None) -> str:
    """The "Across sources" fragment of the catalog page ("" when there is nothing)."""
    return render_cross_source(data) if data else ""
