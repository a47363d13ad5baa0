"""Build the held-out PII tables in DuckDB, PostgreSQL or MariaDB, and drop them after.

Every object is named `heldout2_<random>` so a crashed run's leftovers are recognisable.
Yields `(dsn, qualifier)`: pass `f"{qualifier}.{table}"` to find_pii.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from heldout2.pii_base import Table
from heldout2.rel_base import Schema

TYPES = {
    "duckdb": {
        "text": "VARCHAR",
        "int": "BIGINT",
        "float": "DOUBLE",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "bool": "BOOLEAN",
    },
    "postgres": {
        "text": "TEXT",
        "int": "BIGINT",
        "float": "DOUBLE PRECISION",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "bool": "BOOLEAN",
    },
    "mysql": {
        "text": "TEXT",
        "int": "BIGINT",
        "float": "DOUBLE",
        "date": "DATE",
        "timestamp": "DATETIME",
        "bool": "BOOLEAN",
    },
}
QUOTE = {"duckdb": '"', "postgres": '"', "mysql": "`"}


def _ddl(backend: str, qualified: str, table: Table) -> str:
    q = QUOTE[backend]
    cols = ", ".join(f"{q}{c.name}{q} {TYPES[backend][c.sql]}" for c in table.columns)
    return f"CREATE TABLE {qualified} ({cols})"


def _rows(table: Table) -> list[tuple[Any, ...]]:
    return list(zip(*(c.values for c in table.columns), strict=True))


def _fill(cursor: Any, backend: str, qualifier: str, tables: list[Table], mark: str) -> None:
    q = QUOTE[backend]
    for table in tables:
        qualified = f"{q}{qualifier}{q}.{q}{table.name}{q}"
        cursor.execute(_ddl(backend, qualified, table))
        holes = ", ".join([mark] * len(table.columns))
        cursor.executemany(f"INSERT INTO {qualified} VALUES ({holes})", _rows(table))


@contextlib.contextmanager
def duckdb(folder: Path, tables: list[Table]) -> Iterator[tuple[str, str]]:
    import duckdb as ddb

    path = folder / f"heldout2_{secrets.token_hex(4)}.duckdb"
    con = ddb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA heldout2")
        _fill(con, "duckdb", "heldout2", tables, "?")
    finally:
        con.close()
    try:
        yield f"duckdb:///{path}", "heldout2"
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def postgres(server: str, tables: list[Table]) -> Iterator[tuple[str, str]]:
    import psycopg

    schema = f"heldout2_{secrets.token_hex(4)}"
    dsn = f"postgresql://postgres@{server}/postgres"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            with admin.cursor() as cursor:
                _fill(cursor, "postgres", schema, tables, "%s")
            yield dsn, schema
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.contextmanager
def mysql(server: str, tables: list[Table]) -> Iterator[tuple[str, str]]:
    import MySQLdb

    host, port = server.rsplit(":", 1)
    database = f"heldout2_{secrets.token_hex(4)}"
    admin = MySQLdb.connect(host=host, port=int(port), user="root", charset="utf8mb4")
    try:
        cursor = admin.cursor()
        cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        try:
            _fill(cursor, "mysql", database, tables, "%s")
            admin.commit()
            yield f"mysql://root@{server}/{database}", database
        finally:
            cursor.execute(f"DROP DATABASE `{database}`")
    finally:
        admin.close()


@contextlib.contextmanager
def relations_duckdb(folder: Path, schemas: list[Schema]) -> Iterator[str]:
    """The schemas in one DuckDB file, primary keys declared where the set says, no foreign key."""
    import duckdb as ddb

    path = folder / f"heldout2_rel_{secrets.token_hex(4)}.duckdb"
    con = ddb.connect(str(path))
    try:
        for s in schemas:
            con.execute(f'CREATE SCHEMA "{s.name}"')
            for t in s.tables.values():
                cols = [f'"{n}" {TYPES["duckdb"][sql]}' for n, (sql, _) in t.columns.items()]
                if t.primary_key:
                    cols.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in t.primary_key) + ")")
                con.execute(f'CREATE TABLE "{s.name}"."{t.name}" ({", ".join(cols)})')
                holes = ", ".join(["?"] * len(t.columns))
                rows = list(zip(*(vals for _, vals in t.columns.values()), strict=True))
                con.executemany(f'INSERT INTO "{s.name}"."{t.name}" VALUES ({holes})', rows)
    finally:
        con.close()
    try:
        yield f"duckdb:///{path}"
    finally:
        path.unlink(missing_ok=True)
