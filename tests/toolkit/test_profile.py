"""The toolkit's profiles on PostgreSQL, MariaDB and DuckDB, through read-only connections."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from catalog_toolkit import profile_table, render_catalog

from tests.toolkit.conftest import connect
from tests.toolkit.shop import CUSTOMERS, HOSTILE, ORDERS, Shop


def column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in profile["columns"] if c["name"] == name)


def test_a_profile_holds_rows_statistics_keys_and_samples(shop: Shop) -> None:
    con = connect(shop.reader_dsn)
    orders = profile_table(con, shop.table("Order Details"))
    assert orders["errors"] == []
    assert (orders["rows"], orders["how"]["rows"], orders["scope"]["kind"]) == (
        ORDERS,
        "exact",
        "full",
    )
    assert orders["primary_key"] == ["id"]
    assert orders["foreign_keys"] == [
        {
            "columns": ["customer_id"],
            "references": {"table": shop.table("customers"), "columns": ["id"]},
        }
    ]
    ident = column(orders, "id")
    assert (ident["distinct"], ident["duplicates"], ident["key"]) == (ORDERS, 0, "declared")
    assert ident["how"]["distinct"] == "exact (enforced key)"
    status = column(orders, "status")
    assert status["distinct"] == 3 and status["how"]["distinct"] == "exact"
    assert sorted((v["value"], v["count"]) for v in status["top_values"]) == [
        ("new", 400),
        ("paid", 400),
        ("shipped", 400),
    ]
    amount = column(orders, "amount")
    assert (amount["min"], amount["max"]) == (-5.0, 899.25)  # 1199 * 0.75; 1200 is -5
    assert amount["quantiles"]["p50"] == pytest.approx(450, rel=0.02)
    assert "quantiles" in amount["how"]
    reserved = column(orders, "select")  # a reserved word as a column name
    assert reserved["distinct"] == 4 and reserved["nulls"] == 0
    assert len(orders["samples"]) == 5 and set(orders["samples"][0]) == {
        "id",
        "customer_id",
        "status",
        "amount",
        "select",
    }
    codes = {(f["column"], f["code"]) for f in orders["flags"]}
    assert ("amount", "out_of_range") in codes  # a negative amount
    json.dumps(orders, allow_nan=False)  # it is stored as JSON


def test_comments_nulls_duplicates_and_strings_are_reported(shop: Shop) -> None:
    customers = profile_table(connect(shop.reader_dsn), shop.table("customers"))
    assert customers["comment"] == "people who bought something"
    email = column(customers, "email")
    assert email["comment"] == "contact address"
    assert (email["nulls"], email["null_rate"]) == (30, 0.1)
    # every 50th address is the same one: 6 rows, one value, so 5 duplicates
    assert email["duplicates"] == 5 and email["key"] == "candidate"
    name = column(customers, "Full Name")
    assert name["nullable"] is False and name["length_max"] == len(HOSTILE)
    assert customers["rows"] == CUSTOMERS
    created = column(customers, "created_at")
    assert created["min"].startswith("2025-01-") and created["max"].startswith("2025-12-")
    assert {"p05", "p50", "p95"} <= set(created["quantiles"])
    seen = column(customers, "last_seen")  # TIMESTAMPTZ where the backend has it
    assert seen["min"].startswith("2026-01-") and seen["max"].startswith("2026-12-")
    assert customers["errors"] == [] and len(customers["samples"]) == 5


def test_an_empty_table_is_profiled_and_flagged(shop: Shop) -> None:
    empty = profile_table(connect(shop.reader_dsn), shop.table("empty"))
    assert empty["rows"] == 0 and empty["errors"] == []
    assert [f["code"] for f in empty["flags"]] == ["empty_table"]
    assert empty["samples"] == []


def test_above_the_row_budget_the_columns_come_from_a_labelled_sample(shop: Shop) -> None:
    orders = profile_table(connect(shop.reader_dsn), shop.table("Order Details"), row_budget=300)
    scope = orders["scope"]
    if shop.backend == "postgres" and scope["kind"] == "full":
        pytest.fail("PostgreSQL has a row estimate after ANALYZE; the budget must apply")
    assert scope["kind"] == "sample" and 0 < scope["fraction"] < 1
    assert 0 < scope["rows_read"] < ORDERS
    assert orders["rows"] == ORDERS and orders["how"]["rows"] == "exact"  # still exact
    assert column(orders, "status")["how"]["nulls"] == "exact, sample"


def test_values_from_the_data_are_escaped_on_the_page(shop: Shop) -> None:
    customers = profile_table(connect(shop.reader_dsn), shop.table("customers"))
    customers["samples"].append({"Full Name": HOSTILE, "id": 7})
    page = render_catalog([customers])
    assert HOSTILE not in page and "&lt;script&gt;" in page


def test_a_query_over_the_time_limit_is_stopped_and_recorded(shop: Shop) -> None:
    """Every backend stops a profiling query at the limit; the profile says which pass."""
    if shop.backend == "duckdb":
        con = connect(shop.reader_dsn)  # read-only, but temporary tables are allowed
        # A view, so reading it hashes every row: a big table's one scan of counts, mins and
        # maxes is too quick to stop at the limit.
        con.raw_sql(
            "CREATE TEMP VIEW slow AS SELECT range AS g, md5(range::VARCHAR) AS h"
            " FROM range(40000000)"
        )
        name = "slow"
    else:
        con, name = connect(shop.reader_dsn), shop.table("slow")  # see SLOW_VIEW
    limit_before = session_limit(con, shop.backend)
    started = time.monotonic()
    profile = profile_table(con, name, timeout_s=0.5)
    assert time.monotonic() - started < 15
    assert any(e.get("timeout") for e in profile["errors"]), profile["errors"]
    # The session's own limit is back after the profile.
    assert session_limit(con, shop.backend) == limit_before


def session_limit(con: Any, backend: str) -> str:
    if backend == "duckdb":
        return ""
    sql = "SHOW statement_timeout" if backend == "postgres" else "SELECT @@max_statement_time"
    cursor = con.raw_sql(sql)
    try:
        return str(cursor.fetchone()[0])
    finally:
        cursor.close()


BIG_ROWS = 300_000  # over QUANTILE_SAMPLE_ROWS: quantiles come from a sample
BIG_TABLE = {
    "postgres": "CREATE TABLE {s}.big AS SELECT g AS id, g % 1000 AS v"
    " FROM generate_series(1, {n}) g",
    "mysql": "CREATE TABLE {s}.big AS SELECT seq AS id, seq % 1000 AS v FROM {s}.seq_1_to_{n}",
    "duckdb": "CREATE TABLE {s}.big AS SELECT range + 1 AS id, (range + 1) % 1000 AS v"
    " FROM range({n})",
}


def test_quantiles_of_a_big_table_come_from_a_labelled_sample(shop: Shop) -> None:
    quote = "`" if shop.backend == "mysql" else '"'
    sql = BIG_TABLE[shop.backend].format(s=f"{quote}{shop.schema}{quote}", n=BIG_ROWS)
    run_as_admin(shop, sql)
    big = profile_table(connect(shop.reader_dsn), shop.table("big"))
    assert big["rows"] == BIG_ROWS and big["scope"]["kind"] == "full" and not big["errors"]
    value = column(big, "v")
    label = value["how"]["quantiles"]
    assert label.startswith("exact, sample of ") and label.endswith(" rows"), label
    sampled = int(label.removeprefix("exact, sample of ").removesuffix(" rows").replace(",", ""))
    assert 10_000 < sampled < BIG_ROWS
    assert value["quantiles"]["p50"] == pytest.approx(500, abs=50)  # uniform over 0..999
    assert value["distinct"] == 1000 and value["how"]["distinct"] == "exact"


def run_as_admin(shop: Shop, sql: str) -> None:
    if shop.backend == "postgres":
        import psycopg

        with psycopg.connect(shop.admin_dsn, autocommit=True) as db:
            db.execute(sql)
            db.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{shop.schema}" TO PUBLIC')
            db.execute(f'ANALYZE "{shop.schema}".big')
    elif shop.backend == "mysql":
        import MySQLdb

        db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            db.cursor().execute(sql)
            db.commit()
        finally:
            db.close()
    else:
        import duckdb

        with duckdb.connect(str(shop.path)) as db:
            db.execute(sql)


def test_a_table_named_without_its_schema_refers_to_its_neighbours_the_same_way(
    tmp_path: Path,
) -> None:
    """`orders` refers to `customers`, not `main.customers`: the catalog's links and the ER
    diagram need the names the run uses."""
    import duckdb

    path = tmp_path / "bare.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE orders (id INTEGER, customer_id INTEGER REFERENCES customers)")
    profile = profile_table(connect(f"duckdb://{path}"), "orders")
    assert [fk["references"]["table"] for fk in profile["foreign_keys"]] == ["customers"]
