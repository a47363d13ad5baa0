"""The catalog's and the summary's kits: the data stored beside each page, and its figures.

The orchestrator stores the kit's export as `{agent}.json` (kits.export_data). For the catalog
it first profiles any requested table the agent left out, so later agents always have numbers
to compare; for the summary it runs the comparison if the agent did not, and adds what the
other agents of this run found (run_report.py). Both follow the convention of kits.py:
`headline` and `counts` for the summary page of the run.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit import record, sources
from catalog_toolkit.catalog_sources import profile_missing, sources_block
from catalog_toolkit.compact_page import compact_over
from catalog_toolkit.compare import compare_runs
from catalog_toolkit.cross_source import cross_source_export, cross_source_render
from catalog_toolkit.pages import (
    render_catalog,
    render_failed,
    render_run_agents,
    render_source,
    render_summary,
)
from catalog_toolkit.run_report import run_agents

FORMAT = 2  # the catalog's: 2 added `sources` and `counts.failed`; format 1 reads as one source
SUMMARY_FORMAT = 1
SEVERITIES = ("bad", "good", "neutral")


def catalog_export(*, con: Any = None, tables: list[str] | None = None, **_: Any) -> dict[str, Any]:
    """Every requested table's profile (profiling the ones the agent left out), by source;
    a table that could not be profiled (its source lost, say) is listed with why."""
    wanted = [sources.run_name(con, t) for t in tables or []] if con is not None else tables
    wanted = wanted or [*record.profiles, *record.failures]  # a page rendered from the record
    failed = profile_missing(con, [t for t in wanted if t not in record.profiles])
    profiled = {t: record.profiles[t] for t in wanted if t in record.profiles}
    rows = sum(int(p.get("rows") or 0) for p in profiled.values())
    warnings = sum(
        f.get("severity") == "warning" for p in profiled.values() for f in p.get("flags", [])
    )
    by_source = sources_block(con, wanted, profiled, failed)
    headline = f"{len(profiled)} of {len(wanted)} tables profiled, {rows:,} rows in all"
    if len(by_source) > 1:
        headline += f", from {len(by_source)} sources"
    data: dict[str, Any] = {
        "format": FORMAT,
        "kind": "catalog",
        "headline": headline + ".",
        "counts": {"tables": len(profiled), "warnings": warnings, "failed": len(failed)},
        "requested": wanted,
        "tables": profiled,
        "sources": by_source,
    }
    cross = cross_source_export(con, wanted)  # two sources or more (cross_source.py)
    if cross:
        data["cross_source"] = cross
    return data


def catalog_render(data: dict[str, Any]) -> str:
    """One section per source when there are several; else the figures, as in format 1."""
    profiles: dict[str, Any] = data.get("tables", {})
    by_source: dict[str, dict[str, Any]] = data.get("sources") or {}
    compact = len(profiles) > compact_over()  # the whole page's count decides
    if len(by_source) > 1:
        return "".join(
            render_source(
                name, info, [profiles[t] for t in info.get("tables", []) if t in profiles], compact
            )
            for name, info in by_source.items()
        ) + cross_source_render(data.get("cross_source"))
    failed = render_failed(
        {t: e for info in by_source.values() for t, e in info.get("failed", {}).items()}
    )
    if not profiles:
        return failed + "<p>No profiles were recorded in the sandbox.</p>"
    return failed + render_catalog(list(profiles.values()), compact)


def summary_export(
    *, history_dir: str = "", current_timestamp: str = "", **_: Any
) -> dict[str, Any]:
    """The comparison of this run with earlier ones, and this run's other agents."""
    comparison = record.comparison
    if comparison is None or (current_timestamp and comparison.get("current") != current_timestamp):
        comparison = compare_runs(history_dir, current_timestamp)
    history_dir = history_dir or record.comparison_dir
    findings = comparison.get("findings", [])
    counts = {s: sum(f.get("severity") == s for f in findings) for s in SEVERITIES}
    return {
        "format": SUMMARY_FORMAT,
        **comparison,
        "kind": "summary",
        "headline": f"{len(comparison.get('runs', []))} runs compared: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + ".",
        "counts": counts,
        "agents": run_agents(
            history_dir, current_timestamp or str(comparison.get("current", "")), exclude="summary"
        ),
    }


def summary_render(data: dict[str, Any]) -> str:
    return render_run_agents(data.get("agents", [])) + render_summary(data)


def old_fragment() -> str:
    """For a runner from before pipelines, which names no agent: whatever was recorded."""
    if record.comparison is not None:
        return render_summary(record.comparison)
    if record.profiles:
        return render_catalog(list(record.profiles.values()))
    return "<p>No profiles or comparisons were recorded in the sandbox.</p>"
