"""find_relations on PostgreSQL, MariaDB and DuckDB: undeclared keys found, declared ones kept,
the query cap honoured, hostile names escaped."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest
from catalog_toolkit import find_relations, profile_table, record
from catalog_toolkit.database import Database
from catalog_toolkit.kits import KITS

from services.agent_runner.html import sanitize
from tests.toolkit.conftest import connect
from tests.toolkit.shop import HOSTILE, Shop

PLANES = 40
FLIGHTS = 1000
ORPHANS = ("N998ZZ", "N999ZZ")  # tail numbers no plane has: 2 of 42 distinct values


def _plane(i: int) -> str:
    return f"N{100 + i}AA"


def _flights() -> list[tuple[Any, ...]]:
    rows = []
    for i in range(1, FLIGHTS + 1):
        tail = None if i % 25 == 0 else ORPHANS[i % 2] if i % 97 == 0 else _plane(i % PLANES)
        rows.append((i, tail, 1 + i % 3))
    return rows


def _statements(q: str, s: str) -> list[str]:
    """Two tables with no declared keys: flights.tailnum refers to planes.tailnum."""
    return [
        f"CREATE TABLE {s}.planes (tailnum VARCHAR(10) NOT NULL, seats INTEGER)",
        f"CREATE TABLE {s}.flights (id INTEGER NOT NULL, tailnum VARCHAR(10),"
        f" {q}select{q} INTEGER)",
    ]


def add_flights(shop: Shop) -> None:
    """The flights and planes tables, beside the shop's own (which declares its foreign key)."""
    planes = [(_plane(i), 100 + i) for i in range(PLANES)]
    flights = _flights()
    if shop.backend == "postgres":
        import psycopg

        s = f'"{shop.schema}"'
        with psycopg.connect(shop.admin_dsn, autocommit=True) as db:
            for sql in _statements('"', s):
                db.execute(sql)
            with db.cursor() as cur:
                cur.executemany(f"INSERT INTO {s}.planes VALUES (%s, %s)", planes)
                cur.executemany(f"INSERT INTO {s}.flights VALUES (%s, %s, %s)", flights)
            role = shop.reader_dsn.split("://", 1)[1].split(":", 1)[0]
            db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {role}")
    elif shop.backend == "mysql":
        import MySQLdb

        db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            cur = db.cursor()
            s = f"`{shop.schema}`"
            for sql in _statements("`", s):
                cur.execute(sql)
            cur.executemany(f"INSERT INTO {s}.planes VALUES (%s, %s)", planes)
            cur.executemany(f"INSERT INTO {s}.flights VALUES (%s, %s, %s)", flights)
            db.commit()
        finally:
            db.close()
    else:
        assert shop.path is not None
        with duckdb.connect(str(shop.path)) as db:
            s = f'"{shop.schema}"'
            for sql in _statements('"', s):
                db.execute(sql)
            db.executemany(f"INSERT INTO {s}.planes VALUES (?, ?)", planes)
            db.execute(
                f"INSERT INTO {s}.flights VALUES " + ", ".join(["(?, ?, ?)"] * len(flights)),
                [v for row in flights for v in row],
            )


def tables_of(shop: Shop) -> list[str]:
    return [*shop.tables, shop.table("planes"), shop.table("flights")]


def test_an_undeclared_key_is_found_and_a_declared_one_kept(shop: Shop, fresh_record: None) -> None:
    add_flights(shop)
    result = find_relations(connect(shop.reader_dsn), tables_of(shop))
    assert result["errors"] == []
    assert [(d["table"], d["columns"], d["references"]) for d in result["declared"]] == [
        (
            shop.table("Order Details"),
            ["customer_id"],
            {"table": shop.table("customers"), "columns": ["id"]},
        )
    ]
    (found,) = result["inferred"]
    assert (found["table"], found["column"], found["references"]) == (
        shop.table("flights"),
        "tailnum",
        {"table": shop.table("planes"), "column": "tailnum"},
    )
    assert (found["checked"], found["missing"]) == (PLANES + 2, 2)
    assert found["coverage"] == pytest.approx(40 / 42, abs=1e-4)
    assert found["confidence"] >= 0.9
    keys = {(k["table"], tuple(k["columns"])) for k in result["candidate_keys"]}
    assert (shop.table("planes"), ("tailnum",)) in keys and (shop.table("flights"), ("id",)) in keys
    assert (shop.table("customers"), ("id",)) not in keys  # declared already
    (finding,) = [f for f in result["findings"] if f["kind"].startswith("inferred")]
    assert finding["severity"] == "bad"  # two tail numbers have no plane
    assert (
        f"95.2% of {shop.table('flights')}.tailnum values are in {shop.table('planes')}.tailnum"
        in finding["reason"]
    )
    assert record.recalled("relations") is result
    assert result["headline"] == (
        f"1 undeclared key inferred, 95.2% coverage at worst; {len(keys)} candidate keys not"
        " declared."
    )
    json.dumps(result, allow_nan=False)


def count_queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the toolkit sends through Database.query, from now on."""
    sent: list[str] = []
    original = Database.query

    def counted(self: Database, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        sent.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(Database, "query", counted)
    return sent


def test_with_the_runs_catalog_only_inclusion_checks_query_at_most_3_a_pair(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_record: None
) -> None:
    add_flights(shop)
    con = connect(shop.reader_dsn)
    profiles = {t: profile_table(con, t) for t in tables_of(shop)}
    folder = tmp_path / "history" / "2026-05-01T00-00-00Z"
    folder.mkdir(parents=True)
    (folder / "catalog.json").write_text(
        json.dumps({"format": 1, "kind": "catalog", "tables": profiles})
    )
    sent = count_queries(monkeypatch)
    result = find_relations(
        con, [], history_dir=str(tmp_path / "history"), current_timestamp=folder.name
    )
    counts = result["counts"]
    assert result["facts_from"] == ["catalog.json"] and counts["tables"] == 5
    assert [i["column"] for i in result["inferred"]] == ["tailnum"]
    assert len(sent) == counts["queries"] <= 3 * counts["checked"]
    assert counts["max_queries_per_pair"] <= 3


def test_the_pair_cap_stops_the_checks(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    add_flights(shop)
    con = connect(shop.reader_dsn)
    sent = count_queries(monkeypatch)
    result = find_relations(con, tables_of(shop), max_pairs=0)
    assert result["inferred"] == [] and result["counts"]["over_cap"] >= 1
    assert result["counts"]["queries"] == 0 and result["counts"]["checked"] == 0
    # what remains is the facts: declarations and one aggregate per table, no pair checked
    assert len(sent) <= 8 * len(tables_of(shop))


def test_a_hostile_table_name_is_escaped_in_the_page_and_the_diagram(tmp_path: Path) -> None:
    path = tmp_path / "hostile.duckdb"
    owners = f"{HOSTILE} owners"
    with duckdb.connect(str(path)) as db:
        db.execute(f'CREATE TABLE "{owners}" (owner_code VARCHAR PRIMARY KEY)')
        db.execute(f"INSERT INTO \"{owners}\" SELECT 'OW-' || g FROM range(50) t(g)")
        db.execute("CREATE TABLE pets (id INTEGER, owner_code VARCHAR)")
        db.execute("INSERT INTO pets SELECT g, 'OW-' || (g % 50) FROM range(300) t(g)")
    con = ibis.duckdb.connect(str(path), read_only=True)
    result = find_relations(con, [owners, "pets"])
    (found,) = result["inferred"]
    assert found["references"] == {"table": owners, "column": "owner_code"}
    page = sanitize(KITS["relations"].render(result), max_bytes=1024 * 1024)
    assert not [t for t in re.findall(r"<[^>]*>", page) if "script" in t]
    assert "&lt;script&gt;" in page
    (uri,) = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    svg = base64.b64decode(uri).decode()
    assert "<script" not in svg and "&lt;script&gt;" in svg and "stroke-dasharray" in svg
