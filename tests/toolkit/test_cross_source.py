"""find_cross_source over three real sources at once (estate.py: app in DuckDB, a lagging
warehouse copy of orders in PostgreSQL, billing customers in MariaDB): the same table found by
name and by its columns, the row gap, the newest timestamp's lag and the schema drift named,
a key into another source checked on a sample and labelled so, a lost source reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from catalog_toolkit import cross_inclusion, find_cross_source, profile_table, record
from catalog_toolkit.cross_source import cross_source_export, cross_source_render

from services.agent_runner.html import sanitize
from tests.toolkit.conftest import connect
from tests.toolkit.estate import CUSTOMERS, ORDERS, ORPHANS, WAREHOUSE_ORDERS, Estate, estate_in

pytestmark = [pytest.mark.postgres, pytest.mark.mysql]


@pytest.fixture
def estate(tmp_path: Path, fresh_record: None) -> Iterator[Estate]:
    with estate_in(tmp_path) as built:
        yield built


def opened(estate: Estate) -> dict[str, Any]:
    """`cons` as the kernel binds it: every source read only, by name, in order."""
    return {name: connect(dsn) for name, dsn in estate.dsns.items()}


def pair_of(result: dict[str, Any], left: str) -> dict[str, Any]:
    (pair,) = [p for p in result["pairs"] if p["left"] == left]
    return pair


def texts(result: dict[str, Any], kind: str) -> list[str]:
    return [f["text"] for f in result["findings"] if f["kind"] == kind]


def check_of(result: dict[str, Any], table: str, into: str) -> dict[str, Any]:
    (item,) = [
        i for i in result["inclusions"] if i["table"] == table and i["references"]["table"] == into
    ]
    return item


def test_the_same_table_in_two_sources_is_compared(estate: Estate) -> None:
    app, _, warehouse, billing = estate.tables
    result = find_cross_source(opened(estate), estate.tables, profiles={})
    assert result["errors"] == [] and result["lost_sources"] == {}
    assert result["sources"] == ["app", "warehouse", "billing"]
    orders = pair_of(result, app)
    assert (orders["right"], orders["matched_by"]) == (warehouse, "name")
    assert orders["rows"] == {"left": ORDERS, "right": WAREHOUSE_ORDERS, "how": "exact"}
    assert orders["only_left"] == ["status"] and orders["only_right"] == []
    assert orders["type_differences"] == []
    gap = ORDERS - WAREHOUSE_ORDERS
    assert f"`{app}` has {gap} rows more than `{warehouse}` (1,200 against 1,000)" in texts(
        result, "row_count"
    )
    # one order an hour: the warehouse's newest is 200 hours (8 days and 8 hours) older
    (lag,) = orders["newest"]
    assert (lag["column"], lag["lag_seconds"]) == ("created_at", gap * 3600)
    assert (
        f"`{app}`'s newest `created_at` (2026-02-20T00:00:00) is 8 days later than "
        f"`{warehouse}`'s (2026-02-11T16:00:00)"
    ) in texts(result, "newest")
    assert f"`{app}` has 1 column that `{warehouse}` lacks: `status`" in texts(
        result, "schema_drift"
    )
    ids = {r["column"]: (r["left"], r["right"]) for r in orders["key_ranges"]}
    assert ids["id"] == ([1, ORDERS], [1, WAREHOUSE_ORDERS])
    customers = pair_of(result, "app/main.customers")
    assert (customers["right"], customers["matched_by"]) == (billing, "name")
    assert (customers["only_left"], customers["only_right"]) == (["created_at"], ["plan"])
    assert result["counts"]["pairs"] == 2
    assert {f["severity"] for f in result["findings"]} <= {"bad", "good", "neutral"}
    assert record.recalled("cross_source") is result


def test_rows_dated_in_the_future_do_not_decide_which_copy_is_newer(estate: Estate) -> None:
    """One order planted in 2031 on each side: the lag is still the warehouse's 200 hours of
    delay, read up to now on DuckDB and on PostgreSQL, and the finding says so."""
    import duckdb
    import psycopg

    from tests.conftest import POSTGRES_URL

    app, _, warehouse, _ = estate.tables
    with duckdb.connect(estate.dsns["app"].removeprefix("duckdb://")) as db:
        db.execute("INSERT INTO orders VALUES (9001, 1, 'new', 1.0, TIMESTAMP '2031-01-01')")
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        target = warehouse.removeprefix("warehouse/")
        db.execute(f"INSERT INTO {target} VALUES (9001, 1, 1.0, TIMESTAMP '2031-06-01')")
    result = find_cross_source(opened(estate), estate.tables, profiles={})
    (lag,) = pair_of(result, app)["newest"]
    assert lag["lag_seconds"] == (ORDERS - WAREHOUSE_ORDERS) * 3600
    assert lag["future_left_out"] is True
    (text,) = texts(result, "newest")
    assert text.startswith(f"`{app}`'s newest `created_at` (2026-02-20T00:00:00) is 8 days later")
    assert text.endswith("(values dated in the future left out)")


def test_a_renamed_copy_is_matched_by_its_columns(tmp_path: Path, fresh_record: None) -> None:
    with estate_in(tmp_path, warehouse_table="orders_copy") as estate:
        result = find_cross_source(opened(estate), estate.tables, profiles={})
    pair = pair_of(result, "app/main.orders")
    assert pair["right"] == estate.tables[2] and pair["matched_by"] == "columns"
    assert (pair["shared_columns"], pair["jaccard"]) == (4, 0.8)  # all but status, of 5
    assert pair["rows"]["left"] - pair["rows"]["right"] == ORDERS - WAREHOUSE_ORDERS


def test_a_key_into_another_source_is_checked_on_a_sample(estate: Estate) -> None:
    app, _, _, billing = estate.tables
    result = find_cross_source(opened(estate), estate.tables, profiles={})
    item = check_of(result, app, billing)
    assert (item["column"], item["references"]["column"]) == ("customer_id", "id")
    found = CUSTOMERS - ORPHANS
    assert (item["sampled"], item["found"], item["complete"]) == (CUSTOMERS, found, True)
    assert item["share"] == pytest.approx(found / CUSTOMERS)
    text = (
        f"sampled: {CUSTOMERS} distinct values of {app}.customer_id (all it holds), {found} found"
        f" in {billing}.id (95.0%)"
    )
    (finding,) = [f for f in result["findings"] if f["text"] == text]
    assert finding["severity"] == "bad" and finding["tables"] == [app, billing]
    # a key of the same source is the relations agent's, not a cross-source check
    assert not [
        i
        for i in result["inclusions"]
        if i["references"]["table"] == "app/main.customers" and i["table"].startswith("app/")
    ]


def test_the_sample_is_bounded_and_a_big_parent_is_looked_up_in_batches(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cross_inclusion, "SMALL_PARENT", 0)  # billing counts as big
    monkeypatch.setattr(cross_inclusion, "BATCH", 7)
    app, _, _, billing = estate.tables
    result = find_cross_source(opened(estate), estate.tables, profiles={}, sample_limit=50)
    item = check_of(result, app, billing)
    assert (item["sampled"], item["complete"], item["lookup"]) == (50, False, "batches of 7 values")
    assert 50 - ORPHANS <= item["found"] <= 50
    label = f"sampled: 50 distinct values of {app}.customer_id (a random 50 of them), "
    assert any(f["text"].startswith(label) for f in result["findings"])
    assert item["sample"] == "random"


def test_a_big_table_is_sampled_by_its_first_values_and_says_so(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cross_inclusion, "RANDOM_ROWS", 100)  # app/orders counts as big
    app, _, _, billing = estate.tables
    result = find_cross_source(opened(estate), estate.tables, profiles={}, sample_limit=50)
    item = check_of(result, app, billing)
    assert (item["sampled"], item["sample"]) == (50, "first read")
    label = f"sampled: 50 distinct values of {app}.customer_id (the first 50 read, not a random"
    assert any(f["text"].startswith(label) for f in result["findings"])


def test_recorded_profiles_are_used_and_a_lost_source_is_reported(estate: Estate) -> None:
    import MySQLdb

    cons = opened(estate)
    profiles = {}
    for table in estate.tables:
        source, _, bare = table.partition("/")
        profiles[table] = profile_table(cons[source], bare)
    thread = cons["billing"].con.thread_id()
    root = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        root.cursor().execute(f"KILL {int(thread)}")  # the billing source is lost
    finally:
        root.close()
    app, _, warehouse, billing = estate.tables
    result = find_cross_source(cons, estate.tables, profiles=profiles)
    assert pair_of(result, app)["rows"]["right"] == WAREHOUSE_ORDERS  # from the profiles
    failed = check_of(result, app, billing)
    assert "the source `billing` failed" in failed["error"] and "found" not in failed
    assert check_of(result, warehouse, "app/main.customers")["share"] == 1.0
    assert result["counts"]["failed"] >= 1
    assert any(
        f["kind"] == "key_check_failed" and "billing" in f["text"] for f in result["findings"]
    )


@pytest.mark.parametrize("source", ["billing", "warehouse"])
def test_a_source_lost_before_the_checks_is_reported_not_raised(
    estate: Estate, source: str
) -> None:
    cons = opened(estate)
    cons[source].con.close()  # MariaDB's and PostgreSQL's drivers each say it their way
    result = find_cross_source(cons, estate.tables, profiles={})
    assert list(result["lost_sources"]) == [source]
    (lost,) = [f for f in result["findings"] if f["kind"] == "source_lost"]
    assert lost["severity"] == "bad"
    assert lost["tables"] == [t for t in estate.tables if t.startswith(source + "/")]
    assert f"the source `{source}` could not be read" in lost["text"]
    assert f"lost: `{source}`" in result["headline"]
    # the other sources are still compared
    (pair,) = result["pairs"]  # orders without billing, customers without the warehouse
    assert source not in pair["left"] + pair["right"] and pair["rows"]["left"] in (
        ORDERS,
        CUSTOMERS,
    )
    others = [i for i in result["inclusions"] if "error" not in i]
    assert others and all(source not in i["table"] + i["references"]["table"] for i in others)


def test_the_fragment_is_escaped_and_labels_the_sample(estate: Estate) -> None:
    cons = opened(estate)
    find_cross_source(cons, estate.tables, profiles={})
    data = cross_source_export(cons, estate.tables)
    assert data is record.recalled("cross_source")
    html = cross_source_render(data)
    assert "<h2>Across sources</h2>" in html and "Keys into another source (sampled)" in html
    assert "the shares are a sample" in html and "`status`" in html
    assert sanitize(html, max_bytes=1_000_000).count("<table") == 2
    hostile = {**data, "headline": "<script>alert(1)</script>"}
    assert "<script>" not in cross_source_render(hostile)
    assert cross_source_render(None) == ""


def test_one_source_has_nothing_to_compare(estate: Estate) -> None:
    app = connect(estate.dsns["app"])
    assert cross_source_export(app, ["main.orders", "main.customers"]) is None
    assert cross_source_export({"app": app}, ["app/main.orders"]) is None


def test_the_catalog_kit_keeps_and_shows_the_findings_across_sources(estate: Estate) -> None:
    from catalog_toolkit.session import catalog_export, catalog_render

    cons = opened(estate)
    try:
        for table in estate.tables:  # as the catalog agent leaves them: by run table name
            source, _, bare = table.partition("/")
            record.profiles[table] = profile_table(cons[source], bare)
        data = catalog_export(con=cons, tables=estate.tables)
        assert data["cross_source"]["counts"]["pairs"] == 2
        assert data["cross_source"]["counts"]["checks"] == 3
        html = sanitize(catalog_render(data), max_bytes=5_000_000)
        assert "<h2>Across sources</h2>" in html and "8 days later" in html
    finally:
        for table in [*estate.tables, "main.orders", "main.customers", "customers"]:
            record.profiles.pop(table, None)
    one = connect(estate.dsns["app"])
    assert "cross_source" not in catalog_export(con=one, tables=[])
