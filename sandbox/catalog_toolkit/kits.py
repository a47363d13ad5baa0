"""Each agent's kit: how the services drive an agent's toolkit in the sandbox, by its name.

    KITS["pii"].digest(**context)   -> {"headline": str, "items": [str, ...], "title": str}
                                       (offline agent; the title is optional)
    KITS["pii"].export(**context)   -> the data stored as pii.json
    KITS["pii"].render(data)        -> the HTML fragment put where the page says REPORT_MARKER

The services call three entry points through cells (services/common/cells.py), each with the
agent's name and its whole context as keywords (`con` when the agent reads the database,
`tables`, `history_dir`, `current_timestamp`, `s3_prefix`, `limits`); a kit takes the ones it
uses and ignores the rest (`**_`):

    agent_digest(agent, **context)   the offline agent's one cell for an agent
    export_data(agent, **context)    `{agent}.json`, stored beside the page
    recorded_fragment(agent, limits) the figures for REPORT_MARKER: what the agent recorded
                                     (record.recalled), else the export with no context

Adding an agent: its toolkit functions in a module of their own, which record their result
with `record.remember(agent, result)`, and one entry in KITS (docs/adding-an-agent.md).

The data convention (`{agent}.json`), which the summary reads to say what each agent found:

    {"format": 1, "kind": "<agent>",
     "headline": "<one sentence, plain text>",            optional
     "counts": {"<label>": <whole number>, ...},          optional: what the summary shows,
                                                          in this order, e.g. {"columns": 3,
                                                          "high": 1}; labels are short plural
                                                          nouns or severities, at most 8
     "findings": [...],                                   optional: without counts, the
                                                          summary shows {"findings": len}
     ...anything else the agent's page or later runs need}

The summary links each agent's page as `{agent}.html` (the pages of a run share one folder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalog_toolkit import record
from catalog_toolkit.anomaly_page import anomalies_digest, anomalies_export, render_anomalies
from catalog_toolkit.digests import catalog_digest, summary_digest
from catalog_toolkit.pii_kit import pii_digest, pii_export, pii_render
from catalog_toolkit.relation_kit import relations_digest, relations_export, relations_render
from catalog_toolkit.session import (
    catalog_export,
    catalog_render,
    old_fragment,
    summary_export,
    summary_render,
)


@dataclass(frozen=True)
class AgentKit:
    digest: Callable[..., dict[str, Any]]  # computes (and records); headline and items
    export: Callable[..., dict[str, Any]]  # the recorded result, computed now if none
    render: Callable[[dict[str, Any]], str]  # HTML, every value escaped


KITS: dict[str, AgentKit] = {
    "catalog": AgentKit(catalog_digest, catalog_export, catalog_render),
    "summary": AgentKit(summary_digest, summary_export, summary_render),
    "anomalies": AgentKit(anomalies_digest, anomalies_export, render_anomalies),
    "pii": AgentKit(pii_digest, pii_export, pii_render),
    "relations": AgentKit(relations_digest, relations_export, relations_render),
}


class NoKit(LookupError):
    """The agent has no kit: it works with the model only (or the kit is not in this image)."""


def kit(agent: str) -> AgentKit:
    try:
        return KITS[agent]
    except KeyError:
        known = ", ".join(sorted(KITS))
        raise NoKit(f"the toolkit has no kit for the agent {agent!r} (kits: {known})") from None


def agent_digest(agent: str, **context: Any) -> dict[str, Any]:
    """The offline agent's digest of `agent`'s work: computed and recorded in the sandbox."""
    return kit(agent).digest(**context)


def export_data(agent: str, **context: Any) -> dict[str, Any]:
    """The data behind `agent`'s page, completed where the agent left gaps. An agent without
    a kit stores what it recorded, if anything, under the convention's keys."""
    if agent not in KITS:
        return {"format": 1, "kind": agent, **(record.recalled(agent) or {})}
    return KITS[agent].export(**context)


def recorded_fragment(agent: str = "", limits: dict[str, Any] | None = None) -> str:
    """The rendered figures of what `agent` recorded in this session; `limits` are the
    agent's prompt limits (the catalog's `compact_over` shapes its page), for this render."""
    record.page_limits.update(limits or {})
    try:
        if not agent:  # a runner from before pipelines
            return old_fragment()
        if agent not in KITS:
            return "<p>This agent has no toolkit figures to add.</p>"
        data = record.recalled(agent) or KITS[agent].export()
        return KITS[agent].render(data)
    finally:
        record.page_limits.clear()
