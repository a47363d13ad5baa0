"""`make sample`: the demo's shop in the local PostgreSQL and MariaDB, for the README's examples.

Builds the shop with demo/sample_db.py (DuckDB, seeded: every build is the same) and copies its
six tables into the schema `shop` of PostgreSQL's database `postgres` and the database `shop`
of MariaDB, each readable by `catalog_reader` (password `reader-pw`), who may do nothing else:

    postgresql://catalog_reader:reader-pw@127.0.0.1:5432/postgres   tables shop.customers, ...
    mysql://catalog_reader:reader-pw@127.0.0.1:3306/shop             tables customers, ...

Idempotent: a database that already holds the shop (every table, with its row count) is left as
it is; otherwise its shop is dropped and loaded again. The reader and its rights are set every
time. The admin connections are flags (defaults: the test machine's, `make databases`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "demo"))
from sample_db import TABLES, build  # noqa: E402 (beside the demo, which owns the shop)

SCHEMA = "shop"
READER, READER_PASSWORD = "catalog_reader", "reader-pw"
KEYS = {"customers": "id", "products": "id", "orders": "id", "events": "id", "payments": "id"}
KEYS["order_items"] = "order_id, line"
# DuckDB's types as each server spells them (MariaDB needs a length on VARCHAR).
PG_TYPES = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ", "DOUBLE": "DOUBLE PRECISION"}
MY_TYPES = {"VARCHAR": "VARCHAR(255)", "TIMESTAMP WITH TIME ZONE": "DATETIME(6)"}
MY_TYPES["TIMESTAMP"] = "DATETIME(6)"
_BATCH = 5000


def say(message: str) -> None:
    print(f"sample: {message}", file=sys.stderr, flush=True)


def columns(shop: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    """(name, DuckDB type, nullable) of each column."""
    rows = shop.execute(f"DESCRIBE {table}").fetchall()
    return [(str(r[0]), str(r[1]), r[2] == "YES") for r in rows]


def ddl(table: str, cols: list[tuple[str, str, bool]], types: dict[str, str], q: str) -> str:
    spelled = [
        f"{q}{name}{q} {types.get(kind, kind)}{'' if nullable else ' NOT NULL'}"
        for name, kind, nullable in cols
    ]
    key = ", ".join(f"{q}{k.strip()}{q}" for k in KEYS[table].split(","))
    return f"CREATE TABLE {q}{SCHEMA}{q}.{q}{table}{q} ({', '.join(spelled)}, PRIMARY KEY ({key}))"


def batches(shop: duckdb.DuckDBPyConnection, table: str) -> Iterator[list[tuple[Any, ...]]]:
    # A TIMESTAMPTZ comes out as UTC without its zone (DuckDB would need pytz to attach one);
    # the PostgreSQL session is in UTC, so it is stored as the same instant.
    picked = [
        f"timezone('UTC', {name})" if kind == "TIMESTAMP WITH TIME ZONE" else name
        for name, kind, _ in columns(shop, table)
    ]
    cursor = shop.execute(f"SELECT {', '.join(picked)} FROM {table}")
    while rows := cursor.fetchmany(_BATCH):
        yield rows


def counts(shop: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: int(shop.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}


def has_shop(cursor: Any, expected: dict[str, int], q: str) -> bool:
    """Whether every table is there with the expected number of rows."""
    for table, rows in expected.items():
        try:
            cursor.execute(f"SELECT count(*) FROM {q}{SCHEMA}{q}.{q}{table}{q}")
        except Exception:  # a missing table or schema: the shop is not there
            return False
        if cursor.fetchone()[0] != rows:
            return False
    return True


def load_postgres(url: str, shop: duckdb.DuckDBPyConnection, expected: dict[str, int]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as db:
        with db.transaction(force_rollback=True), db.cursor() as probe:
            present = has_shop(probe, expected, '"')
        if not present:
            say("loading the shop into PostgreSQL (schema shop)")
            with db.transaction():
                db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
                db.execute(f"CREATE SCHEMA {SCHEMA}")
                db.execute("SET LOCAL TIME ZONE 'UTC'")
                for table in TABLES:
                    db.execute(ddl(table, columns(shop, table), PG_TYPES, '"'))
                    with db.cursor().copy(f'COPY {SCHEMA}."{table}" FROM STDIN') as copy:
                        for rows in batches(shop, table):
                            for row in rows:
                                copy.write_row(row)
        exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        db.execute(f"{verb} ROLE {READER} LOGIN PASSWORD '{READER_PASSWORD}'")
        db.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {READER}")
        db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {READER}")
    say(
        f"PostgreSQL: postgresql://{READER}:{READER_PASSWORD}@{urlsplit(url).netloc.split('@')[-1]}/postgres"
    )


def load_mariadb(url: str, shop: duckdb.DuckDBPyConnection, expected: dict[str, int]) -> None:
    import MySQLdb

    parts = urlsplit(url)
    db = MySQLdb.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
        user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
        connect_timeout=10,
    )  # fmt: skip
    cursor = db.cursor()
    if not has_shop(cursor, expected, "`"):
        say("loading the shop into MariaDB (database shop)")
        cursor.execute(f"DROP DATABASE IF EXISTS `{SCHEMA}`")
        cursor.execute(f"CREATE DATABASE `{SCHEMA}`")
        for table in TABLES:
            cols = columns(shop, table)
            cursor.execute(ddl(table, cols, MY_TYPES, "`"))
            marks = ", ".join(["%s"] * len(cols))
            for rows in batches(shop, table):
                cursor.executemany(f"INSERT INTO `{SCHEMA}`.`{table}` VALUES ({marks})", rows)
        db.commit()
    cursor.execute(f"CREATE USER IF NOT EXISTS '{READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
    cursor.execute(f"ALTER USER '{READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
    cursor.execute(f"GRANT SELECT ON `{SCHEMA}`.* TO '{READER}'@'%'")
    db.close()
    where = f"{parts.hostname or '127.0.0.1'}:{parts.port or 3306}"
    say(f"MariaDB: mysql://{READER}:{READER_PASSWORD}@{where}/{SCHEMA}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--skip", choices=["postgres", "mysql"], action="append", default=[])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="catalog-sample-") as folder:
        path = Path(folder) / "shop.duckdb"
        build(path)
        with duckdb.connect(str(path), read_only=True) as shop:
            expected = counts(shop)
            if "postgres" not in args.skip:
                load_postgres(args.postgres, shop, expected)
            if "mysql" not in args.skip:
                load_mariadb(args.mysql, shop, expected)
    say("ready: `make serve`, then the README's examples")


if __name__ == "__main__":
    main()
