"""A run's max_cost_usd on the real stack: the runner prices the fake Messages API's usage with
the shipped price table (deploy/prices.yaml), stops the agent that reaches the limit as at its
token budget, keeps its page marked incomplete, and GetCatalog reports what it cost."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog.v1 import agent_pb2
from catalog.v1 import catalog_pb2 as pb

from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use
from tests.orchestrator.stack import PRICES, Runner, StartOrchestrator, wait_finished

# claude-sonnet-4-6 (the runner's default model) at $3 / $15 per million tokens: 10,000 input
# and 1,000 output tokens cost $0.045, over the run's $0.02.
LIMIT_USD = 0.02
FIRST_TURN_USD = 0.045


async def test_an_agent_that_reaches_max_cost_usd_stops_with_an_incomplete_page(
    start: StartOrchestrator,
    fake: FakeAnthropic,
    claude_runner: Runner,
    reader_table: tuple[str, str],
    tmp_path: Path,
) -> None:
    assert "claude-sonnet-4-6:" in PRICES.read_text()
    explore = tool_use("execute_python", {"code": "print('looking')"})
    fake.script(
        Reply(explore, input_tokens=10_000, output_tokens=1_000),
        Reply(tool_use("submit_html", {"content": "<h1>What I had</h1>"})),  # the forced page
    )
    orchestrator = await start(claude_runner.address)
    url, schema = reader_table
    out = tmp_path / "out"
    request = pb.StartCatalogRequest(
        db_conn_string=url,
        tables=[f"{schema}.orders"],
        s3_prefix=f"file://{out}",
        agents=["catalog"],
        max_cost_usd=LIMIT_USD,
    )
    started = await orchestrator.stub.StartCatalog(request)
    final = await wait_finished(orchestrator.stub, started.catalog_id)  # through GetCatalog

    (usage,) = final.agent_usage
    assert usage.stop_reason == agent_pb2.STOP_REASON_TOKEN_BUDGET and usage.turns == 1
    assert usage.cost_usd >= FIRST_TURN_USD  # the first turn, and the forced page's
    assert final.cost_usd == pytest.approx(usage.cost_usd)
    assert [(a.agent_name, a.status) for a in final.agents] == [("catalog", pb.AGENT_STATUS_FAILED)]
    assert "TOKEN_BUDGET" in final.error.message and "max_cost_usd" in final.error.message
    page = next(out.rglob("catalog.html")).read_text()
    assert "What I had" in page and "run-incomplete" in page and "max_cost_usd" in page
    assert len(fake.requests) == 2  # no turn after the limit but the forced page
