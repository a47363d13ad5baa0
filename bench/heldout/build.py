"""Load the held-out sets into databases, and remove them after: each builder is a context
manager yielding what a read-only session opens (a DSN) and where the tables are."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from heldout.pii_set import Column, tables
from heldout.relations_set import Schema

SQL_TYPES = {
    "duckdb": {
        "text": "VARCHAR",
        "bigint": "BIGINT",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "bool": "BOOLEAN",
        "double": "DOUBLE",
    },
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
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
MYSQL_SERVER = "mysql://root@127.0.0.1:3306"


def _arrow(kind: str, values: list[Any]) -> Any:
    import pyarrow as pa

    types = {
        "text": pa.string(),
        "bigint": pa.int64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "bool": pa.bool_(),
        "double": pa.float64(),
    }
    return pa.array(values, types[kind])


def _duck_table(
    db: Any,
    qualified: str,
    columns: list[tuple[str, str, list[Any]]],
    primary_key: str | None = None,
) -> None:
    import pyarrow as pa

    ddl = [f'"{name}" {SQL_TYPES["duckdb"][kind]}' for name, kind, _ in columns]
    if primary_key:
        ddl.append(f'PRIMARY KEY ("{primary_key}")')
    db.execute(f"CREATE TABLE {qualified} ({', '.join(ddl)})")
    data = pa.table({name: _arrow(kind, values) for name, kind, values in columns})
    db.register("incoming", data)
    db.execute(f"INSERT INTO {qualified} SELECT * FROM incoming")
    db.unregister("incoming")


@contextmanager
def pii_duckdb(folder: Path, columns: list[Column]) -> Iterator[tuple[str, str]]:
    import duckdb

    path = folder / f"heldout_pii_{uuid.uuid4().hex[:8]}.duckdb"
    try:
        with duckdb.connect(str(path)) as db:
            for table, cols in tables(columns).items():
                spec = [(c.name, c.kind, c.values) for c in cols]
                _duck_table(db, f'main."{table}"', spec)
        yield f"duckdb://{path}", "main"
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def pii_postgres(columns: list[Column]) -> Iterator[tuple[str, str]]:
    import psycopg

    schema = f"heldout_pii_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{schema}"')
        try:
            for table, cols in tables(columns).items():
                ddl = ", ".join(f'"{c.name}" {SQL_TYPES["postgres"][c.kind]}' for c in cols)
                db.execute(f'CREATE TABLE "{schema}"."{table}" ({ddl})')
                names = ", ".join(f'"{c.name}"' for c in cols)
                with (
                    db.cursor() as cur,
                    cur.copy(f'COPY "{schema}"."{table}" ({names}) FROM STDIN') as copy,
                ):
                    for row in zip(*(c.values for c in cols), strict=True):
                        copy.write_row(row)
                db.execute(f'ANALYZE "{schema}"."{table}"')
            yield PG_SERVER, schema
        finally:
            db.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def pii_mysql(columns: list[Column]) -> Iterator[tuple[str, str]]:
    import MySQLdb

    database = f"heldout_pii_{uuid.uuid4().hex[:8]}"
    db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4")
    cur = db.cursor()
    cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    try:
        for table, cols in tables(columns).items():
            ddl = ", ".join(f"`{c.name}` {SQL_TYPES['mysql'][c.kind]}" for c in cols)
            cur.execute(f"CREATE TABLE `{database}`.`{table}` ({ddl})")
            marks = ", ".join(["%s"] * len(cols))
            rows = list(zip(*(c.values for c in cols), strict=True))
            cur.executemany(f"INSERT INTO `{database}`.`{table}` VALUES ({marks})", rows)
            cur.execute(f"ANALYZE TABLE `{database}`.`{table}`")
            cur.fetchall()
        db.commit()
        yield f"{MYSQL_SERVER}/{database}", database
    finally:
        cur.execute(f"DROP DATABASE `{database}`")
        db.close()


@contextmanager
def relations_duckdb(folder: Path, schemas: list[Schema]) -> Iterator[str]:
    """One DuckDB file, a schema per case, primary keys declared where the case has one."""
    import duckdb

    path = folder / f"heldout_relations_{uuid.uuid4().hex[:8]}.duckdb"
    try:
        with duckdb.connect(str(path)) as db:
            for schema in schemas:
                db.execute(f"CREATE SCHEMA {schema.name}")
                for t in schema.tables:
                    spec = [(name, kind, values) for name, (kind, values) in t.columns.items()]
                    _duck_table(db, f"{schema.name}.{t.name}", spec, t.primary_key)
        yield f"duckdb://{path}"
    finally:
        path.unlink(missing_ok=True)
