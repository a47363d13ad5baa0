"""A source the request names no tables of: its default schema's tables, chosen in the sandbox."""

from __future__ import annotations

from pathlib import Path

import duckdb
import ibis
from catalog_toolkit import probe_read_only
from catalog_toolkit.table_choice import choose_tables


def _database(path: Path, names: list[str]) -> object:
    with duckdb.connect(str(path)) as db:
        for name in names:
            db.execute(f'CREATE TABLE "{name}" AS SELECT 1 AS id')
        db.execute("CREATE SCHEMA other")
        db.execute("CREATE TABLE other.hidden AS SELECT 1 AS id")  # not the default schema
    return ibis.duckdb.connect(str(path), read_only=True)


def test_the_limit_is_shared_in_source_order_first_names_first(tmp_path: Path) -> None:
    cons = {
        "app": _database(tmp_path / "app.duckdb", ["b", "a", "c"]),
        "billing": _database(tmp_path / "billing.duckdb", ["z", "y", "odd.name"]),
    }
    chosen = choose_tables(cons, ["app", "billing"], 4)
    assert chosen["app"] == {
        "tables": ["app/a", "app/b", "app/c"],
        "found": 3,
        "left_out": 0,
        "unnamed": 0,
    }
    # one place left: the first name; a name no request could spell is counted apart
    assert chosen["billing"] == {"tables": ["billing/y"], "found": 3, "left_out": 1, "unnamed": 1}


def test_the_probe_reports_what_it_chose_beside_the_named_tables(tmp_path: Path) -> None:
    con = _database(tmp_path / "one.duckdb", [f"t{n}" for n in range(5)])
    report = probe_read_only(con, [], list_sources=["default"], limit=3)
    assert report["chosen"]["default"]["tables"] == ["t0", "t1", "t2"]
    assert report["chosen"]["default"]["left_out"] == 2
    assert not report["writable"] and report["missing"] == []
    assert "chosen" not in probe_read_only(con, ["t1"])  # the call as before listing
