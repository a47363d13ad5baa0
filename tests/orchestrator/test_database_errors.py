"""What a run says when it cannot use the database: refused credentials are not "unreachable",
and a hint appears only when what it says holds.

Local PostgreSQL trusts loopback (any password passes), so its refusal here is a role that does
not exist; MariaDB checks passwords, so its refusal is a wrong one (error 1045).
"""

from __future__ import annotations

import os
from pathlib import Path

from catalog.v1 import catalog_pb2 as pb

from services.common.ports import free_port
from tests.conftest import MYSQL_URL, POSTGRES_URL
from tests.orchestrator.stack import StartOrchestrator, wait_finished
from tests.toolkit.shop import PASSWORD, mysql_shop, postgres_shop

WRONG = "Wrong-pw-5521"


async def failed_run(start: StartOrchestrator, dsn: str, table: str, out: Path) -> pb.Catalog:
    orchestrator = await start()
    request = pb.StartCatalogRequest(db_conn_string=dsn, tables=[table], s3_prefix=f"file://{out}")
    started = await orchestrator.stub.StartCatalog(request)
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_FAILED, final
    assert not out.exists()  # noqa: ASYNC240 (a test's check, not a server's loop)
    return final


def assert_refused(final: pb.Catalog, *secrets: str) -> None:
    assert final.error.code == "DATABASE_AUTH_FAILED", final.error
    assert final.error.step == pb.CATALOG_STEP_ACQUIRING_SANDBOX
    assert final.error.message.startswith("the database refused the user"), final.error.message
    assert "loopback" not in final.error.message
    for secret in secrets:
        assert secret not in final.error.message


async def test_a_postgres_role_that_does_not_exist_is_refused_not_unreachable(
    start: StartOrchestrator, tmp_path: Path
) -> None:
    role = f"nobody_{os.urandom(3).hex()}"
    with postgres_shop(POSTGRES_URL) as shop:
        dsn = f"postgresql://{role}:{WRONG}@127.0.0.1:5432/postgres"
        final = await failed_run(start, dsn, shop.table("customers"), tmp_path / "out")
    assert_refused(final, WRONG)
    assert role in final.error.message  # which user, so the operator knows what to create


async def test_a_wrong_mariadb_password_is_refused_not_unreachable(
    start: StartOrchestrator, tmp_path: Path
) -> None:
    with mysql_shop(MYSQL_URL.rsplit("/", 1)[0]) as shop:
        dsn = shop.reader_dsn.replace("%40", "x", 1)  # the reader's password, one character off
        final = await failed_run(start, dsn, shop.table("customers"), tmp_path / "out")
    assert_refused(final, WRONG, PASSWORD, "%40")


async def test_a_loopback_port_with_no_database_is_unreachable_and_says_where_it_was_dialled(
    start: StartOrchestrator, tmp_path: Path
) -> None:
    dsn = f"postgresql://reader:{WRONG}@127.0.0.1:{free_port()}/postgres"
    final = await failed_run(start, dsn, "public.t", tmp_path / "out")
    assert final.error.code == "DATABASE_UNREACHABLE", final.error
    assert WRONG not in final.error.message
    assert "nothing answered at the database's host on port" in final.error.message
    assert "the host is loopback, which is the manager's own" in final.error.message
