"""What the several-databases tests build: one shop spread over PostgreSQL, MariaDB and DuckDB,
each database of its own with a read-only user behind a password, and a TCP proxy a test can
cut, as a network partition would.

The DuckDB file holds the app's `orders` and `customers`; PostgreSQL a copy of `orders` that
lags behind (fewer rows, its newest `created_at` days older), so the two sources hold the same
table; MariaDB the `payments` and `shipments` whose `order_id` points into `orders`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ORDERS = 2000  # in the app (DuckDB), one an hour from 2026-01-01
LAG = 200  # the copy in PostgreSQL misses the newest 200 (8 days and 8 hours)
PAYMENTS = 1500
SHIPMENTS = 600
CUSTOMERS = 200
PG_PASSWORD = "Pg-Multi-Secret-7731"
MARIA_PASSWORD = "Maria-Multi-Secret-4419"
WRITER_PASSWORD = "Maria-Writer-Secret-2208"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Database:
    """One source's database: what a request names (its DSN and tables) and how to reach it."""

    name: str  # the source's name in the run
    dsn: str = field(repr=False)
    tables: tuple[str, ...]
    secrets: tuple[str, ...] = field(default=(), repr=False)  # passwords and the DSN


@contextlib.contextmanager
def postgres_copy(
    server: str = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> Iterator[Database]:
    """A database of its own holding the lagging copy of `orders`, and a reader role."""
    import psycopg

    database = f"multi_{uuid.uuid4().hex[:10]}"
    role = f"multi_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PG_PASSWORD}'")
        admin.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
        admin.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
    try:
        with psycopg.connect(server.rsplit("/", 1)[0] + f"/{database}", autocommit=True) as db:
            db.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            db.execute(
                "CREATE TABLE public.orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
                " amount NUMERIC(10, 2) NOT NULL, created_at TIMESTAMP NOT NULL)"
            )
            db.execute(
                f"INSERT INTO public.orders SELECT g, 1 + g % {CUSTOMERS}, (g % 97) * 1.25 + 3,"
                " TIMESTAMP '2026-01-01' + g * INTERVAL '1 hour'"
                f" FROM generate_series(1, {ORDERS - LAG}) AS g"
            )
            db.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            db.execute(f"GRANT SELECT ON public.orders TO {role}")
            db.execute("ANALYZE public.orders")
        dsn = f"postgresql://{role}:{PG_PASSWORD}@127.0.0.1:5432/{database}"
        yield Database("pg", dsn, ("pg/public.orders",), (PG_PASSWORD, dsn))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def _maria() -> object:
    import MySQLdb

    return MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")


@contextlib.contextmanager
def mariadb_payments(port: int = 3306) -> Iterator[Database]:
    """A database of its own with `payments` and `shipments`, and a user that may only read
    them; `port` is where the DSN points (a proxy's, for a test that cuts it)."""
    database = f"multi_{uuid.uuid4().hex[:10]}"
    user = f"multi_reader_{uuid.uuid4().hex[:8]}"
    db = _maria()
    cur = db.cursor()  # type: ignore[attr-defined]
    cur.execute(f"CREATE DATABASE `{database}`")
    try:
        cur.execute(
            f"CREATE TABLE `{database}`.payments (id INTEGER PRIMARY KEY, order_id INTEGER NOT"
            " NULL, amount DECIMAL(10, 2) NOT NULL, paid_at DATETIME NOT NULL)"
        )
        cur.execute(
            f"INSERT INTO `{database}`.payments SELECT seq, 1 + seq * 7 % {ORDERS},"
            " (seq % 89) * 1.5 + 2, TIMESTAMP '2026-01-01 00:30:00' + INTERVAL seq HOUR"
            f" FROM `{database}`.seq_1_to_{PAYMENTS}"
        )
        cur.execute(
            f"CREATE TABLE `{database}`.shipments (id INTEGER PRIMARY KEY, order_id INTEGER NOT"
            " NULL, carrier VARCHAR(20) NOT NULL)"
        )
        cur.execute(
            f"INSERT INTO `{database}`.shipments SELECT seq, seq * 3, ELT(1 + seq % 3, 'dhl',"
            f" 'ups', 'post') FROM `{database}`.seq_1_to_{SHIPMENTS}"
        )
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{MARIA_PASSWORD}'")
        cur.execute(f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'")
        db.commit()  # type: ignore[attr-defined]
        dsn = f"mysql://{user}:{MARIA_PASSWORD}@127.0.0.1:{port}/{database}"
        tables = ("maria/payments", "maria/shipments")
        yield Database("maria", dsn, tables, (MARIA_PASSWORD, dsn))
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        db.close()  # type: ignore[attr-defined]


@contextlib.contextmanager
def mariadb_writer(name: str = "maria") -> Iterator[Database]:
    """A database whose user may write (INSERT): a source the run must refuse."""
    database = f"multi_{uuid.uuid4().hex[:10]}"
    user = f"multi_writer_{uuid.uuid4().hex[:8]}"
    db = _maria()
    cur = db.cursor()  # type: ignore[attr-defined]
    cur.execute(f"CREATE DATABASE `{database}`")
    try:
        cur.execute(f"CREATE TABLE `{database}`.payments (id INTEGER PRIMARY KEY)")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{WRITER_PASSWORD}'")
        cur.execute(f"GRANT SELECT, INSERT ON `{database}`.* TO '{user}'@'%'")
        db.commit()  # type: ignore[attr-defined]
        dsn = f"mysql://{user}:{WRITER_PASSWORD}@127.0.0.1:3306/{database}"
        yield Database(name, dsn, (f"{name}/payments",), (WRITER_PASSWORD, dsn))
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        db.close()  # type: ignore[attr-defined]


def duckdb_app(folder: Path) -> Database:
    """The app's `orders` and `customers` in a DuckDB file under `folder` (mounted into the
    sandboxes), readable by the sandbox's user."""
    import duckdb

    path = folder / f"app-{uuid.uuid4().hex[:8]}.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
            " amount DECIMAL(10, 2) NOT NULL, created_at TIMESTAMP NOT NULL);"
            f"INSERT INTO orders SELECT g, 1 + g % {CUSTOMERS}, (g % 97) * 1.25 + 3,"
            f" TIMESTAMP '2026-01-01' + g * INTERVAL 1 HOUR FROM range(1, {ORDERS + 1}) t(g);"
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL);"
            f"INSERT INTO customers SELECT g, 'Customer ' || g FROM range(1, {CUSTOMERS + 1}) t(g);"
        )
    path.chmod(0o644)
    dsn = f"duckdb://{path}"
    return Database("duck", dsn, ("duck/orders", "duck/customers"), (dsn,))


class CuttableProxy:
    """A TCP proxy on a free loopback port to `target`; `cut()` closes its listener and every
    connection at once, so the database behind it becomes unreachable mid-run."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._transports: list[asyncio.BaseTransport] = []
        self.connections = 0
        self.cut_done = False
        self.port = 0

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def cut(self) -> None:
        """No new connection, and every open one reset."""
        self.cut_done = True
        if self._server is not None:
            self._server.close()
        for transport in self._transports:
            transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_done:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._transports += [writer.transport, up_writer.transport]
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


HEADING = re.compile(r"<h([1-4])[^>]*>(.*?)</h\1>", re.S)


def _names(source: str, heading: str) -> bool:
    """Whether a heading names `source` itself, not one of its tables (`source/...`)."""
    return re.search(rf"\b{source}\b(?!/)", re.sub(r"<[^>]+>", "", heading)) is not None


def section_of(page: str, source: str) -> bool:
    """Whether the page has a heading naming `source`."""
    return any(_names(source, m[2]) for m in HEADING.finditer(page))


def section_text(page: str, source: str, others: list[str]) -> str:
    """The page from the last heading naming `source` to the next naming one of `others` or
    "Across sources", tags and all ("" without such a heading)."""
    found = [m for m in HEADING.finditer(page) if _names(source, m[2])]
    if not found:
        return ""
    rest = HEADING.finditer(page, found[-1].end())
    ends = (
        m.start() for m in rest if "Across sources" in m[2] or any(_names(o, m[2]) for o in others)
    )
    return page[found[-1].start() : next(ends, len(page))]
