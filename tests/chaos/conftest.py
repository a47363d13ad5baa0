"""One stack per case (tests/chaos/harness.py), since every case breaks a part of it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc

from tests.chaos.harness import (
    FAKE_AWS_ENV,
    LEASE_TTL_S,
    MotoS3,
    Service,
    check_no_containers,
    check_no_relays,
    runner_service,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.orchestrator.stack import (  # noqa: F401  (fixtures)
    PLANE,
    fake,
    orchestrator_env,
    pg_system_database,
    reader_table,
    wait_finished,
)
from tests.sandbox_manager.conftest import RunningManager, start_manager_process


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The dockerd case restarts the machine's one Docker engine under everything else that
    uses it: it is collected only with CATALOG_CHAOS_DOCKERD=1, on a machine of its own (left
    out, not skipped, so that CI's rule that nothing skips holds)."""
    if os.environ.get("CATALOG_CHAOS_DOCKERD") == "1":
        return
    kept = [item for item in items if "dockerd_restart" not in item.keywords]
    left_out = [item for item in items if "dockerd_restart" in item.keywords]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@dataclass
class Stack:
    workdir: Path
    manager: RunningManager
    runner: Service
    orchestrator: Service
    system_database: str
    fake: FakeAnthropic
    reader: tuple[str, str]
    stub: catalog_pb2_grpc.CatalogServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.orchestrator.address)
        self.stub = catalog_pb2_grpc.CatalogServiceStub(self._channel)

    async def start(self, prefix: str) -> str:
        url, schema = self.reader
        request = pb.StartCatalogRequest(
            db_conn_string=url, tables=[f"{schema}.orders"], s3_prefix=prefix, agents=["catalog"]
        )
        return (await self.stub.StartCatalog(request, timeout=60)).catalog_id

    async def finished(self, catalog_id: str, timeout_s: float = 300) -> pb.Catalog:
        return await wait_finished(self.stub, catalog_id, timeout_s)

    async def close(self) -> None:
        await self._channel.close()


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def stack(
    tmp_path: Path,
    docker_image: str,
    fake: FakeAnthropic,  # noqa: F811
    pg_system_database: str,  # noqa: F811
    reader_table: tuple[str, str],  # noqa: F811
    request: pytest.FixtureRequest,
) -> AsyncIterator[Stack]:
    """Manager, runner (against the fake Claude) and orchestrator on PostgreSQL; the case's
    `s3` server, when it asks for one, is the orchestrator's S3 endpoint."""
    manager = await start_manager_process(docker_image, min_warm="1", max_size="3", plane=PLANE)
    runner = runner_service(tmp_path, manager.address, fake.base_url)
    s3_url = request.getfixturevalue("s3").url if "s3" in request.fixturenames else ""
    env = orchestrator_env(
        tmp_path,
        manager.address,
        runner.address,
        DBOS_SYSTEM_DATABASE_URL=pg_system_database,
        CATALOG_LEASE_TTL_S=str(LEASE_TTL_S),
        CATALOG_STORAGE_RETRY_S="120",
        CATALOG_S3_ENDPOINT_URL=s3_url,
        **FAKE_AWS_ENV,
    )
    orchestrator = Service("services.orchestrator", env, "", tmp_path / "orchestrator.log")
    orchestrator.address = f"127.0.0.1:{env['CATALOG_ORCHESTRATOR_GRPC_PORT']}"
    built = None
    try:
        await runner.start()
        await orchestrator.start()
        built = Stack(
            tmp_path, manager, runner, orchestrator, pg_system_database, fake, reader_table
        )
        yield built
    finally:
        if built is not None:
            await built.close()
        for service in (orchestrator, runner):
            await service.kill(15)  # SIGTERM: a clean stop
        await manager.stop()
        await asyncio.sleep(0)
        check_no_containers(manager)
        check_no_relays(manager)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """`make chaos`'s figure, chaos.cases_passed (bench/benchlib.py's line), and each outcome."""
    from tests.chaos import test_faults

    def cases(kind: str) -> int:
        reports = terminalreporter.stats.get(kind, [])
        return sum(1 for r in reports if "tests/chaos/" in r.nodeid and r.when == "call")

    ran = cases("passed") + cases("failed")
    if not ran:
        return
    for case, outcome in test_faults.OUTCOMES.items():
        terminalreporter.write_line(f"chaos: {case}: {outcome}")
    line = {"name": "chaos.cases_passed", "value": cases("passed"), "unit": f"of {ran}"}
    terminalreporter.write_line(json.dumps(line))
    for name, value in test_faults.FIGURES.items():
        figure = {"name": name, "value": round(value, 3), "unit": "s"}
        terminalreporter.write_line(json.dumps(figure))
