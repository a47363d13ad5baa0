"""The read-only proof and the read-only session, attacked on the live servers.

The probe is the toolkit call the orchestrator runs before the agents (probe_read_only, sent by
services/orchestrator/probe_cell), run here in the pre-loaded subprocess kernel: each test makes
a throwaway database (PostgreSQL) or user (MariaDB) with one way to write, and the probe must
find it. The session tests are cells
that try to undo the session's read-only mode and time limit, or leave a query running on the
server when their worker is killed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.orchestrator.probe_cell import ProbeReport, probe_code
from services.sandbox_manager.kernel_client import CellResult, KernelClient
from tests.conftest import POSTGRES_URL

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


# --- the session: settings a cell cannot undo, queries a kill does not leave behind ----------


async def cell(kernel: KernelClient, code: str, **options: Any) -> CellResult:
    return await kernel.execute(code, **options)


@pytest.fixture
async def pg_session(shared_kernel: KernelClient, postgres_table: tuple[str, str]) -> Any:
    """A session as the superuser, who could write: only the session keeps it read only."""
    server, schema = postgres_table
    info = await shared_kernel.start_session({"db_dsn": server, "statement_timeout_s": 30})
    assert (info.backend, info.read_only) == ("postgres", True)
    yield shared_kernel, schema
    await shared_kernel.end_session()


@pytest.fixture
async def my_session(shared_kernel: KernelClient, mysql_table: tuple[str, str]) -> Any:
    server, database = mysql_table
    info = await shared_kernel.start_session(
        {"db_dsn": f"{server}/{database}", "statement_timeout_s": 30}
    )
    assert (info.backend, info.read_only) == ("mysql", True)
    yield shared_kernel, database
    await shared_kernel.end_session()


POSTGRES_STATE = (
    "c = con.raw_sql('SELECT current_setting(%s), current_setting(%s)', "
    "params=('default_transaction_read_only', 'statement_timeout'))\n"
    "print(c.fetchone()); c.close()"
)


async def test_cell_cannot_write_large_objects_through_con(pg_session: Any) -> None:
    """PostgreSQL writes large objects even in a read-only transaction, and any role may."""
    kernel, _ = pg_session
    for attempt in (
        "con.raw_sql(\"SELECT lo_from_bytea(0, 'stored for later')\")",
        "con.raw_sql('SELECT lo_create(0)')",
        "con.raw_sql(\"select LO_PUT(1234, 0, 'x')\")",
    ):
        refused = await cell(kernel, attempt)
        assert refused.error and refused.error["ename"] == "SessionSettingRefused", attempt
    counted = await cell(
        kernel,
        "c = con.raw_sql('SELECT count(*) FROM pg_largeobject_metadata')\n"
        "print(c.fetchone()[0]); c.close()",
    )
    assert counted.stdout == "0\n"


async def test_cell_cannot_turn_off_read_only_postgres(pg_session: Any) -> None:
    kernel, schema = pg_session
    insert = f"con.raw_sql('INSERT INTO {schema}.orders VALUES (0, 0)')"
    for attempt in (
        "con.raw_sql('SET default_transaction_read_only = off')",
        "con.raw_sql('BEGIN READ WRITE')",
        "con.raw_sql('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE')",
        "con.con.execute(\"SELECT set_config('default_transaction_read_only', 'off', false)\")",
        # Built at run time, so no guard can read it in the text: the server's report tells.
        "con.raw_sql(\"SELECT query_to_xml('select set_con' || 'fig(''default_transaction_"
        "read_only'', ''off'', false)', false, false, '')\")",
    ):
        refused = await cell(kernel, f"{attempt}\n{insert}")
        assert refused.error and refused.error["ename"] == "SessionSettingRefused", attempt
        written = await cell(kernel, insert)
        assert written.error and "read-only transaction" in written.error["evalue"], attempt
    capped = await cell(
        kernel, f"con.raw_sql('SET statement_timeout = 0').close()\n{POSTGRES_STATE}"
    )
    assert capped.stdout == "('on', '30s')\n", capped.error
    # The driver itself is in the cell's hands: past the guard, the read-only mode the server
    # reports is still watched; the time limit comes back with the next cell.
    bypass = await cell(
        kernel,
        "con.con.pgconn.exec_(b'SET default_transaction_read_only = off; "
        f"SET statement_timeout = 0')\n{insert}",
    )
    assert bypass.error and bypass.error["ename"] == "SessionSettingRefused"
    after = await cell(kernel, f"{POSTGRES_STATE}\n{insert}")
    assert after.stdout == "('on', '30s')\n"
    assert after.error and "read-only transaction" in after.error["evalue"]
    rows = await cell(kernel, f"con.raw_sql('SELECT count(*) FROM {schema}.orders').fetchone()")
    assert rows.result == "(1000,)"


MYSQL_STATE = (
    "c = con.raw_sql('SELECT @@session.tx_read_only, @@session.max_statement_time')\n"
    "print(c.fetchone()); c.close()"
)


async def test_cell_cannot_turn_off_read_only_mariadb(my_session: Any) -> None:
    kernel, database = my_session
    insert = f"con.raw_sql('INSERT INTO {database}.orders VALUES (0, 0)')"
    for attempt in (
        "con.raw_sql('SET SESSION TRANSACTION READ WRITE')",
        "con.raw_sql('START TRANSACTION READ WRITE')",
        "con.raw_sql('SET @@session.tx_read_only = 0')",
        "con.raw_sql('SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(0)')",
        "con.raw_sql(\"PREPARE s FROM CONCAT('SET SESSION TRANSACTION READ ', 'WRITE')\")",
    ):
        refused = await cell(kernel, f"{attempt}\n{insert}")
        assert refused.error and refused.error["ename"] == "SessionSettingRefused", attempt
        written = await cell(kernel, insert)
        assert written.error and "READ ONLY" in written.error["evalue"], attempt
    capped = await cell(
        kernel, f"con.raw_sql('SET SESSION max_statement_time=0').close()\n{MYSQL_STATE}"
    )
    assert capped.stdout == "(1, 30.0)\n", capped.error
    bypass = await cell(
        kernel,
        "con.con.query('SET SESSION TRANSACTION READ WRITE')\n"
        f"con.con.query('SET SESSION max_statement_time = 0')\n{MYSQL_STATE}",
    )
    assert bypass.stdout == "(0, 0.0)\n"
    after = await cell(kernel, f"{MYSQL_STATE}\n{insert}")
    assert after.stdout == "(1, 30.0)\n"
    assert after.error and "READ ONLY" in after.error["evalue"]


# Ignores the interrupt, so the kernel has to kill the worker mid-query.
STUBBORN = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"


def running_queries(backend: str, marker: str) -> int:
    if backend == "postgres":
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
            row = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND state = 'active' AND query LIKE %s",
                (f"%{marker}%",),
            ).fetchone()
            return int(row[0]) if row else 0
    import MySQLdb

    db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        cursor = db.cursor()
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
            "WHERE ID <> CONNECTION_ID() AND INFO LIKE %s",
            (f"%{marker}%",),
        )
        return int(cursor.fetchone()[0])
    finally:
        db.close()


async def wait_gone(backend: str, marker: str, within_s: float) -> int:
    """How many queries with the marker still run after at most within_s (polled)."""
    deadline = time.monotonic() + within_s
    count = running_queries(backend, marker)
    for _ in range(int(within_s / 0.2)):
        if not count or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
        count = running_queries(backend, marker)
    return count


async def killed_cell(kernel: KernelClient, backend: str, code: str, marker: str) -> None:
    done = await cell(kernel, STUBBORN + code, timeout_s=2)
    assert (done.status, done.state_lost) == ("timeout", True), done.error
    assert await wait_gone(backend, marker, within_s=5) == 0


@pytest.mark.parametrize("check_off", [False, True], ids=["as-opened", "check-turned-off"])
async def test_killed_cell_query_is_cancelled_on_postgres(pg_session: Any, check_off: bool) -> None:
    """Whether the server's own check for a vanished client is on, or the cell turned it off."""
    kernel, _ = pg_session
    marker = f"killed_{uuid.uuid4().hex[:8]}"
    off = "con.con.pgconn.exec_(b'SET client_connection_check_interval = 0')\n"
    code = (off if check_off else "") + f"con.raw_sql('SELECT pg_sleep(60) /* {marker} */')"
    running = asyncio.ensure_future(killed_cell(kernel, "postgres", code, marker))
    await asyncio.sleep(1)
    assert running_queries("postgres", marker) == 1  # it did run, and is stopped after the kill
    await running


async def test_killed_cell_query_is_cancelled_on_mariadb(my_session: Any) -> None:
    kernel, _ = my_session
    marker = f"killed_{uuid.uuid4().hex[:8]}"
    # Busy, not SLEEP: MariaDB's SLEEP notices a vanished client by itself, BENCHMARK does not.
    code = f"con.raw_sql('SELECT BENCHMARK(10000000000, MD5(1)) /* {marker} */')"
    running = asyncio.ensure_future(killed_cell(kernel, "mysql", code, marker))
    await asyncio.sleep(1)
    assert running_queries("mysql", marker) == 1
    await running


async def test_a_killed_cell_s_queries_are_cancelled_on_each_database(
    shared_kernel: KernelClient, postgres_table: tuple[str, str], mysql_table: tuple[str, str]
) -> None:
    """A session of two databases: the kill stops the query on each server, one running in a
    thread of the cell (PostgreSQL, its own check turned off) and one in the cell itself."""
    (pg_server, _), (my_server, database) = postgres_table, mysql_table
    databases = [
        {"name": "app", "dsn": pg_server},
        {"name": "billing", "dsn": f"{my_server}/{database}"},
    ]
    info = await shared_kernel.start_session({"databases": databases, "statement_timeout_s": 30})
    assert [(d.backend, d.read_only) for d in info.databases] == [
        ("postgres", True),
        ("mysql", True),
    ]
    marker = f"killed_{uuid.uuid4().hex[:8]}"
    code = (
        "import threading\n"
        "cons['app'].con.pgconn.exec_(b'SET client_connection_check_interval = 0')\n"
        "threading.Thread(target=cons['app'].raw_sql, daemon=True,\n"
        f"                 args=('SELECT pg_sleep(60) /* {marker} */',)).start()\n"
        f"cons['billing'].raw_sql('SELECT BENCHMARK(10000000000, MD5(1)) /* {marker} */')"
    )
    try:
        running = asyncio.ensure_future(cell(shared_kernel, STUBBORN + code, timeout_s=2))
        await asyncio.sleep(1)
        assert (running_queries("postgres", marker), running_queries("mysql", marker)) == (1, 1)
        done = await running
        assert (done.status, done.state_lost) == ("timeout", True), done.error
        assert await wait_gone("postgres", marker, within_s=5) == 0
        assert await wait_gone("mysql", marker, within_s=5) == 0
    finally:
        await shared_kernel.end_session()
