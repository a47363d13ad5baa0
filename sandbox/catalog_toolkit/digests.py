"""Short digests of a profile and a comparison, for the built-in offline agent; and the
catalog's and summary's kit digests (kits.py: a headline and up to 20 items).

The toolkit records the full result (its figures reach the page through REPORT_MARKER); the
offline agent reads only these digests to write its few sentences.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit.compare import compare_runs
from catalog_toolkit.profile_many import DEFAULT_CONCURRENCY, profile_tables
from catalog_toolkit.run_report import run_agents

MAX_BAD_FINDINGS = 10
MAX_ITEMS = 20  # a kit digest's items, at most (kits.py)


def profile_digest(con: Any, table: str) -> dict[str, Any]:
    """Profile `table` (recording it) and say what stands out: size, warnings, failed passes.
    `con` is one connection or `cons`; a table that cannot be profiled gives its error."""
    return _digest(profile_tables(con, [table], concurrency=1)[0])


def profile_digests(
    con: Any, tables: list[str], concurrency: int = DEFAULT_CONCURRENCY
) -> dict[str, Any]:
    """profile_digest of each of `tables`, profiled `concurrency` at a time (profile_many.py),
    as `{"digests": [...]}` in the order of `tables`."""
    return {"digests": [_digest(p) for p in profile_tables(con, tables, concurrency=concurrency)]}


def _digest(profile: dict[str, Any]) -> dict[str, Any]:
    if "error" in profile:  # not profiled at all (profile_tables)
        return {"table": profile["table"], "error": profile["error"]}
    return {
        "table": profile["table"],
        "rows": profile["rows"],
        "columns": len(profile["columns"]),
        "warnings": [
            f"{flag['column'] or ''}: {flag['message']}"
            for flag in profile["flags"]
            if flag["severity"] == "warning"
        ],
        "errors": [f"{error['pass']}: {error['error']}" for error in profile["errors"]],
    }


def compare_digest(history_dir: str, current_timestamp: str) -> dict[str, Any]:
    """Compare the runs (recording it): how many, findings by severity, the first bad ones."""
    comparison = compare_runs(history_dir, current_timestamp)
    findings = comparison["findings"]
    return {
        "runs": len(comparison["runs"]),
        "counts": {
            severity: sum(f["severity"] == severity for f in findings)
            for severity in ("good", "bad", "neutral")
        },
        "bad": [
            ": ".join(
                x for x in (".".join(filter(None, (f["table"], f["column"]))), f["message"]) if x
            )
            for f in findings
            if f["severity"] == "bad"
        ][:MAX_BAD_FINDINGS],
    }


def catalog_digest(*, con: Any = None, tables: list[str] | None = None, **_: Any) -> dict[str, Any]:
    """The catalog kit's digest: every table profiled (and recorded), what stands out."""
    digests = profile_digests(con, list(tables or []))["digests"]
    rows = sum(int(d.get("rows") or 0) for d in digests)
    profiled = [d for d in digests if "error" not in d]
    items = [f"{d['table']}: could not be profiled: {d['error']}" for d in digests if "error" in d]
    items += [f"{d['table']} {w}" for d in profiled for w in d["warnings"]]
    items += [f"{d['table']}: {e}" for d in profiled for e in d["errors"]]
    return {
        "headline": f"{len(profiled)} tables profiled, {rows:,} rows in all.",
        "items": items[:MAX_ITEMS],
    }


def summary_digest(
    *, history_dir: str = "", current_timestamp: str = "", **_: Any
) -> dict[str, Any]:
    """The summary kit's digest: the comparison (recorded), and what the run's agents found."""
    found = compare_digest(history_dir, current_timestamp)
    counts = found["counts"]
    others = [
        f"{a['agent']}: "
        + (
            ", ".join(f"{n} {label.replace('_', ' ')}" for label, n in a["counts"].items())
            or "no counts"
        )
        for a in run_agents(history_dir, current_timestamp, exclude="summary")
    ]
    return {
        "headline": f"{found['runs']} runs with catalog data under the prefix. Findings: "
        f"{counts['bad']} bad, {counts['good']} good, {counts['neutral']} neutral.",
        "items": (others + found["bad"])[:MAX_ITEMS],
    }
