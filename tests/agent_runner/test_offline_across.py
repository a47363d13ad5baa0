"""The offline catalog agent over several sources adds its findings across them: one more
cell, `cross_source_digest`, after profiling, and an "Across sources" section on the page.
The cells run for real, in process, against three real databases (tests/toolkit/estate.py)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from catalog_toolkit import record

from services.agent_runner.budget import Budget
from services.agent_runner.loop import AgentEvent, AgentRequest, StopReason
from services.agent_runner.offline_agent import OfflineAgent
from services.agent_runner.report import REPORT_MARKER
from services.agent_runner.sandbox_tool import CellReport
from tests.fakes.code_runner import FakeCodeRunner
from tests.toolkit.conftest import connect
from tests.toolkit.estate import estate_in

pytestmark = [pytest.mark.postgres, pytest.mark.mysql]


def kernel(namespace: dict[str, Any]) -> Any:
    """A cell run as the kernel runs it, in one namespace: its output, or its error."""

    def run(code: str) -> CellReport:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, "<cell>", "exec"), namespace)
        except Exception as exc:
            return CellReport(f"{type(exc).__name__}: {exc}", is_error=True)
        return CellReport(printed.getvalue(), is_error=False)

    return run


async def test_the_catalog_page_over_two_sources_says_what_differs_across_them(
    tmp_path: Path,
) -> None:
    record.results.clear()
    with estate_in(tmp_path) as estate:
        cons = {name: connect(dsn) for name, dsn in estate.dsns.items()}
        # Cells built with `with_con` get every source's connection (`con=cons`, the spec of
        # issue 15); bound as `con` too, the cell reads the mapping whichever name it uses.
        run = kernel({"con": cons, "cons": cons})
        runner = FakeCodeRunner(*[run] * 3)
        context = {
            "tables": estate.tables,
            "sources": [
                {"name": name, "tables": [t for t in estate.tables if t.startswith(name + "/")]}
                for name in estate.dsns
            ],
        }
        request = AgentRequest("run-x", "catalog", "", json.dumps(context), "offline", Budget())

        async def emit(event: AgentEvent) -> None:
            pass

        agent = OfflineAgent(request, runner, emit, max_html_bytes=200_000, cell_timeout_s=60)
        try:
            outcome = await agent.run()
        finally:
            recorded = record.recalled("cross_source")
            record.results.clear()
            for table in estate.tables:
                record.profiles.pop(table, None)
    assert outcome.stop_reason is StopReason.SUBMITTED
    assert "cross_source_digest" in runner.codes[-1]
    body = outcome.body_html
    section = body[body.index("<h2>Across sources</h2>") : body.index(REPORT_MARKER)]
    app, _, warehouse, billing = estate.tables
    assert f"`{app}` has 200 rows more than `{warehouse}`" in section
    assert "newest `created_at`" in section and "8 days later" in section
    assert f"sampled: 200 distinct values of {app}.customer_id" in section
    assert f"190 found in {billing}.id (95.0%)" in section
    assert recorded is not None and recorded["counts"]["pairs"] == 2


async def test_one_source_runs_no_cross_source_cell(tmp_path: Path) -> None:
    import duckdb
    import ibis

    path = tmp_path / "one.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE t AS SELECT range AS id FROM range(3)")
    con = ibis.duckdb.connect(str(path), read_only=True)
    runner = FakeCodeRunner(kernel({"con": con, "cons": {"default": con}}))
    context = {"tables": ["main.t"]}
    request = AgentRequest("run-y", "catalog", "", json.dumps(context), "offline", Budget())

    async def emit(event: AgentEvent) -> None:
        pass

    try:
        outcome = await OfflineAgent(
            request, runner, emit, max_html_bytes=100_000, cell_timeout_s=30
        ).run()
    finally:
        con.disconnect()
        record.profiles.pop("main.t", None)
    assert len(runner.codes) == 1 and "cross_source_digest" not in runner.codes[0]
    assert "Across sources" not in outcome.body_html
