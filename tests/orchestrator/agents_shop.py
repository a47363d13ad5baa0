"""A small shop holding what each analysis agent should find, built the same way in PostgreSQL,
MariaDB and DuckDB, for the pipeline's end-to-end tests.

- pii: `customers.email` (addresses) and `customers.card_number` (16 digits passing Luhn), next
  to `scenario_code`, three-digit codes the pii agent must leave untagged;
- relations: `shipments.order_id` refers to `orders.id` with no constraint declared, and 2% of
  its values have no order (a coverage of 98.0%); `orders.customer_id` is declared;
- anomalies: nothing; a first run has no history, so it is learning.

Each build gets a labelled schema (database on MariaDB) and a reader that may only read it,
with a password that must never show; both are removed after the test.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.toolkit.shop import Shop

PASSWORD = "Agents-pw-5521"
CUSTOMERS, ORDERS, SHIPMENTS = 200, 600, 400
ORPHANS = 8  # shipments whose order_id has no order: 392 of 400 covered, 98.0%
FIRST = ["ada", "alan", "grace", "edsger", "barbara", "donald", "frances", "ken"]
LAST = ["lovelace", "turing", "hopper", "dijkstra", "liskov", "knuth", "allen", "thompson"]

_DDL = [
    "CREATE TABLE {s}.customers (id INTEGER PRIMARY KEY, name VARCHAR(60) NOT NULL,"
    " email VARCHAR(100), card_number VARCHAR(19), scenario_code VARCHAR(3))",
    "CREATE TABLE {s}.orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL"
    " REFERENCES {s}.customers (id), status VARCHAR(12) NOT NULL, total DECIMAL(10, 2))",
    "CREATE TABLE {s}.shipments (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,"
    " carrier VARCHAR(12) NOT NULL)",
]


def luhn_card(rng: random.Random) -> str:
    """A 16-digit Visa-like number whose check digit passes Luhn."""
    body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    total = 0
    for i, ch in enumerate(reversed(body)):  # the check digit goes right of these
        digit = int(ch) * (2 if i % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)


def rows() -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(2026)
    customers = []
    for i in range(1, CUSTOMERS + 1):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        customers.append(
            (
                i,
                f"{first.capitalize()} {last.capitalize()}",
                f"{first}.{last}{i}@mail-example.org",
                luhn_card(rng),
                f"{rng.randrange(100, 1000)}",
            )
        )
    orders = [
        (i, 1 + i * 7 % CUSTOMERS, ["new", "paid", "shipped"][i % 3], round(5 + i * 0.37, 2))
        for i in range(1, ORDERS + 1)
    ]
    shipments = [
        (i, ORDERS + 1000 + i if i <= ORPHANS else 1 + i * 13 % ORDERS, ["dhl", "ups"][i % 2])
        for i in range(1, SHIPMENTS + 1)
    ]
    return {"customers": customers, "orders": orders, "shipments": shipments}


def raw_values() -> list[str]:
    """Every email address and card number of the shop: none may leave the sandbox."""
    return [value for row in rows()["customers"] for value in row[2:4]]


@contextmanager
def agents_shop(backend: str, folder: Path) -> Iterator[Shop]:
    """The shop in `backend` (a DuckDB file goes in `folder`, which sandboxes mount)."""
    builders = {"postgres": _postgres, "mysql": _mysql, "duckdb": _duckdb}
    with builders[backend](folder) as shop:
        yield shop


@contextmanager
def _postgres(_: Path) -> Iterator[Shop]:
    import psycopg

    from tests.conftest import POSTGRES_URL

    schema, role = f"agents_e2e_{uuid.uuid4().hex[:8]}", f"agents_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
        try:
            for ddl in _DDL:
                db.execute(ddl.format(s=schema))
            with db.cursor() as cur:
                for table, values in rows().items():
                    marks = ", ".join(["%s"] * len(values[0]))
                    cur.executemany(f"INSERT INTO {schema}.{table} VALUES ({marks})", values)
            db.execute(f"ANALYZE {schema}.customers, {schema}.orders, {schema}.shipments")
            db.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
            db.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
            host = POSTGRES_URL.split("@", 1)[1]
            reader = f"postgresql://{role}:{PASSWORD}@{host}"
            yield Shop("postgres", schema, POSTGRES_URL, reader)
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")
            db.execute(f"DROP ROLE IF EXISTS {role}")


@contextmanager
def _mysql(_: Path) -> Iterator[Shop]:
    import MySQLdb

    database, user = f"agents_e2e_{uuid.uuid4().hex[:8]}", f"agents_e2e_{uuid.uuid4().hex[:6]}"
    db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    cur = db.cursor()
    cur.execute(f"CREATE DATABASE {database}")
    try:
        for ddl in _DDL:
            cur.execute(ddl.format(s=database))
        for table, values in rows().items():
            marks = ", ".join(["%s"] * len(values[0]))
            cur.executemany(f"INSERT INTO {database}.{table} VALUES ({marks})", values)
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        cur.execute(f"GRANT SELECT ON {database}.* TO '{user}'@'%'")
        db.commit()
        reader = f"mysql://{user}:{PASSWORD}@127.0.0.1:3306/{database}"
        yield Shop("mysql", database, f"mysql://root@127.0.0.1:3306/{database}", reader)
    finally:
        cur.execute(f"DROP DATABASE {database}")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        db.close()


@contextmanager
def _duckdb(folder: Path) -> Iterator[Shop]:
    import duckdb

    path, schema = folder / "agents.duckdb", "shop"
    with duckdb.connect(str(path)) as db:
        db.execute(f"CREATE SCHEMA {schema}")
        for ddl in _DDL:
            db.execute(ddl.format(s=schema))
        for table, values in rows().items():
            marks = "(" + ", ".join("?" * len(values[0])) + ")"
            flat = [v for row in values for v in row]
            db.execute(
                f"INSERT INTO {schema}.{table} VALUES " + ", ".join([marks] * len(values)), flat
            )
    path.chmod(0o644)  # the sandbox user reads it through the mount
    dsn = f"duckdb://{path}"
    yield Shop("duckdb", schema, dsn, dsn, path)
