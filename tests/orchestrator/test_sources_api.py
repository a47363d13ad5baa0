"""Several databases per run, at the API: `sources` in StartCatalog, `POST /catalog` and
schedules, checked and named field by field, sealed, never shown back. A real orchestrator
process whose runs fail fast (no manager is there): these tests are about what the API takes,
stores and shows (tests/orchestrator/test_sources_runs.py runs such requests end to end)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from catalog.v1 import catalog_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.common.clients import CatalogClient, CatalogInvalidRequest, Source
from services.common.ports import free_port
from tests.orchestrator.stack import (
    REPO,
    Orchestrator,
    orchestrator_env,
    start_orchestrator,
    wait_finished,
)

APP_PASSWORD = "App-Source-pw-5521"
BILLING_PASSWORD = "Billing-Source-pw-8830"
APP = f"postgresql://reader:{APP_PASSWORD}@127.0.0.1:5432/app"
BILLING = f"mysql://reader:{BILLING_PASSWORD}@127.0.0.1:3306/billing"
NIGHTLY = "0 3 * * *"


@pytest.fixture
async def orchestrator(tmp_path: Path) -> Any:
    """No manager and no runner: each run fails at once, after its input is stored. At most
    three sources per run here."""
    nowhere = f"127.0.0.1:{free_port()}"
    env = orchestrator_env(
        tmp_path, nowhere, nowhere, CATALOG_ACQUIRE_WAIT_S="1", CATALOG_MAX_SOURCES="3"
    )
    started = await start_orchestrator(env, tmp_path / "orchestrator.log")
    yield started
    await started.stop()


def two_sources(out: Path) -> dict[str, Any]:
    return {
        "sources": [
            {"name": "app", "db_conn_string": APP, "tables": ["public.orders", "customers"]},
            {"name": "billing", "db_conn_string": BILLING, "tables": ["invoices"]},
        ],
        "s3_prefix": f"file://{out}",
    }


def as_proto(body: dict[str, Any]) -> pb.StartCatalogRequest:
    request = pb.StartCatalogRequest(s3_prefix=body.get("s3_prefix", ""))
    request.db_conn_string = body.get("db_conn_string", "")
    request.tables.extend(body.get("tables", []))
    for source in body.get("sources", []):
        request.sources.add(**source)
    return request


# Each bad request, and the field its refusal names (the first, where there are several).
BAD = {
    "a bad name": (
        lambda b: b["sources"][1].update(name="Billing"),
        "sources[1].name",
        "is not a source name",
    ),
    "a DSN where the name goes": (  # Source's fields are positional: an easy slip
        lambda b: b["sources"][1].update(name=BILLING),
        "sources[1].name",
        "the value given is not a source name",
    ),
    "a DSN where a table goes": (
        lambda b: b["sources"][0].update(tables=["orders", APP]),
        "sources[0].tables[1]",
        "the value given is not a table name",
    ),
    "a duplicate name": (
        lambda b: b["sources"][1].update(name="app"),
        "sources[1].name",
        "named 'app' already",
    ),
    "both forms": (
        lambda b: b.update(db_conn_string=APP, tables=["t"]),
        "sources",
        "not both",
    ),
    "too many sources": (
        lambda b: b["sources"].extend(
            {"name": f"s{i}", "db_conn_string": APP, "tables": ["t"]} for i in range(2)
        ),
        "sources",
        "at most 3 sources per run, not 4",
    ),
    "an empty table name": (  # no tables at all is fine: the run lists the source's own
        lambda b: b["sources"][1].update(tables=["t", ""]),
        "sources[1].tables[1]",
        "is not a table name",
    ),
    "a table twice": (
        lambda b: b["sources"][0].update(tables=["t", "t"]),
        "sources[0].tables",
        "only once",
    ),
    "a driver suffix": (
        lambda b: b["sources"][1].update(db_conn_string="mysql+pymysql://r@h/db"),
        "sources[1].db_conn_string",
        "without the driver suffix",
    ),
    "default not first": (
        lambda b: b["sources"][1].update(name="default"),
        "sources[1].name",
        "only the first source",
    ),
}


def bad_body(case: str, out: Path) -> dict[str, Any]:
    body = two_sources(out)
    BAD[case][0](body)
    return body


def violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def test_bad_sources_are_invalid_argument_over_grpc_and_422_over_http_naming_the_field(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        for case, (_, field, said) in BAD.items():
            body = bad_body(case, tmp_path)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await orchestrator.stub.StartCatalog(as_proto(body))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
            found = violations(refused.value)
            assert found[0][0] == field and said in found[0][1], (case, found)
            posted = await http.post("/catalog", json=body)
            detail = (await posted.json())["detail"]
            assert posted.status == 422, case
            path = ["body", *field.replace("]", "").replace("[", ".").split(".")]
            assert [str(p) for p in detail[0]["loc"]] == path, (case, detail)
            shown = json.dumps(detail) + (refused.value.details() or "")
            assert APP_PASSWORD not in shown and BILLING_PASSWORD not in shown, case


async def test_a_run_over_sources_shows_them_and_their_qualified_tables_never_a_dsn(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    stub = orchestrator.stub
    started = await stub.StartCatalog(as_proto(two_sources(tmp_path / "out")))
    run = await wait_finished(stub, started.catalog_id, timeout_s=60)
    assert list(run.sources) == ["app", "billing"]
    assert list(run.tables) == ["app/public.orders", "app/customers", "billing/invoices"]
    shorthand = await stub.StartCatalog(
        pb.StartCatalogRequest(db_conn_string=APP, tables=["t"], s3_prefix=f"file://{tmp_path}")
    )
    one = await wait_finished(stub, shorthand.catalog_id, timeout_s=60)
    assert (list(one.sources), list(one.tables)) == (["default"], ["t"])
    listed = (await stub.ListCatalogs(pb.ListCatalogsRequest())).catalogs
    assert {c.catalog_id: list(c.sources) for c in listed}[started.catalog_id] == ["app", "billing"]
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        got = await (await http.get(f"/catalog/{started.catalog_id}")).json()
    assert got["sources"] == ["app", "billing"] and "billing/invoices" in got["tables"]
    shown = json.dumps(got) + str(run) + str(listed)
    assert APP_PASSWORD not in shown and BILLING_PASSWORD not in shown


async def test_the_same_key_with_other_sources_is_a_conflict(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    """The request digest covers every source's name, DSN and tables."""
    stub = orchestrator.stub
    request = as_proto(two_sources(tmp_path))
    request.idempotency_key = "estate-1"
    first = await stub.StartCatalog(request)
    assert (await stub.StartCatalog(request)).catalog_id == first.catalog_id
    request.sources[1].db_conn_string = BILLING.replace("billing", "billing2")
    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await stub.StartCatalog(request)
    assert conflict.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_schedule_with_sources_round_trips_and_keeps_each_dsn_by_name(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    stub = orchestrator.stub
    schedule = pb.Schedule(cron=NIGHTLY, request=as_proto(two_sources(tmp_path)))
    made = (await stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule))).schedule
    assert [(s.name, list(s.tables)) for s in made.request.sources] == [
        ("app", ["public.orders", "customers"]),
        ("billing", ["invoices"]),
    ]
    assert all(not s.db_conn_string for s in made.request.sources)
    assert not made.request.tables and not made.request.db_conn_string

    change = pb.Schedule(schedule_id=made.schedule_id, cron=NIGHTLY)
    change.request.s3_prefix = f"file://{tmp_path}/v2"
    change.request.sources.add(name="billing", tables=["invoices", "payments"])  # DSN kept
    change.request.sources.add(name="app", tables=["customers"])  # DSN kept
    updated = (await stub.UpdateSchedule(pb.UpdateScheduleRequest(schedule=change))).schedule
    assert [s.name for s in updated.request.sources] == ["billing", "app"]
    change.request.sources.add(name="warehouse", tables=["orders"])  # no DSN stored for it
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.UpdateSchedule(pb.UpdateScheduleRequest(schedule=change))
    assert ("schedule.request.sources[2].db_conn_string", "required") in [
        (f, d.split(",")[0]) for f, d in violations(refused.value)
    ]

    started = await stub.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=made.schedule_id))
    run = await wait_finished(stub, started.catalog_id, timeout_s=60)
    assert list(run.sources) == ["billing", "app"]
    assert list(run.tables) == ["billing/invoices", "billing/payments", "app/customers"]
    async with aiohttp.ClientSession(orchestrator.http_url) as http:
        got = (await (await http.get(f"/schedules/{made.schedule_id}")).json())["schedule"]
        listed = await (await http.get("/schedules")).json()
        body = {"schedule": {"cron": NIGHTLY, "request": two_sources(tmp_path)}}
        posted = await http.post("/schedules", json=body)
        assert posted.status == 201, await posted.text()
        created = await posted.json()
    assert got["sources"] == [
        {"name": "billing", "tables": ["invoices", "payments"]},
        {"name": "app", "tables": ["customers"]},
    ]
    assert created["schedule"]["sources"][1] == {"name": "billing", "tables": ["invoices"]}
    shown = json.dumps([got, listed, created]) + str(made) + str(updated)
    assert APP_PASSWORD not in shown and BILLING_PASSWORD not in shown


def stored_text(system_database: Path) -> str:
    """Every text value of the DBOS system database, and the base64 pickles among them
    decoded (DBOS stores inputs and schedule contexts so): where a DSN could hide."""
    found: list[str] = []
    with sqlite3.connect(system_database) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("latin-1")
                    if isinstance(value, str):
                        found += [value, _decoded(value)]
    return "\n".join(found)


def _decoded(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return ""


async def test_the_system_database_holds_the_sources_sealed_never_a_password(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    stub = orchestrator.stub
    started = await stub.StartCatalog(as_proto(two_sources(tmp_path)))
    await wait_finished(stub, started.catalog_id, timeout_s=60)
    schedule = pb.Schedule(cron=NIGHTLY, request=as_proto(two_sources(tmp_path)))
    await stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule))
    stored = stored_text(tmp_path / "dbos.sqlite")
    assert "billing/invoices" in stored  # the decoded run input is looked at
    assert "CatalogInput" in stored and "ScheduleSpec" in stored
    for secret in (APP_PASSWORD, BILLING_PASSWORD, APP, BILLING, "reader:"):
        assert secret not in stored, secret


async def test_the_client_and_the_cli_start_runs_over_sources(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    sources = [Source("app", APP, ("orders",)), Source("billing", BILLING, ("invoices",))]
    async with CatalogClient(orchestrator.address) as catalogs:
        catalog_id = await catalogs.start(s3_prefix=f"file://{tmp_path}", sources=sources)
        run = await catalogs.get(catalog_id)
        assert run.sources == ("app", "billing")
        assert run.tables == ("app/orders", "billing/invoices")
        with pytest.raises(CatalogInvalidRequest) as refused:
            await catalogs.start(APP, ["t"], f"file://{tmp_path}", sources=sources)
        assert [f for f, _ in refused.value.field_violations] == ["sources"]
        schedule = await catalogs.create_schedule(
            NIGHTLY, s3_prefix=f"file://{tmp_path}", sources=sources
        )
        assert schedule.sources == ("app", "billing")
        assert schedule.tables == ("app/orders", "billing/invoices")
    assert "Billing-Source" not in repr(sources)

    address = ("--address", orchestrator.address, "--json")
    code, out, err = await cli(
        *address, "start", "--source", f"app={APP}", "--source", f"billing={BILLING}",
        "--tables", "app/orders,billing/invoices", "--prefix", f"file://{tmp_path}",
    )  # fmt: skip
    assert code == 0, err
    got = json.loads((await cli(*address, "get", json.loads(out)["catalog_id"]))[1])
    assert got["sources"] == ["app", "billing"] and "billing/invoices" in got["tables"]
    code, out, err = await cli(
        *address, "start", "--source", f"app={APP}", "--tables", "app/orders,billing/invoices",
        "--prefix", f"file://{tmp_path}",
    )  # fmt: skip
    assert code == 2 and "'billing/invoices' belongs to no --source" in err
    code, out, err = await cli(
        *address, "start", "--db", APP, "--source", f"app={APP}", "--tables", "t",
        "--prefix", f"file://{tmp_path}",
    )  # fmt: skip
    assert code == 2 and "not allowed with argument" in err
    code, out, err = await cli(*address, "start", "--source", f"App={APP}", "--tables", "t")
    assert code == 2 and "NAME=URL" in err
    for said in (out, err):
        assert APP_PASSWORD not in said and BILLING_PASSWORD not in said


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.common.cli", *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
