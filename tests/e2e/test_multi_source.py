"""Several databases in one run (issue 15), end to end: PostgreSQL, MariaDB and DuckDB at once,
through gRPC, DBOS, Docker sandboxes, S3 on moto, the offline agent and Claude (the fake
Messages API driving the real SDK).

What a user sees: one run that succeeds, `catalog.json` keyed `source/table` with each source's
backend and version (never its DSN), a page with a section per source and what differs across
them (the app's `orders` in DuckDB and a lagging copy in PostgreSQL); a writable source refused
by name; a source cut off mid-run failing its own tables only, the page saying which; and the
passwords nowhere: S3, the services' logs, the model's requests, the DBOS system tables.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from catalog.v1 import catalog_pb2 as pb

from tests.e2e.multi_kit import (
    LAG,
    ORDERS,
    PAYMENTS,
    CuttableProxy,
    Database,
    duckdb_app,
    mariadb_payments,
    mariadb_writer,
    postgres_copy,
    section_of,
    section_text,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use
from tests.orchestrator.conftest import s3_bucket, s3_client, s3_server  # noqa: F401
from tests.orchestrator.stack import (  # noqa: F401
    PLANE,
    Orchestrator,
    Runner,
    StartOrchestrator,
    fake,
    start_runner,
    wait_finished,
)
from tests.orchestrator.test_databases import context_of
from tests.sandbox_manager.conftest import RunningManager, start_manager_process

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.mysql]

MARKER = "[[catalog-toolkit-report]]"
BACKENDS = {"pg": "postgres", "maria": "mysql", "duck": "duckdb"}


# --- the stack: a manager whose logs we keep and that mounts the DuckDB folder ---------------
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("multi-data")
    folder.chmod(0o755)  # the sandbox user reads it
    return folder


@pytest.fixture(scope="module")
def manager_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("multi-logs") / "manager.log"


@pytest.fixture(scope="module")
async def manager(
    docker_image: str, data_dir: Path, manager_log: Path
) -> AsyncIterator[RunningManager]:
    with manager_log.open("ab") as log:
        running = await start_manager_process(
            docker_image,
            min_warm="2",
            max_size="4",
            data_mount=str(data_dir),
            plane=PLANE,
            stderr=log,
        )
    yield running
    await running.stop()


@pytest.fixture
def duck(data_dir: Path) -> Database:
    return duckdb_app(data_dir)


@pytest.fixture
def pg() -> Iterator[Database]:
    with postgres_copy() as database:
        yield database


@pytest.fixture
def maria() -> Iterator[Database]:
    with mariadb_payments() as database:
        yield database


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """What the in-process agent runner logs (the manager and orchestrator log to files)."""
    caplog.set_level(logging.INFO)
    return caplog


# --- helpers ---------------------------------------------------------------------------------
def request_of(
    databases: list[Database], prefix: str, agents: list[str] | None = None
) -> pb.StartCatalogRequest:
    return pb.StartCatalogRequest(
        sources=[
            pb.DatabaseSource(name=d.name, db_conn_string=d.dsn, tables=[bare(t) for t in d.tables])
            for d in databases
        ],
        s3_prefix=prefix,
        agents=agents or [],
    )


def bare(table: str) -> str:
    """A table's name in its own database (the request names it so, under its source)."""
    return table.split("/", 1)[1]


async def run(orchestrator: Orchestrator, request: pb.StartCatalogRequest) -> pb.Catalog:
    started = await orchestrator.stub.StartCatalog(request)
    return await wait_finished(orchestrator.stub, started.catalog_id, timeout_s=240)


def stored_objects(s3_server: str, bucket: str) -> dict[str, bytes]:  # noqa: F811
    client = s3_client(s3_server)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listed
    }


def system_tables_text(path: Path) -> str:
    """Every value of every table of the orchestrator's DBOS system database as text, and the
    base64 pickles among them decoded (DBOS stores workflow inputs so)."""
    found: list[str] = []
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "workflow_status" in tables
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    found += [text, _unbase64(text)]
    return "\n".join(found)


def _unbase64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return ""


def text_of(path: Path) -> str:
    return path.read_text(errors="replace")


def assert_nowhere(secrets: list[str], places: dict[str, str]) -> None:
    for name, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a password or DSN is in {name}"


# --- the tests -------------------------------------------------------------------------------
async def test_three_databases_are_catalogued_in_one_run(
    start: StartOrchestrator,
    pg: Database,
    maria: Database,
    duck: Database,
    s3_server: str,  # noqa: F811
    s3_bucket: str,  # noqa: F811
    tmp_path: Path,
    manager_log: Path,
    logs: pytest.LogCaptureFixture,
) -> None:
    from services.common.clients import AgentStatus, CatalogClient, Source

    databases = [pg, maria, duck]
    orchestrator = await start(CATALOG_S3_ENDPOINT_URL=s3_server)
    async with CatalogClient(orchestrator.address) as client:
        catalog_id = await client.start(
            s3_prefix=f"s3://{s3_bucket}/multi",
            sources=[Source(d.name, d.dsn, tuple(bare(t) for t in d.tables)) for d in databases],
        )
        final = await client.wait(catalog_id, timeout_s=240)  # raises unless it SUCCEEDED
    assert final.sources == ("pg", "maria", "duck")
    assert list(final.tables) == [t for d in databases for t in d.tables]
    assert {a.status for a in final.agents} == {AgentStatus.SUCCEEDED}
    assert all(secret not in repr(final) for d in databases for secret in d.secrets)

    stored = stored_objects(s3_server, s3_bucket)
    catalog = json.loads(stored[f"multi/{final.timestamp}/catalog.json"])
    names = [t for d in databases for t in d.tables]
    assert catalog["format"] == 2 and catalog["requested"] == names
    assert set(catalog["tables"]) == set(names)
    tables = catalog["tables"]
    assert tables["duck/orders"]["rows"] == ORDERS
    assert tables["pg/public.orders"]["rows"] == ORDERS - LAG
    assert tables["maria/payments"]["rows"] == PAYMENTS
    sources = catalog["sources"]
    assert list(sources) == ["pg", "maria", "duck"]
    for d in databases:
        assert sources[d.name]["backend"] == BACKENDS[d.name]
        assert sources[d.name]["tables"] == list(d.tables)
        assert not sources[d.name].get("failed")
    assert sources["pg"]["version"].startswith("PostgreSQL 15")
    assert "MariaDB" in sources["maria"]["version"] and sources["duck"]["version"]
    described = json.dumps(sources)
    assert "127.0.0.1" not in described and "multi_reader" not in described
    # The same table in two sources: the copy in PostgreSQL lags the app's by LAG rows.
    findings = catalog["cross_source"]["findings"]
    both = [
        f
        for f in findings
        if "duck/orders" in json.dumps(f) and "pg/public.orders" in json.dumps(f)
    ]
    assert both, findings

    page = stored[f"multi/{final.timestamp}/catalog.html"].decode()
    names_ = [d.name for d in databases]
    for d in databases:  # a section per source, holding its own tables
        assert section_of(page, d.name), d.name
        assert all(t in section_text(page, d.name, names_) for t in d.tables), d.name
    assert "Across sources" in page
    across = page.split("Across sources", 1)[1]
    assert f"{LAG:,}" in across and "duck/orders" in across and "pg/public.orders" in across

    secrets = [s for d in databases for s in d.secrets]
    await orchestrator.stop()  # its last log lines are written
    assert_nowhere(
        secrets,
        {
            **{f"S3 object {key}": body.decode(errors="replace") for key, body in stored.items()},
            "the orchestrator's log": orchestrator.log(),
            "the manager's log": text_of(manager_log),
            "the runner's log": logs.text,
            "the DBOS system tables": system_tables_text(tmp_path / "dbos.sqlite"),
        },
    )


async def test_a_writable_second_source_is_refused_by_name(
    start: StartOrchestrator, pg: Database, tmp_path: Path
) -> None:
    with mariadb_writer("billing") as writer:
        orchestrator = await start()
        final = await run(orchestrator, request_of([pg, writer], f"file://{tmp_path}/out"))
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert final.error.code == "WRITABLE_CONNECTION"
    assert "`billing`" in final.error.message and "`pg`" not in final.error.message
    assert not (tmp_path / "out").exists()  # nothing was catalogued
    assert_nowhere(list(writer.secrets), {"the error": str(final.error)})


@pytest.fixture
async def proxy() -> AsyncIterator[CuttableProxy]:
    started = await CuttableProxy("127.0.0.1", 3306).start()
    yield started
    await started.cut()


async def test_a_source_cut_off_mid_run_fails_its_own_tables_only(
    start: StartOrchestrator,
    manager: RunningManager,
    fake: FakeAnthropic,  # noqa: F811
    proxy: CuttableProxy,
    pg: Database,
    duck: Database,
    s3_server: str,  # noqa: F811
    s3_bucket: str,  # noqa: F811
    tmp_path: Path,
    manager_log: Path,
    logs: pytest.LogCaptureFixture,
) -> None:
    """MariaDB is reached through a proxy the model's first turn cuts: the catalog agent's
    sandbox has opened it by then, and the toolkit has not profiled anything yet."""
    with mariadb_payments(port=proxy.port) as maria:
        databases = [pg, maria, duck]
        seen: dict[str, Any] = {}

        async def first_turn(body: dict[str, Any]) -> Reply:
            seen.update(context_of(body))
            await proxy.cut()
            code = (
                "import catalog_toolkit\n"
                f"print(catalog_toolkit.profile_digests(cons, {seen['tables']!r}))"
            )
            return Reply(tool_use("execute_python", {"code": code}))

        page = f"<h1>Shop</h1><p>By Claude.</p>{MARKER}"
        fake.script(first_turn, Reply(tool_use("submit_html", {"content": page})))
        claude: Runner = await start_runner(manager.address, fake.base_url)
        try:
            orchestrator = await start(
                runner_address=claude.address, CATALOG_S3_ENDPOINT_URL=s3_server
            )
            final = await run(
                orchestrator, request_of(databases, f"s3://{s3_bucket}/cut", agents=["catalog"])
            )
        finally:
            await claude.stop()

    assert proxy.cut_done and proxy.connections > 0  # the proof and the session went through it
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    # The model was told each source's tables.
    assert seen["tables"] == [t for d in databases for t in d.tables]
    assert seen["sources"] == [{"name": d.name, "tables": list(d.tables)} for d in databases]

    stored = stored_objects(s3_server, s3_bucket)
    catalog = json.loads(stored[f"cut/{final.timestamp}/catalog.json"])
    failed = catalog["sources"]["maria"]["failed"]
    assert set(failed) == set(maria.tables)
    # in words, not only the driver's `(2006, '')`
    assert all("connection to the database was lost" in why for why in failed.values()), failed
    assert catalog["counts"]["failed"] == len(maria.tables)
    for d in (pg, duck):
        assert not catalog["sources"][d.name].get("failed")
        assert all(catalog["tables"][t]["rows"] > 0 for t in d.tables)
    page = stored[f"cut/{final.timestamp}/catalog.html"].decode()
    assert "By Claude." in page and MARKER not in page
    # maria's section says its tables could not be profiled, and names them.
    maria_part = section_text(page, "maria", ["pg", "duck"])
    assert re.search(r"could not|failed|unreachable|lost", maria_part, re.I), maria_part[:500]
    assert all(t in maria_part for t in maria.tables)
    for d in (pg, duck):
        part = section_text(page, d.name, ["pg", "maria", "duck"])
        assert all(t in part for t in d.tables) and not any(t in part for t in maria.tables)
    # the sections keep the request's order: the failed source is not pushed to the end
    starts = [page.index(section_text(page, d.name, ["pg", "maria", "duck"])) for d in databases]
    assert starts == sorted(starts)

    secrets = [s for d in databases for s in d.secrets]
    await orchestrator.stop()  # its last log lines are written
    assert_nowhere(
        secrets,
        {
            "the model's requests": json.dumps([r.body for r in fake.requests]),
            **{f"S3 object {key}": body.decode(errors="replace") for key, body in stored.items()},
            "the orchestrator's log": orchestrator.log(),
            "the manager's log": text_of(manager_log),
            "the runner's log": logs.text,
            "the DBOS system tables": system_tables_text(tmp_path / "dbos.sqlite"),
        },
    )
