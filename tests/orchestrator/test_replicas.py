"""Two orchestrator replicas on one PostgreSQL: they share the queue, each within its own
concurrency, and a survivor takes over a killed replica's run through DBOS's recovery."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from catalog.v1 import catalog_pb2 as pb
from cryptography.fernet import Fernet

from services.common.ports import free_port
from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use
from tests.orchestrator.stack import (
    Orchestrator,
    Runner,
    orchestrator_env,
    run_rows,
    start_orchestrator,
    wait_finished,
)
from tests.sandbox_manager.conftest import RunningManager


async def replicas(
    tmp_path: Path,
    manager: RunningManager,
    runner: Runner,
    system_database: str,
    **overrides: str,
) -> list[Orchestrator]:
    shared = {
        "DBOS_SYSTEM_DATABASE_URL": system_database,
        "CATALOG_SECRET_KEY": Fernet.generate_key().decode(),
        **overrides,
    }
    started = []
    for name in ("a", "b"):
        env = orchestrator_env(
            tmp_path,
            manager.address,
            runner.address,
            CATALOG_EXECUTOR_ID=f"replica-{name}",
            **shared,
        )
        started.append(await start_orchestrator(env, tmp_path / f"{name}.log"))
    return started


def request(reader_table: tuple[str, str], out: Path) -> pb.StartCatalogRequest:
    url, schema = reader_table
    return pb.StartCatalogRequest(
        db_conn_string=url,
        tables=[f"{schema}.orders"],
        s3_prefix=f"file://{out}",
        agents=["catalog"],
    )


async def test_two_replicas_drain_one_queue_each_within_its_concurrency(
    tmp_path: Path,
    manager: RunningManager,
    offline_runner: Runner,
    reader_table: tuple[str, str],
    pg_system_database: str,
) -> None:
    both = await replicas(
        tmp_path, manager, offline_runner, pg_system_database, CATALOG_QUEUE_CONCURRENCY="1"
    )
    try:
        ids = []
        for n in range(6):  # all submitted to one replica: the other still takes its share
            started = await both[0].stub.StartCatalog(request(reader_table, tmp_path / f"o{n}"))
            ids.append(started.catalog_id)
        most_at_once: Counter[str] = Counter()
        while True:
            rows = run_rows(pg_system_database)
            running = Counter(executor for _, status, executor in rows if status == "PENDING")
            most_at_once |= running
            if all(status in ("SUCCESS", "ERROR") for _, status, _ in rows):
                break
            await asyncio.sleep(0.1)
        for catalog_id in ids:
            final = await wait_finished(both[1].stub, catalog_id)
            assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    finally:
        for replica in both:
            await replica.stop()
    ran_on = Counter(executor for _, _, executor in run_rows(pg_system_database))
    assert set(ran_on) == {"replica-a", "replica-b"}, ran_on
    assert max(most_at_once.values()) == 1, most_at_once


async def test_a_killed_replicas_run_is_finished_by_the_survivor(
    tmp_path: Path,
    manager: RunningManager,
    fake: FakeAnthropic,
    claude_runner: Runner,
    reader_table: tuple[str, str],
    pg_system_database: str,
) -> None:
    model_called, go_on = asyncio.Event(), asyncio.Event()

    async def slow_catalog(body: dict[str, Any]) -> Reply:
        model_called.set()
        await go_on.wait()
        return Reply(tool_use("submit_html", {"content": "<h1>taken over</h1>"}))

    fake.script(slow_catalog)
    both = await replicas(
        tmp_path, manager, claude_runner, pg_system_database, CATALOG_RECOVERY_AFTER_S="3"
    )
    try:
        out = tmp_path / "out"
        started = await both[0].stub.StartCatalog(request(reader_table, out))
        await asyncio.wait_for(model_called.wait(), 120)
        ((_, _, owner),) = run_rows(pg_system_database)
        dead, survivor = sorted(both, key=lambda o: o.env["CATALOG_EXECUTOR_ID"] != owner)
        killed_at = time.monotonic()
        await dead.stop(signal.SIGKILL)
        go_on.set()
        final = await wait_finished(survivor.stub, started.catalog_id, timeout_s=180)
        took_s = time.monotonic() - killed_at
    finally:
        go_on.set()
        for replica in both:
            await replica.stop()
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    ((_, status, executor),) = run_rows(pg_system_database)
    assert (status, executor) == ("SUCCESS", survivor.env["CATALOG_EXECUTOR_ID"])
    assert "took over a dead replica's runs" in survivor.log()
    assert [p.name for p in out.rglob("*.html")].count("catalog.html") == 1
    assert len(fake.requests) == 1  # the survivor attached to the agent's run: no second call
    assert took_s < 3 + 60  # the threshold, and then the run's remaining work


async def test_a_second_replica_with_a_live_replicas_executor_id_refuses_to_start(
    tmp_path: Path,
    manager: RunningManager,
    offline_runner: Runner,
    pg_system_database: str,
) -> None:
    (first, _) = both = await replicas(tmp_path, manager, offline_runner, pg_system_database)
    try:
        env = orchestrator_env(
            tmp_path,
            manager.address,
            offline_runner.address,
            **{**first.env, "CATALOG_ORCHESTRATOR_GRPC_PORT": str(free_port())},
        )
        env["CATALOG_ORCHESTRATOR_HTTP_PORT"] = str(free_port())
        with pytest.raises(RuntimeError, match="did not start"):
            await start_orchestrator(env, tmp_path / "twin.log")
    finally:
        for replica in both:
            await replica.stop()
    twin_log = (tmp_path / "twin.log").read_text()
    assert "executor id 'replica-a' is held by a running orchestrator" in twin_log
