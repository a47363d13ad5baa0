"""What each agent is told of its run, as the JSON of its first message (docs/pipeline.md): the
tables and sources when it reads the database, the history's place when it reads history, and
its prompt's limits."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from services.common.source_names import DEFAULT, split
from services.orchestrator.prompts import AgentPrompt

if TYPE_CHECKING:
    from services.orchestrator.workflows import CatalogInput


def agent_context(
    prompt: AgentPrompt, request: CatalogInput, timestamp: str, history_dir: str
) -> str:
    """What the agent is told (docs/pipeline.md: by what it reads), as JSON."""
    context: dict[str, Any] = {}
    if "database" in prompt.reads:
        context["tables"] = request.tables
        if request.source_names != [DEFAULT]:
            context["sources"] = _sources(request)
        if request.chosen:  # the request named none: the run chose them (table_choice.py)
            context["chosen"] = [c.context() for c in request.chosen]
    if "history" in prompt.reads:
        context.update(
            s3_prefix=request.s3_prefix, current_timestamp=timestamp, history_dir=history_dir
        )
    context["limits"] = dict(prompt.limits)
    return json.dumps(context)


def _sources(request: CatalogInput) -> list[dict[str, Any]]:
    """Each source with its tables (as the run names them), in request order."""
    return [
        {"name": name, "tables": [t for t in request.tables if split(t)[0] == name]}
        for name in request.source_names
    ]
