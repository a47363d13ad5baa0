"""Histograms on PostgreSQL, MariaDB and DuckDB: counted in the database, as a direct count."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catalog_toolkit import profile_table

from tests.toolkit.conftest import connect
from tests.toolkit.shop import ORDERS, Shop, _rows

ROWS = 1000
# (column, DDL type per backend, SQL of its value per backend from the row number g, 1..ROWS)
_PG, _MY, _DUCK = "postgres", "mysql", "duckdb"
_SPREAD_COLUMNS = "n INTEGER, one INTEGER, nothing INTEGER, price DECIMAL(9, 3), born DATE"
SPREAD_DDL = {
    _PG: _SPREAD_COLUMNS + ", happened TIMESTAMP",
    _MY: _SPREAD_COLUMNS + ", happened DATETIME",  # MySQL's TIMESTAMP starts in 1970
    _DUCK: _SPREAD_COLUMNS + ", happened TIMESTAMP",
}
SPREAD_ROWS = {
    _PG: "SELECT g % 100 - 50, 7, NULL, (g % 37) * 1.125 - 20, DATE '1950-01-01' + g % 500,"
    " TIMESTAMP '1969-12-31 12:00:00' + g * INTERVAL '7 minutes' FROM generate_series(1, {n}) g",
    _MY: "SELECT CAST(seq % 100 AS SIGNED) - 50, 7, NULL, CAST(seq % 37 AS SIGNED) * 1.125 - 20,"
    " DATE '1950-01-01' + INTERVAL (seq % 500) DAY,"
    " TIMESTAMP '1969-12-31 12:00:00' + INTERVAL (seq * 7) MINUTE FROM {s}.seq_1_to_{n}",
    _DUCK: "SELECT g % 100 - 50, 7, NULL, (g % 37) * 1.125 - 20,"
    " DATE '1950-01-01' + (g % 500)::INTEGER, TIMESTAMP '1969-12-31 12:00:00' + to_minutes(g * 7)"
    " FROM range(1, {n} + 1) r(g)",
}
# The same values in Python, for the direct count.
SPREAD: dict[str, Callable[[int], Any]] = {
    "n": lambda g: g % 100 - 50,
    "price": lambda g: (g % 37) * 1.125 - 20,
    "born": lambda g: dt.date(1950, 1, 1) + dt.timedelta(days=g % 500),
    "happened": lambda g: dt.datetime(1969, 12, 31, 12) + dt.timedelta(minutes=7 * g),
}


def column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in profile["columns"] if c["name"] == name)


def direct_count(
    values: list[Any], bins: list[list[Any]], parse: Callable[[Any], Any]
) -> list[int]:
    """Counts per bin done here: bin j starts at its low edge; the first also takes anything
    below it and the last anything above its high edge (the toolkit's rule)."""
    starts = [parse(low) for low, _, _ in bins[1:]]
    counts = [0] * len(bins)
    for value in values:
        counts[bisect.bisect_right(starts, value)] += 1
    return counts


def _time(text: str) -> Any:
    return dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)


def test_the_counts_match_a_direct_count_of_the_shop(shop: Shop) -> None:
    con = connect(shop.reader_dsn)
    orders = profile_table(con, shop.table("Order Details"))
    assert orders["errors"] == []
    customers_rows, order_rows = _rows()
    amount = column(orders, "amount")  # DECIMAL(10, 2), with -5 every 400th row
    assert amount["how"]["histogram"] == "exact" and len(amount["histogram"]) == 20
    assert amount["histogram"][0][0] == -5.0 and amount["histogram"][-1][1] == 899.25
    counts = [count for _, _, count in amount["histogram"]]
    assert sum(counts) == ORDERS
    assert counts == direct_count([row[3] for row in order_rows], amount["histogram"], float)
    # Four values 0..3: one bin per value, each written (value, value).
    assert column(orders, "select")["histogram"] == [[v, v, 300] for v in range(4)]
    customers = profile_table(con, shop.table("customers"))
    created = column(customers, "created_at")
    values = [dt.datetime.fromisoformat(row[3]) for row in customers_rows]
    assert [c for _, _, c in created["histogram"]] == direct_count(
        values, created["histogram"], _time
    )
    seen = column(customers, "last_seen")  # TIMESTAMPTZ where the backend has one
    assert sum(c for _, _, c in seen["histogram"]) == len(customers_rows)
    assert "histogram" not in column(customers, "email")  # text: top values or nothing


def test_one_value_no_value_negatives_decimals_and_times_before_1970(shop: Shop) -> None:
    _create_spread(shop)
    spread = profile_table(connect(shop.reader_dsn), shop.table("spread"))
    assert spread["errors"] == []
    assert column(spread, "one")["histogram"] == [[7, 7, ROWS]]
    assert "histogram" not in column(spread, "nothing")  # all null: nothing to draw
    parse = {"n": float, "price": float, "born": _time, "happened": _time}
    for name, value in SPREAD.items():
        bins = column(spread, name)["histogram"]
        counts = [count for _, _, count in bins]
        assert sum(counts) == ROWS, name
        expected = direct_count([value(g) for g in range(1, ROWS + 1)], bins, parse[name])
        assert counts == expected, name
    n = column(spread, "n")["histogram"]
    assert n[0][0] == -50 and n[-1][1] == 49 and len(n) == 20
    born = column(spread, "born")["histogram"]
    assert born[0][0] == "1950-01-01" and born[-1][1] == "1951-05-15"  # 499 days on
    at = column(spread, "happened")["histogram"]
    assert at[0][0] == "1969-12-31T12:07:00" and at[-1][1].startswith("1970-01-05")


def test_above_the_row_budget_the_histogram_says_it_counted_a_sample(shop: Shop) -> None:
    orders = profile_table(connect(shop.reader_dsn), shop.table("Order Details"), row_budget=300)
    assert orders["scope"]["kind"] == "sample"
    amount = column(orders, "amount")
    assert amount["how"]["histogram"] == "exact, sample"
    assert 0 < sum(count for _, _, count in amount["histogram"]) < ORDERS


def _create_spread(shop: Shop) -> None:
    """A table in the shop's schema, so the shop fixture drops it with the rest."""
    quote = "`" if shop.backend == _MY else '"'
    s = f"{quote}{shop.schema}{quote}"
    statements = [
        f"CREATE TABLE {s}.spread ({SPREAD_DDL[shop.backend]})",
        f"INSERT INTO {s}.spread " + SPREAD_ROWS[shop.backend].format(s=s, n=ROWS),
    ]
    if shop.backend == _PG:
        import psycopg

        with psycopg.connect(shop.admin_dsn, autocommit=True) as db:
            for sql in statements:
                db.execute(sql)
            db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO PUBLIC")
            db.execute(f"ANALYZE {s}.spread")
    elif shop.backend == _MY:
        import MySQLdb

        db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            for sql in statements:
                db.cursor().execute(sql)
            db.commit()
        finally:
            db.close()
    else:
        import duckdb

        with duckdb.connect(str(shop.path)) as db:
            for sql in statements:
                db.execute(sql)


def test_a_narrow_range_of_floats_still_spreads_over_the_bins(tmp_path: Path) -> None:
    """Values a billionth apart: edges rounded to a fixed number of decimals would all fall
    on one value and pile every row into one bin."""
    import duckdb
    import ibis

    path = tmp_path / "narrow.duckdb"
    with duckdb.connect(str(path)) as db:  # g / 2^30: exact in binary, so counted exactly here
        db.execute(
            "CREATE TABLE narrow AS SELECT g::DOUBLE / 1073741824 AS p FROM range(1000) t(g)"
        )
    profile = profile_table(ibis.duckdb.connect(str(path), read_only=True), "narrow")
    bins = column(profile, "p")["histogram"]
    values = [g / 1073741824 for g in range(1000)]
    assert [c for _, _, c in bins] == direct_count(values, bins, float) == [50] * 20
