"""Each agent's kit: what the offline agent, the stored JSON and the page's figures call.

The engine (branch `pipeline`) adds the catalog and summary kits and the generic entry points
(`agent_digest`, `export_data`, `recorded_fragment`); each agent adds its one entry here. Every
callable takes the context's keys as keyword arguments and ignores the ones it does not use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalog_toolkit.anomaly_page import anomalies_digest, anomalies_export, render_anomalies


@dataclass(frozen=True)
class AgentKit:
    digest: Callable[..., dict[str, Any]]  # offline agent: {"headline", "items"}, recorded
    export: Callable[..., dict[str, Any]]  # {agent}.json: {"format", "kind", ...}
    render: Callable[[dict[str, Any]], str]  # the escaped HTML fragment for the report marker


KITS: dict[str, AgentKit] = {
    "anomalies": AgentKit(
        digest=anomalies_digest, export=anomalies_export, render=render_anomalies
    ),
}
