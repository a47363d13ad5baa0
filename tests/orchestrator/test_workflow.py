"""The catalog workflow through the orchestrator's APIs, on the real stack: a Docker sandbox
manager, an agent runner (offline here), DBOS on SQLite, and real databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest
from catalog.v1 import catalog_pb2 as pb

from tests.orchestrator.stack import (
    PASSWORD,
    StartOrchestrator,
    wait_finished,
    watch,
    with_password,
)

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def request(
    postgres_table: tuple[str, str], prefix: str, **fields: object
) -> pb.StartCatalogRequest:
    url, schema = postgres_table
    return pb.StartCatalogRequest(
        db_conn_string=with_password(url),
        tables=[f"{schema}.orders"],
        s3_prefix=prefix,
        **fields,  # type: ignore[arg-type]
    )


async def test_a_catalog_runs_both_agents_and_writes_both_pages(
    start: StartOrchestrator, postgres_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    out = tmp_path / "catalogs"
    started = await orchestrator.stub.StartCatalog(request(postgres_table, f"file://{out}"))
    events = await watch(orchestrator.stub, started.catalog_id)

    final = events[-1].final
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    steps = [e.step_changed.step for e in events if e.WhichOneof("event") == "step_changed"]
    assert steps == [
        pb.CATALOG_STEP_ACQUIRING_SANDBOX,
        pb.CATALOG_STEP_CHECKING_READ_ONLY,
        pb.CATALOG_STEP_CATALOG_AGENT,
        pb.CATALOG_STEP_RESETTING_SANDBOX,
        pb.CATALOG_STEP_SUMMARY_AGENT,
        pb.CATALOG_STEP_RELEASING,
        pb.CATALOG_STEP_DONE,
    ]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    assert written == [f"{final.timestamp}/catalog.html", f"{final.timestamp}/summary.html"]
    assert [o.uri for o in final.outputs] == [f"file://{out}/{w}" for w in written]
    assert "orders" in (out / written[0]).read_text()
    assert [u.agent_name for u in final.agent_usage] == ["catalog", "summary"]
    assert PASSWORD not in "".join(p.read_text() for p in out.rglob("*.html"))


async def test_the_password_is_in_no_column_of_the_system_database(
    start: StartOrchestrator, postgres_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    started = await orchestrator.stub.StartCatalog(
        request(postgres_table, f"file://{tmp_path}/out")
    )
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
    start: StartOrchestrator, postgres_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    url, schema = postgres_table
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
        ({"tables": []}, "tables"),
        ({"tables": ["orders; drop table x"]}, "tables[0]"),
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
