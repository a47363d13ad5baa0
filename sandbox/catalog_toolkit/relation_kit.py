"""The relations agent's kit (kits.py): its digest for the offline agent, its stored data and
its page fragment, each taking the run's context by keyword."""

from __future__ import annotations

from typing import Any

from catalog_toolkit import record
from catalog_toolkit.relation_report import coverage_sentence, render_relations
from catalog_toolkit.relations import find_relations

MAX_ITEMS = 20
# Prompt limits (prompts/relations.yaml) -> find_relations' keywords.
_LIMITS = {
    "max_pairs": "max_pairs",
    "sample_values": "sample_values",
    "min_coverage": "min_coverage",
    "min_confidence": "min_confidence",
    "query_timeout_s": "timeout_s",
}


def _run(
    con: Any,
    tables: list[str] | None,
    history_dir: str,
    current_timestamp: str,
    limits: dict[str, float | int] | None,
) -> dict[str, Any]:
    options: dict[str, Any] = {
        keyword: (limits or {})[name] for name, keyword in _LIMITS.items() if name in (limits or {})
    }
    for name in ("max_pairs", "sample_values"):
        if name in options:
            options[name] = int(options[name])
    return find_relations(
        con, tables, history_dir=history_dir, current_timestamp=current_timestamp, **options
    )


def relations_export(
    *,
    con: Any = None,
    tables: list[str] | None = None,
    history_dir: str = "",
    current_timestamp: str = "",
    limits: dict[str, float | int] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """What the run stores as relations.json: the recorded result, or one computed now."""
    recalled = record.recalled("relations")
    if recalled is not None:
        return recalled
    if con is None:
        return {
            "format": 1,
            "kind": "relations",
            "declared": [],
            "inferred": [],
            "candidate_keys": [],
            "findings": [],
            "counts": {},
            "headline": "No relations checked: no database connection.",
            "errors": [{"error": "no database connection, so no relations were checked"}],
        }
    return _run(con, tables, history_dir, current_timestamp, limits)


def relations_digest(
    *,
    con: Any = None,
    tables: list[str] | None = None,
    history_dir: str = "",
    current_timestamp: str = "",
    limits: dict[str, float | int] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Find the relations (recording them) and say what was found, in short sentences."""
    result = _run(con, tables, history_dir, current_timestamp, limits)
    counts = result["counts"]
    headline = (
        f"{counts['inferred']} undeclared relations inferred and {counts['declared']} declared "
        f"among {counts['tables']} tables; {counts['candidate_keys']} undeclared candidate keys."
    )
    items = [
        f"{i['table']}.{i['column']} probably refers to {i['references']['table']}."
        f"{i['references']['column']}: {coverage_sentence(i)} (confidence {i['confidence']:.2f})."
        for i in result["inferred"]
    ]
    items += [
        f"{k['table']} ({', '.join(k['columns'])}) is unique and never null but not a declared key."
        for k in result["candidate_keys"]
    ]
    items += [f"Failed: {e.get('table') or e.get('pair')}: {e['error']}" for e in result["errors"]]
    return {"headline": headline, "items": items[:MAX_ITEMS], "counts": counts}


def relations_render(data: dict[str, Any]) -> str:
    return render_relations(data)
