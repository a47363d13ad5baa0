"""What the toolkit computed in this session, kept so the run can store it and render it.

The catalog's profiles and the summary's comparison keep their own slots (as before
pipelines); every other agent's toolkit function calls `remember(agent, result)`, and the
kit's export and render find it with `recalled(agent)`.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit.masking import mask_profile

profiles: dict[str, dict[str, Any]] = {}
comparison: dict[str, Any] | None = None
comparison_dir = ""  # the history the comparison read, where this run's other pages are
results: dict[str, dict[str, Any]] = {}
# Several sources: the tables that could not be profiled at all (run name -> why), and what
# each source's server is (name -> backend, version), for a page rendered without a connection.
failures: dict[str, str] = {}
servers: dict[str, dict[str, str]] = {}
# The agent's prompt limits the runner passed when it asked for the page's figures (e.g.
# `compact_over`, compact_page.py); empty: the toolkit's defaults.
page_limits: dict[str, Any] = {}


def remember_profile(profile: dict[str, Any]) -> None:
    """Keep `profile`, its personal data masked in place first (masking.py): profile_table
    records before it returns, so what it returns (to a model too) is masked as well."""
    profiles[profile["table"]] = mask_profile(profile)
    failures.pop(profile["table"], None)


def remember_failure(table: str, error: str) -> None:
    """Keep why `table` (a run name) could not be profiled, unless a profile of it was kept."""
    if table not in profiles:
        failures[table] = error


def remember_comparison(result: dict[str, Any], history_dir: str = "") -> None:
    global comparison, comparison_dir
    comparison, comparison_dir = result, history_dir


def remember(agent: str, result: dict[str, Any]) -> None:
    """Keep `agent`'s result (the last one wins) for its export and its report fragment."""
    results[agent] = result


def recalled(agent: str) -> dict[str, Any] | None:
    """What `agent` recorded in this session, or None."""
    return results.get(agent)


def reset() -> None:
    """Forget everything recorded (a fresh session's record)."""
    global comparison, comparison_dir
    for kept in (profiles, results, failures, servers, page_limits):
        kept.clear()
    comparison, comparison_dir = None, ""
