"""The offline agent drives any agent through its kit: one `agent_digest` cell, a page from the
headline and items; an agent without a kit gets a page saying so and stops with ERROR. The
cells run for real, in process, against the toolkit (as the kernel would run them)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from catalog_toolkit import record

from services.agent_runner.budget import Budget
from services.agent_runner.loop import AgentEvent, AgentRequest, StopReason
from services.agent_runner.offline_agent import OfflineAgent, catalog_page
from services.agent_runner.report import REPORT_MARKER
from services.agent_runner.sandbox_tool import CellReport
from tests.fakes.code_runner import FakeCodeRunner

NOW = "2026-01-02T00:00:00.000Z"


def executed(code: str) -> CellReport:
    """The cell run as the kernel runs it: its output, or its traceback as an error."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "<cell>", "exec"), {})  # what the kernel does with a cell
    except Exception as exc:
        return CellReport(f"{type(exc).__name__}: {exc}", is_error=True)
    return CellReport(printed.getvalue(), is_error=False)


async def run_offline(agent: str, context: dict[str, Any]) -> tuple[Any, FakeCodeRunner]:
    runner = FakeCodeRunner(*[executed] * 4)
    events: list[AgentEvent] = []

    async def emit(event: AgentEvent) -> None:
        events.append(event)

    request = AgentRequest("run-1", agent, "", json.dumps(context), "offline", Budget())
    outcome = await OfflineAgent(
        request, runner, emit, max_html_bytes=100_000, cell_timeout_s=30
    ).run()
    return outcome, runner


async def test_an_agent_with_a_kit_is_one_digest_cell_and_a_page(tmp_path: Path) -> None:
    record.comparison = None
    run = tmp_path / NOW
    run.mkdir()
    (run / "pii.json").write_text(json.dumps({"kind": "pii", "counts": {"columns": 2}}))
    (run / "pii.html").write_text("<p>pii</p>")
    context = {"history_dir": str(tmp_path), "current_timestamp": NOW, "limits": {}}
    outcome, runner = await run_offline("summary", context)
    assert outcome.stop_reason is StopReason.SUBMITTED and outcome.complete
    assert len(runner.codes) == 1 and "agent_digest" in runner.codes[0]
    assert "con=con" not in runner.codes[0]  # no database: no connection asked for
    assert "<h1>Summary</h1>" in outcome.body_html
    assert "pii: 2 columns" in outcome.body_html and REPORT_MARKER in outcome.body_html


async def test_an_agent_without_a_kit_says_so_and_stops_with_error() -> None:
    outcome, _ = await run_offline("probe", {"limits": {}})
    assert outcome.stop_reason is StopReason.ERROR and not outcome.complete
    assert "the toolkit has no kit for the agent 'probe'" in outcome.body_html
    assert REPORT_MARKER not in outcome.body_html
    assert outcome.stop_detail == "the toolkit could not run the probe agent's kit"


async def test_the_catalog_agent_profiles_tables_in_batches_a_few_at_a_time(
    tmp_path: Path,
) -> None:
    """10 tables, 2 at a time: two cells of 8 and 2 tables (4 a worker); a missing table is
    reported on the page and the others are profiled."""
    import duckdb
    import ibis

    path = tmp_path / "many.duckdb"
    with duckdb.connect(str(path)) as db:
        for i in range(9):
            db.execute(f"CREATE TABLE t{i} AS SELECT range AS id, range % 3 AS k FROM range({i})")
    con = ibis.duckdb.connect(str(path), read_only=True)
    namespace = {"con": con, "cons": {"default": con}}

    def with_con(code: str) -> CellReport:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "<cell>", "exec"), namespace)
        return CellReport(printed.getvalue(), is_error=False)

    runner = FakeCodeRunner(with_con, with_con)
    tables = [f"main.t{i}" for i in range(9)] + ["main.missing"]
    request = AgentRequest(
        "run-2", "catalog", "", json.dumps({"tables": tables}), "offline", Budget()
    )

    async def emit(event: AgentEvent) -> None:
        pass

    agent = OfflineAgent(
        request, runner, emit, max_html_bytes=100_000, cell_timeout_s=30, profile_concurrency=2
    )
    try:
        outcome = await agent.run()
    finally:
        con.disconnect()
        for table in tables:  # the session's record, which other tests read
            record.profiles.pop(table, None)
    assert [code.count("main.t") + code.count("main.missing") for code in runner.codes] == [8, 2]
    assert "9 of 10 tables profiled, 36 rows in all." in outcome.body_html
    assert "main.missing" in outcome.body_html  # under the tables that could not be profiled
    assert outcome.turns == 3 and outcome.stop_reason is StopReason.SUBMITTED


def test_the_offline_catalog_page_tells_each_source_apart() -> None:
    """Several sources: what stands out, and what could not be profiled, under its source; the
    context's order of sources holds, a source lost mid-run included."""
    digests = [
        {"table": "app/shop.orders", "rows": 12, "warnings": ["status: <b>constant</b>"]},
        {"table": "billing/invoices", "error": "OperationalError: the connection is lost"},
        {"table": "app/shop.users", "rows": 3, "warnings": []},
    ]
    page = catalog_page(digests, ["billing", "app"])
    assert "<p>2 of 3 tables profiled, 15 rows in all, from 2 sources.</p>" in page
    billing, app = page.split("<h2>Source <code>billing</code></h2>")[1].split(
        "<h2>Source <code>app</code></h2>"
    )
    assert "<p>0 of 1 tables profiled.</p>" in billing
    assert "Tables that could not be profiled" in billing and "connection is lost" in billing
    assert "What stands out" in app and "&lt;b&gt;constant&lt;/b&gt;" in app
    assert "could not be profiled" not in app and page.endswith(REPORT_MARKER)
    # One source, named or not: the page is as it was.
    single = catalog_page([{"table": "shop.orders", "rows": 1, "warnings": []}])
    assert "<h2>Source" not in single and "from 1 sources" not in single
