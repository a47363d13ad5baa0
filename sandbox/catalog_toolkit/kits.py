"""Each agent's kit: what the services call for it, by agent name (see the pipeline contract).

`digest` (offline agent), `export` (the run's `{agent}.json`) and `render` (the page figures
that replace REPORT_MARKER). Every callable takes the run's context by keyword and ignores
keywords it does not know, so the engine can pass them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalog_toolkit.relation_kit import relations_digest, relations_export, relations_render


@dataclass(frozen=True)
class AgentKit:
    digest: Callable[..., dict[str, Any]]  # compute (and record); {"headline", "items", ...}
    export: Callable[..., dict[str, Any]]  # the recorded result, or computed now
    render: Callable[[dict[str, Any]], str]  # the HTML fragment, every value escaped


KITS: dict[str, AgentKit] = {
    "relations": AgentKit(
        digest=relations_digest, export=relations_export, render=relations_render
    ),
}
