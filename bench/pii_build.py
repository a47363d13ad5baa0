"""Build pii_cases' tables in PostgreSQL, MariaDB or DuckDB, and drop them after.

Each builder is a context manager that yields a DSN a read-only session can open (the admin
one: the bench and the tests read, they never write through it). PostgreSQL gets a schema of
its own, MariaDB a database, DuckDB a file; each is removed on exit.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pii_cases import Case, tables

_TYPES = {
    "postgres": {
        "text": "TEXT",
        "bigint": "BIGINT",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "bool": "BOOLEAN",
        "double": "DOUBLE PRECISION",
    },
    "mysql": {
        "text": "VARCHAR(400)",
        "bigint": "BIGINT",
        "date": "DATE",
        "timestamp": "DATETIME",
        "bool": "BOOLEAN",
        "double": "DOUBLE",
    },
}


def _rows(columns: list[Case]) -> list[tuple[Any, ...]]:
    return list(zip(*(c.values for c in columns), strict=True))


@contextmanager
def postgres(server: str, cases: list[Case]) -> Iterator[tuple[str, str]]:
    """(DSN, schema) of the cases' tables in a fresh PostgreSQL schema."""
    import psycopg

    schema = f"pii_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{schema}"')
        try:
            for table, columns in tables(cases).items():
                ddl = ", ".join(f'"{c.column}" {_TYPES["postgres"][c.kind]}' for c in columns)
                db.execute(f'CREATE TABLE "{schema}"."{table}" ({ddl})')
                names = ", ".join(f'"{c.column}"' for c in columns)
                copy_sql = f'COPY "{schema}"."{table}" ({names}) FROM STDIN'
                with db.cursor() as cur, cur.copy(copy_sql) as copy:
                    for row in _rows(columns):
                        copy.write_row(row)
                db.execute(f'ANALYZE "{schema}"."{table}"')
            yield server, schema
        finally:
            db.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def mysql(server: str, cases: list[Case]) -> Iterator[tuple[str, str]]:
    """(DSN, database) of the cases' tables in a fresh MariaDB database."""
    import MySQLdb

    database = f"pii_bench_{uuid.uuid4().hex[:8]}"
    db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4")
    cur = db.cursor()
    cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    try:
        for table, columns in tables(cases).items():
            ddl = ", ".join(f"`{c.column}` {_TYPES['mysql'][c.kind]}" for c in columns)
            cur.execute(f"CREATE TABLE `{database}`.`{table}` ({ddl})")
            marks = ", ".join(["%s"] * len(columns))
            cur.executemany(f"INSERT INTO `{database}`.`{table}` VALUES ({marks})", _rows(columns))
            cur.execute(f"ANALYZE TABLE `{database}`.`{table}`")
            cur.fetchall()
        db.commit()
        yield f"{server}/{database}", database
    finally:
        cur.execute(f"DROP DATABASE `{database}`")
        db.close()


@contextmanager
def duckdb(folder: Path, cases: list[Case]) -> Iterator[tuple[str, str]]:
    """(DSN, schema) of the cases' tables in a DuckDB file in `folder`."""
    import duckdb as duck
    import pyarrow as pa

    arrow = {
        "text": pa.string(),
        "bigint": pa.int64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "bool": pa.bool_(),
        "double": pa.float64(),
    }
    path = folder / f"pii_bench_{uuid.uuid4().hex[:8]}.duckdb"
    try:
        with duck.connect(str(path)) as db:
            for table, columns in tables(cases).items():
                data = pa.table({c.column: pa.array(c.values, arrow[c.kind]) for c in columns})
                db.register("incoming", data)
                db.execute(f'CREATE TABLE main."{table}" AS SELECT * FROM incoming')
                db.unregister("incoming")
        path.chmod(0o644)
        yield f"duckdb://{path}", "main"
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def built(backend: str, cases: list[Case], folder: Path) -> Iterator[tuple[str, str]]:
    """The cases in `backend` (postgres, mysql or duckdb): yields (DSN, schema). The servers
    are the test suite's (CATALOG_TEST_POSTGRES, CATALOG_TEST_MYSQL, as tests/conftest.py)."""
    if backend == "postgres":
        url = os.environ.get(
            "CATALOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
        with postgres(url, cases) as found:
            yield found
    elif backend == "mysql":
        url = os.environ.get("CATALOG_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
        parts = urlsplit(url)
        with mysql(f"{parts.scheme}://{parts.netloc}", cases) as found:
            yield found
    else:
        with duckdb(folder, cases) as found:
            yield found
