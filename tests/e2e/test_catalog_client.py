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
    written = [e.output.agent_name for e in events if isinstance(e, OutputWritten)]
    assert written == ["catalog", "summary"]
    assert run.status == CatalogStatus.SUCCEEDED and run.error is None
    assert Path(run.page("catalog").removeprefix("file://")).is_file()  # noqa: ASYNC240
    assert [u.agent_name for u in run.agent_usage] == ["catalog", "summary"]
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
        catalog_id = await client.start(url, [f"{schema}.nope"], f"file://{tmp_path}/out")
        with pytest.raises(CatalogRunFailed) as failed:
            await client.wait(catalog_id, timeout_s=300)
    fields = [field for field, _ in refused.value.field_violations]
    assert "db_conn_string" in fields and "tables" in fields
    assert "pymysql" not in str(refused.value)  # the DSN is never echoed
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
        "start", "--db", url, "--tables", f"{schema}.orders",
        "--prefix", f"file://{tmp_path}/out", "--wait", env=env,
    )  # fmt: skip
    assert code == 0, err
    assert "step CATALOG_AGENT" in err and "catalog agent, turn 1" in err
    assert "page written: file://" in err
    catalog_id = out.split()[0]
    assert "SUCCEEDED" in out.splitlines()[0]
    code, out, _ = await cli("--json", "open", catalog_id, env=env)
    opened = json.loads(out)
    assert code == 0 and Path(opened["path"]).is_file()  # noqa: ASYNC240
    assert opened["uri"] == f"file://{opened['path']}"
    code, out, _ = await cli("--json", "list", "--status", "SUCCEEDED", env=env)
    assert code == 0 and catalog_id in [c["catalog_id"] for c in json.loads(out)["catalogs"]]
    code, out, _ = await cli("--json", "get", catalog_id, env=env)
    assert code == 0 and json.loads(out)["status"] == "SUCCEEDED"
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
