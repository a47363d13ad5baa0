"""Several databases in one session: the toolkit's calls take `cons` (every source's connection)
and name tables as the run does (`warehouse/schema.table`, bare for the default source).

The sources are the shop in a DuckDB file and in PostgreSQL (MariaDB too for the proof), each
opened read only as the kernel opens them; the cells are the ones the services send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import ibis
import pytest
from catalog_toolkit import record
from catalog_toolkit.compare import compare_runs
from catalog_toolkit.digests import compare_digest
from catalog_toolkit.kits import export_data, recorded_fragment
from catalog_toolkit.pii import find_pii
from catalog_toolkit.profile_many import profile_tables
from catalog_toolkit.relations import find_relations
from catalog_toolkit.session import catalog_render

from services.common.cells import call_cell
from tests.toolkit.conftest import connect
from tests.toolkit.shop import HOSTILE, PASSWORD, Shop, shop_in
from tests.toolkit.test_calls import run_cell


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Shop]]:
    """The shop as the run's `app` (a DuckDB file) and `warehouse` (PostgreSQL)."""
    folder = tmp_path_factory.mktemp("sources")
    with shop_in("duckdb", folder) as app, shop_in("postgres", folder) as warehouse:
        yield {"app": app, "warehouse": warehouse}


@pytest.fixture
def cons(shops: dict[str, Shop]) -> Iterator[dict[str, Any]]:
    """`cons` as the kernel binds it: each source opened read only, in the run's order."""
    record.reset()
    opened = {name: connect(shop.reader_dsn) for name, shop in shops.items()}
    yield opened
    for con in opened.values():
        con.disconnect()
    record.reset()


def run_tables(shops: dict[str, Shop]) -> list[str]:
    return [f"{name}/{table}" for name, shop in shops.items() for table in shop.tables]


def test_profiles_of_two_sources_are_named_and_recorded_as_the_run_names_them(
    shops: dict[str, Shop], cons: dict[str, Any]
) -> None:
    app, warehouse = shops["app"], shops["warehouse"]
    wanted = [f"warehouse/{warehouse.table('customers')}", f"app/{app.table('Order Details')}"]
    profiles = profile_tables(cons, [*wanted, "billing/invoices", "app/nope"], concurrency=2)
    assert [p["table"] for p in profiles[:2]] == wanted
    assert [p["rows"] for p in profiles[:2]] == [300, 1200]
    assert profiles[0]["backend"] == "postgres" and profiles[1]["backend"] == "duckdb"
    # A declared key stays in its source, named as the run names its tables.
    (fk,) = profiles[1]["foreign_keys"]
    assert fk["references"]["table"] == f"app/{app.table('customers')}"
    # A source the session has not open, and a table its source lacks: errors, not a crash.
    assert profiles[2]["table"] == "billing/invoices"
    assert "no source named 'billing'" in profiles[2]["error"]
    assert profiles[3]["table"] == "app/nope" and profiles[3]["error"]
    assert set(record.profiles) == set(wanted)


def test_the_proof_judges_every_source_and_names_the_writable_one(
    shops: dict[str, Shop], cons: dict[str, Any], tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch.duckdb"
    duckdb.connect(str(scratch)).close()
    writable = ibis.duckdb.connect(str(scratch))  # not read only: the probe must say so
    with shop_in("mysql", tmp_path) as billing:
        every = {**cons, "billing": connect(billing.reader_dsn), "scratch": writable}
        tables = [*run_tables(shops), f"billing/{billing.table('customers')}", "warehouse/x.y"]
        report = run_cell(
            call_cell("probe_read_only", with_con=True, tables=tables),
            {"con": every["app"], "cons": every},
        )
        every["billing"].disconnect()
    writable.disconnect()
    by_source = report["by_source"]
    assert list(by_source) == ["app", "warehouse", "billing", "scratch"]
    assert [n for n, r in by_source.items() if r["writable"]] == ["scratch"]
    assert report["writable"] and report["why"] == "scratch: created a table"
    assert report["missing"] == ["warehouse/x.y"] and by_source["warehouse"]["missing"] == [
        "warehouse/x.y"
    ]
    kinds = {n: (r["backend"], r["version"].split()[0]) for n, r in by_source.items()}
    assert kinds == {
        "app": ("duckdb", "DuckDB"),
        "warehouse": ("postgres", "PostgreSQL"),
        "billing": ("mysql", "MariaDB"),
        "scratch": ("duckdb", "DuckDB"),
    }
    assert PASSWORD not in json.dumps(report)


def test_a_source_lost_before_the_export_fails_its_tables_and_the_others_are_catalogued(
    shops: dict[str, Shop], cons: dict[str, Any]
) -> None:
    tables = run_tables(shops)
    # The proof ran first in the session, as in a run: each server's version is known.
    run_cell(call_cell("probe_read_only", with_con=True, tables=tables), {"cons": cons})
    with unreachable(shops["warehouse"]):  # the warehouse goes away mid-run
        data = run_cell(
            call_cell("export_data", with_con=True, agent="catalog", tables=tables),
            {"con": cons["app"], "cons": cons},
        )
    assert data["format"] == 2 and data["requested"] == tables
    app, warehouse = data["sources"]["app"], data["sources"]["warehouse"]
    assert list(data["tables"]) == app["tables"] == tables[:3]
    assert app["backend"] == "duckdb" and app["failed"] == {}
    assert warehouse["backend"] == "postgres" and warehouse["version"].startswith("PostgreSQL ")
    assert warehouse["tables"] == tables[3:] and list(warehouse["failed"]) == tables[3:]
    assert all(why for why in warehouse["failed"].values())
    assert data["counts"]["tables"] == 3 and data["counts"]["failed"] == 3
    assert PASSWORD not in json.dumps(data) and "127.0.0.1" not in json.dumps(data)

    page = catalog_render(data)
    assert page.count("<h2>Source <code>") == 2
    app_part, warehouse_part = page.split("<h2>Source <code>warehouse</code>")
    assert "(duckdb, DuckDB v" in app_part and "Could not be profiled" not in app_part
    assert "(postgres, PostgreSQL " in warehouse_part
    assert "Could not be profiled (3)" in warehouse_part
    assert HOSTILE not in page and "&lt;script&gt;" in page  # the shop's hostile cell, escaped
    assert "<h2>Source" in recorded_fragment("catalog")


@contextmanager
def unreachable(shop: Shop) -> Iterator[None]:
    """The PostgreSQL shop's reader is cut off, as by a server gone away: its sessions end
    and no new one opens (so profile_many's extra connections cannot open either)."""
    import psycopg

    role = urlsplit(shop.reader_dsn).username
    with psycopg.connect(shop.admin_dsn, autocommit=True) as admin:
        admin.execute(f"ALTER ROLE {role} NOLOGIN")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        try:
            yield
        finally:
            admin.execute(f"ALTER ROLE {role} LOGIN")


def test_one_source_pages_look_as_before(shops: dict[str, Shop], cons: dict[str, Any]) -> None:
    shop = shops["app"]
    single = {"default": cons["app"]}
    data = export_data("catalog", con=single, tables=shop.tables)
    assert list(data["tables"]) == shop.tables and list(data["sources"]) == ["default"]
    page = catalog_render(data)
    assert "<h2>Source" not in page and "Could not be profiled" not in page
    assert page.startswith("<nav><h2>Tables (3)</h2>")


def test_pii_and_relations_read_each_source_and_keys_stay_within_one(
    shops: dict[str, Shop], cons: dict[str, Any]
) -> None:
    tables = [*run_tables(shops), "billing/invoices"]
    pii = find_pii(cons, tables)
    assert list(pii["tables"]) == tables
    assert pii["tables"]["billing/invoices"]["errors"][0]["pass"] == "source"
    emails = {f["table"] for f in pii["findings"] if f.get("column") == "email"}
    assert emails == {t for t in tables if t.endswith(".customers")}

    relations = find_relations(cons, tables)
    declared = {(d["table"], d["references"]["table"]) for d in relations["declared"]}
    assert declared == {
        (f"{name}/{shop.table('Order Details')}", f"{name}/{shop.table('customers')}")
        for name, shop in shops.items()
    }
    checked = relations["inferred"] + relations["rejected"]
    assert all(i["table"].split("/")[0] == i["references"]["table"].split("/")[0] for i in checked)
    assert [e["table"] for e in relations["errors"]] == ["billing/invoices"]


def store(history: Path, stamp: str, data: dict[str, Any]) -> None:
    folder = history / stamp
    folder.mkdir(parents=True)
    (folder / "catalog.json").write_text(json.dumps(data))


def test_the_summary_compares_each_source_and_says_when_one_came_or_went(
    shops: dict[str, Shop], cons: dict[str, Any], tmp_path: Path
) -> None:
    history, stamps = tmp_path / "history", [f"2026-01-0{d}T00:00:00.000Z" for d in range(1, 6)]
    app = shops["app"]
    one = export_data("catalog", con={"default": cons["app"]}, tables=app.tables)
    format_1 = {k: v for k, v in one.items() if k != "sources"} | {"format": 1}
    format_1["counts"] = {"tables": 3, "warnings": one["counts"]["warnings"]}
    store(history, stamps[0], format_1)  # a run from before sources
    store(history, stamps[1], one)  # the same database, format 2: nothing changed
    record.reset()
    both = {"default": cons["app"], "warehouse": cons["warehouse"]}
    tables = [*app.tables, *(f"warehouse/{t}" for t in shops["warehouse"].tables)]
    two = export_data("catalog", con=both, tables=tables)
    store(history, stamps[2], two)
    only = {k: v for k, v in two.items() if k not in ("sources", "tables")}
    only["sources"] = {"warehouse": two["sources"]["warehouse"]}
    only["tables"] = {t: p for t, p in two["tables"].items() if t.startswith("warehouse/")}
    store(history, stamps[3], only)
    lost = {**two, "tables": {t: p for t, p in two["tables"].items() if "/" not in t}}
    failed = {t: "OperationalError: the connection is lost" for t in two["tables"] if "/" in t}
    lost["sources"] = {**two["sources"], "warehouse": {**two["sources"]["warehouse"]}}
    lost["sources"]["warehouse"]["failed"] = failed
    store(history, stamps[4], lost)  # the warehouse was lost mid-run

    same = compare_runs(str(history), stamps[1])
    assert same["sources"] == {"added": [], "removed": [], "compared": ["default"]}
    assert not [f for f in same["findings"] if f["kind"].startswith(("source_", "table_"))]

    added = compare_runs(str(history), stamps[2])
    (finding,) = [f for f in added["findings"] if f["kind"].startswith(("source_", "table_"))]
    assert (finding["severity"], finding["message"]) == (
        "neutral",
        "source `warehouse` is new in this run",
    )

    removed = compare_runs(str(history), stamps[3])
    (finding,) = [f for f in removed["findings"] if f["kind"].startswith(("source_", "table_"))]
    assert (finding["severity"], finding["message"]) == (
        "bad",
        "source `default` was catalogued last run and is missing now",
    )
    assert removed["sources"]["compared"] == ["warehouse"]
    digest = compare_digest(str(history), stamps[3])
    assert digest["bad"] == ["source `default` was catalogued last run and is missing now"]

    back = compare_runs(str(history), stamps[4])
    kinds = [f["kind"] for f in back["findings"] if f["kind"].startswith(("source_", "table_"))]
    assert kinds == ["source_added"]  # the warehouse's failed tables are not "removed"
    assert {i["table"] for i in back["incomparable"]} == set(failed)
    assert all("could not be profiled in this run" in i["reason"] for i in back["incomparable"])
