"""Many tables and wide ones on PostgreSQL, MariaDB and DuckDB: profiled a few at a time, their
catalog declarations read together, and a 500-column table within the backends' limits."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_toolkit import profile_table, profile_tables, row_count
from catalog_toolkit.database import Database

from tests.toolkit.conftest import connect
from tests.toolkit.shop import CUSTOMERS, ORDERS, Shop

STABLE = ("profiled_at", "seconds")  # what differs between two profiles of the same table


def same_figures(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in profile.items() if k not in STABLE}


def test_tables_profiled_together_match_one_at_a_time(shop: Shop) -> None:
    tables = [*shop.tables, shop.table("no_such_table")]
    together = profile_tables(connect(shop.reader_dsn), tables, concurrency=3)
    assert [p["table"] for p in together] == tables
    assert together[0]["rows"] == CUSTOMERS and together[1]["rows"] == ORDERS
    assert "error" in together[3] and "no_such_table" in together[3]["error"]
    alone = [profile_table(connect(shop.reader_dsn), t) for t in shop.tables]
    assert [same_figures(p) for p in together[:3]] == [same_figures(p) for p in alone]
    assert all(p["errors"] == [] for p in together[:3])


def test_declarations_of_many_tables_take_one_catalog_query_per_kind(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    query = Database.query

    def recorded(self: Database, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        seen.append(sql)
        return query(self, sql, params)

    monkeypatch.setattr(Database, "query", recorded)
    profiles = profile_tables(connect(shop.reader_dsn), shop.tables, concurrency=1)
    assert profiles[0]["comment"] == "people who bought something"
    assert profiles[1]["primary_key"] == ["id"] and profiles[1]["foreign_keys"]
    catalog = ("pg_class", "pg_attribute", "pg_constraint", "information_schema", "duckdb_")
    reads = [sql for sql in seen if any(word in sql for word in catalog)]
    assert len(reads) == 3, reads  # the tables, their columns' comments, their constraints


def test_the_extra_connections_are_closed_and_a_writable_session_gets_none(shop: Shop) -> None:
    from catalog_toolkit import profile_many

    con = connect(shop.reader_dsn)
    before = open_sessions(shop)
    profile_tables(con, shop.tables * 2, concurrency=4)
    assert open_sessions(shop) == before
    if shop.backend == "duckdb":
        return
    import ibis

    writable = (
        ibis.postgres.connect(host="127.0.0.1", user="postgres", database="postgres")
        if shop.backend == "postgres"
        else ibis.mysql.connect(host="127.0.0.1", user="root", password="")
    )
    try:
        assert profile_many._sibling(writable) is None  # never an unguarded connection
    finally:
        writable.disconnect()


def open_sessions(shop: Shop) -> int:
    """The reader's open sessions on the server (0 for DuckDB, a file)."""
    if shop.backend == "duckdb":
        return 0
    admin = connect_admin(shop)
    try:
        if shop.backend == "postgres":
            sql = "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'shop_reader_%%'"
        else:
            sql = (
                "SELECT count(*) FROM information_schema.processlist"
                " WHERE user LIKE 'shop_reader_%%'"
            )
        cursor = admin.cursor()
        cursor.execute(sql)
        return int(cursor.fetchone()[0])
    finally:
        admin.close()


def create_as_admin(shop: Shop, sql: str, table: str) -> None:
    """Run `sql`, which creates `table` in the shop's schema, readable by the reader."""
    if shop.backend == "duckdb":
        import duckdb

        with duckdb.connect(str(shop.path)) as db:
            db.execute(sql)
        return
    admin = connect_admin(shop)
    try:
        cursor = admin.cursor()
        cursor.execute(sql)
        if shop.backend == "postgres":
            cursor.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{shop.schema}" TO PUBLIC')
            cursor.execute(f'ANALYZE "{shop.schema}".{table}')
        else:
            admin.commit()
    finally:
        admin.close()


def connect_admin(shop: Shop) -> Any:
    if shop.backend == "postgres":
        import psycopg

        return psycopg.connect(shop.admin_dsn, autocommit=True)
    import MySQLdb

    return MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")


WIDE_COLUMNS = 500
WIDE_ROWS = 200


def wide_table_sql(backend: str, schema: str) -> str:
    """A table of 500 columns (integers, text, times, in turn) and 200 rows, for each backend."""
    quote = "`" if backend == "mysql" else '"'
    g = {"postgres": "g", "mysql": "seq", "duckdb": "g"}[backend]
    source = {
        "postgres": f"generate_series(1, {WIDE_ROWS}) g",
        "mysql": f"{quote}{schema}{quote}.seq_1_to_{WIDE_ROWS}",
        "duckdb": f"range(1, {WIDE_ROWS} + 1) r(g)",
    }[backend]
    # MariaDB: short text, or 125 columns overflow InnoDB's 8 kB row
    text = "CAST(CONCAT('v', {g} % 7) AS CHAR(2))" if backend == "mysql" else "'v' || ({g} % 7)"
    moment = {
        "postgres": "DATE '2024-01-01' + {g} % 30",
        "mysql": "DATE '2024-01-01' + INTERVAL ({g} % 30) DAY",
        "duckdb": "DATE '2024-01-01' + ({g} % 30)::INTEGER",
    }[backend]
    kinds = ["{g} * {i}", text, moment, "CASE WHEN {g} % 3 = 0 THEN NULL ELSE {g} % {i} END"]
    columns = ", ".join(
        kinds[i % len(kinds)].format(g=g, i=i + 1) + f" AS c{i}" for i in range(WIDE_COLUMNS)
    )
    return f"CREATE TABLE {quote}{schema}{quote}.wide AS SELECT {columns} FROM {source}"


def test_a_500_column_table_is_profiled_in_batches_within_the_backends_limits(shop: Shop) -> None:
    create_as_admin(shop, wide_table_sql(shop.backend, shop.schema), "wide")
    wide = profile_table(connect(shop.reader_dsn), shop.table("wide"))
    assert wide["errors"] == [] and wide["rows"] == WIDE_ROWS
    assert len(wide["columns"]) == WIDE_COLUMNS
    last = wide["columns"][-1]  # c499: NULL every third row, else g % 500
    assert (last["name"], last["nulls"], last["min"]) == ("c499", WIDE_ROWS // 3, 1)
    assert last["how"]["nulls"] == "exact" and last["histogram"]
    text = wide["columns"][497]  # c497: 'v0' to 'v6'
    assert text["distinct"] == 7 and len(text["top_values"]) == 7
    assert all("distinct" in c and "histogram" in c for c in wide["columns"][::4])


def test_above_the_set_size_postgres_takes_the_row_count_from_its_estimate(shop: Shop) -> None:
    """Over `exact_count_max_rows` rows, PostgreSQL reads only the sample: its row count is the
    planner's (labelled so); the other backends, whose estimates are rough, still count."""
    orders = profile_table(
        connect(shop.reader_dsn),
        shop.table("Order Details"),
        row_budget=300,
        exact_count_max_rows=1000,
    )
    assert orders["scope"]["kind"] == "sample" and orders["errors"] == []
    assert orders["rows"] == ORDERS  # ANALYZEd: the estimate is right on this small table
    expected = row_count.ESTIMATED if shop.backend == "postgres" else "exact"
    assert orders["how"]["rows"] == expected
    status = next(c for c in orders["columns"] if c["name"] == "status")
    assert status["how"]["top_values"] == "exact, sample"
