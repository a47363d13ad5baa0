"""Summaries compare runs' numbers: each change found, marked good, bad or neutral, with why."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest
from catalog_toolkit import compare_runs, profile_table, record, render_summary
from catalog_toolkit.kits import export_data

from tests.conftest import POSTGRES_URL


def store_run(history: Path, timestamp: str, tables: dict[str, dict[str, Any]]) -> None:
    folder = history / timestamp
    folder.mkdir(parents=True)
    data = {"format": 1, "kind": "catalog", "requested": list(tables), "tables": tables}
    (folder / "catalog.json").write_text(json.dumps(data))


def catalog_of(path: Path, tables: list[str]) -> dict[str, dict[str, Any]]:
    """What a run stores as catalog.json; every run has a fresh sandbox, so a fresh record."""
    record.reset()
    con = ibis.duckdb.connect(str(path), read_only=True)
    try:
        data = export_data("catalog", con=con, tables=tables)
    finally:
        con.disconnect()
    assert data["requested"] == tables
    return data["tables"]  # type: ignore[no-any-return]


def kinds(result: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(f["table"], f["column"], f["kind"], f["severity"]) for f in result["findings"]}


TS = [f"2026-11-2{i}T10:00:00.000Z" for i in range(10)]


def test_changes_between_two_runs_are_found_and_judged(tmp_path: Path) -> None:
    path, history = tmp_path / "shop.duckdb", tmp_path / "history"
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE users (id INTEGER, email VARCHAR, status VARCHAR, score DOUBLE);"
            "INSERT INTO users SELECT i, 'u' || i || '@x', ['a', 'b'][1 + i % 2], i % 100"
            " FROM range(1000) t(i);"
            "CREATE TABLE logs (id INTEGER, line VARCHAR);"
            "INSERT INTO logs SELECT i, 'l' || i FROM range(10) t(i);"
            "CREATE TABLE old_name (a INTEGER, b INTEGER, c INTEGER, d INTEGER, e INTEGER);"
        )
    store_run(history, TS[0], catalog_of(path, ["users", "logs", "old_name"]))
    with duckdb.connect(str(path)) as db:
        db.execute(
            "INSERT INTO users SELECT i, NULL, 'c', 500 + i % 100 FROM range(1000, 1600) t(i);"
            "INSERT INTO users SELECT 5, 'again@x', 'a', 1;"  # id starts to repeat
            "ALTER TABLE users ADD COLUMN country VARCHAR;"
            "ALTER TABLE old_name RENAME TO new_name;"
            "DELETE FROM logs WHERE id < 4;"
        )
    store_run(history, TS[1], catalog_of(path, ["users", "logs", "new_name"]))
    result = compare_runs(str(history), TS[1])
    found = kinds(result)
    expected = {
        ("new_name", None, "table_renamed", "neutral"),
        ("users", "country", "column_added", "neutral"),
        ("users", None, "rows_grew", "good"),
        ("users", "email", "null_rate_up", "bad"),
        ("users", "id", "key_duplicates", "bad"),
        ("users", "status", "new_value", "neutral"),
        ("users", "score", "distribution_shift", "neutral"),
        ("logs", None, "rows_decreased", "bad"),
    }
    assert expected <= found, sorted(found)
    assert result["tables"]["renamed"] == [
        {"from": "old_name", "to": "new_name", "similarity": 1.0}
    ]
    assert all(f["reason"] for f in result["findings"])
    page = render_summary(result)
    assert "null rate rose from 0.0% to 37.5%" in page and "✖" in page


def test_row_counts_are_judged_against_several_runs(tmp_path: Path) -> None:
    base = {"table": "t", "rows": 100, "columns": [], "scope": {"kind": "full"}, "errors": []}
    history = tmp_path / "history"
    for timestamp, rows in zip(TS, [100, 200, 300, 300, 300], strict=False):
        store_run(history, timestamp, {"t": {**base, "rows": rows}})
    result = compare_runs(str(history), TS[4])
    (stalled,) = [f for f in result["findings"] if f["kind"] == "no_new_rows"]
    assert stalled["severity"] == "bad"
    assert "no new rows for 2 runs" in stalled["message"]
    assert len(result["baseline_runs"]) == 4
    # A run that grows ten times faster than usual is a spike, not ordinary growth.
    store_run(history, TS[5], {"t": {**base, "rows": 1300}})
    (spike,) = [f for f in compare_runs(str(history), TS[5])["findings"]]
    assert (spike["kind"], spike["severity"]) == ("rows_spike", "neutral")


def test_figures_from_different_scopes_or_failed_profiles_are_not_compared(
    tmp_path: Path,
) -> None:
    column = {"name": "x", "type": "int64", "nullable": True, "null_rate": 0.0, "how": {}}
    full = {"table": "t", "rows": 10, "columns": [column], "scope": {"kind": "full"}, "errors": []}
    sampled = copy.deepcopy(full)
    sampled["scope"] = {"kind": "sample", "fraction": 0.1}
    sampled["columns"][0]["null_rate"] = 0.9
    failed = {**full, "rows": None, "errors": [{"pass": "column statistics", "error": "boom"}]}
    history = tmp_path / "history"
    store_run(history, TS[0], {"t": full, "u": full})
    store_run(history, TS[1], {"t": sampled, "u": failed})
    result = compare_runs(str(history), TS[1])
    reasons = {i["table"]: i["reason"] for i in result["incomparable"]}
    assert "different scopes" in reasons["t"] and "profile failed" in reasons["u"]
    assert not [f for f in result["findings"] if f["kind"] == "null_rate_up"]
    assert "Not compared" in render_summary(result)


def big_profile(null_rate: float, paid: int, detail: bool) -> dict[str, Any]:
    """A 2M-row table's profile; with `detail`, its top values counted in a 100,000-row
    sample (detail.py), as a table over the detail size is profiled."""
    top = [{"value": "paid", "count": paid}, {"value": "new", "count": 100_000 - paid}]
    how = {"top_values": "exact, sample of 100,000 rows"} if detail else {}
    status = {"name": "status", "type": "string", "nullable": True, "null_rate": null_rate}
    status |= {"top_values": top, "how": how, "distinct": 2}
    scope: dict[str, Any] = {"kind": "full"}
    if detail:
        scope["detail"] = {"rows_read": 100_000, "method": "block sample"}
    return {"table": "t", "rows": 2_000_000, "columns": [status], "scope": scope, "errors": []}


def test_a_big_table_s_sampled_top_values_compare_by_the_sample_s_rows(tmp_path: Path) -> None:
    """'paid' went from 80% to 20% of the sample: a change in the mix, not lost in a share
    of the table's 2M rows (0.4% to 1%)."""
    history = tmp_path / "history"
    store_run(history, TS[0], {"t": big_profile(0.01, 80_000, detail=True)})
    store_run(history, TS[1], {"t": big_profile(0.01, 20_000, detail=True)})
    result = compare_runs(str(history), TS[1])
    shifts = {f["message"] for f in result["findings"] if f["kind"] == "share_changed"}
    assert shifts == {
        "'paid' went from 80.0% to 20.0% of rows",
        "'new' went from 20.0% to 80.0% of rows",
    }


def test_a_table_that_crossed_into_sampled_details_still_compares_its_exact_nulls(
    tmp_path: Path,
) -> None:
    history = tmp_path / "history"
    store_run(history, TS[0], {"t": big_profile(0.01, 80_000, detail=False)})
    store_run(history, TS[1], {"t": big_profile(0.40, 20_000, detail=True)})
    result = compare_runs(str(history), TS[1])
    found = {f["kind"] for f in result["findings"]}
    assert "null_rate_up" in found  # exact in both runs
    assert "share_changed" not in found  # a sample against a full count: not compared
    assert not result["incomparable"]


def test_the_first_run_says_there_is_nothing_to_compare(tmp_path: Path) -> None:
    store_run(tmp_path, TS[0], {})
    (finding,) = compare_runs(str(tmp_path), TS[0])["findings"]
    assert (finding["kind"], finding["severity"]) == ("first_run", "neutral")


@pytest.mark.postgres
def test_synonym_types_are_not_a_change_but_a_new_type_is(tmp_path: Path) -> None:
    """varchar → text is no change for a reader (PostgreSQL, through real profiles)."""
    import psycopg

    schema = f"syn_{tmp_path.name[-8:].lower().replace('-', '_')}"
    history = tmp_path / "history"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
        try:
            db.execute(f"CREATE TABLE {schema}.t (a VARCHAR(20), b INTEGER, c INTEGER)")
            db.execute(
                f"INSERT INTO {schema}.t SELECT 'x' || g, g, g FROM generate_series(1, 50) g"
            )
            con = ibis.postgres.connect(host="127.0.0.1", user="postgres", database="postgres")
            store_run(history, TS[0], {"t": profile_table(con, f"{schema}.t")})
            db.execute(f"ALTER TABLE {schema}.t ALTER COLUMN a TYPE TEXT")
            db.execute(f"ALTER TABLE {schema}.t ALTER COLUMN b TYPE BIGINT")
            db.execute(f"ALTER TABLE {schema}.t ALTER COLUMN c TYPE TEXT")
            store_run(history, TS[1], {"t": profile_table(con, f"{schema}.t")})
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")
    changes = {
        f["column"]: f["severity"]
        for f in compare_runs(str(history), TS[1])["findings"]
        if f["kind"] == "type_changed"
    }
    assert changes == {"b": "neutral", "c": "bad"}  # int32 → int64 widens; int → text breaks


@pytest.mark.parametrize(("state", "deferred"), [("ready", True), ("learning", False)])
def test_judgements_against_the_baseline_are_left_to_a_ready_anomalies_agent(
    tmp_path: Path, state: str, deferred: bool
) -> None:
    column = {"name": "x", "type": "int64", "nullable": True, "null_rate": 0.0, "how": {}}
    base = {"table": "t", "rows": 100, "columns": [column], "scope": {"kind": "full"}}
    for timestamp, rows in zip(TS, [100, 200, 300], strict=False):
        store_run(tmp_path, timestamp, {"t": {**base, "rows": rows, "errors": []}})
    moved = {**column, "name": "y", "null_rate": 0.5}  # x renamed to y, and half null
    store_run(tmp_path, TS[3], {"t": {**base, "rows": 400, "columns": [moved], "errors": []}})
    renamed = {"kind": "column_renamed", "table": "t", "baseline": "x", "value": "y"}
    counts = {"bad": 1, "good": 0, "neutral": 1}
    (tmp_path / TS[3] / "anomalies.json").write_text(
        json.dumps({"state": state, "findings": [renamed], "counts": counts})
    )
    result = compare_runs(str(tmp_path), TS[3])
    found = {f["kind"] for f in result["findings"]}
    if deferred:
        assert found == set() and result["anomalies"]["counts"] == counts
        page = render_summary(result)
        assert '<a href="anomalies.html">the anomalies page</a>: 1 bad' in page
    else:
        assert found == {"rows_grew", "column_added", "column_removed"}
        assert "anomalies" not in result


def test_a_planner_s_row_estimate_that_drifts_a_little_is_not_a_loss_of_rows(
    tmp_path: Path,
) -> None:
    """PostgreSQL's planner count (over exact_count_max_rows) moves between ANALYZEs: 0.5%
    fewer by estimate is no finding; 10% fewer still is."""

    def estimated(rows: int) -> dict[str, Any]:
        return {
            "table": "t",
            "rows": rows,
            "how": {"rows": "estimate (PostgreSQL's planner)"},
            "columns": [],
            "scope": {"kind": "sample", "fraction": 0.01},
            "errors": [],
        }

    history = tmp_path / "history"
    store_run(history, TS[0], {"t": estimated(20_000_000)})
    store_run(history, TS[1], {"t": estimated(19_900_000)})
    store_run(history, TS[2], {"t": estimated(17_900_000)})
    drift = {f["kind"] for f in compare_runs(str(history), TS[1])["findings"]}
    loss = {f["kind"] for f in compare_runs(str(history), TS[2])["findings"]}
    assert "rows_decreased" not in drift and "rows_decreased" in loss
