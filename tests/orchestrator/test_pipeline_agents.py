"""The default pipeline (catalog, anomalies, pii, relations, summary) end to end: gRPC, DBOS, a
Docker sandbox, S3 on moto; the offline agent on PostgreSQL, MariaDB and DuckDB (the pii
sample and the relations' anti-join are SQL of each backend), and Claude through the real SDK
and the fake Messages API on PostgreSQL. What a user would notice: each agent's page and data,
the email and card columns found and only ever shown masked, the undeclared key with its
coverage and the diagram, a first run learning, the summary linking each page with counts."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from catalog.v1 import catalog_pb2 as pb

from tests.fakes.anthropic_server import FakeAnthropic, Reply, last_tool_result, tool_use
from tests.orchestrator.agents_shop import PASSWORD, agents_shop, raw_values
from tests.orchestrator.stack import Runner, StartOrchestrator, wait_finished, watch
from tests.orchestrator.test_databases import context_of, data_dir, manager, objects  # noqa: F401
from tests.toolkit.shop import BACKENDS, Shop

MARKER = "[[catalog-toolkit-report]]"
AGENTS = ["catalog", "anomalies", "pii", "relations", "summary"]
MASKED_CARD = re.compile(r"\*\*\*\* \*\*\*\* \*\*\*\* \d{4}")
MASKED_EMAIL = re.compile(r"\w\*\*\*@m\*\*\*\.org")


@pytest.fixture(params=BACKENDS)
def shop(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Shop]:  # noqa: F811
    folder = data_dir / os.urandom(4).hex()  # one file per test, in the mounted folder
    folder.mkdir(mode=0o755)
    with agents_shop(request.param, folder) as built:
        yield built


def request_for(shop: Shop, prefix: str, **fields: Any) -> pb.StartCatalogRequest:
    tables = [shop.table(t) for t in ("customers", "orders", "shipments")]
    return pb.StartCatalogRequest(
        db_conn_string=shop.reader_dsn, tables=tables, s3_prefix=prefix, **fields
    )


async def test_the_default_pipeline_finds_what_each_agent_should_on_each_database(
    shop: Shop, start: StartOrchestrator, s3_server: str, s3_bucket: str
) -> None:
    orchestrator = await start(CATALOG_S3_ENDPOINT_URL=s3_server)
    prefix = f"s3://{s3_bucket}/agents/{shop.backend}"
    started = await orchestrator.stub.StartCatalog(request_for(shop, prefix))
    events = await watch(orchestrator.stub, started.catalog_id)
    final = events[-1].final
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    assert [(a.agent_name, a.status) for a in final.agents] == [
        (agent, pb.AGENT_STATUS_SUCCEEDED) for agent in AGENTS
    ]
    stored = objects(s3_server, s3_bucket, f"agents/{shop.backend}/{final.timestamp}")
    assert set(stored) == {f"{a}.{kind}" for a in AGENTS for kind in ("html", "json")}
    page = {a: stored[f"{a}.html"].decode() for a in AGENTS}
    data = {a: json.loads(stored[f"{a}.json"]) for a in AGENTS}
    customers = shop.table("customers")

    found = {(f["table"], f["column"]): f["kind"] for f in data["pii"]["findings"]}
    assert found[(customers, "email")] == "email"
    assert found[(customers, "card_number")] == "payment_card"
    assert (customers, "scenario_code") not in found  # three-digit codes are no card data
    assert MASKED_EMAIL.search(page["pii"]) and MASKED_CARD.search(page["pii"])
    # No raw address or card number in what any agent stored (the catalog's sample rows, top
    # values and ranges are masked too), nor in the logs.
    shown = "".join(page[a] + json.dumps(data[a]) for a in AGENTS)
    leaked = [v for v in raw_values() if v in shown or v in orchestrator.log()]
    assert not leaked, leaked[:3]
    assert PASSWORD not in "".join(page.values()) + json.dumps(data) + orchestrator.log()

    (inferred,) = data["relations"]["inferred"]
    assert (inferred["table"], inferred["column"]) == (shop.table("shipments"), "order_id")
    assert inferred["references"] == {"table": shop.table("orders"), "column": "id"}
    assert f"98.0% of {shop.table('shipments')}.order_id values are in" in page["relations"]
    assert '<img src="data:image/svg+xml' in page["relations"]  # the ER diagram

    assert data["anomalies"]["state"] == "learning"
    assert "learning" in page["anomalies"].lower()

    listed = {a["agent"]: a for a in data["summary"]["agents"]}
    assert sorted(listed) == sorted(set(AGENTS) - {"summary"})
    assert listed["pii"]["counts"]["sensitive_columns"] >= 2
    assert all(listed[agent]["headline"] for agent in listed)  # the summary's "in short"
    assert listed["anomalies"]["headline"].startswith("Learning: 0 of 4 earlier runs")
    assert listed["relations"]["counts"]["inferred"] == 1
    assert all(f'href="{agent}.html"' in page["summary"] for agent in listed)


# Each agent's system prompt begins with who it is (prompts/*.yaml).
WHO = {
    "catalog": "You are a data cataloging agent",
    "anomalies": "You are the anomalies agent",
    "pii": "You are the privacy agent",
    "relations": "You are the relations agent",
    "summary": "You are the summary agent",
}


def agent_of(body: dict[str, Any]) -> str:
    system = json.dumps(body.get("system"))
    return next(agent for agent, who in WHO.items() if who in system)


def claude(body: dict[str, Any]) -> Reply:
    """Claude, scripted: each agent runs its toolkit function in one cell (pii and relations
    get the function's whole result back), then submits a page with the report marker."""
    agent = agent_of(body)
    if last_tool_result(body) is not None:
        return Reply(tool_use("submit_html", {"content": f"<h1>{agent} by Claude</h1>{MARKER}"}))
    context = context_of(body)
    tables, history = context.get("tables"), context.get("history_dir")
    calls = {
        "catalog": "".join(f"ct.profile_table(con, {t!r})\n" for t in tables or [])
        + "print('profiled')",
        "pii": f"ct.find_pii(con, {tables!r})",
        "relations": f"ct.find_relations(con, {tables!r})",
        "summary": f"ct.compare_runs({history!r}, {context.get('current_timestamp')!r})",
    }
    code = "import catalog_toolkit as ct\n" + calls[agent]
    return Reply(tool_use("execute_python", {"code": code}))


async def test_claude_runs_the_pii_and_relations_agents_and_never_sees_a_raw_value(
    data_dir: Path,  # noqa: F811
    start: StartOrchestrator,
    fake: FakeAnthropic,
    claude_runner: Runner,
    s3_server: str,
    s3_bucket: str,
) -> None:
    fake.script(*[claude] * 8)  # two turns for each of catalog, pii, relations, summary
    with agents_shop("postgres", data_dir) as shop:
        orchestrator = await start(claude_runner.address, CATALOG_S3_ENDPOINT_URL=s3_server)
        request = request_for(
            shop, f"s3://{s3_bucket}/claude", agents=["pii", "relations", "summary"]
        )
        final = await wait_finished(
            orchestrator.stub, (await orchestrator.stub.StartCatalog(request)).catalog_id
        )
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    assert [a.agent_name for a in final.agents] == ["catalog", "pii", "relations", "summary"]
    stored = objects(s3_server, s3_bucket, f"claude/{final.timestamp}")
    pii_page, relations_page = stored["pii.html"].decode(), stored["relations.html"].decode()
    assert "pii by Claude" in pii_page and MARKER not in pii_page
    assert MASKED_CARD.search(pii_page) and MASKED_EMAIL.search(pii_page)  # the toolkit's table
    assert "relations by Claude" in relations_page
    assert "98.0% of" in relations_page and '<img src="data:image/svg+xml' in relations_page
    # What the model was sent: the prompts, the context and the cells' answers.
    assert [agent_of(r.body) for r in fake.requests[::2]] == [a.agent_name for a in final.agents]
    pii_answer = json.dumps([r.body for r in fake.requests if agent_of(r.body) == "pii"])
    assert MASKED_CARD.search(pii_answer)  # find_pii's whole result went to the model, masked
    sent = json.dumps([r.body for r in fake.requests])
    leaked = [v for v in raw_values() if v in sent]
    assert not leaked, leaked[:3]
    assert PASSWORD not in sent
