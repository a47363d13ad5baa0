"""The built-in offline agent: a fixed policy that drives the same tools, without a model.

It runs when no API key is configured, so the demo and the tests work offline. The catalog agent
profiles the tables with the sandbox's toolkit, one cell per batch of tables; any other agent is
one cell, `agent_digest(agent, **context)`, which runs the agent's kit (catalog_toolkit/kits.py)
and returns a headline and a few items. Each page is a short text, with the figures left to the
toolkit (REPORT_MARKER). An agent without a kit gets a page saying so, and stops with ERROR.
Its pages say they were written without a language model; it is no stand-in for Claude in
anything said about catalog quality.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from services.agent_runner.budget import Spending
from services.agent_runner.html import sanitize
from services.agent_runner.loop import (
    AgentOutcome,
    AgentRequest,
    CodeRunner,
    Emit,
    StopReason,
    ToolAnswered,
    ToolCalled,
    TurnStarted,
)
from services.agent_runner.report import REPORT_MARKER
from services.agent_runner.tools import EXECUTE_PYTHON, SUBMIT_HTML
from services.common.cells import call_cell, read_result
from services.common.usage import TokenUsage

TABLES_PER_WORKER = 4  # a cell profiles this many tables per worker, then reports
STAND_OUT = 100  # warnings listed in the prose at most; the figures have every one
_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")  # as catalog_toolkit/sources.py


class OfflineAgent:
    def __init__(
        self,
        request: AgentRequest,
        runner: CodeRunner,
        emit: Emit,
        *,
        max_html_bytes: int,
        cell_timeout_s: float,
        profile_concurrency: int = 4,
    ) -> None:
        self._request = request
        self._runner = runner
        self._emit = emit
        self._max_html_bytes = max_html_bytes
        self._cell_timeout_s = cell_timeout_s
        self._concurrency = max(1, profile_concurrency)
        self._spending = Spending(request.budget)
        self._context: dict[str, Any] = json.loads(request.context_json or "{}")

    async def run(self) -> AgentOutcome:
        agent = self._request.agent_name
        if agent == "catalog":
            # The toolkit profiles the tables and records them; only digests come back, the
            # figures go into the page through REPORT_MARKER. A cell per batch of tables keeps
            # each within the cell timeout and shows progress; in a cell, the toolkit profiles
            # `concurrency` tables at a time, each on a connection of its own.
            tables = [str(name) for name in self._context.get("tables", [])]
            size = TABLES_PER_WORKER * self._concurrency
            digests = []
            for start in range(0, len(tables), size):
                digests += await self._batch(tables[start : start + size])
            names = [str(s.get("name", "")) for s in self._context.get("sources", [])]
            body, stop = catalog_page(digests, names), StopReason.SUBMITTED
            chosen = self._context.get("chosen") or []
            if chosen:  # the request named none: the run listed them (say so first)
                body = body.replace("</h1>", "</h1>" + chosen_note(chosen), 1)
            if len(names) >= 2:  # several databases: compare them
                across = across_sources(await self._across(tables))
                body = body.replace(REPORT_MARKER, across + REPORT_MARKER)
        else:
            # The agent's kit does the work (and records it) in the sandbox, given the whole
            # context; the connection goes in when the agent reads the database.
            arguments = {k: v for k, v in self._context.items() if k != "agent"}
            cell = call_cell(
                "agent_digest", with_con="tables" in self._context, agent=agent, **arguments
            )
            found = await self._cell(cell, agent)
            body = digest_page(agent, found)
            stop = StopReason.ERROR if "error" in found else StopReason.SUBMITTED
        await self._submit(body)
        ok = stop is StopReason.SUBMITTED
        return AgentOutcome(
            sanitize(body, max_bytes=self._max_html_bytes),
            TokenUsage(),
            stop,
            ok,
            self._spending.turns,
            "" if ok else f"the toolkit could not run the {agent} agent's kit",
        )

    async def _batch(self, tables: list[str]) -> list[dict[str, Any]]:
        cell = call_cell(
            "profile_digests", with_con=True, tables=tables, concurrency=self._concurrency
        )
        found = await self._cell(cell, ", ".join(tables))
        if "error" in found:  # the cell failed as a whole: each of its tables says so
            return [{"table": table, "error": found["error"]} for table in tables]
        return list(found["digests"])

    async def _across(self, tables: list[str]) -> dict[str, Any]:
        """Over several sources, one more cell: the findings across them (the toolkit records
        them, so the page's figures show them too); `con` is every source's (`cons`)."""
        cell = call_cell("cross_source_digest", with_con=True, tables=tables)
        return await self._cell(cell, "across sources")

    async def _cell(self, code: str, subject: str) -> dict[str, Any]:
        """One turn: a cell in the sandbox, its JSON answer, or the error it reported."""
        turn = await self._next_turn()
        tool_use_id = f"offline_{turn}"
        await self._emit(ToolCalled(turn, tool_use_id, EXECUTE_PYTHON, code, 0))
        report = await self._runner.run(code, self._cell_timeout_s)
        await self._emit(ToolAnswered(turn, tool_use_id, report.text, report.is_error))
        try:
            parsed: dict[str, Any] = read_result(report.text)
        except ValueError:
            return {"table": subject, "error": report.text[-2000:]}
        return parsed

    async def _submit(self, body: str) -> None:
        turn = await self._next_turn()
        await self._emit(ToolCalled(turn, f"offline_{turn}", SUBMIT_HTML, "", len(body.encode())))

    async def _next_turn(self) -> int:
        self._spending.turns += 1
        await self._emit(TurnStarted(self._spending.turns))
        return self._spending.turns


def catalog_page(digests: list[dict[str, Any]], sources: list[str] | None = None) -> str:
    """The offline catalog's prose: what was profiled and what stands out; the figures follow.
    With several sources (the context's `sources`, or the tables' `source/` prefixes), what
    stands out and the tables that could not be profiled are told per source."""
    profiled = [d for d in digests if "error" not in d]
    rows = sum(int(d.get("rows") or 0) for d in profiled)
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in sources or []}
    for digest in digests:
        groups.setdefault(_source_of(str(digest["table"])), []).append(digest)
    head = (
        "<h1>Data catalog</h1>"
        f"<p>{len(profiled)} of {len(digests)} tables profiled, {rows:,} rows in all"
        + (f", from {len(groups)} sources" if len(groups) > 1 else "")
        + ".</p>"
    )
    if len(groups) <= 1:
        return head + _stand_out(digests, "h2") + REPORT_MARKER
    sections = "".join(
        f"<h2>Source <code>{escape(name)}</code></h2>"
        f"<p>{sum('error' not in d for d in group)} of {len(group)} tables profiled.</p>"
        + _stand_out(group, "h3")
        for name, group in groups.items()
    )
    return head + sections + REPORT_MARKER


def _source_of(table: str) -> str:
    """The source of a run's table name: `billing/invoices` -> billing; bare -> default."""
    source, sep, _ = table.partition("/")
    return source if sep and _SOURCE_NAME.match(source) else "default"


def chosen_note(chosen: list[dict[str, Any]]) -> str:
    """What the page says when the request named no tables (of a source): the run chose
    them, and how many it left out over its limit (the context's `chosen`, one per source)."""
    return "".join(_chosen_line(entry) for entry in chosen)


def _chosen_line(entry: dict[str, Any]) -> str:
    source = str(entry.get("source", "default"))
    found, kept = int(entry.get("found", 0)), int(entry.get("catalogued", 0))
    left = int(entry.get("left_out", 0))
    named = "" if source == "default" else f" of the source <code>{escape(source)}</code>"
    over = f"; {left:,} were left out over the run's limit" if left else ""
    return (
        f"<p>The request named no tables{named}: the run listed its default schema's and chose "
        f"{kept:,} of its {found:,} tables, the first in name order{over}.</p>"
    )


def _stand_out(digests: list[dict[str, Any]], heading: str) -> str:
    found = [
        (str(d["table"]), w) for d in digests if "error" not in d for w in d.get("warnings", [])
    ]
    warnings = "".join(
        f"<li><strong>{escape(table)}</strong> {escape(w)}</li>" for table, w in found[:STAND_OUT]
    )
    if len(found) > STAND_OUT:  # thousands of tables: the figures below list every one
        warnings += f"<li>and {len(found) - STAND_OUT:,} more warnings, in the figures below</li>"
    errors = [d for d in digests if "error" in d]
    failed = "".join(
        f"<li><strong>{escape(str(d['table']))}</strong>: <pre>{escape(str(d['error']))}</pre></li>"
        for d in errors[:STAND_OUT]
    )
    if len(errors) > STAND_OUT:
        failed += f"<li>and {len(errors) - STAND_OUT:,} more, in the figures below</li>"
    return (f"<{heading}>What stands out</{heading}><ul>{warnings}</ul>" if warnings else "") + (
        f"<{heading}>Tables that could not be profiled</{heading}><ul>{failed}</ul>"
        if failed
        else ""
    )


def across_sources(found: dict[str, Any]) -> str:
    """The catalog's findings across its sources: the same table in two of them, keys into
    another source (sampled), or why they could not be computed."""
    if "error" in found:
        return (
            "<h2>Across sources</h2><p>The findings across sources could not be computed:</p>"
            f"<pre>{escape(str(found['error']))}</pre>"
        )
    items = "".join(f"<li>{escape(str(item))}</li>" for item in found.get("items", [])[:20])
    return f"<h2>Across sources</h2><p>{escape(str(found.get('headline', '')))}</p>" + (
        f"<ul>{items}</ul>" if items else ""
    )


def digest_page(agent: str, found: dict[str, Any]) -> str:
    """Any agent's offline page: its kit's headline and items, then the figures; or, when
    the kit failed or there is none, what the sandbox said."""
    title = f"<h1>{escape(str(found.get('title') or agent.capitalize()))}</h1>"
    if "error" in found:
        return (
            f"{title}<p>The offline agent could not run the {escape(agent)} agent: the "
            "sandbox's toolkit answered with an error (an agent without a kit in "
            "catalog_toolkit/kits.py works only with a language model).</p>"
            f"<pre>{escape(str(found['error']))}</pre>"
        )
    items = "".join(f"<li>{escape(str(item))}</li>" for item in found.get("items", [])[:20])
    return (
        title
        + f"<p>{escape(str(found.get('headline', '')))}</p>"
        + (f"<h2>What stands out</h2><ul>{items}</ul>" if items else "")
        + REPORT_MARKER
    )
