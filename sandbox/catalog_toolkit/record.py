"""What the toolkit computed in this session, kept so the run can store it and render it."""

from __future__ import annotations

from typing import Any

profiles: dict[str, dict[str, Any]] = {}
comparison: dict[str, Any] | None = None


def remember_profile(profile: dict[str, Any]) -> None:
    profiles[profile["table"]] = profile


def remember_comparison(result: dict[str, Any]) -> None:
    global comparison
    comparison = result


# Each agent's result by agent name (kits.py): the last one recorded in this session.
results: dict[str, dict[str, Any]] = {}


def remember(agent: str, result: dict[str, Any]) -> None:
    results[agent] = result


def recalled(agent: str) -> dict[str, Any] | None:
    return results.get(agent)
