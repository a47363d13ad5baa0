"""Several databases in one session (issue 15) through real gRPC: each opened read only as
`cons[name]` in the sandbox, `con` the first, each reached through a relay of its own; one that
does not answer is reported, scrubbed, and the others still open."""

from __future__ import annotations

import json

import grpc
import pytest
from catalog.v1 import sandbox_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.sandbox_manager.conftest import RunningManager, StartManager

PASSWORD = "Lost-Source-pw-9731"


async def cell(manager: RunningManager, lease_id: str, code: str) -> str:
    """What a cell printed and its value; a cell that raises fails the test."""
    out: list[str] = []
    async for event in manager.stub.Execute(pb.ExecuteRequest(lease_id=lease_id, code=code)):
        kind = event.WhichOneof("event")
        if kind == "stdout":
            out.append(event.stdout.text)
        elif kind == "result":
            out.append(event.result.text_plain)
        elif kind == "error":
            raise AssertionError(f"{event.error.ename}: {event.error.evalue}")
    return "".join(out)


def config(databases: dict[str, str], **fields: object) -> pb.SessionConfig:
    return pb.SessionConfig(
        databases=[pb.SessionDatabase(name=n, dsn=d) for n, d in databases.items()],
        **fields,  # type: ignore[arg-type]
    )


def described(session: pb.SessionInfo) -> list[tuple[str, str, bool, str | None]]:
    return [
        (d.name, d.backend, d.read_only, d.connect_error if d.HasField("connect_error") else None)
        for d in session.databases
    ]


SEEN = """
import json, os
folders = {name: sorted(os.listdir('/run/catalog-db/' + name))
           for name in sorted(os.listdir('/run/catalog-db'))}
print(json.dumps({'cons': list(cons), 'con_is_first': con is cons['app'], 'folders': folders,
                  'app': int(cons['app'].table('orders', database=%r).count().execute()),
                  'billing': int(cons['billing'].table('orders').count().execute())}))
"""


async def test_each_database_opens_as_cons_and_one_that_does_not_answer_is_reported(
    start_manager: StartManager, postgres_table: tuple[str, str], mysql_table: tuple[str, str]
) -> None:
    (pg_server, schema), (my_server, database) = postgres_table, mysql_table
    databases = {
        "app": pg_server.replace("postgres@", "postgres:Trust-Ignores-This-pw@"),
        "billing": f"{my_server}/{database}",
        "lost": f"postgresql://reader:{PASSWORD}@127.0.0.1:1/gone",  # nothing listens on 1
    }
    manager = await start_manager()
    acquired = await manager.stub.AcquireSandbox(
        pb.AcquireSandboxRequest(session=config(databases))
    )
    session = acquired.session
    app, billing, lost = described(session)
    assert (app, billing) == (("app", "postgres", True, None), ("billing", "mysql", True, None))
    assert lost[:3] == ("lost", "", False) and lost[3] and "nothing answered" in lost[3]
    for secret in (PASSWORD, "127.0.0.1", "reader", "Trust-Ignores-This-pw"):
        assert secret not in str(session)
    assert (session.backend, session.read_only, session.HasField("connect_error")) == (
        "postgres",
        True,
        False,
    )
    lease_id = acquired.lease.lease_id
    seen = json.loads(await cell(manager, lease_id, SEEN % schema))
    assert seen == {
        "cons": ["app", "billing"],
        "con_is_first": True,
        "folders": {"app": [".s.PGSQL.5432"], "billing": ["mysql.sock"]},
        "app": 1000,
        "billing": 1000,
    }
    # A reset with the session opens every database again, through fresh relays; one without
    # keeps them.
    await cell(manager, lease_id, "left = 1")
    reset = await manager.stub.ResetSandbox(
        pb.ResetSandboxRequest(lease_id=lease_id, session=config(databases))
    )
    assert described(reset.session) == [app, billing, lost]
    assert json.loads(await cell(manager, lease_id, SEEN % schema)) == seen
    assert await cell(manager, lease_id, "'left' in globals()") == "False"
    plain = await manager.stub.ResetSandbox(pb.ResetSandboxRequest(lease_id=lease_id))
    assert [d.name for d in plain.session.databases] == ["app", "billing", "lost"]
    assert json.loads(await cell(manager, lease_id, SEEN % schema)) == seen


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [v.field for v in bad_request.field_violations]


async def test_bad_databases_are_invalid_arguments_naming_the_field(
    start_manager: StartManager,
) -> None:
    manager = await start_manager(max_databases="2", min_warm="0")
    duck = "duckdb:///data/none.duckdb"
    cases = [
        (config({"Bad-Name": duck}), "session.databases[0].name", "not a database name"),
        (config({"a" * 32: duck}), "session.databases[0].name", "not a database name"),
        (
            pb.SessionConfig(
                databases=[
                    pb.SessionDatabase(name="app", dsn=duck),
                    pb.SessionDatabase(name="app", dsn=duck),
                ]
            ),
            "session.databases[1].name",
            "given twice",
        ),
        (config({"app": duck}, db_dsn=duck), "session.databases", "not both"),
        (config({"a": duck, "b": duck, "c": duck}), "session.databases", "CATALOG_SANDBOX_MAX"),
        (config({"app": ""}), "session.databases[0].dsn", "is empty"),
    ]
    for session, field, words in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest(session=session))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert violations(caught.value) == [field] and words in (caught.value.details() or "")
    # A reset's session is checked the same way, before the lease is touched.
    acquired = await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await manager.stub.ResetSandbox(
            pb.ResetSandboxRequest(lease_id=acquired.lease.lease_id, session=cases[0][0])
        )
    assert violations(caught.value) == ["session.databases[0].name"]


async def test_the_process_backend_opens_several_databases(
    start_manager: StartManager, postgres_table: tuple[str, str], mysql_table: tuple[str, str]
) -> None:
    (pg_server, schema), (my_server, database) = postgres_table, mysql_table
    manager = await start_manager(backend="process")
    databases = {"app": pg_server, "billing": f"{my_server}/{database}"}
    acquired = await manager.stub.AcquireSandbox(
        pb.AcquireSandboxRequest(session=config(databases))
    )
    assert [d[:3] for d in described(acquired.session)] == [
        ("app", "postgres", True),
        ("billing", "mysql", True),
    ]
    code = (
        "print(list(cons), con is cons['app'],\n"
        f"      int(cons['app'].table('orders', database={schema!r}).count().execute()),\n"
        "      int(cons['billing'].table('orders').count().execute()))"
    )
    assert (
        await cell(manager, acquired.lease.lease_id, code) == "['app', 'billing'] True 1000 1000\n"
    )
