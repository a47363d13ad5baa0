"""The orchestrator as its users reach it: HTTP, API keys and rate limits, grpcurl, S3 output,
a PostgreSQL system database, and many runs at once on a small pool."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import psycopg
import pytest
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import sandbox_pb2

from services.common.ports import free_port
from tests.conftest import POSTGRES_URL
from tests.orchestrator.conftest import s3_client
from tests.orchestrator.stack import (
    PASSWORD,
    PLANE,
    StartOrchestrator,
    start_runner,
    wait_finished,
    with_password,
)
from tests.sandbox_manager.conftest import labelled_containers, start_manager_process
from tests.sandbox_manager.test_operations import grpcurl

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def body(reader_table: tuple[str, str], prefix: str) -> dict[str, object]:
    """A request for the catalog and the summary only: these tests are about the API, the
    store and the pool (the whole default pipeline has tests of its own)."""
    url, schema = reader_table
    return {
        "db_conn_string": with_password(url),
        "tables": [f"{schema}.orders"],
        "s3_prefix": prefix,
        "agents": ["catalog", "summary"],
    }


async def test_post_catalog_answers_202_and_get_shows_the_finished_run(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        posted = await http.post("/catalog", json=body(reader_table, f"file://{tmp_path}/o"))
        assert posted.status == 202
        catalog_id = (await posted.json())["catalog_id"]
        await wait_finished(orchestrator.stub, catalog_id)
        got = await http.get(f"/catalog/{catalog_id}")
        state = await got.json()
    assert got.status == 200
    assert state["status"] == "SUCCEEDED"
    assert TIMESTAMP.match(state["timestamp"])
    assert [o["agent_name"] for o in state["outputs"]] == ["catalog", "summary"]
    assert PASSWORD not in json.dumps(state)


async def test_http_validation_errors_are_422_naming_the_fields(
    start: StartOrchestrator, reader_table: tuple[str, str]
) -> None:
    orchestrator = await start()
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        missing = await http.post("/catalog", json={"tables": ["t"]})
        bad = await http.post("/catalog", json=body(reader_table, "s3://x/../y"))
        unknown = await http.get("/catalog/no-such-run")
        # a SQLAlchemy URL would pass here and fail later as DATABASE_UNREACHABLE
        sqlalchemy_url = body(reader_table, "s3://bucket/x") | {
            "db_conn_string": "postgresql+psycopg://reader@127.0.0.1:5432/db"
        }
        driver = await http.post("/catalog", json=sqlalchemy_url)
        # more tables than the catalog prompt's max_tables (50), the one source of that limit
        too_many = await http.post(
            "/catalog",
            json=body(reader_table, "s3://bucket/x") | {"tables": [f"t{i}" for i in range(51)]},
        )
        missing_detail, bad_detail = await missing.json(), await bad.json()
        driver_detail, too_many_detail = await driver.json(), await too_many.json()
    assert too_many.status == 422
    assert "at most 50 tables per run" in too_many_detail["detail"][0]["msg"]
    assert (missing.status, bad.status, unknown.status) == (422, 422, 404)
    assert driver.status == 422
    assert [d["loc"] for d in driver_detail["detail"]] == [["body", "db_conn_string"]]
    assert "write postgresql://, without the driver suffix" in driver_detail["detail"][0]["msg"]
    assert {tuple(d["loc"]) for d in missing_detail["detail"]} == {
        ("body", "db_conn_string"),
        ("body", "s3_prefix"),
    }
    assert [d["loc"] for d in bad_detail["detail"]] == [["body", "s3_prefix"]]
    assert PASSWORD not in json.dumps(bad_detail)


async def test_api_keys_and_rate_limits_guard_both_apis(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start(
        CATALOG_API_KEYS="key-one,key-two", CATALOG_RATE_PER_S="0.01", CATALOG_RATE_BURST="2"
    )
    request = pb.GetCatalogRequest(catalog_id="nope")
    with pytest.raises(grpc.aio.AioRpcError) as no_key:
        await orchestrator.stub.GetCatalog(request)
    assert no_key.value.code() == grpc.StatusCode.UNAUTHENTICATED
    key_one = (("authorization", "Bearer key-one"),)
    with pytest.raises(grpc.aio.AioRpcError) as admitted:
        await orchestrator.stub.GetCatalog(request, metadata=key_one)
    assert admitted.value.code() == grpc.StatusCode.NOT_FOUND  # past the guard
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        anonymous = await http.get("/catalog/nope")
        second = await http.get("/catalog/nope", headers={"Authorization": "Bearer key-one"})
        third = await http.get("/catalog/nope", headers={"Authorization": "Bearer key-one"})
        other_key = await http.get("/catalog/nope", headers={"Authorization": "Bearer key-two"})
        health = await http.get("/healthz")
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert second.status == 404
    assert third.status == 429 and int(third.headers["Retry-After"]) >= 1
    assert other_key.status == 404  # each key has its own bucket
    assert health.status == 200
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await orchestrator.stub.GetCatalog(request, metadata=key_one)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_an_operator_starts_and_watches_a_catalog_with_grpcurl(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    address = orchestrator.address
    assert "catalog.v1.CatalogService" in await grpcurl(address, "list")
    assert "SERVING" in await grpcurl(address, "grpc.health.v1.Health/Check")
    started = json.loads(
        await grpcurl(
            "-d",
            json.dumps(body(reader_table, f"file://{tmp_path}/out")),
            address,
            "catalog.v1.CatalogService/StartCatalog",
        )
    )
    watched = await grpcurl(
        "-d",
        json.dumps({"catalog_id": started["catalog_id"]}),
        address,
        "catalog.v1.CatalogService/WatchCatalog",
    )
    final = [json.loads(part) for part in re.split(r"(?<=\n})\n(?=\{)", watched.strip())][-1]
    assert final["final"]["status"] == "CATALOG_STATUS_SUCCEEDED"
    assert '"step_changed"' in watched and '"output_written"' in watched


async def test_pages_go_to_s3_and_the_second_summary_sees_the_first_run(
    start: StartOrchestrator,
    reader_table: tuple[str, str],
    s3_server: str,
    s3_bucket: str,
) -> None:
    orchestrator = await start(CATALOG_S3_ENDPOINT_URL=s3_server)
    prefix = f"s3://{s3_bucket}/team/sales"
    finals = []
    for _ in range(2):
        started = await orchestrator.stub.StartCatalog(
            pb.StartCatalogRequest(**body(reader_table, prefix))  # type: ignore[arg-type]
        )
        finals.append(await wait_finished(orchestrator.stub, started.catalog_id))
    assert all(f.status == pb.CATALOG_STATUS_SUCCEEDED for f in finals), finals
    first, second = (f.timestamp for f in finals)
    assert first < second
    listed = s3_client(s3_server).list_objects_v2(Bucket=s3_bucket)
    keys = sorted(o["Key"] for o in listed["Contents"])
    assert keys == [
        f"team/sales/{ts}/{agent}.{kind}"
        for ts in (first, second)
        for agent in ("catalog", "summary")
        for kind in ("html", "json")
    ]
    summary = (
        s3_client(s3_server)
        .get_object(Bucket=s3_bucket, Key=f"team/sales/{second}/summary.html")["Body"]
        .read()
        .decode()
    )
    assert first in summary  # the earlier run was copied into the sandbox and found there


@pytest.fixture
def system_database() -> Iterator[str]:
    """A fresh PostgreSQL database for DBOS's system tables."""
    name = f"dbos_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def test_dbos_on_postgresql_runs_the_workflow_and_stores_no_password(
    start: StartOrchestrator,
    reader_table: tuple[str, str],
    system_database: str,
    tmp_path: Path,
) -> None:
    orchestrator = await start(DBOS_SYSTEM_DATABASE_URL=system_database)
    started = await orchestrator.stub.StartCatalog(
        pb.StartCatalogRequest(**body(reader_table, f"file://{tmp_path}/out"))  # type: ignore[arg-type]
    )
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error
    with psycopg.connect(system_database) as db:
        status = db.execute(
            "SELECT status, name FROM dbos.workflow_status WHERE workflow_uuid = %s",
            (started.catalog_id,),
        ).fetchone()
        assert status == ("SUCCESS", "catalog_workflow")
        columns = db.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'dbos' AND data_type IN ('text', 'character varying', 'bytea')"
        ).fetchall()
        for table, column in columns:
            hits = db.execute(
                f'SELECT count(*) FROM dbos."{table}" WHERE "{column}"::text LIKE %s',
                (f"%{PASSWORD}%",),
            ).fetchone()
            assert hits == (0,), f"{table}.{column}"


async def test_twenty_catalogs_at_once_share_a_pool_of_four(
    start: StartOrchestrator, docker_image: str, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    small = await start_manager_process(docker_image, min_warm="2", max_size="4", plane=PLANE)
    # the runner reaches only the managers it is configured with, so it gets one of its own
    runner = await start_runner(small.address)
    try:
        orchestrator = await start(runner.address, manager_address=small.address)
        prefix = f"file://{tmp_path}/out"
        started = await asyncio.gather(
            *(
                orchestrator.stub.StartCatalog(
                    pb.StartCatalogRequest(**body(reader_table, prefix))  # type: ignore[arg-type]
                )
                for _ in range(20)
            )
        )
        finals = await asyncio.gather(
            *(wait_finished(orchestrator.stub, s.catalog_id, timeout_s=900) for s in started)
        )
        assert [f.status for f in finals] == [pb.CATALOG_STATUS_SUCCEEDED] * 20
        assert len(list((tmp_path / "out").rglob("*.html"))) == 40
        listed = await small.stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest())
        assert listed.pool.max_size == 4 and len(listed.sandboxes) <= 4
        assert listed.pool.leased == 0
    finally:
        await runner.stop()
        await small.stop()
    assert labelled_containers(small.manager_id) == []


async def test_list_catalogs_refuses_a_negative_page_size_and_a_token_of_another_filter(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    stub = orchestrator.stub
    started = [
        await stub.StartCatalog(
            pb.StartCatalogRequest(**body(reader_table, f"file://{tmp_path}/{n}"))
        )  # type: ignore[arg-type]
        for n in range(2)
    ]
    try:
        first = await stub.ListCatalogs(pb.ListCatalogsRequest(page_size=1))
        second = await stub.ListCatalogs(
            pb.ListCatalogsRequest(page_size=1, page_token=first.next_page_token)
        )
        assert {c.catalog_id for c in [*first.catalogs, *second.catalogs]} == {
            s.catalog_id for s in started
        }
        refused = []
        for request in (
            pb.ListCatalogsRequest(page_size=-1),
            pb.ListCatalogsRequest(
                page_token=first.next_page_token, status=pb.CATALOG_STATUS_SUCCEEDED
            ),
            pb.ListCatalogsRequest(page_token="1"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListCatalogs(request)
            refused.append((caught.value.code(), caught.value.details()))
        assert [code for code, _ in refused] == [grpc.StatusCode.INVALID_ARGUMENT] * 3
        assert "page_size" in (refused[0][1] or "")
        assert all("page_token" in (details or "") for _, details in refused[1:])
    finally:
        for run in started:
            await stub.CancelCatalog(pb.CancelCatalogRequest(catalog_id=run.catalog_id))


async def test_each_key_may_hold_only_so_many_watches_open(
    start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    # No manager answers there, so the run stays in its first step while the watches are open.
    orchestrator = await start(
        manager_address=f"127.0.0.1:{free_port()}",
        CATALOG_API_KEYS="key-one,key-two",
        CATALOG_RATE_PER_S="0",
        CATALOG_MAX_WATCHES_PER_KEY="2",
    )
    key_one, key_two = ((("authorization", f"Bearer key-{n}"),) for n in ("one", "two"))
    stub = orchestrator.stub
    request = pb.StartCatalogRequest(**body(reader_table, f"file://{tmp_path}/o"))  # type: ignore[arg-type]
    catalog_id = (await stub.StartCatalog(request, metadata=key_one)).catalog_id
    watch = pb.WatchCatalogRequest(catalog_id=catalog_id)
    held = [stub.WatchCatalog(watch, metadata=key_one) for _ in range(2)]
    for call in held:  # each is open: it has had the run's first step
        assert (await asyncio.wait_for(call.read(), 30)).HasField("step_changed")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.WatchCatalog(watch, metadata=key_one).read()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "CATALOG_MAX_WATCHES_PER_KEY" in (refused.value.details() or "")
    other = stub.WatchCatalog(watch, metadata=key_two)  # another key's watches are its own
    assert (await asyncio.wait_for(other.read(), 30)).HasField("step_changed")
    held[0].cancel()  # a closed watch frees its slot
    await asyncio.sleep(0.5)
    again = stub.WatchCatalog(watch, metadata=key_one)
    assert (await asyncio.wait_for(again.read(), 30)).HasField("step_changed")
    await stub.CancelCatalog(pb.CancelCatalogRequest(catalog_id=catalog_id), metadata=key_one)
    for call in (held[1], other, again):
        call.cancel()
