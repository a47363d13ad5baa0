"""The read-only proof and the read-only session, attacked on the live servers.

The probe is the cell the orchestrator runs before the agents (services/orchestrator/probe_cell),
run here in the pre-loaded subprocess kernel: each test makes a throwaway database (PostgreSQL)
or user (MariaDB) with one way to write, and the probe must find it. The session tests are cells
that try to undo the session's read-only mode and time limit, or leave a query running on the
server when their worker is killed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.orchestrator.probe_cell import ProbeReport, probe_code
from services.sandbox_manager.kernel_client import KernelClient
from tests.conftest import MYSQL_URL, POSTGRES_URL

SERVER = POSTGRES_URL.rsplit("/", 1)[0]  # postgresql://postgres@127.0.0.1:5432


async def run_probe(kernel: KernelClient, dsn: str, tables: list[str]) -> ProbeReport:
    info = await kernel.start_session({"db_dsn": dsn})
    assert info.connect_error == ""
    try:
        cell = await kernel.execute(probe_code(tables), timeout_s=60)
        report = ProbeReport.from_stdout(cell.stdout)
        assert report is not None, cell.error
        return report
    finally:
        await kernel.end_session()


# --- PostgreSQL -----------------------------------------------------------------------------


@dataclass
class PgScratch:
    """A throwaway database: schema `shop`, table `shop.items`, a login role `reader` that may
    read it; `admin` runs SQL in it as the superuser."""

    database: str
    admin: Any
    reader: str
    roles: list[str] = field(default_factory=list)

    def role(self, options: str = "NOLOGIN") -> str:
        name = f"ro_role_{uuid.uuid4().hex[:8]}"
        self.admin.execute(f"CREATE ROLE {name} {options}")
        self.roles.append(name)
        return name

    def dsn(self, role: str) -> str:
        return f"{SERVER.replace('postgres@', f'{role}@')}/{self.database}"


@pytest.fixture
def pg() -> Iterator[PgScratch]:
    import psycopg

    database = f"ro_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as server:
        server.execute(f"CREATE DATABASE {database}")
        try:
            with psycopg.connect(f"{SERVER}/{database}", autocommit=True) as admin:
                scratch = PgScratch(database, admin, "")
                try:
                    scratch.reader = scratch.role("LOGIN")
                    admin.execute("CREATE SCHEMA shop")
                    admin.execute("CREATE TABLE shop.items (id int PRIMARY KEY, name text)")
                    admin.execute("INSERT INTO shop.items VALUES (1, 'one'), (2, 'two')")
                    admin.execute(f"GRANT USAGE ON SCHEMA shop TO {scratch.reader}")
                    admin.execute(f"GRANT SELECT ON shop.items TO {scratch.reader}")
                    yield scratch
                finally:
                    admin.close()
                    server.execute(f"DROP DATABASE {database} WITH (FORCE)")
                    for role in scratch.roles:
                        server.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            server.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


async def probe_pg(kernel: KernelClient, pg: PgScratch) -> ProbeReport:
    return await run_probe(kernel, pg.dsn(pg.reader), ["shop.items"])


async def test_plain_reader_passes_on_postgres(shared_kernel: KernelClient, pg: PgScratch) -> None:
    report = await probe_pg(shared_kernel, pg)
    assert (report.writable, report.warnings, report.missing) == (False, [], [])


async def test_insert_on_updatable_view_is_refused(
    shared_kernel: KernelClient, pg: PgScratch
) -> None:
    pg.admin.execute("CREATE VIEW shop.items_view AS SELECT * FROM shop.items")
    pg.admin.execute(f"GRANT SELECT, INSERT ON shop.items_view TO {pg.reader}")
    report = await probe_pg(shared_kernel, pg)
    assert report.writable and "view shop.items_view" in report.why


async def test_insert_on_foreign_table_is_refused(
    shared_kernel: KernelClient, pg: PgScratch
) -> None:
    pg.admin.execute("CREATE EXTENSION postgres_fdw")
    pg.admin.execute(
        "CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw "
        f"OPTIONS (host '127.0.0.1', dbname '{pg.database}')"
    )
    pg.admin.execute(
        "CREATE FOREIGN TABLE shop.remote_items (id int, name text) SERVER loopback "
        "OPTIONS (schema_name 'shop', table_name 'items')"
    )
    pg.admin.execute(f"GRANT SELECT, INSERT ON shop.remote_items TO {pg.reader}")
    report = await probe_pg(shared_kernel, pg)
    assert report.writable and "foreign table shop.remote_items" in report.why


async def test_sequence_usage_is_refused(shared_kernel: KernelClient, pg: PgScratch) -> None:
    """USAGE lets nextval advance the sequence: a lasting change other writers see."""
    pg.admin.execute("CREATE SEQUENCE shop.item_ids")
    pg.admin.execute(f"GRANT USAGE ON SEQUENCE shop.item_ids TO {pg.reader}")
    report = await probe_pg(shared_kernel, pg)
    assert report.writable and "sequence shop.item_ids" in report.why


async def test_security_definer_delete_function_is_refused(
    shared_kernel: KernelClient, pg: PgScratch
) -> None:
    """EXECUTE goes to PUBLIC by default: the reader may run a deleting writer's function."""
    writer = pg.role()
    pg.admin.execute(f"GRANT USAGE ON SCHEMA shop TO {writer}")
    pg.admin.execute(f"GRANT SELECT, DELETE ON shop.items TO {writer}")
    pg.admin.execute(
        "CREATE FUNCTION shop.forget_items() RETURNS void SECURITY DEFINER "
        "LANGUAGE sql AS 'DELETE FROM shop.items'"
    )
    pg.admin.execute(f"ALTER FUNCTION shop.forget_items() OWNER TO {writer}")
    report = await probe_pg(shared_kernel, pg)
    assert report.writable and "shop.forget_items()" in report.why and writer in report.why


async def test_invoker_function_is_not_a_write_right(
    shared_kernel: KernelClient, pg: PgScratch
) -> None:
    """A function that runs with the caller's rights lends nothing."""
    pg.admin.execute(
        "CREATE FUNCTION shop.forget_items() RETURNS void LANGUAGE sql AS 'DELETE FROM shop.items'"
    )
    assert not (await probe_pg(shared_kernel, pg)).writable


@pytest.mark.parametrize(
    "grant",
    ["GRANT CREATE ON DATABASE {db} TO {role}", "GRANT CREATE ON SCHEMA shop TO {role}"],
    ids=["database", "schema"],
)
async def test_create_right_is_refused(
    shared_kernel: KernelClient, pg: PgScratch, grant: str
) -> None:
    pg.admin.execute(grant.format(db=pg.database, role=pg.reader))
    report = await probe_pg(shared_kernel, pg)
    assert report.writable and "may create" in report.why


async def test_write_right_through_a_noinherit_role_is_refused(
    shared_kernel: KernelClient, pg: PgScratch
) -> None:
    """A column right, held by a role the reader does not inherit from but may SET ROLE to."""
    writer = pg.role()
    pg.admin.execute(f"GRANT USAGE ON SCHEMA shop TO {writer}")
    pg.admin.execute(f"GRANT UPDATE (name) ON shop.items TO {writer}")
    pg.admin.execute(f"ALTER ROLE {pg.reader} NOINHERIT")
    pg.admin.execute(f"GRANT {writer} TO {pg.reader}")
    report = await probe_pg(shared_kernel, pg)
    assert report.writable and "table shop.items" in report.why


async def test_pg14_style_public_create_reader_passes(
    shared_kernel: KernelClient, pg: PgScratch
) -> None:
    """PostgreSQL 14 and older let PUBLIC create in schema public: a plain reader there is
    still a reader (refusing it would teach operators to pass allow_writable), with a warning."""
    pg.admin.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    report = await probe_pg(shared_kernel, pg)
    assert not report.writable, report.why
    assert len(report.warnings) == 1 and "schema public" in report.warnings[0]
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in report.warnings[0]


# --- MariaDB --------------------------------------------------------------------------------


@dataclass
class MyScratch:
    """A throwaway database with a table, and a user that may read it; `admin` is root."""

    database: str
    admin: Any
    user: str
    roles: list[str] = field(default_factory=list)

    def run(self, *statements: str) -> None:
        cursor = self.admin.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()

    def role(self) -> str:
        name = f"ro_role_{uuid.uuid4().hex[:8]}"
        self.run(f"CREATE ROLE {name}")
        self.roles.append(name)
        return name

    @property
    def dsn(self) -> str:
        return f"mysql://{self.user}@127.0.0.1:3306/{self.database}"


@pytest.fixture
def my() -> Iterator[MyScratch]:
    import MySQLdb

    tag = uuid.uuid4().hex[:8]
    admin = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    scratch = MyScratch(f"ro_test_{tag}", admin, f"ro_reader_{tag}")
    try:
        scratch.run(
            f"CREATE DATABASE {scratch.database}",
            f"CREATE TABLE {scratch.database}.items (id INT PRIMARY KEY, name TEXT)",
            f"INSERT INTO {scratch.database}.items VALUES (1, 'one'), (2, 'two')",
            f"CREATE USER '{scratch.user}'@'%'",
            f"GRANT SELECT ON {scratch.database}.* TO '{scratch.user}'@'%'",
        )
        yield scratch
    finally:
        scratch.run(
            f"DROP USER IF EXISTS '{scratch.user}'@'%'",
            *(f"DROP ROLE IF EXISTS {role}" for role in scratch.roles),
            f"DROP DATABASE IF EXISTS {scratch.database}",
        )
        admin.close()


async def probe_my(kernel: KernelClient, my: MyScratch) -> ProbeReport:
    return await run_probe(kernel, my.dsn, [f"{my.database}.items"])


async def test_plain_reader_passes_on_mariadb(shared_kernel: KernelClient, my: MyScratch) -> None:
    report = await probe_my(shared_kernel, my)
    assert (report.writable, report.missing) == (False, []), report.why


async def test_mariadb_write_right_from_default_role_is_refused(
    shared_kernel: KernelClient, my: MyScratch
) -> None:
    """SHOW GRANTS names the role, not its rights; the rights come from the role's grants."""
    outer, inner = my.role(), my.role()
    my.run(
        f"GRANT INSERT ON {my.database}.* TO {inner}",
        f"GRANT {inner} TO {outer}",  # nested: the user's role has the right through another
        f"GRANT {outer} TO '{my.user}'@'%'",
        f"SET DEFAULT ROLE {outer} FOR '{my.user}'@'%'",
    )
    report = await probe_my(shared_kernel, my)
    assert report.writable and "INSERT" in report.why and outer in report.why


async def test_mariadb_write_right_from_a_role_it_may_set_is_refused(
    shared_kernel: KernelClient, my: MyScratch
) -> None:
    """Not a default role: the write attempt cannot see it, but a cell could SET ROLE."""
    role = my.role()
    my.run(
        f"GRANT UPDATE (name) ON {my.database}.items TO {role}",
        f"GRANT {role} TO '{my.user}'@'%'",
    )
    report = await probe_my(shared_kernel, my)
    assert report.writable and "UPDATE" in report.why and role in report.why


async def test_mariadb_execute_on_a_procedure_is_refused(
    shared_kernel: KernelClient, my: MyScratch
) -> None:
    """A routine runs with its definer's rights by default: EXECUTE lends them."""
    my.run(
        f"CREATE PROCEDURE {my.database}.forget_items() DELETE FROM {my.database}.items",
        f"GRANT EXECUTE ON PROCEDURE {my.database}.forget_items TO '{my.user}'@'%'",
    )
    report = await probe_my(shared_kernel, my)
    assert report.writable and "EXECUTE" in report.why
