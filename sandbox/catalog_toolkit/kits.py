"""Each agent's kit: the three things the pipeline needs from the toolkit, by agent name.

- `digest(**context)`: for the offline agent, computes (and records) and returns
  `{"headline": str, "items": [str, ...]}` (short facts, at most 20);
- `export(**context)`: the data stored as `{agent}.json`, `{"format": N, "kind": agent, ...}`:
  what the agent recorded, computed now if it recorded none;
- `render(data)`: the escaped HTML fragment for the report marker, from export()'s dict.
Each callable takes the context's keys by keyword (`con`, `tables`, `history_dir`,
`current_timestamp`, `s3_prefix`, `limits`), all optional, and ignores the ones it does not use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalog_toolkit.anomaly_page import anomalies_digest, anomalies_export, render_anomalies
from catalog_toolkit.pii_kit import pii_digest, pii_export, pii_render
from catalog_toolkit.relation_kit import relations_digest, relations_export, relations_render


@dataclass(frozen=True)
class AgentKit:
    digest: Callable[..., dict[str, Any]]  # offline agent: {"headline", "items"}, recorded
    export: Callable[..., dict[str, Any]]  # {agent}.json: {"format", "kind", ...}
    render: Callable[[dict[str, Any]], str]  # the escaped HTML fragment for the report marker


KITS: dict[str, AgentKit] = {
    "anomalies": AgentKit(
        digest=anomalies_digest, export=anomalies_export, render=render_anomalies
    ),
    "pii": AgentKit(digest=pii_digest, export=pii_export, render=pii_render),
    "relations": AgentKit(
        digest=relations_digest, export=relations_export, render=relations_render
    ),
}
