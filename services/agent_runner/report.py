"""Fills the toolkit's marker in a submitted page with the figures recorded in the sandbox.

An agent writes the prose and puts `REPORT_MARKER` where the tables of figures go; the sandbox's
toolkit renders them from what it computed, so a model never spends tokens copying numbers (and
cannot misquote them). The fragment is sanitized with the rest of the page.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from services.agent_runner.errors import InvalidHtml, SandboxGone
from services.agent_runner.html import escape_text, sanitize
from services.agent_runner.sandbox_tool import SandboxCodeRunner
from services.common.cells import call_cell
from services.common.logging import log_fields

# Must equal catalog_toolkit.pages.REPORT_MARKER (a test checks): the runner does not import
# the toolkit, which needs ibis.
REPORT_MARKER = "[[catalog-toolkit-report]]"
FRAGMENT_TIMEOUT_S = 120.0
_log = logging.getLogger(__name__)


def fragment_cell(agent_name: str, limits: dict[str, Any] | None = None) -> str:
    """The cell rendering what `agent_name` recorded, through its kit in the toolkit, with
    the agent's prompt limits (the catalog's `compact_over` shapes its page)."""
    if not limits:
        return call_cell("recorded_fragment", agent=agent_name)
    return call_cell("recorded_fragment", agent=agent_name, limits=limits)


def context_limits(context_json: str) -> dict[str, Any]:
    """The `limits` of an agent's context (the orchestrator puts its prompt's there)."""
    try:
        limits = json.loads(context_json or "{}").get("limits")
    except (ValueError, AttributeError):
        return {}
    return dict(limits) if isinstance(limits, dict) else {}


async def expand_report(
    body_html: str,
    runner: SandboxCodeRunner,
    max_bytes: int,
    agent_name: str,
    limits: dict[str, Any] | None = None,
) -> str:
    """`body_html` (sanitized) with the marker replaced by the rendered figures of the agent's
    kit; unchanged when it has no marker. A failure leaves a note in the page instead."""
    if REPORT_MARKER not in body_html:
        return body_html
    try:
        cell = fragment_cell(agent_name, limits)
        fragment = await runner.read_text(cell, FRAGMENT_TIMEOUT_S, max_bytes)
        return sanitize(body_html.replace(REPORT_MARKER, fragment), max_bytes=max_bytes)
    except (SandboxGone, InvalidHtml, ValueError) as exc:
        log_fields(_log, logging.WARNING, "report not filled in", error=str(exc)[:300])
        note = f"<p><em>The figures could not be added: {escape_text(str(exc)[:300])}</em></p>"
        return body_html.replace(REPORT_MARKER, note)
