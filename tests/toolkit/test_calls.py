"""The toolkit functions the services call as cells, each run as the cell the service sends."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest
from catalog_toolkit import record

from services.common.cells import call_cell, read_result


def run_cell(code: str, namespace: dict[str, Any]) -> Any:
    """Run `code` as the kernel would, in the agent's namespace; the result it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<cell>", "exec"), namespace)  # what the kernel does
    return read_result(printed.getvalue())


def kernel_namespace(con: Any) -> dict[str, Any]:
    """What the kernel binds for a session of one database: `con`, and `cons` by name."""
    return {"con": con, "cons": {"default": con}}


@pytest.fixture
def shop_con(tmp_path: Path) -> Any:
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE orders (id INTEGER, status VARCHAR);"
            "INSERT INTO orders SELECT i, ['new', 'paid'][1 + i % 2] FROM range(100) t(i);"
        )
    record.reset()
    con = ibis.duckdb.connect(str(path), read_only=True)
    yield con
    con.disconnect()


def test_a_file_staged_in_chunks_arrives_whole_in_a_new_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = run_cell(call_cell("make_folder", name="history"), {})
    assert root == str(tmp_path / "history") and (tmp_path / "history").is_dir()
    body = bytes(range(256)) * 10
    path = f"{root}/2026-01-01T00:00:00.000Z/catalog.json"
    sizes = [
        run_cell(
            call_cell("stage_file", path=path, chunk=base64.b64encode(part).decode(), append=i > 0),
            {},
        )
        for i, part in enumerate((body[:1000], body[1000:]))
    ]
    assert sizes == [1000, len(body)]
    assert Path(path).read_bytes() == body
    # staging again starts the file over: a repeated step leaves one copy, not two
    run_cell(call_cell("stage_file", path=path, chunk=base64.b64encode(b"x").decode()), {})
    assert Path(path).read_bytes() == b"x"


def test_a_read_only_connection_passes_the_probe_and_missing_tables_are_named(
    shop_con: Any,
) -> None:
    namespace = kernel_namespace(shop_con)
    report = run_cell(
        call_cell("probe_read_only", with_con=True, tables=["orders", "nope"]), namespace
    )
    assert report["by_source"]["default"].pop("version").startswith("DuckDB v")
    proof = {"writable": False, "why": "", "warnings": [], "missing": ["nope"]}
    assert report == proof | {"by_source": {"default": proof | {"backend": "duckdb"}}}
    assert set(namespace) <= {"con", "cons", "__builtins__"}  # the cell left nothing behind


def test_a_writable_duckdb_file_fails_the_probe(tmp_path: Path) -> None:
    path = tmp_path / "rw.duckdb"
    duckdb.connect(str(path)).close()
    con = ibis.duckdb.connect(str(path))
    report = run_cell(call_cell("probe_read_only", with_con=True, tables=[]), kernel_namespace(con))
    assert report["writable"] and report["why"] == "created a table"
    assert con.list_tables() == []  # the probe's table is gone again


def test_the_offline_digests_say_what_was_profiled_and_compared(
    shop_con: Any, tmp_path: Path
) -> None:
    digest = run_cell(
        call_cell("profile_digest", with_con=True, table="orders"), kernel_namespace(shop_con)
    )
    assert digest["table"] == "orders" and digest["rows"] == 100 and digest["columns"] == 2
    assert digest["errors"] == [] and isinstance(digest["warnings"], list)
    exported = run_cell(
        call_cell("export_data", with_con=True, agent="catalog", tables=["orders"]),
        kernel_namespace(shop_con),
    )
    run = tmp_path / "history" / "2026-01-01T00:00:00.000Z"
    run.mkdir(parents=True)
    (run / "catalog.json").write_text(json.dumps(exported))
    found = run_cell(
        call_cell(
            "compare_digest",
            history_dir=str(tmp_path / "history"),
            current_timestamp="2026-01-01T00:00:00.000Z",
        ),
        {},
    )
    assert found["runs"] == 1 and set(found["counts"]) == {"good", "bad", "neutral"}


def test_the_catalog_data_profiles_tables_the_agent_left_out(shop_con: Any) -> None:
    data = run_cell(
        call_cell("export_data", with_con=True, agent="catalog", tables=["orders"]),
        kernel_namespace(shop_con),
    )
    assert data["kind"] == "catalog" and data["requested"] == ["orders"]
    assert data["tables"]["orders"]["rows"] == 100


def test_the_recorded_fragment_comes_back_as_text(shop_con: Any) -> None:
    run_cell(call_cell("profile_digest", with_con=True, table="orders"), kernel_namespace(shop_con))
    fragment = run_cell(call_cell("recorded_fragment"), {})
    assert isinstance(fragment, str) and "orders" in fragment
