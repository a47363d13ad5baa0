"""What must hold when things go wrong or change: a prompt changed through the environment,
an orchestrator killed mid-run, a cancelled run. The runner talks to the fake Anthropic API."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from catalog.v1 import agent_pb2, agent_pb2_grpc, sandbox_pb2
from catalog.v1 import catalog_pb2 as pb

from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use
from tests.orchestrator.stack import (
    PLANE,
    REPO,
    Runner,
    StartOrchestrator,
    prompt_override,
    start_runner,
    wait_finished,
)
from tests.sandbox_manager.conftest import RunningManager

MARKER = "MARKER-7731"


def submit(html: str) -> Reply:
    return Reply(tool_use("submit_html", {"content": html}))


def system_text(body: dict[str, Any]) -> str:
    return json.dumps(body.get("system"))


def start_request(reader_table: tuple[str, str], out: Path) -> pb.StartCatalogRequest:
    url, schema = reader_table
    # The two agents these tests script the model for (the default pipeline has more).
    return pb.StartCatalogRequest(
        db_conn_string=url,
        tables=[f"{schema}.orders"],
        s3_prefix=f"file://{out}",
        agents=["catalog", "summary"],
    )


async def leased(manager: RunningManager) -> int:
    listed = await manager.stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest())
    return sum(1 for s in listed.sandboxes if s.state == sandbox_pb2.SANDBOX_STATE_LEASED)


async def test_a_prompt_set_through_the_environment_reaches_the_model_and_changes_the_run(
    start: StartOrchestrator,
    fake: FakeAnthropic,
    claude_runner: Runner,
    reader_table: tuple[str, str],
    tmp_path: Path,
) -> None:
    shipped = (REPO / "prompts" / "catalog.yaml").read_text()
    changed = shipped.replace("\ninstructions: |", f"\ninstructions: |\n  {MARKER}: be brief.", 1)
    assert MARKER in changed
    fake.script(
        lambda body: submit(
            "<h1>marked run</h1>" if MARKER in system_text(body) else "<h1>plain</h1>"
        ),
        submit("<p>summary</p>"),
    )
    orchestrator = await start(claude_runner.address, **prompt_override("catalog", changed))
    started = await orchestrator.stub.StartCatalog(start_request(reader_table, tmp_path / "out"))
    final = await wait_finished(orchestrator.stub, started.catalog_id)

    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    catalog_page = next((tmp_path / "out").rglob("catalog.html")).read_text()
    assert "marked run" in catalog_page
    systems = [system_text(r.body) for r in fake.requests]
    assert MARKER in systems[0] and MARKER not in systems[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "term"])
async def test_an_orchestrator_stopped_mid_agent_finishes_after_restart_without_paying_twice(
    stop_signal: signal.Signals,
    start: StartOrchestrator,
    fake: FakeAnthropic,
    claude_runner: Runner,
    manager: RunningManager,
    reader_table: tuple[str, str],
    tmp_path: Path,
) -> None:
    model_called, go_on = asyncio.Event(), asyncio.Event()

    async def slow_catalog(body: dict[str, Any]) -> Reply:
        model_called.set()
        await go_on.wait()
        return submit("<h1>recovered catalog</h1>")

    fake.script(slow_catalog, submit("<p>summary</p>"))
    first = await start(claude_runner.address)
    started = await first.stub.StartCatalog(start_request(reader_table, tmp_path / "out"))
    await asyncio.wait_for(model_called.wait(), 120)
    await first.stop(stop_signal)

    second = await start(claude_runner.address)  # same workdir: same database, same executor
    go_on.set()
    final = await wait_finished(second.stub, started.catalog_id)

    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    out = tmp_path / "out"
    assert [p.name for p in out.rglob("*.html")].count("catalog.html") == 1
    assert [p.name for p in out.rglob("*.html")].count("summary.html") == 1
    assert len(list(out.iterdir())) == 1  # one run folder: the timestamp survived the crash
    assert len(fake.requests) == 2  # the catalog agent's one model call was not made again
    assert await leased(manager) == 0


async def test_an_orchestrator_down_longer_than_the_lease_fails_the_agent_whose_data_is_lost(
    start: StartOrchestrator,
    fake: FakeAnthropic,
    claude_runner: Runner,
    manager: RunningManager,
    reader_table: tuple[str, str],
    tmp_path: Path,
) -> None:
    model_called, go_on = asyncio.Event(), asyncio.Event()

    async def slow_catalog(body: dict[str, Any]) -> Reply:
        model_called.set()
        await go_on.wait()
        return submit("<h1>catalog of a lost sandbox</h1>")

    fake.script(slow_catalog, submit("<p>summary</p>"))
    short_lease = {"CATALOG_LEASE_TTL_S": "3"}
    first = await start(claude_runner.address, **short_lease)
    started = await first.stub.StartCatalog(start_request(reader_table, tmp_path / "out"))
    await asyncio.wait_for(model_called.wait(), 120)
    await first.stop(signal.SIGKILL)
    go_on.set()  # the runner finishes the agent; nobody renews the lease any more
    for _ in range(200):
        if await leased(manager) == 0:
            break
        await asyncio.sleep(0.1)
    assert await leased(manager) == 0

    second = await start(claude_runner.address, **short_lease)
    final = await wait_finished(second.stub, started.catalog_id)

    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "AGENT_DATA_LOST", final.error
    assert "catalog" in final.error.message and "CATALOG_LEASE_TTL_S" in final.error.message
    agents = {a.agent_name: a.status for a in final.agents}
    assert agents == {"catalog": pb.AGENT_STATUS_FAILED, "summary": pb.AGENT_STATUS_SUCCEEDED}
    names = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert names == ["summary.html", "summary.json"]  # no catalog page without its data
    assert "data was lost with the sandbox's lease" in second.log()
    assert await leased(manager) == 0


async def test_a_cancelled_run_stops_and_gives_its_sandbox_back(
    start: StartOrchestrator,
    fake: FakeAnthropic,
    claude_runner: Runner,
    manager: RunningManager,
    reader_table: tuple[str, str],
    tmp_path: Path,
) -> None:
    model_called, never = asyncio.Event(), asyncio.Event()

    async def stuck(body: dict[str, Any]) -> Reply:
        model_called.set()
        await never.wait()
        return submit("<p>too late</p>")

    fake.script(stuck)
    orchestrator = await start(claude_runner.address)
    started = await orchestrator.stub.StartCatalog(start_request(reader_table, tmp_path / "out"))
    await asyncio.wait_for(model_called.wait(), 120)
    cancelled = await orchestrator.stub.CancelCatalog(
        pb.CancelCatalogRequest(catalog_id=started.catalog_id)
    )
    assert cancelled.catalog.status == pb.CATALOG_STATUS_CANCELLED
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_CANCELLED
    for _ in range(100):  # the release happens as the workflow unwinds
        if await leased(manager) == 0:
            break
        await asyncio.sleep(0.1)
    assert await leased(manager) == 0
    assert not list((tmp_path / "out").rglob("*.html"))
    # The runner stopped the agent too: no run of this workflow is alive there any more.
    async with PLANE.channel(claude_runner.address) as channel:
        runner = agent_pb2_grpc.AgentRunnerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await runner.GetAgentRun(
                agent_pb2.GetAgentRunRequest(run_id=f"{started.catalog_id}.catalog.1")
            )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(fake.requests) == 1  # no model call after the cancel
    never.set()


async def leased_sandbox(manager: RunningManager) -> sandbox_pb2.Sandbox:
    listed = await manager.stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest())
    (sandbox,) = [s for s in listed.sandboxes if s.state == sandbox_pb2.SANDBOX_STATE_LEASED]
    return sandbox


def sandbox_killer(manager: RunningManager, killed: list[str]) -> Callable[..., Any]:
    """A model reply that kills the run's sandbox, then asks to run a cell in it."""

    async def kill_the_sandbox(body: dict[str, Any]) -> Reply:
        sandbox = await leased_sandbox(manager)
        process = await asyncio.create_subprocess_exec(
            "docker", "kill", sandbox.container_id, stdout=asyncio.subprocess.DEVNULL
        )
        assert await process.wait() == 0
        killed.append(sandbox.sandbox_id)
        return Reply(tool_use("execute_python", {"code": "1 + 1"}))

    return kill_the_sandbox


async def test_an_agent_whose_sandbox_dies_gets_one_more_try_on_a_fresh_one(
    start: StartOrchestrator,
    fake: FakeAnthropic,
    claude_runner: Runner,
    manager: RunningManager,
    reader_table: tuple[str, str],
    tmp_path: Path,
) -> None:
    killed: list[str] = []
    retried_on: list[str] = []

    async def second_try(body: dict[str, Any]) -> Reply:
        retried_on.append((await leased_sandbox(manager)).sandbox_id)
        return submit("<h1>second try</h1>")

    # The cell on the killed sandbox crashes (the model is told); the next finds the lease
    # broken, so the first run ends with ERROR and the workflow tries once more elsewhere.
    fake.script(
        sandbox_killer(manager, killed),
        Reply(tool_use("execute_python", {"code": "2 + 2"})),
        second_try,
        submit("<p>summary</p>"),
    )
    orchestrator = await start(claude_runner.address)
    started = await orchestrator.stub.StartCatalog(start_request(reader_table, tmp_path / "out"))
    final = await wait_finished(orchestrator.stub, started.catalog_id)

    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    assert len(killed) == len(retried_on) == 1 and retried_on != killed
    assert "second try" in next((tmp_path / "out").rglob("catalog.html")).read_text()
    async with PLANE.channel(claude_runner.address) as channel:
        runner = agent_pb2_grpc.AgentRunnerServiceStub(channel)
        runs = [
            await runner.GetAgentRun(
                agent_pb2.GetAgentRunRequest(run_id=f"{started.catalog_id}.catalog.{attempt}")
            )
            for attempt in (1, 2)
        ]
    first, second = (run.result for run in runs)
    assert first.stop_reason == agent_pb2.STOP_REASON_ERROR, first
    assert second.stop_reason == agent_pb2.STOP_REASON_SUBMITTED and "second try" in second.html
    assert len(fake.requests[2].messages) == 1  # a fresh conversation, not the first one's
    assert await leased(manager) == 0


async def test_a_second_sandbox_death_under_the_summary_names_it_and_records_it(
    start: StartOrchestrator,
    fake: FakeAnthropic,
    claude_runner: Runner,
    manager: RunningManager,
    reader_table: tuple[str, str],
    tmp_path: Path,
) -> None:
    killed: list[str] = []
    cell_on_the_dead_one = Reply(tool_use("execute_python", {"code": "2 + 2"}))
    fake.script(
        sandbox_killer(manager, killed),  # the catalog's first sandbox dies: a fresh one
        cell_on_the_dead_one,
        submit("<h1>second try</h1>"),
        sandbox_killer(manager, killed),  # the summary's (the fresh one) dies too
        cell_on_the_dead_one,
    )
    orchestrator = await start(claude_runner.address)
    started = await orchestrator.stub.StartCatalog(start_request(reader_table, tmp_path / "out"))
    final = await wait_finished(orchestrator.stub, started.catalog_id)

    assert len(killed) == 2
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "SANDBOX_UNAVAILABLE", final.error
    assert final.error.step == pb.CATALOG_STEP_RUNNING_AGENT
    assert "summary" in final.error.message
    agents = {a.agent_name: a for a in final.agents}
    assert agents["catalog"].status == pb.AGENT_STATUS_SUCCEEDED
    assert agents["summary"].status == pb.AGENT_STATUS_FAILED
    assert "second sandbox died" in agents["summary"].detail
    assert [u.agent_name for u in final.agent_usage] == ["catalog", "summary"]
    names = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert names == ["catalog.html", "catalog.json"]  # no page without its data
    assert await leased(manager) == 0


async def test_a_store_that_refuses_fails_the_run_with_a_clear_error(
    start: StartOrchestrator,
    reader_table: tuple[str, str],
    s3_server: str,
) -> None:
    orchestrator = await start(CATALOG_S3_ENDPOINT_URL=s3_server)
    started = await orchestrator.stub.StartCatalog(
        pb.StartCatalogRequest(
            db_conn_string=reader_table[0],
            tables=[f"{reader_table[1]}.orders"],
            s3_prefix="s3://no-such-bucket-4711/catalogs",
        )
    )
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "STORAGE_UNAVAILABLE"
    assert "no-such-bucket-4711" in final.error.message


async def test_an_unreachable_store_is_retried_then_fails_the_run(
    start: StartOrchestrator, reader_table: tuple[str, str], s3_server: str
) -> None:
    orchestrator = await start(CATALOG_S3_ENDPOINT_URL="http://127.0.0.1:9")  # nothing listens
    started = await orchestrator.stub.StartCatalog(
        pb.StartCatalogRequest(
            db_conn_string=reader_table[0],
            tables=[f"{reader_table[1]}.orders"],
            s3_prefix="s3://some-bucket/catalogs",
        )
    )
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "STORAGE_UNAVAILABLE"
    assert re.search(r"after [2-9] tries", final.error.message)
    assert "testing-secret-access-key" not in final.error.message


async def test_a_runner_that_stays_unreachable_fails_the_run_with_its_code(
    start: StartOrchestrator,
    manager: RunningManager,
    reader_table: tuple[str, str],
    tmp_path: Path,
) -> None:
    runner = await start_runner(manager.address)
    orchestrator = await start(runner.address, CATALOG_RUNNER_RETRY_S="0.05")
    await runner.stop()
    started = await orchestrator.stub.StartCatalog(start_request(reader_table, tmp_path / "out"))
    final = await wait_finished(orchestrator.stub, started.catalog_id, timeout_s=300)

    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "AGENT_RUNNER_UNAVAILABLE", final.error
    assert final.error.step == pb.CATALOG_STEP_RUNNING_AGENT
    assert "unreachable after" in final.error.message
    assert await leased(manager) == 0
