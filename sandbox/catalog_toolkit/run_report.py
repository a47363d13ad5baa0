"""What the other agents of this run found, read from their `{agent}.json` in the history.

Every agent's data follows one convention (kits.py): an optional `"headline"` (a sentence)
and `"counts"` (label -> whole number, e.g. {"columns": 3, "high": 1}); without counts, a
`"findings"` list counts as {"findings": len}. The summary shows them with a link to each
agent's page, `{agent}.html`, which sits in the same folder as its own.
"""

from __future__ import annotations

import json
import os
from typing import Any

MAX_COUNTS = 8
MAX_HEADLINE = 300


def run_agents(
    history_dir: str, current_timestamp: str, *, exclude: str = ""
) -> list[dict[str, Any]]:
    """One entry per agent that left data or a page in this run's folder, by name:
    `{"agent", "page" (its file name or ""), "headline", "counts"}`."""
    folder = os.path.join(history_dir, current_timestamp) if history_dir else ""
    if not current_timestamp or not os.path.isdir(folder):
        return []
    names = sorted(os.listdir(folder))
    agents = sorted({n.rsplit(".", 1)[0] for n in names if n.endswith((".json", ".html"))})
    return [_entry(folder, agent, f"{agent}.html" in names) for agent in agents if agent != exclude]


def _entry(folder: str, agent: str, has_page: bool) -> dict[str, Any]:
    data = _load(os.path.join(folder, f"{agent}.json"))
    return {
        "agent": agent,
        "page": f"{agent}.html" if has_page else "",
        "headline": str(data.get("headline") or "")[:MAX_HEADLINE],
        "counts": counts_of(data),
    }


def counts_of(data: dict[str, Any]) -> dict[str, int]:
    """The counts an agent's data declares, or the length of its findings."""
    counts = data.get("counts")
    if isinstance(counts, dict):
        whole = {
            str(k): int(v)
            for k, v in counts.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return dict(list(whole.items())[:MAX_COUNTS])
    findings = data.get("findings")
    return {"findings": len(findings)} if isinstance(findings, list) else {}


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
