"""Three sources that describe the same shop, for the cross-source findings:
- `app`, a DuckDB file: orders (id, customer_id, status, amount, created_at) and customers;
- `warehouse`, a PostgreSQL schema: a copy of orders that lags behind (the first WAREHOUSE_ORDERS
  rows, so fewer and older) and has no `status` column;
- `billing`, a MariaDB database: customers, without the last ORPHANS of the app's customers,
  so that many of app/orders.customer_id's distinct values have no billing customer.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CUSTOMERS = 200
ORPHANS = 10  # app customers 191..200 are not in billing
ORDERS = 1200
WAREHOUSE_ORDERS = 1000
START = dt.datetime(2026, 1, 1)


def order(i: int) -> tuple[Any, ...]:
    """Order `i`: one an hour from START, every customer in turn."""
    return (
        i,
        1 + i % CUSTOMERS,
        ["new", "paid"][i % 2],
        round(i * 0.5, 2),
        START + dt.timedelta(hours=i),
    )


@dataclass(frozen=True)
class Estate:
    dsns: dict[str, str]  # source name -> DSN, in order: app, warehouse, billing
    warehouse_schema: str
    billing_database: str
    warehouse_table: str  # `orders`, or another name for the renamed copy

    @property
    def tables(self) -> list[str]:
        return [
            "app/main.orders",
            "app/main.customers",
            f"warehouse/{self.warehouse_schema}.{self.warehouse_table}",
            f"billing/{self.billing_database}.customers",
        ]


def _app(path: Path) -> str:
    import duckdb

    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR, created_at TIMESTAMP)"
        )
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status VARCHAR,"
            " amount DECIMAL(10, 2), created_at TIMESTAMP)"
        )
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)",
            [(i, f"Customer {i}", START) for i in range(1, CUSTOMERS + 1)],
        )
        rows = [order(i) for i in range(1, ORDERS + 1)]
        db.execute(
            "INSERT INTO orders VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * len(rows)),
            [v for row in rows for v in row],
        )
    path.chmod(0o644)
    return f"duckdb://{path}"


@contextmanager
def _warehouse(table: str) -> Iterator[tuple[str, str]]:
    import psycopg

    from tests.conftest import POSTGRES_URL

    schema = f"warehouse_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
        try:
            db.execute(
                f"CREATE TABLE {schema}.{table} (id INTEGER PRIMARY KEY, customer_id INTEGER,"
                " amount NUMERIC(10, 2), created_at TIMESTAMP)"
            )
            with db.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {schema}.{table} VALUES (%s, %s, %s, %s)",
                    [(o[0], o[1], o[3], o[4]) for o in map(order, range(1, WAREHOUSE_ORDERS + 1))],
                )
            db.execute(f"ANALYZE {schema}.{table}")
            yield POSTGRES_URL, schema
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def _billing() -> Iterator[tuple[str, str]]:
    import MySQLdb

    from tests.conftest import MYSQL_URL

    database = f"billing_{uuid.uuid4().hex[:8]}"
    db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    cur = db.cursor()
    cur.execute(f"CREATE DATABASE {database}")
    try:
        cur.execute(
            f"CREATE TABLE {database}.customers (id INT PRIMARY KEY, name VARCHAR(100),"
            " plan VARCHAR(20))"
        )
        cur.executemany(
            f"INSERT INTO {database}.customers VALUES (%s, %s, %s)",
            [(i, f"Customer {i}", "basic") for i in range(1, CUSTOMERS - ORPHANS + 1)],
        )
        db.commit()
        yield f"{MYSQL_URL.rsplit('/', 1)[0]}/{database}", database
    finally:
        cur.execute(f"DROP DATABASE {database}")
        db.close()


@contextmanager
def estate_in(folder: Path, warehouse_table: str = "orders") -> Iterator[Estate]:
    app = _app(folder / "app.duckdb")
    with _warehouse(warehouse_table) as (warehouse, schema), _billing() as (billing, database):
        dsns = {"app": app, "warehouse": warehouse, "billing": billing}
        yield Estate(dsns, schema, database, warehouse_table)
