"""Egress: a sandbox reaches the database it catalogs, through the manager's relay, and nothing
else; and a PostgreSQL password never enters it (issue 11).

Every connection a test makes goes to loopback or to a listener the test starts itself; the one
outside address named (1.1.1.1) is never reached: with no route, connect() fails before any
packet is sent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from catalog.v1 import sandbox_pb2 as pb

from tests.conftest import POSTGRES_URL
from tests.sandbox_manager.conftest import RunningManager, StartManager
from tests.sandbox_manager.conftest import start_manager as start_manager


async def cell(manager: RunningManager, lease_id: str, code: str) -> str:
    """What a cell printed (and its value); a cell that raises fails the test."""
    out: list[str] = []
    request = pb.ExecuteRequest(lease_id=lease_id, code=code)
    async for event in manager.stub.Execute(request):
        kind = event.WhichOneof("event")
        if kind == "stdout":
            out.append(event.stdout.text)
        elif kind == "result":
            out.append(event.result.text_plain)
        elif kind == "error":
            raise AssertionError(f"{event.error.ename}: {event.error.evalue}")
    return "".join(out)


async def lease(manager: RunningManager, dsn: str = "") -> pb.AcquireSandboxResponse:
    session = pb.SessionConfig(db_dsn=dsn)
    return await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest(session=session))


CONNECT = """
import errno, json, socket
def attempt(host, port):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        return 'connected'
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, repr(exc))
    finally:
        s.close()
"""


async def test_sandbox_has_no_route_out(start_manager: StartManager, sandbox_runtime: str) -> None:
    manager = await start_manager(runtime=sandbox_runtime)
    acquired = await lease(manager)
    code = CONNECT + (
        "import time\n"
        "routes = open('/proc/net/route').read().splitlines()[1:]\n"
        "lines = open('/proc/net/dev').read().splitlines()[2:]\n"
        "interfaces = sorted(line.split(':')[0].strip() for line in lines)\n"
        "started = time.monotonic()\n"
        "outcome = attempt('1.1.1.1', 53)\n"
        "print(json.dumps({'routes': routes, 'interfaces': interfaces, 'connect': outcome,\n"
        "                  'seconds': time.monotonic() - started}))\n"
    )
    seen = json.loads(await cell(manager, acquired.lease.lease_id, code))
    assert seen["routes"] == [] and seen["interfaces"] == ["lo"]
    # No route: Linux says ENETUNREACH, gVisor EHOSTUNREACH; either way nothing was sent.
    assert seen["connect"] in ("ENETUNREACH", "EHOSTUNREACH") and seen["seconds"] < 1


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge (docker0), where host services listen."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True, check=True
    )
    address = shown.stdout.split(" inet ", 1)[1].split("/", 1)[0]
    assert address.count(".") == 3, shown.stdout
    return address


async def test_sandbox_cannot_reach_host_service_ports(start_manager: StartManager) -> None:
    accepted: list[str] = []

    async def note(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(str(writer.get_extra_info("peername")))
        writer.close()

    gateway = bridge_gateway()
    servers = [await asyncio.start_server(note, host, 0) for host in (gateway, "127.0.0.1")]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    try:
        manager = await start_manager()
        acquired = await lease(manager, POSTGRES_URL)  # a lease with a relay, to be sure
        code = CONNECT + (
            f"print(json.dumps([attempt({gateway!r}, {ports[0]}), "
            f"attempt('127.0.0.1', {ports[1]}), attempt('127.0.0.1', 5432)]))\n"
        )
        outcomes = json.loads(await cell(manager, acquired.lease.lease_id, code))
    finally:
        for server in servers:
            server.close()
    # No route to the bridge; the sandbox's own loopback has nothing listening.
    assert outcomes == ["ENETUNREACH", "ECONNREFUSED", "ECONNREFUSED"]
    assert accepted == []


WIDEN = """
import errno, json, os, socket
seen = {'files': sorted(os.listdir('/run/catalog-db'))}
try:
    own = socket.socket(socket.AF_UNIX)
    own.bind('/run/catalog-db/.s.PGSQL.1')
    seen['bind'] = 'bound'
except OSError as exc:
    seen['bind'] = errno.errorcode.get(exc.errno or 0, repr(exc))
"""


async def test_cell_cannot_widen_the_relay(start_manager: StartManager) -> None:
    """The relay dials the lease's database only: not another port, database or console."""
    accepted: list[str] = []

    async def note(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append("connection")
        writer.close()

    bait = await asyncio.start_server(note, "127.0.0.1", 0)
    port = bait.sockets[0].getsockname()[1]
    try:
        manager = await start_manager()
        mysql = await lease(manager, "mysql://root@127.0.0.1:3306/mysql")
        assert (mysql.session.backend, mysql.session.connect_error) == ("mysql", "")
        # Proxy headers a naive relay might obey; the bytes go to MariaDB, which hangs up.
        code = WIDEN + (
            "s = socket.socket(socket.AF_UNIX)\n"
            "s.connect('/run/catalog-db/mysql.sock')\n"
            "greeting = s.recv(4096)\n"
            f"s.sendall(b'PROXY TCP4 127.0.0.1 127.0.0.1 1 {port}\\r\\n'\n"
            f"          b'CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n')\n"
            "s.settimeout(5)\n"
            "rest = b''\n"
            "while chunk := s.recv(4096):\n"
            "    rest += chunk\n"
            "seen['server'] = greeting.decode('latin-1')\n"
            "print(json.dumps(seen))\n"
        )
        seen = json.loads(await cell(manager, mysql.lease.lease_id, code))
        await manager.stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=mysql.lease.lease_id))
        postgres = await lease(manager, POSTGRES_URL)
        code = WIDEN + (
            "import psycopg\n"
            "def login(**where):\n"
            "    try:\n"
            "        psycopg.connect(host='/run/catalog-db', connect_timeout=5, **where).close()\n"
            "        return 'connected'\n"
            "    except psycopg.OperationalError as exc:\n"
            "        return str(exc).splitlines()[0][-60:]\n"
            "seen['template1'] = login(port=5432, user='postgres', dbname='template1')\n"
            "seen['console'] = login(port=5432, user='pgbouncer', dbname='pgbouncer')\n"
            f"seen['other_port'] = login(port={port}, user='postgres', dbname='postgres')\n"
            "print(json.dumps(seen))\n"
        )
        pg_seen = json.loads(await cell(manager, postgres.lease.lease_id, code))
    finally:
        bait.close()
    assert seen["files"] == ["mysql.sock"] and seen["bind"] in ("EROFS", "EACCES")
    assert "mariadb" in seen["server"].lower() or "mysql" in seen["server"].lower()
    assert pg_seen["files"] == [".s.PGSQL.5432"] and pg_seen["bind"] in ("EROFS", "EACCES")
    assert pg_seen["template1"] != "connected" and "no such database" in pg_seen["template1"]
    assert pg_seen["console"] != "connected" and "not allowed" in pg_seen["console"]
    assert "No such file or directory" in pg_seen["other_port"]
    assert accepted == []


SEARCH = """
import glob, json, os
needle = {reversed_password!r}[::-1]
places = []
if any(needle in value for value in os.environ.values()):
    places.append('os.environ')
def strings(obj, depth=0, seen=set()):
    if id(obj) in seen or depth > 4:
        return
    seen.add(id(obj))
    if isinstance(obj, (str, bytes)):
        yield obj if isinstance(obj, str) else obj.decode('latin-1')
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from strings(key, depth + 1)
            yield from strings(value, depth + 1)
        return
    if isinstance(obj, (list, tuple, set)):
        for value in obj:
            yield from strings(value, depth + 1)
        return
    for name in ('info', 'pgconn', 'con'):
        try:
            yield from strings(getattr(obj, name), depth + 1)
        except Exception:
            pass
    for name in ('password', 'dsn', 'host', 'user'):
        try:
            yield from strings(getattr(obj, name), depth + 1)
        except Exception:
            pass
    try:
        yield from strings(vars(obj), depth + 1)
    except TypeError:
        pass
if any(needle in text for text in strings(con)):
    places.append('con')
for path in ['/proc/self/environ', *glob.glob('/proc/*/cmdline'), *glob.glob('/proc/*/environ')]:
    try:
        if needle.encode() in open(path, 'rb').read():
            places.append(path)
    except OSError:
        pass
for root, _, files in os.walk('/run/catalog-db'):
    for name in files:
        try:
            if needle.encode() in open(os.path.join(root, name), 'rb').read():
                places.append(name)
        except OSError:
            pass
print(json.dumps(places))
"""


@pytest.fixture
def reader_with_password() -> Iterator[tuple[str, str, str]]:
    """A PostgreSQL role with a password and one table it may read: (DSN, password, schema)."""
    import psycopg

    name = f"relay_{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.execute(f"CREATE SCHEMA {name}")
        conn.execute(f"CREATE TABLE {name}.items AS SELECT g AS id FROM generate_series(1, 42) g")
        conn.execute(f"GRANT USAGE ON SCHEMA {name} TO {name}")
        conn.execute(f"GRANT SELECT ON {name}.items TO {name}")
        try:
            yield f"postgresql://{name}:{password}@127.0.0.1:5432/postgres", password, name
        finally:
            conn.execute(f"DROP SCHEMA {name} CASCADE")
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


@pytest.mark.parametrize(
    ("pgbouncer", "runtime"),
    [("pgbouncer", "runc"), ("", "runc"), ("pgbouncer", "runsc")],
    ids=["pgbouncer", "byte-relay", "pgbouncer-gvisor"],
)
async def test_postgres_password_never_enters_the_sandbox(
    start_manager: StartManager,
    reader_with_password: tuple[str, str, str],
    pgbouncer: str,
    runtime: str,
) -> None:
    """With pgbouncer (the default) the search finds nothing; the byte relay, where the kernel
    logs in itself, shows that the same search finds the password when it is there. Under gVisor
    the relay's Unix socket works too (runsc's --fsgofer-host-uds)."""
    dsn, password, schema = reader_with_password
    manager = await start_manager(pgbouncer=pgbouncer, runtime=runtime)
    acquired = await lease(manager, dsn)
    assert (acquired.session.backend, acquired.session.read_only) == ("postgres", True)
    lease_id = acquired.lease.lease_id
    places = json.loads(
        await cell(manager, lease_id, SEARCH.format(reversed_password=password[::-1]))
    )
    count = f"int(con.table('items', database={schema!r}).count().execute())"
    assert await cell(manager, lease_id, count) == "42"  # cataloging still works
    if pgbouncer:
        assert places == []
    else:
        assert "con" in places


async def test_a_dsn_cannot_aim_the_relay_at_a_denied_address(start_manager: StartManager) -> None:
    """CATALOG_SANDBOX_RELAY_DENY (here a name, resolved when the lease begins) is refused with
    a connect error, and the sandbox gets no socket; the lease still serves cells."""
    manager = await start_manager(relay_deny="localhost")
    acquired = await lease(manager, POSTGRES_URL)  # 127.0.0.1, which localhost resolves to
    assert "CATALOG_SANDBOX_RELAY_DENY" in acquired.session.connect_error
    assert acquired.session.backend == ""
    listing = "import os\nos.listdir('/run/catalog-db')"
    assert await cell(manager, acquired.lease.lease_id, listing) == "[]"


def test_host_networking_is_refused_unless_allowed_for_development() -> None:
    from services.sandbox_manager.config import Settings, SettingsError

    assert Settings.from_env({}).limits.network_mode == "none"
    with pytest.raises(SettingsError, match="CATALOG_SANDBOX_ALLOW_HOST_NETWORK"):
        Settings.from_env({"CATALOG_SANDBOX_NETWORK": "host"})
    allowed = {"CATALOG_SANDBOX_NETWORK": "host", "CATALOG_SANDBOX_ALLOW_HOST_NETWORK": "1"}
    assert Settings.from_env(allowed).limits.network_mode == "host"
