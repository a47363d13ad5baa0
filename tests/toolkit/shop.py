"""A small shop with awkward names, built the same way in PostgreSQL, MariaDB and DuckDB.

Names that need quoting (a space and capitals in `Order Details`, a reserved word `select` as a
column), an empty table, declared keys and a foreign key, comments, a cell holding HTML, and
dirty values the profile should flag. Used by the toolkit tests and the end-to-end tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

HOSTILE = "<script>alert('x')</script>"
# A password with every character that breaks a naive URL parser.
PASSWORD = "p@ss:w/rd?#%x"
# A view that takes 20 s to read (10 ms a row), for the statement time limit.
SLOW_VIEW = {
    "postgres": "CREATE VIEW {s}.slow AS SELECT g, pg_sleep(0.01)::text AS z"
    " FROM generate_series(1, 2000) AS g",
    "mysql": "CREATE VIEW {s}.slow AS SELECT seq AS g, SLEEP(0.01) AS z FROM {s}.seq_1_to_2000",
}
CUSTOMERS = 300
ORDERS = 1200


@dataclass(frozen=True)
class Shop:
    backend: str  # postgres, mysql, duckdb
    schema: str  # PostgreSQL schema, MySQL database, DuckDB schema
    admin_dsn: str  # may write: for building and for the "writable" tests
    reader_dsn: str  # may only read, with PASSWORD where the backend has passwords
    path: Path | None = None  # the DuckDB file

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}"

    @property
    def tables(self) -> list[str]:
        return [self.table(n) for n in ("customers", "Order Details", "empty")]


def _rows() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    customers = [
        (
            i,
            HOSTILE if i == 7 else f"Customer {i}",
            None if i % 10 == 1 else ("dup@example.com" if i % 50 == 0 else f"u{i}@example.com"),
            f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00",
            f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 08:30:00+00:00",
        )
        for i in range(1, CUSTOMERS + 1)
    ]
    orders = [
        (
            i,
            1 + i % CUSTOMERS,
            ["new", "paid", "shipped"][i % 3],
            -5.0 if i % 400 == 0 else round(i * 0.75, 2),
            i % 4,
        )
        for i in range(1, ORDERS + 1)
    ]
    return customers, orders


_DDL = [
    "CREATE TABLE {s}.customers (id INTEGER PRIMARY KEY, {q}Full Name{q} VARCHAR(100) NOT NULL,"
    " email VARCHAR(100), created_at TIMESTAMP NOT NULL, last_seen {tz})",
    "CREATE TABLE {s}.{q}Order Details{q} (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL"
    " REFERENCES {s}.customers (id), status VARCHAR(20) NOT NULL, amount DECIMAL(10, 2),"
    " {q}select{q} INTEGER)",
    "CREATE TABLE {s}.empty (id INTEGER, note VARCHAR(10))",
]


@contextmanager
def postgres_shop(server: str) -> Iterator[Shop]:
    import psycopg

    schema = f"Shop {uuid.uuid4().hex[:6]}"
    role = f"shop_reader_{uuid.uuid4().hex[:6]}"
    s = f'"{schema}"'
    customers, orders = _rows()
    with psycopg.connect(server, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {s}")
        try:
            for ddl in _DDL:
                db.execute(ddl.format(s=s, q='"', tz="TIMESTAMPTZ"))
            with db.cursor() as cur:
                cur.executemany(f"INSERT INTO {s}.customers VALUES (%s, %s, %s, %s, %s)", customers)
                cur.executemany(
                    f'INSERT INTO {s}."Order Details" VALUES (%s, %s, %s, %s, %s)', orders
                )
            db.execute(f"COMMENT ON TABLE {s}.customers IS 'people who bought something'")
            db.execute(f"COMMENT ON COLUMN {s}.customers.email IS 'contact address'")
            db.execute(f'ANALYZE {s}.customers, {s}."Order Details"')
            db.execute(SLOW_VIEW["postgres"].format(s=s))
            db.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
            db.execute(f"GRANT USAGE ON SCHEMA {s} TO {role}")
            db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {role}")
            host = server.split("@", 1)[1]
            yield Shop(
                "postgres",
                schema,
                server,
                f"postgresql://{role}:{quote(PASSWORD, safe='')}@{host}",
            )
        finally:
            db.execute(f"DROP SCHEMA {s} CASCADE")
            db.execute(f"DROP ROLE IF EXISTS {role}")  # its grants went with the schema


@contextmanager
def mysql_shop(server: str) -> Iterator[Shop]:
    import MySQLdb

    database = f"Shop_{uuid.uuid4().hex[:6]}"
    user = f"shop_reader_{uuid.uuid4().hex[:6]}"
    s = f"`{database}`"
    customers, orders = _rows()
    db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    cur = db.cursor()
    cur.execute(f"CREATE DATABASE {s}")
    try:
        for ddl in _DDL:
            cur.execute(ddl.format(s=s, q="`", tz="TIMESTAMP NULL"))  # MySQL has no TIMESTAMPTZ
        local = [(*row[:4], row[4][:19]) for row in customers]
        cur.executemany(f"INSERT INTO {s}.customers VALUES (%s, %s, %s, %s, %s)", local)
        cur.executemany(f"INSERT INTO {s}.`Order Details` VALUES (%s, %s, %s, %s, %s)", orders)
        cur.execute(f"ALTER TABLE {s}.customers COMMENT = 'people who bought something'")
        cur.execute(
            f"ALTER TABLE {s}.customers MODIFY email VARCHAR(100) COMMENT 'contact address'"
        )
        cur.execute(SLOW_VIEW["mysql"].format(s=s))
        cur.execute(f"ANALYZE TABLE {s}.customers")
        cur.fetchall()
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        cur.execute(f"GRANT SELECT ON {s}.* TO '{user}'@'%'")
        db.commit()
        yield Shop(
            "mysql",
            database,
            f"{server}/{database}",
            f"mysql://{user}:{quote(PASSWORD, safe='')}@127.0.0.1:3306/{database}",
        )
    finally:
        cur.execute(f"DROP DATABASE {s}")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        db.close()


@contextmanager
def duckdb_shop(folder: Path) -> Iterator[Shop]:
    import duckdb

    path = folder / "shop.duckdb"
    schema = "Shop Main"
    s = f'"{schema}"'
    customers, orders = _rows()
    with duckdb.connect(str(path)) as db:
        db.execute(f"CREATE SCHEMA {s}")
        for ddl in _DDL:
            db.execute(ddl.format(s=s, q='"', tz="TIMESTAMPTZ"))
        # One statement per table: DuckDB's executemany runs one statement a row (seconds).
        _insert_all(db, f"{s}.customers", customers)
        _insert_all(db, f'{s}."Order Details"', orders)
        db.execute(f"COMMENT ON TABLE {s}.customers IS 'people who bought something'")
        db.execute(f"COMMENT ON COLUMN {s}.customers.email IS 'contact address'")
    dsn = f"duckdb://{path}"
    yield Shop("duckdb", schema, dsn, dsn, path)


def _insert_all(db: Any, table: str, rows: list[tuple[object, ...]]) -> None:
    row = "(" + ", ".join("?" * len(rows[0])) + ")"
    db.execute(f"INSERT INTO {table} VALUES " + ", ".join([row] * len(rows)), _flat(rows))


def _flat(rows: list[tuple[object, ...]]) -> list[object]:
    return [value for row in rows for value in row]


BACKENDS = ("postgres", "mysql", "duckdb")


@contextmanager
def shop_in(backend: str, folder: Path) -> Iterator[Shop]:
    """The shop in `backend`, on the test servers; a DuckDB file goes in `folder`, readable by
    the sandbox user (uid 10001) when that folder is mounted into sandboxes."""
    from tests.conftest import MYSQL_URL, POSTGRES_URL

    if backend == "postgres":
        with postgres_shop(POSTGRES_URL) as built:
            yield built
    elif backend == "mysql":
        with mysql_shop(MYSQL_URL.rsplit("/", 1)[0]) as built:
            yield built
    else:
        with duckdb_shop(folder) as built:
            assert built.path is not None
            built.path.chmod(0o644)
            yield built
