"""The catalog's and the summary's kits: the data stored beside each page, and its figures.

The orchestrator stores the kit's export as `{agent}.json` (kits.export_data). For the catalog
it first profiles any requested table the agent left out, so later agents always have numbers
to compare; for the summary it runs the comparison if the agent did not, and adds what the
other agents of this run found (run_report.py). Both follow the convention of kits.py:
`headline` and `counts` for the summary page of the run.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit import record
from catalog_toolkit.compare import compare_runs
from catalog_toolkit.cross_source import cross_source_export, cross_source_render
from catalog_toolkit.pages import render_catalog, render_run_agents, render_summary
from catalog_toolkit.profile_many import profile_tables
from catalog_toolkit.run_report import run_agents

FORMAT = 1
SEVERITIES = ("bad", "good", "neutral")


def catalog_export(*, con: Any = None, tables: list[str] | None = None, **_: Any) -> dict[str, Any]:
    """Every requested table's profile (profiling the ones the agent left out)."""
    missing = [table for table in tables or [] if table not in record.profiles]
    if missing and con is not None:
        profile_tables(con, missing)  # a few at a time; each recorded
    wanted = tables or list(record.profiles)
    profiled = {t: record.profiles[t] for t in wanted if t in record.profiles}
    rows = sum(int(p.get("rows") or 0) for p in profiled.values())
    warnings = sum(
        f.get("severity") == "warning" for p in profiled.values() for f in p.get("flags", [])
    )
    data: dict[str, Any] = {
        "format": FORMAT,
        "kind": "catalog",
        "headline": f"{len(profiled)} of {len(wanted)} tables profiled, {rows:,} rows in all.",
        "counts": {"tables": len(profiled), "warnings": warnings},
        "requested": wanted,
        "tables": profiled,
    }
    cross = cross_source_export(con, wanted)  # two sources or more (cross_source.py)
    if cross:
        data["cross_source"] = cross
    return data


def catalog_render(data: dict[str, Any]) -> str:
    profiles = list(data.get("tables", {}).values())
    if not profiles:
        return "<p>No profiles were recorded in the sandbox.</p>"
    return render_catalog(profiles) + cross_source_render(data.get("cross_source"))


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
        "format": FORMAT,
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
