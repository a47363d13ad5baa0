"""PostgreSQL, MariaDB and DuckDB, each through the whole product: gRPC, DBOS, a Docker sandbox,
S3 (moto), the offline agent for a first run and Claude (the fake Messages API) for a second.

The shop (tests/toolkit/shop.py) has names that need quoting, an empty table, keys, comments, a
cell holding HTML, and a reader whose password holds `@:/?#%`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from catalog.v1 import catalog_pb2 as pb

from tests.conftest import MYSQL_URL, POSTGRES_URL
from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use
from tests.orchestrator.conftest import s3_client
from tests.orchestrator.stack import (
    PLANE,
    Runner,
    StartOrchestrator,
    start_runner,
    wait_finished,
)
from tests.sandbox_manager.conftest import RunningManager, start_manager_process
from tests.toolkit.shop import (
    BACKENDS,
    CUSTOMERS,
    HOSTILE,
    ORDERS,
    PASSWORD,
    Shop,
    mysql_shop,
    postgres_shop,
    shop_in,
)

MARKER = "[[catalog-toolkit-report]]"


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


@pytest.fixture(params=BACKENDS)
def shop(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Shop]:
    folder = data_dir / os.urandom(4).hex()  # one file per test, in the mounted folder
    folder.mkdir(mode=0o755)
    with shop_in(request.param, folder) as built:
        yield built


def claude_script(fake: FakeAnthropic) -> None:
    """What Claude does here: profile with the toolkit, write a line, leave the figures to the
    marker; then compare the runs the same way."""

    def catalog_turn(body: dict[str, Any]) -> Reply:
        tables = context_of(body)["tables"]
        code = (
            "import catalog_toolkit\n"
            + "".join(f"catalog_toolkit.profile_table(con, {t!r})\n" for t in tables)
            + "print('profiled', len(catalog_toolkit.record.profiles))"
        )
        return Reply(tool_use("execute_python", {"code": code}))

    def summary_turn(body: dict[str, Any]) -> Reply:
        context = context_of(body)
        code = (
            "import catalog_toolkit\n_c = catalog_toolkit.compare_runs("
            f"{context['history_dir']!r}, {context['current_timestamp']!r})\n"
            "print(len(_c['findings']), 'findings')"
        )
        return Reply(tool_use("execute_python", {"code": code}))

    fake.script(
        catalog_turn,
        Reply(tool_use("submit_html", {"content": f"<h1>Shop</h1><p>By Claude.</p>{MARKER}"})),
        summary_turn,
        Reply(tool_use("submit_html", {"content": f"<h1>Changes</h1>{MARKER}"})),
    )


def context_of(body: dict[str, Any]) -> dict[str, Any]:
    first = body["messages"][0]["content"]
    text = first if isinstance(first, str) else first[0]["text"]
    return json.loads(re.search(r"```json\n(.*?)\n```", text, re.DOTALL)[1])  # type: ignore[index]


def objects(s3_server: str, bucket: str, prefix: str) -> dict[str, bytes]:
    client = s3_client(s3_server)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        item["Key"][len(prefix) + 1 :]: client.get_object(Bucket=bucket, Key=item["Key"])[
            "Body"
        ].read()
        for item in listed
    }


async def test_each_database_is_catalogued_twice_through_the_whole_stack(
    shop: Shop,
    start: StartOrchestrator,
    manager: RunningManager,
    fake: FakeAnthropic,
    s3_server: str,
    s3_bucket: str,
) -> None:
    claude: Runner = await start_runner(manager.address, fake.base_url)
    try:
        orchestrator = await start(CATALOG_S3_ENDPOINT_URL=s3_server)
        prefix = f"s3://{s3_bucket}/shop/{shop.backend}"
        # The catalog and the summary: the other agents' pipeline has test_pipeline_agents.py.
        request = pb.StartCatalogRequest(
            db_conn_string=shop.reader_dsn,
            tables=shop.tables,
            s3_prefix=prefix,
            agents=["catalog", "summary"],
        )
        first = await wait_finished(
            orchestrator.stub, (await orchestrator.stub.StartCatalog(request)).catalog_id
        )
        assert first.status == pb.CATALOG_STATUS_SUCCEEDED, first.error
        # The second run goes through Claude: the orchestrator restarts with the other runner.
        await orchestrator.stop()
        add_orders(shop)
        claude_script(fake)
        second_orchestrator = await start(
            runner_address=claude.address, CATALOG_S3_ENDPOINT_URL=s3_server
        )
        second = await wait_finished(
            second_orchestrator.stub,
            (await second_orchestrator.stub.StartCatalog(request)).catalog_id,
        )
        assert second.status == pb.CATALOG_STATUS_SUCCEEDED, second.error
    finally:
        await claude.stop()

    key_prefix = f"shop/{shop.backend}"
    stored = objects(s3_server, s3_bucket, key_prefix)
    names = {"catalog.html", "catalog.json", "summary.html", "summary.json"}
    assert set(stored) == {f"{run.timestamp}/{n}" for run in (first, second) for n in names}
    everything = b"".join(stored.values()).decode() + orchestrator.log()
    assert PASSWORD not in everything and "p%40ss" not in everything
    assert PASSWORD not in json.dumps([r.body for r in fake.requests])

    catalog = json.loads(stored[f"{first.timestamp}/catalog.json"])
    tables = catalog["tables"]
    customers = tables[shop.table("customers")]
    orders = tables[shop.table("Order Details")]
    assert (customers["rows"], orders["rows"], tables[shop.table("empty")]["rows"]) == (
        CUSTOMERS,
        ORDERS,
        0,
    )
    assert orders["primary_key"] == ["id"] and orders["foreign_keys"][0]["columns"] == [
        "customer_id"
    ]
    assert customers["comment"] == "people who bought something"
    assert {c["name"] for c in orders["columns"]} >= {"select", "status", "amount"}
    page = stored[f"{first.timestamp}/catalog.html"].decode()
    assert "Order Details" in page and "without a language model" in page
    assert HOSTILE not in page and "&lt;script&gt;" in page
    # The histograms, counted in the database, reach the stored page as images it keeps.
    amount = next(c for c in orders["columns"] if c["name"] == "amount")
    assert sum(count for _, _, count in amount["histogram"]) == ORDERS
    assert '<img src="data:image/svg+xml;base64,' in page and 'alt="distribution of amount' in page

    claude_page = stored[f"{second.timestamp}/catalog.html"].decode()
    assert "By Claude." in claude_page and MARKER not in claude_page
    assert "Order Details" in claude_page and f"{ORDERS + 100:,}" in claude_page
    summary = json.loads(stored[f"{second.timestamp}/summary.json"])
    assert summary["compared_with"] == first.timestamp
    grew = [f for f in summary["findings"] if f["kind"] == "rows_grew"]
    assert [(f["table"], f["severity"]) for f in grew] == [(shop.table("Order Details"), "good")]
    assert "100 new rows" in stored[f"{second.timestamp}/summary.html"].decode()


def add_orders(shop: Shop) -> None:
    rows = [(ORDERS + i, 1 + i, "paid", 10.0, 1) for i in range(1, 101)]
    if shop.backend == "postgres":
        import psycopg

        with psycopg.connect(shop.admin_dsn, autocommit=True) as db, db.cursor() as cur:
            cur.executemany(
                f'INSERT INTO "{shop.schema}"."Order Details" VALUES (%s, %s, %s, %s, %s)', rows
            )
    elif shop.backend == "mysql":
        import MySQLdb

        db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
        cur = db.cursor()
        cur.executemany(
            f"INSERT INTO `{shop.schema}`.`Order Details` VALUES (%s, %s, %s, %s, %s)", rows
        )
        db.commit()
        db.close()
    else:
        import duckdb

        assert shop.path is not None
        with duckdb.connect(str(shop.path)) as db:
            db.executemany(
                f'INSERT INTO "{shop.schema}"."Order Details" VALUES (?, ?, ?, ?, ?)', rows
            )


@pytest.mark.parametrize("backend", ["postgres", "mysql"])
async def test_writable_credentials_are_refused_unless_the_request_allows_them(
    backend: str, start: StartOrchestrator, tmp_path: Path
) -> None:
    shop_of = (
        postgres_shop(POSTGRES_URL)
        if backend == "postgres"
        else mysql_shop(MYSQL_URL.rsplit("/", 1)[0])
    )
    with shop_of as shop:
        orchestrator = await start()
        request = pb.StartCatalogRequest(
            db_conn_string=shop.admin_dsn,
            tables=[shop.table("customers")],
            s3_prefix=f"file://{tmp_path}/out",
        )
        refused = await wait_finished(
            orchestrator.stub, (await orchestrator.stub.StartCatalog(request)).catalog_id
        )
        assert refused.status == pb.CATALOG_STATUS_FAILED
        assert refused.error.code == "WRITABLE_CONNECTION"
        assert "allow_writable" in refused.error.message
        assert not (tmp_path / "out").exists()
        request.allow_writable = True
        accepted = await wait_finished(
            orchestrator.stub, (await orchestrator.stub.StartCatalog(request)).catalog_id
        )
        assert accepted.status == pb.CATALOG_STATUS_SUCCEEDED, accepted.error


async def test_a_write_right_from_a_role_is_found(start: StartOrchestrator, tmp_path: Path) -> None:
    """MariaDB's SHOW GRANTS names a default role, not its rights: the probe reads the role's."""
    import MySQLdb

    with mysql_shop(MYSQL_URL.rsplit("/", 1)[0]) as shop:
        role, user = f"writer_{os.urandom(3).hex()}", f"via_role_{os.urandom(3).hex()}"
        db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
        cur = db.cursor()
        try:
            cur.execute(f"CREATE ROLE {role}")
            cur.execute(f"GRANT SELECT, INSERT ON `{shop.schema}`.* TO {role}")
            cur.execute(f"CREATE USER '{user}'@'%'")
            cur.execute(f"GRANT {role} TO '{user}'@'%'")
            cur.execute(f"SET DEFAULT ROLE {role} FOR '{user}'@'%'")
            orchestrator = await start()
            request = pb.StartCatalogRequest(
                db_conn_string=f"mysql://{user}@127.0.0.1:3306/{shop.schema}",
                tables=[shop.table("customers")],
                s3_prefix=f"file://{tmp_path}/out",
            )
            final = await wait_finished(
                orchestrator.stub, (await orchestrator.stub.StartCatalog(request)).catalog_id
            )
            assert final.status == pb.CATALOG_STATUS_FAILED
            assert final.error.code == "WRITABLE_CONNECTION"
            assert f"INSERT on `{shop.schema}`.* through role `{role}`" in final.error.message
        finally:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cur.execute(f"DROP ROLE IF EXISTS {role}")
            db.close()
