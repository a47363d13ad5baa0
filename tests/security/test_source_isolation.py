"""Several databases in one sandbox (issue 15): each source reaches only its own database.

Two PostgreSQL databases, each with a login role of its own that may connect to it alone. The
session opens both, read only, as `cons["a"]` and `cons["b"]`; each has its own pgbouncer in its
own sub-folder of the relay folder, which knows one database and one user: nothing a cell sends
to `a`'s socket reaches `b`'s database, another database, the console, or anything else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from catalog.v1 import sandbox_pb2 as pb

from tests.conftest import POSTGRES_URL
from tests.sandbox_manager.conftest import StartManager
from tests.sandbox_manager.conftest import start_manager as start_manager
from tests.security.test_egress import CONNECT, cell

SERVER = POSTGRES_URL.rsplit("/", 1)[0].replace("postgres@", "")  # postgresql://127.0.0.1:5432


@dataclass(frozen=True)
class Source:
    name: str  # the database's and its role's name
    password: str
    rows: int

    @property
    def dsn(self) -> str:
        return SERVER.replace("//", f"//{self.name}:{self.password}@") + f"/{self.name}"


@pytest.fixture
def two_sources() -> Iterator[tuple[Source, Source]]:
    """Databases `iso_a_*` and `iso_b_*`, each readable by its own role only."""
    import psycopg

    tag = uuid.uuid4().hex[:8]
    sources = (
        Source(f"iso_a_{tag}", f"pw-a-{uuid.uuid4().hex}", 3),
        Source(f"iso_b_{tag}", f"pw-b-{uuid.uuid4().hex}", 5),
    )
    with psycopg.connect(POSTGRES_URL, autocommit=True) as server:
        try:
            for source in sources:
                server.execute(f"CREATE ROLE {source.name} LOGIN PASSWORD '{source.password}'")
                server.execute(f"CREATE DATABASE {source.name}")
                server.execute(f"REVOKE CONNECT ON DATABASE {source.name} FROM PUBLIC")
                server.execute(f"GRANT CONNECT ON DATABASE {source.name} TO {source.name}")
                admin_url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{source.name}"
                with psycopg.connect(admin_url, autocommit=True) as admin:
                    admin.execute(
                        "CREATE TABLE public.items AS SELECT g AS id "
                        f"FROM generate_series(1, {source.rows}) g"
                    )
                    admin.execute(f"GRANT SELECT ON public.items TO {source.name}")
            yield sources
        finally:
            for source in sources:
                server.execute(f"DROP DATABASE IF EXISTS {source.name} WITH (FORCE)")
                server.execute(f"DROP ROLE IF EXISTS {source.name}")


PROBE = (
    CONNECT
    + """
import os, psycopg
def login(folder, user, dbname):
    try:
        psycopg.connect(host='/run/catalog-db/' + folder, port=5432, user=user, dbname=dbname,
                        connect_timeout=5).close()
        return 'connected'
    except psycopg.OperationalError as exc:
        return str(exc).splitlines()[0][-80:]
def bind(path):
    try:
        socket.socket(socket.AF_UNIX).bind(path)
        return 'bound'
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, repr(exc))
def show(con):
    c = con.raw_sql('SHOW default_transaction_read_only')
    try:
        return c.fetchone()[0]
    finally:
        c.close()
a, b = {a!r}, {b!r}
root = '/run/catalog-db/'
folders = {{n: sorted(os.listdir(root + n)) for n in os.listdir(root)}}
print(json.dumps({{
    'cons': list(cons),
    'con_is_a': con is cons['a'],
    'rows': [int(cons[n].table('items').count().execute()) for n in ('a', 'b')],
    'read_only': [show(cons[n]) for n in ('a', 'b')],
    'folders': folders,
    'b_db_on_a': login('a', a, b),
    'b_user_on_a': login('a', b, b),
    'b_user_a_db': login('a', b, a),
    'other_db_on_a': login('a', a, 'postgres'),
    'console_on_a': login('a', 'pgbouncer', 'pgbouncer'),
    'a_db_on_b': login('b', a, a),
    'bind': bind('/run/catalog-db/a/.s.PGSQL.6000'),
    'server': attempt('127.0.0.1', 5432),
    'outside': attempt('1.1.1.1', 53),
}}))
"""
)


async def test_each_source_reaches_only_its_own_database(
    start_manager: StartManager, two_sources: tuple[Source, Source], sandbox_runtime: str
) -> None:
    """Under runc and gVisor (whose gofer must show sub-folders made after the start)."""
    a, b = two_sources
    manager = await start_manager(runtime=sandbox_runtime)
    session = pb.SessionConfig(
        databases=[pb.SessionDatabase(name="a", dsn=a.dsn), pb.SessionDatabase(name="b", dsn=b.dsn)]
    )
    acquired = await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest(session=session))
    assert [(d.name, d.backend, d.read_only) for d in acquired.session.databases] == [
        ("a", "postgres", True),
        ("b", "postgres", True),
    ]
    seen = json.loads(
        await cell(manager, acquired.lease.lease_id, PROBE.format(a=a.name, b=b.name))
    )
    assert (seen["cons"], seen["con_is_a"], seen["rows"]) == (["a", "b"], True, [3, 5])
    assert seen["read_only"] == ["on", "on"]
    assert seen["folders"] == {"a": [".s.PGSQL.5432"], "b": [".s.PGSQL.5432"]}
    # a's pgbouncer knows a's database and a's user, and nothing else.
    assert f"no such database: {b.name}" in seen["b_db_on_a"]
    for attempt in ("b_user_on_a", "b_user_a_db", "a_db_on_b"):  # a user it does not list
        assert '"trust" authentication failed' in seen[attempt], (attempt, seen[attempt])
    assert "not allowed" in seen["console_on_a"]
    assert "no such database: postgres" in seen["other_db_on_a"]
    assert seen["bind"] in ("EROFS", "EACCES")
    # And no network: the server's port is not the sandbox's, nothing outside is routed.
    assert seen["server"] == "ECONNREFUSED"
    assert seen["outside"] in ("ENETUNREACH", "EHOSTUNREACH")
