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
from services.agent_runner.offline_agent import OfflineAgent
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
