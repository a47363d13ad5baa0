"""Runs over several databases through the whole stack: gRPC, DBOS, a Docker sandbox opening
each source as `cons[name]`, the per-source read-only proof and the offline agent. The shop
(tests/toolkit/shop.py) is built once per source: a DuckDB file and PostgreSQL (MariaDB for
the writable source), each reader with a password that must never show."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from catalog.v1 import catalog_pb2 as pb

from tests.conftest import MYSQL_URL, POSTGRES_URL
from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use
from tests.orchestrator.stack import PLANE, Runner, StartOrchestrator, wait_finished
from tests.sandbox_manager.conftest import RunningManager, start_manager_process
from tests.toolkit.shop import PASSWORD, Shop, duckdb_shop, mysql_shop, postgres_shop

CHANGED = "Changed-pw-3310"  # the billing reader's password once the catalog agent started


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder DuckDB files live in, mounted read only into the sandboxes."""
    folder = tmp_path_factory.mktemp("data")
    folder.chmod(0o755)  # the sandbox user (uid 10001) reads it
    return folder


@pytest.fixture(scope="module")
async def manager(docker_image: str, data_dir: Path) -> AsyncIterator[RunningManager]:
    """This module's manager: like the others', plus the DuckDB data folder."""
    running = await start_manager_process(
        docker_image, min_warm="2", max_size="4", data_mount=str(data_dir), plane=PLANE
    )
    yield running
    await running.stop()


@pytest.fixture
def shops(data_dir: Path) -> Iterator[dict[str, Shop]]:
    """The shop as a DuckDB file, in PostgreSQL and in MariaDB."""
    folder = data_dir / os.urandom(4).hex()
    folder.mkdir(mode=0o755)
    with ExitStack() as stack:
        yield {
            "duckdb": stack.enter_context(duckdb_shop(folder)),
            "postgres": stack.enter_context(postgres_shop(POSTGRES_URL)),
            "mysql": stack.enter_context(mysql_shop(MYSQL_URL.rsplit("/", 1)[0])),
        }


def source(name: str, dsn: str, tables: list[str]) -> pb.DatabaseSource:
    return pb.DatabaseSource(name=name, db_conn_string=dsn, tables=tables)


async def run(start: StartOrchestrator, request: pb.StartCatalogRequest) -> pb.Catalog:
    orchestrator = await start()
    started = await orchestrator.stub.StartCatalog(request)
    return await wait_finished(orchestrator.stub, started.catalog_id)


async def test_a_run_over_a_duckdb_file_and_postgresql_catalogs_both_sources(
    shops: dict[str, Shop], start: StartOrchestrator, tmp_path: Path
) -> None:
    app, warehouse = shops["duckdb"], shops["postgres"]
    out = tmp_path / "estate"
    request = pb.StartCatalogRequest(
        sources=[
            source("app", app.reader_dsn, [app.table("customers"), app.table("Order Details")]),
            source("warehouse", warehouse.reader_dsn, [warehouse.table("Order Details")]),
        ],
        s3_prefix=f"file://{out}",
        agents=["catalog", "pii", "summary"],  # pii reads the databases again, after a reset
    )
    final = await run(start, request)
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    assert [o.agent_name for o in final.outputs] == ["catalog", "pii", "summary"]
    assert list(final.sources) == ["app", "warehouse"]
    tables = [
        f"app/{app.table('customers')}",
        f"app/{app.table('Order Details')}",
        f"warehouse/{warehouse.table('Order Details')}",
    ]
    assert list(final.tables) == tables
    folder = out / final.timestamp
    catalog = json.loads((folder / "catalog.json").read_text())
    assert set(catalog["tables"]) == set(tables)
    assert catalog["tables"][tables[0]]["rows"] == 300
    assert catalog["tables"][tables[2]]["rows"] == 1200
    assert list(catalog["sources"]) == ["app", "warehouse"]
    assert catalog["sources"]["warehouse"]["backend"] == "postgres"
    stored = "".join(p.read_text(errors="replace") for p in folder.iterdir())
    log = (tmp_path / "orchestrator.log").read_text()
    for secret in (PASSWORD, warehouse.reader_dsn):
        assert secret not in stored and secret not in log


async def test_a_second_source_that_can_write_is_refused_naming_it(
    shops: dict[str, Shop], start: StartOrchestrator, tmp_path: Path
) -> None:
    app, billing = shops["postgres"], shops["mysql"]
    request = pb.StartCatalogRequest(
        sources=[
            source("app", app.reader_dsn, [app.table("customers")]),
            source("billing", billing.admin_dsn, [billing.table("customers")]),
        ],
        s3_prefix=f"file://{tmp_path}/out",
    )
    final = await run(start, request)
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "WRITABLE_CONNECTION", final.error
    assert final.error.message.startswith("the source `billing` can write ("), final.error
    assert "`app`" not in final.error.message and "allow_writable" in final.error.message
    assert not (tmp_path / "out").exists()


async def test_a_missing_table_on_one_source_is_table_not_found_naming_the_source(
    shops: dict[str, Shop], start: StartOrchestrator, tmp_path: Path
) -> None:
    app, warehouse = shops["duckdb"], shops["postgres"]
    missing = warehouse.table("no_such_table")
    request = pb.StartCatalogRequest(
        sources=[
            source("app", app.reader_dsn, [app.table("customers")]),
            source("warehouse", warehouse.reader_dsn, [warehouse.table("customers"), missing]),
        ],
        s3_prefix=f"file://{tmp_path}/out",
    )
    final = await run(start, request)
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "TABLE_NOT_FOUND", final.error
    assert final.error.message == (
        "on the source `warehouse`: these tables do not exist or cannot be read: "
        f"warehouse/{missing}"
    )
    assert PASSWORD not in (tmp_path / "orchestrator.log").read_text()


async def test_a_source_that_no_longer_opens_at_a_reset_is_left_out_and_the_run_goes_on(
    shops: dict[str, Shop],
    start: StartOrchestrator,
    claude_runner: Runner,
    fake: FakeAnthropic,
    tmp_path: Path,
) -> None:
    """The billing reader's password changes while the catalog agent works: its session keeps
    its connection, but the pii agent's reset cannot log in again. That agent runs with the
    app's database alone, and the run is not failed for it."""
    import MySQLdb

    app, billing = shops["duckdb"], shops["mysql"]
    user = urlsplit(billing.reader_dsn).username

    def catalog_turn(body: dict[str, Any]) -> Reply:
        db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            db.cursor().execute(f"ALTER USER '{user}'@'%' IDENTIFIED BY '{CHANGED}'")
        finally:
            db.close()
        return Reply(tool_use("submit_html", {"content": "<h1>The estate</h1>"}))

    fake.script(catalog_turn, Reply(tool_use("submit_html", {"content": "<h1>PII</h1>"})))
    request = pb.StartCatalogRequest(
        sources=[
            source("app", app.reader_dsn, [app.table("customers")]),
            source("billing", billing.reader_dsn, [billing.table("customers")]),
        ],
        s3_prefix=f"file://{tmp_path}/out",
        agents=["catalog", "pii"],
    )
    orchestrator = await start(runner_address=claude_runner.address)
    started = await orchestrator.stub.StartCatalog(request)
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    assert [o.agent_name for o in final.outputs] == ["catalog", "pii"]
    lines = [json.loads(line) for line in orchestrator.log().splitlines() if line.startswith("{")]
    left_out = [line for line in lines if line["message"].startswith("source not opened again")]
    assert [(line["source"], line["level"]) for line in left_out] == [("billing", "WARNING")]
    assert "1045" in left_out[0]["error"] or "denied" in left_out[0]["error"], left_out
    log = orchestrator.log()
    assert PASSWORD not in log and CHANGED not in log and "p%40ss" not in log


async def test_a_source_that_refuses_its_user_fails_the_run_naming_it(
    shops: dict[str, Shop], start: StartOrchestrator, tmp_path: Path
) -> None:
    app, billing = shops["duckdb"], shops["mysql"]
    wrong = billing.reader_dsn.replace(urlsplit(billing.reader_dsn).password or "", CHANGED)
    request = pb.StartCatalogRequest(
        sources=[
            source("app", app.reader_dsn, [app.table("customers")]),
            source("billing", wrong, [billing.table("customers")]),
        ],
        s3_prefix=f"file://{tmp_path}/out",
    )
    final = await run(start, request)
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "DATABASE_AUTH_FAILED", final.error
    assert final.error.message.startswith("the source `billing`: the database refused the user")
    assert CHANGED not in final.error.message
    assert CHANGED not in (tmp_path / "orchestrator.log").read_text()
