"""The Python client and the `catalog-agents` CLI against the real stack: a Docker sandbox
manager, the offline agent runner and the orchestrator as a `python -m` process on free ports.

The client runs a catalog to the end, lists and cancels, raises the orchestrator's failure code
and field violations, and keeps watching across an orchestrator restart. The CLI is run as the
console script runs it (`python -m services.common.cli`), and its exit codes are checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from services.common.clients import (
    AgentStatus,
    CatalogClient,
    CatalogInvalidRequest,
    CatalogNotFound,
    CatalogRunFailed,
    CatalogStatus,
    CatalogStep,
    CatalogUnavailable,
    Finished,
    OutputWritten,
    StepChanged,
)
from services.common.ports import free_port
from tests.orchestrator.stack import REPO, StartOrchestrator
from tests.orchestrator.test_pipeline_runs import kitless_agent, prompts_dir


def request_of(reader_table: tuple[str, str], out: Path) -> dict[str, object]:
    url, schema = reader_table
    return {"db_conn_string": url, "tables": [f"{schema}.orders"], "s3_prefix": f"file://{out}"}


async def test_the_client_runs_a_catalog_to_the_end_and_shows_it(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    async with CatalogClient(orchestrator.address) as client:
        request = request_of(reader_table, tmp_path / "out")
        catalog_id = await client.start(**request)  # type: ignore[arg-type]
        events = [event async for event in client.watch(catalog_id)]
        run = await client.get(catalog_id)
        listed = await client.list(status=CatalogStatus.SUCCEEDED)
    assert isinstance(events[0], StepChanged)
    assert isinstance(events[-1], Finished) and events[-1].catalog == run
    assert [e.step for e in events if isinstance(e, StepChanged)][-1] == CatalogStep.DONE
    # The pipeline's default agents, each named as it starts, each with its page.
    agents = [a.name for a in run.agents]
    assert agents[0] == "catalog" and agents[-1] == "summary" and len(agents) >= 3
    assert {a.status for a in run.agents} == {AgentStatus.SUCCEEDED}
    started = [e.agent_name for e in events if isinstance(e, StepChanged) and e.agent_name]
    assert started == agents
    assert {e.step for e in events if isinstance(e, StepChanged) and e.agent_name} == {
        CatalogStep.RUNNING_AGENT
    }
    written = [e.output.agent_name for e in events if isinstance(e, OutputWritten)]
    assert written == agents
    assert run.status == CatalogStatus.SUCCEEDED and run.error is None
    assert run.current_step == CatalogStep.DONE and run.current_agent == ""
    assert Path(run.page("catalog").removeprefix("file://")).is_file()  # noqa: ASYNC240
    assert [u.agent_name for u in run.agent_usage] == agents
    costs = [u.cost_usd for u in run.agent_usage]
    assert run.cost_usd == pytest.approx(sum(c for c in costs if c is not None))
    assert catalog_id in [c.catalog_id for c in listed.catalogs]
    assert "reader" not in repr(run)  # the DSN (its role name) is nowhere in the run


async def test_the_client_raises_what_the_orchestrator_said(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    async with CatalogClient(orchestrator.address) as client:
        with pytest.raises(CatalogInvalidRequest) as refused:
            await client.start("mysql+pymysql://r@h/db", ["a", "a"], "file:///etc")
        with pytest.raises(CatalogNotFound):
            await client.get("no-such-run")
        url, schema = reader_table
        prefix = f"file://{tmp_path}/out"
        with pytest.raises(CatalogInvalidRequest) as no_such_agent:
            await client.start(url, [f"{schema}.orders"], prefix, agents=["pii", "ghost"])
        with pytest.raises(CatalogInvalidRequest) as negative:
            await client.start(url, [f"{schema}.orders"], prefix, max_cost_usd=-1)
        catalog_id = await client.start(url, [f"{schema}.nope"], prefix)
        with pytest.raises(CatalogRunFailed) as failed:
            await client.wait(catalog_id, timeout_s=300)
    fields = [field for field, _ in refused.value.field_violations]
    assert "db_conn_string" in fields and "tables" in fields
    assert "pymysql" not in str(refused.value)  # the DSN is never echoed
    assert [f for f, _ in no_such_agent.value.field_violations] == ["agents"]
    assert "ghost" in no_such_agent.value.field_violations[0][1]
    assert [f for f, _ in negative.value.field_violations] == ["max_cost_usd"]
    assert failed.value.code == "TABLE_NOT_FOUND"
    assert failed.value.run.error is not None and "nope" in failed.value.run.error.message


async def test_a_client_without_an_orchestrator_says_where_it_looked() -> None:
    address = f"127.0.0.1:{free_port()}"
    async with CatalogClient(address, timeout_s=2) as client:
        with pytest.raises(CatalogUnavailable) as gone:
            await client.get("any")
    assert address in str(gone.value) and "make serve" in str(gone.value)


async def test_a_watch_outlives_an_orchestrator_restart(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    """The orchestrator is killed mid-run and started again on the same system database and
    port; the watch reconnects, repeats nothing, and sees the run end."""
    first = await start()
    port = first.env["CATALOG_ORCHESTRATOR_GRPC_PORT"]
    async with CatalogClient(first.address) as client:
        catalog_id = await client.start(**request_of(reader_table, tmp_path / "out"))  # type: ignore[arg-type]
        events = []
        async for event in client.watch(catalog_id, reconnect_s=120):
            events.append(event)
            if len(events) == 1:
                await first.stop(signal.SIGKILL)
                await start(
                    CATALOG_ORCHESTRATOR_GRPC_PORT=port,
                    CATALOG_ORCHESTRATOR_HTTP_PORT=first.env["CATALOG_ORCHESTRATOR_HTTP_PORT"],
                )
    assert isinstance(events[-1], Finished)
    assert events[-1].catalog.status == CatalogStatus.SUCCEEDED, events[-1].catalog.error
    assert len(events) == len(set(events))


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.common.cli", *args,
        cwd=REPO, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_starts_waits_and_opens_a_catalog(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    env = {"CATALOG_ADDRESS": orchestrator.address}
    url, schema = reader_table
    code, out, err = await cli(
        "start", "--db", url, "--tables", f"{schema}.orders", "--prefix", f"file://{tmp_path}/out",
        "--agents", "pii", "--wait", env=env,
    )  # fmt: skip
    assert code == 0, out + err
    assert "step RUNNING_AGENT: catalog agent" in err and "catalog agent, turn 1" in err
    assert "step RUNNING_AGENT: pii agent" in err and "summary" not in err
    assert "page written: file://" in err
    catalog_id = out.split()[0]
    assert "SUCCEEDED" in out.splitlines()[0]
    assert "  pii agent: SUCCEEDED, " in out and "\n  cost: $" in out
    code, out, _ = await cli("--json", "open", catalog_id, env=env)
    opened = json.loads(out)
    assert code == 0 and Path(opened["path"]).is_file()  # noqa: ASYNC240
    assert opened["uri"] == f"file://{opened['path']}"
    code, out, _ = await cli("--json", "list", "--status", "SUCCEEDED", env=env)
    assert code == 0 and catalog_id in [c["catalog_id"] for c in json.loads(out)["catalogs"]]
    code, out, _ = await cli("--json", "get", catalog_id, env=env)
    shown = json.loads(out)
    assert code == 0 and shown["status"] == "SUCCEEDED"
    assert [(a["name"], a["status"]) for a in shown["agents"]] == [
        ("catalog", "SUCCEEDED"),
        ("pii", "SUCCEEDED"),
    ]
    assert shown["current_agent"] == "" and isinstance(shown["cost_usd"], float)
    code, out, _ = await cli(
        "start", "--db", url, "--tables", f"{schema}.orders", "--prefix", f"file://{tmp_path}/b",
        env=env,
    )  # fmt: skip
    second = out.strip()
    assert code == 0 and second and second != catalog_id
    code, _, err = await cli("cancel", second, env=env)
    assert code == 0, err
    code, out, _ = await cli("watch", second, env=env)
    assert code == 3 and "CANCELLED" in out.splitlines()[0]


async def test_the_cli_names_the_fix_for_a_bad_dsn_and_a_missing_table(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    env = {"CATALOG_ADDRESS": orchestrator.address}
    url, schema = reader_table
    prefix = f"file://{tmp_path}/out"
    code, _, err = await cli(
        "start", "--db", "postgres+psycopg://x@h/db", "--tables", "t", "--prefix", prefix, env=env
    )
    assert code == 2 and "--db (db_conn_string)" in err and "without the driver suffix" in err
    code, _, err = await cli(
        "start", "--db", url, "--tables", "t", "--prefix", prefix, "--max-cost-usd", "-1",
        "--agents", "catalog,ghost", env=env,
    )  # fmt: skip
    assert code == 2 and "--max-cost-usd (max_cost_usd): a number of US dollars" in err
    assert "--agents (agents): " in err and "ghost" in err
    code, out, err = await cli(
        "start", "--db", url, "--tables", f"{schema}.missing", "--prefix", prefix, "--wait",
        env=env,
    )  # fmt: skip
    assert code == 1, err
    assert "TABLE_NOT_FOUND" in out and "fix: check --tables" in out
    code, _, err = await cli("--json", "get", "no-such-run", env=env)
    assert code == 4 and json.loads(err)["error"]["code"] == "NOT_FOUND"
    code, _, err = await cli("get", "x", env={"CATALOG_ADDRESS": f"127.0.0.1:{free_port()}"})
    assert code == 5 and "make serve" in err


async def test_the_cli_shows_an_agent_skipped_after_the_one_it_needs_failed(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    """catalog -> probe (fails: the toolkit has no kit for it) -> echo (needs probe: SKIPPED)."""
    folder = prompts_dir(
        tmp_path / "prompts",
        ["catalog", "probe", "echo"],
        probe=kitless_agent("probe", "catalog"),
        echo=kitless_agent("echo", "probe"),
    )
    orchestrator = await start(CATALOG_PROMPTS_DIR=str(folder))
    env = {"CATALOG_ADDRESS": orchestrator.address}
    url, schema = reader_table
    code, out, err = await cli(
        "start", "--db", url, "--tables", f"{schema}.orders", "--prefix", f"file://{tmp_path}/out",
        "--agents", "echo", "--wait", env=env,
    )  # fmt: skip
    assert code == 1, err
    reason = "echo needs probe, which failed (run_when: succeeded)"
    assert f"echo agent skipped, because of probe: {reason}" in err
    assert "step RUNNING_AGENT: probe agent" in err and "RUNNING_AGENT: echo" not in err
    assert "  error: AGENT_FAILED at RUNNING_AGENT: " in out
    assert "  probe agent: FAILED, " in out
    assert f"  echo agent: SKIPPED, because of probe: {reason}" in out
    catalog_id = out.split()[0]
    code, out, _ = await cli("--json", "watch", catalog_id, env=env)
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [e for e in events if e["event"] == "AgentSkipped"] == [
        {"event": "AgentSkipped", "agent_name": "echo", "dependency": "probe", "reason": reason}
    ]
    final = events[-1]["catalog"]
    assert [(a["name"], a["status"], a["skipped_because"]) for a in final["agents"]] == [
        ("catalog", "SUCCEEDED", ""),
        ("probe", "FAILED", ""),
        ("echo", "SKIPPED", "probe"),
    ]
