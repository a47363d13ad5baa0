"""What a run takes out of the sandbox: the data behind each page, and its rendered figures.

The orchestrator stores `export_data(...)` as `{agent}.json` beside the page. For the catalog it
first profiles any requested table the agent left out, so the summary always has numbers to
compare; for the summary it runs the comparison if the agent did not.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit import record
from catalog_toolkit.compare import compare_runs
from catalog_toolkit.pages import render_catalog, render_summary
from catalog_toolkit.profile import profile_table

FORMAT = 1


def export_data(
    agent: str,
    *,
    con: Any = None,
    tables: list[str] | None = None,
    history_dir: str = "",
    current_timestamp: str = "",
) -> dict[str, Any]:
    """The data behind the `agent`'s page, completed where the agent left gaps."""
    if agent == "catalog":
        for table in tables or []:
            if table not in record.profiles and con is not None:
                profile_table(con, table)
        wanted = tables or list(record.profiles)
        data: dict[str, Any] = {
            "format": FORMAT,
            "kind": "catalog",
            "requested": wanted,
            "tables": {t: record.profiles[t] for t in wanted if t in record.profiles},
        }
    else:
        comparison = record.comparison
        if comparison is None or comparison.get("current") != current_timestamp:
            comparison = compare_runs(history_dir, current_timestamp)
        data = {"format": FORMAT, "kind": "summary", **comparison}
    return data


def recorded_fragment() -> str:
    """The rendered figures of whatever this session recorded (comparison over profiles)."""
    if record.comparison is not None:
        return render_summary(record.comparison)
    if record.profiles:
        return render_catalog(list(record.profiles.values()))
    return "<p>No profiles or comparisons were recorded in the sandbox.</p>"
