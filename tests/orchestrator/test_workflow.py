"""The catalog workflow through the orchestrator's APIs, on the real stack: a Docker sandbox
manager, an agent runner (offline here), DBOS on SQLite, and real databases."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from catalog.v1 import catalog_pb2 as pb

from services.common.ports import free_port
from tests.orchestrator.stack import (
    PASSWORD,
    StartOrchestrator,
    wait_finished,
    watch,
    with_password,
)

BOTH = ["catalog", "summary"]  # the agents these tests check (the default pipeline has more)
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def request(reader_table: tuple[str, str], prefix: str, **fields: object) -> pb.StartCatalogRequest:
    url, schema = reader_table
    return pb.StartCatalogRequest(
        db_conn_string=with_password(url),
        tables=[f"{schema}.orders"],
        s3_prefix=prefix,
        **fields,  # type: ignore[arg-type]
    )


async def test_a_catalog_runs_both_agents_and_writes_both_pages(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    out = tmp_path / "catalogs"
    started = await orchestrator.stub.StartCatalog(
        request(reader_table, f"file://{out}", agents=BOTH)
    )
    events = await watch(orchestrator.stub, started.catalog_id)

    final = events[-1].final
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    steps = [
        (e.step_changed.step, e.step_changed.agent_name)
        for e in events
        if e.WhichOneof("event") == "step_changed"
    ]
    assert steps == [
        (pb.CATALOG_STEP_ACQUIRING_SANDBOX, ""),
        (pb.CATALOG_STEP_CHECKING_READ_ONLY, ""),
        (pb.CATALOG_STEP_RUNNING_AGENT, "catalog"),
        (pb.CATALOG_STEP_RESETTING_SANDBOX, ""),
        (pb.CATALOG_STEP_RUNNING_AGENT, "summary"),
        (pb.CATALOG_STEP_RELEASING, ""),
        (pb.CATALOG_STEP_DONE, ""),
    ]
    assert [(a.agent_name, a.status) for a in final.agents] == [
        ("catalog", pb.AGENT_STATUS_SUCCEEDED),
        ("summary", pb.AGENT_STATUS_SUCCEEDED),
    ]
    written_pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    assert written_pages == [
        f"{final.timestamp}/catalog.html",
        f"{final.timestamp}/summary.html",
    ]
    assert [o.uri for o in final.outputs] == [f"file://{out}/{w}" for w in written_pages]
    assert "orders" in (out / written_pages[0]).read_text()
    assert [u.agent_name for u in final.agent_usage] == ["catalog", "summary"]
    assert PASSWORD not in "".join(p.read_text() for p in out.rglob("*.html"))
    lines = [json.loads(line) for line in orchestrator.log().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("workflow_id") == started.catalog_id]
    messages = [line["message"] for line in mine]
    for expected in ("workflow started", "step started", "agent ended", "page written"):
        assert expected in messages
    assert messages[-1] == "workflow ended"
    written = [line for line in mine if line["message"] == "page written"]
    data_files = [w.replace(".html", ".json") for w in written_pages]
    assert {line["key"] for line in written} == {str(out / w) for w in written_pages + data_files}
    assert all(line["size"] > 0 for line in written)


async def test_each_page_has_its_data_beside_it_as_json(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    """The catalog's JSON holds the profile the page shows; the summary's JSON its findings,
    and the second run's summary compares numbers with the first run's."""
    orchestrator = await start()
    out = tmp_path / "catalogs"
    finals = []
    for _ in range(2):
        started = await orchestrator.stub.StartCatalog(
            request(reader_table, f"file://{out}", agents=BOTH)
        )
        finals.append(await wait_finished(orchestrator.stub, started.catalog_id))
    first, second = (out / f.timestamp for f in finals)
    assert [o.data_uri for o in finals[0].outputs] == [
        f"file://{first}/catalog.json",
        f"file://{first}/summary.json",
    ]
    catalog = json.loads((first / "catalog.json").read_text())
    _, schema = reader_table
    table = catalog["tables"][f"{schema}.orders"]
    assert catalog["kind"] == "catalog" and catalog["requested"] == [f"{schema}.orders"]
    assert table["rows"] == 1000 and table["how"]["rows"] == "exact"
    assert table["scope"]["kind"] == "full" and not table["errors"]
    amount = next(c for c in table["columns"] if c["name"] == "amount")
    assert (amount["min"], amount["max"]) == (1.5, 1500.0)
    assert f"{table['rows']:,}" in (first / "catalog.html").read_text()
    summary = json.loads((second / "summary.json").read_text())
    assert summary["kind"] == "summary" and summary["compared_with"] == finals[0].timestamp
    assert summary["runs"] == [f.timestamp for f in finals]
    assert PASSWORD not in "".join(p.read_text() for p in out.rglob("*.json"))


async def test_the_password_is_in_no_column_of_the_system_database(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    started = await orchestrator.stub.StartCatalog(request(reader_table, f"file://{tmp_path}/out"))
    await wait_finished(orchestrator.stub, started.catalog_id)
    with sqlite3.connect(tmp_path / "dbos.sqlite") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "workflow_status" in tables
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    text = (
                        value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    )
                    assert PASSWORD not in text, table
    assert PASSWORD not in orchestrator.log()


async def test_a_missing_table_fails_the_run_at_the_check_and_writes_nothing(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    url, schema = reader_table
    started = await orchestrator.stub.StartCatalog(
        pb.StartCatalogRequest(
            db_conn_string=url, tables=[f"{schema}.nope"], s3_prefix=f"file://{tmp_path}/out"
        )
    )
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert (final.error.code, final.error.step) == (
        "TABLE_NOT_FOUND",
        pb.CATALOG_STEP_CHECKING_READ_ONLY,
    )
    assert f"{schema}.nope" in final.error.message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("fields", "violation"),
    [
        ({"s3_prefix": "http://bucket/x"}, "s3_prefix"),
        ({"s3_prefix": "s3://Bad_Bucket/x"}, "s3_prefix"),
        ({"s3_prefix": "file:///tmp/../etc"}, "s3_prefix"),
        ({"tables": [""]}, "tables[0]"),  # none is fine (the run lists them), empty is not
        ({"tables": ['orders"; drop table x']}, "tables[0]"),  # quotes are never part of one
        ({"tables": ["public.orders", "a.b.c"]}, "tables[1]"),
        ({"db_conn_string": "sqlite:///x.db"}, "db_conn_string"),
        ({"idempotency_key": "has space"}, "idempotency_key"),
    ],
)
async def test_bad_requests_are_invalid_argument_naming_the_field(
    start: StartOrchestrator, fields: dict[str, object], violation: str
) -> None:
    orchestrator = await start()
    base: dict[str, object] = {
        "db_conn_string": with_password("postgresql://postgres@127.0.0.1:5432/postgres"),
        "tables": ["public.orders"],
        "s3_prefix": "file:///tmp/catalogs",
    }
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orchestrator.stub.StartCatalog(pb.StartCatalogRequest(**{**base, **fields}))  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation in (caught.value.details() or "")
    assert PASSWORD not in (caught.value.details() or "")


async def test_a_user_that_can_write_is_refused_unless_the_request_allows_it(
    start: StartOrchestrator, postgres_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    url, schema = postgres_table  # the superuser: the kernel's read-only session is not enough
    refused = await orchestrator.stub.StartCatalog(
        request((url, schema), f"file://{tmp_path}/refused")
    )
    final = await wait_finished(orchestrator.stub, refused.catalog_id)
    assert final.status == pb.CATALOG_STATUS_FAILED
    assert (final.error.code, final.error.step) == (
        "WRITABLE_CONNECTION",
        pb.CATALOG_STEP_CHECKING_READ_ONLY,
    )
    assert "superuser" in final.error.message
    assert not (tmp_path / "refused").exists()

    allowed = await orchestrator.stub.StartCatalog(
        request((url, schema), f"file://{tmp_path}/allowed", allow_writable=True)
    )
    final = await wait_finished(orchestrator.stub, allowed.catalog_id)
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error


@pytest.fixture
def mysql_reader(mysql_table: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """mysql_table's database, reached as a user that may only read it: (URL, database)."""
    import MySQLdb

    server, database = mysql_table
    user = f"reader_{uuid.uuid4().hex[:8]}"
    conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    cursor = conn.cursor()
    for host in ("%", "localhost"):  # localhost: so no anonymous local account shadows ours
        cursor.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{PASSWORD}'")
        cursor.execute(f"GRANT SELECT ON {database}.* TO '{user}'@'{host}'")
    try:
        yield server.replace("root@", f"{user}:{PASSWORD}@", 1) + f"/{database}", database
    finally:
        for host in ("%", "localhost"):
            cursor.execute(f"DROP USER '{user}'@'{host}'")
        conn.close()


async def test_a_mariadb_database_is_cataloged_through_a_read_only_user(
    start: StartOrchestrator, mysql_reader: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    url, _ = mysql_reader
    started = await orchestrator.stub.StartCatalog(
        pb.StartCatalogRequest(
            db_conn_string=url, tables=["orders"], s3_prefix=f"file://{tmp_path}/o"
        )
    )
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    page = next((tmp_path / "o").rglob("catalog.html")).read_text()
    assert "orders" in page and "1000" in page.replace(",", "")
    assert PASSWORD not in page


async def test_file_prefixes_outside_the_configured_roots_are_refused(
    start: StartOrchestrator, tmp_path: Path
) -> None:
    orchestrator = await start(CATALOG_FILE_ROOTS=f"{tmp_path}/allowed")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orchestrator.stub.StartCatalog(
            pb.StartCatalogRequest(
                db_conn_string="postgresql://reader@127.0.0.1:5432/postgres",
                tables=["public.orders"],
                s3_prefix=f"file://{tmp_path}/allowed-not",
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{tmp_path}/allowed" in (caught.value.details() or "")


async def test_a_handled_failure_is_logged_once_as_the_runs_outcome(
    start: StartOrchestrator, tmp_path: Path
) -> None:
    orchestrator = await start()
    nobody = f"postgresql://reader@127.0.0.1:{free_port()}/db"  # no database listens there
    started = await orchestrator.stub.StartCatalog(
        pb.StartCatalogRequest(
            db_conn_string=nobody, tables=["public.t"], s3_prefix=f"file://{tmp_path}/out"
        )
    )
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.error.code == "DATABASE_UNREACHABLE"
    records = [json.loads(line) for line in orchestrator.log().splitlines() if line.startswith("{")]
    about_run = [r for r in records if started.catalog_id in json.dumps(r)]
    assert [r for r in records if r["level"] == "ERROR" or "exception" in r] == []
    ended = [r for r in about_run if r["message"] == "workflow ended"]
    assert [(r["status"], r["code"]) for r in ended] == [("FAILED", "DATABASE_UNREACHABLE")]
