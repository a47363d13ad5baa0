"""Pipelines through the real stack (Docker sandboxes, the offline runner, DBOS on SQLite):
agents in dependency order, a failed agent and the one skipped after it, a requested subset
with its needs, and unknown agents refused by both APIs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import aiohttp
import grpc
import pytest
from catalog.v1 import catalog_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.orchestrator.stack import (
    PASSWORD,
    REPO,
    StartOrchestrator,
    wait_finished,
    watch,
    with_password,
)


def kitless_agent(name: str, needs: str, run_when: str = "succeeded") -> str:
    """A prompt for an agent that exists only in a test: the toolkit has no kit for it, so the
    offline agent writes a page saying so and stops with ERROR."""
    return (
        f"version: 1\nagent: {name}\ndescription: A test-only agent.\n"
        "instructions: Say what the history holds, in at most `max_page_bytes` bytes.\n"
        "limits: {max_page_bytes: 100000}\nhtml_format: One short page.\n"
        f"needs: [{needs}]\nrun_when: {run_when}\nreads: [history]\n"
    )


def prompts_dir(folder: Path, pipeline: list[str], **extra: str) -> Path:
    folder.mkdir()
    for agent in ("catalog", "summary"):
        shutil.copy(REPO / "prompts" / f"{agent}.yaml", folder)
    for name, text in extra.items():
        (folder / f"{name}.yaml").write_text(text)
    (folder / "pipeline.yaml").write_text(f"version: 1\nagents: [{', '.join(pipeline)}]\n")
    return folder


def request(reader_table: tuple[str, str], prefix: str, **fields: object) -> pb.StartCatalogRequest:
    url, schema = reader_table
    return pb.StartCatalogRequest(
        db_conn_string=with_password(url),
        tables=[f"{schema}.orders"],
        s3_prefix=prefix,
        **fields,  # type: ignore[arg-type]
    )


async def test_a_failed_agent_skips_what_needs_it_and_the_others_still_run(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    """catalog -> probe (fails: no kit) -> echo (needs probe: SKIPPED) ; summary (completed)."""
    folder = prompts_dir(
        tmp_path / "prompts",
        ["catalog", "probe", "echo", "summary"],
        probe=kitless_agent("probe", "catalog"),
        echo=kitless_agent("echo", "probe"),
    )
    orchestrator = await start(CATALOG_PROMPTS_DIR=str(folder))
    out = tmp_path / "catalogs"
    started = await orchestrator.stub.StartCatalog(request(reader_table, f"file://{out}"))
    events = await watch(orchestrator.stub, started.catalog_id)
    final = events[-1].final

    assert final.status == pb.CATALOG_STATUS_FAILED
    assert (final.error.code, final.error.step) == ("AGENT_FAILED", pb.CATALOG_STEP_RUNNING_AGENT)
    assert "the probe agent stopped with ERROR" in final.error.message
    assert [(a.agent_name, a.status, a.skipped_because) for a in final.agents] == [
        ("catalog", pb.AGENT_STATUS_SUCCEEDED, ""),
        ("probe", pb.AGENT_STATUS_FAILED, ""),
        ("echo", pb.AGENT_STATUS_SKIPPED, "probe"),
        ("summary", pb.AGENT_STATUS_SUCCEEDED, ""),
    ]
    assert final.agents[2].detail == "echo needs probe, which failed (run_when: succeeded)"
    assert final == (await orchestrator.stub.GetCatalog(pb.GetCatalogRequest(
        catalog_id=started.catalog_id))).catalog  # fmt: skip
    # WatchCatalog: the agents in dependency order, and the skip naming its dependency.
    ran = [
        e.step_changed.agent_name
        for e in events
        if e.step_changed.step == pb.CATALOG_STEP_RUNNING_AGENT
    ]
    assert ran == ["catalog", "probe", "summary"]
    (skipped,) = [e.agent_skipped for e in events if e.WhichOneof("event") == "agent_skipped"]
    assert (skipped.agent_name, skipped.dependency) == ("echo", "probe")
    # Every agent that ran has its page and its data; the skipped one has neither.
    run = out / final.timestamp
    assert sorted(p.name for p in run.iterdir()) == [
        f"{agent}.{kind}" for agent in ("catalog", "probe", "summary") for kind in ("html", "json")
    ]
    assert "no kit for the agent 'probe'" in (run / "probe.html").read_text()
    assert json.loads((run / "probe.json").read_text()) == {"format": 1, "kind": "probe"}
    # The summary ran after the failure (run_when: completed) and links this run's pages.
    summary = json.loads((run / "summary.json").read_text())
    assert [(a["agent"], a["page"]) for a in summary["agents"]] == [
        ("catalog", "catalog.html"),
        ("probe", "probe.html"),
    ]
    assert summary["agents"][0]["counts"] == {"tables": 1, "warnings": 0, "failed": 0}  # format 2
    page = (run / "summary.html").read_text()
    assert 'href="catalog.html"' in page and 'href="probe.html"' in page
    assert PASSWORD not in "".join(p.read_text() for p in run.iterdir())
    # The logs say it too.
    lines = [json.loads(line) for line in orchestrator.log().splitlines() if line.startswith("{")]
    (logged,) = [
        line
        for line in lines
        if line.get("workflow_id") == started.catalog_id and line["message"] == "agent skipped"
    ]
    assert (logged["agent"], logged["dependency"]) == ("echo", "probe")


async def test_requested_agents_bring_their_needs_and_unknown_ones_are_refused(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    out = tmp_path / "catalogs"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orchestrator.stub.StartCatalog(
            request(reader_table, f"file://{out}", agents=["summary", "nope", "pii2"])
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no such agent: 'nope', 'pii2'" in (caught.value.details() or "")
    violations = _field_violations(caught.value)
    assert [field for field, _ in violations] == ["agents"]
    assert "'nope', 'pii2'" in violations[0][1] and "catalog" in violations[0][1]

    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        refused = await http.post(
            "/catalog",
            json={**_body(reader_table, f"file://{out}"), "agents": ["ghost"]},
        )
        assert refused.status == 422
        (problem,) = (await refused.json())["detail"]
        assert problem["loc"] == ["body", "agents"] and "'ghost'" in problem["msg"]
        # Only the summary is asked for: the catalog it needs runs first.
        posted = await http.post(
            "/catalog", json={**_body(reader_table, f"file://{out}"), "agents": ["summary"]}
        )
        assert posted.status == 202
        catalog_id = (await posted.json())["catalog_id"]
        final = await wait_finished(orchestrator.stub, catalog_id)
        state = await (await http.get(f"/catalog/{catalog_id}")).json()
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    assert [(a["name"], a["status"]) for a in state["agents"]] == [
        ("catalog", "SUCCEEDED"),
        ("summary", "SUCCEEDED"),
    ]
    assert [o.agent_name for o in final.outputs] == ["catalog", "summary"]


async def test_an_agent_asked_for_alone_runs_alone_with_its_idempotency_key(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    """The chosen agents are part of what an idempotency key stands for."""
    orchestrator = await start()
    out = f"file://{tmp_path / 'catalogs'}"
    first = await orchestrator.stub.StartCatalog(
        request(reader_table, out, agents=["catalog"], idempotency_key="only-catalog")
    )
    final = await wait_finished(orchestrator.stub, first.catalog_id)
    assert [a.agent_name for a in final.agents] == ["catalog"]
    assert [o.agent_name for o in final.outputs] == ["catalog"]
    again = await orchestrator.stub.StartCatalog(
        request(reader_table, out, agents=["catalog"], idempotency_key="only-catalog")
    )
    assert again.catalog_id == first.catalog_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orchestrator.stub.StartCatalog(
            request(reader_table, out, agents=["summary"], idempotency_key="only-catalog")
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def _body(reader_table: tuple[str, str], prefix: str) -> dict[str, object]:
    url, schema = reader_table
    return {
        "db_conn_string": with_password(url),
        "tables": [f"{schema}.orders"],
        "s3_prefix": prefix,
    }


def _field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]
