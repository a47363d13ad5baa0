"""Each agent's kit through the generic calls the services send: the offline digest, the data
stored beside the page, the figures for the report marker; and the summary's view of the run's
other agents, with links to their pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest
from catalog_toolkit import record
from catalog_toolkit.kits import KITS, NoKit, agent_digest, export_data, recorded_fragment

from services.common.cells import call_cell
from tests.toolkit.test_calls import kernel_namespace, run_cell

NOW = "2026-01-02T00:00:00.000Z"


@pytest.fixture
def con(tmp_path: Path) -> Iterator[Any]:
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE orders AS SELECT i AS id, i * 2.5 AS amount FROM range(50) t(i)")
    record.reset()
    connection = ibis.duckdb.connect(str(path), read_only=True)
    yield connection
    connection.disconnect()


def test_the_catalog_kit_through_the_generic_calls(con: Any) -> None:
    context = {"tables": ["orders"], "limits": {"max_tables": 50}}
    digest = run_cell(
        call_cell("agent_digest", with_con=True, agent="catalog", **context), kernel_namespace(con)
    )
    assert digest["headline"] == "1 tables profiled, 50 rows in all." and digest["items"] == []
    data = run_cell(
        call_cell("export_data", with_con=True, agent="catalog", **context), kernel_namespace(con)
    )
    assert data["kind"] == "catalog" and data["counts"] == {"tables": 1, "warnings": 0, "failed": 0}
    assert data["tables"]["orders"]["rows"] == 50
    fragment = run_cell(call_cell("recorded_fragment", agent="catalog"), {})
    assert "orders" in fragment


def test_the_summary_counts_what_the_runs_agents_found_and_links_their_pages(
    con: Any, tmp_path: Path
) -> None:
    run = tmp_path / "history" / NOW
    run.mkdir(parents=True)
    catalog = export_data("catalog", con=con, tables=["orders"])
    files = {
        "catalog.json": json.dumps(catalog),
        "catalog.html": "<p>catalog</p>",
        "pii.json": json.dumps(
            {"format": 1, "kind": "pii", "headline": "Two <b>", "counts": {"columns": 2, "high": 1}}
        ),
        "pii.html": "<p>pii</p>",
        "relations.json": json.dumps({"format": 1, "kind": "relations", "findings": [{}, {}, {}]}),
    }
    for name, text in files.items():
        (run / name).write_text(text)
    context = {"history_dir": str(tmp_path / "history"), "current_timestamp": NOW, "limits": {}}

    digest = agent_digest("summary", **context)
    assert "pii: 2 columns, 1 high" in digest["items"]
    assert "relations: 3 findings" in digest["items"]
    data = export_data("summary", **context)
    assert data["kind"] == "summary" and set(data["counts"]) == {"bad", "good", "neutral"}
    assert [(a["agent"], a["page"], a["counts"]) for a in data["agents"]] == [
        ("catalog", "catalog.html", {"tables": 1, "warnings": 0, "failed": 0}),
        ("pii", "pii.html", {"columns": 2, "high": 1}),
        ("relations", "", {"findings": 3}),
    ]
    fragment = recorded_fragment("summary")
    assert '<a href="pii.html">pii</a>' in fragment
    assert "relations (no page)" in fragment
    assert "Two &lt;b&gt;" in fragment  # every value escaped


def test_an_agent_without_a_kit_is_named_and_still_has_its_data(con: Any) -> None:
    assert set(KITS) >= {"catalog", "summary"}
    with pytest.raises(NoKit, match="no kit for the agent 'nope'"):
        agent_digest("nope", tables=[])
    assert export_data("nope") == {"format": 1, "kind": "nope"}
    record.remember("nope", {"counts": {"things": 4}})
    assert record.recalled("nope") == {"counts": {"things": 4}}
    assert export_data("nope", con=con) == {"format": 1, "kind": "nope", "counts": {"things": 4}}
    assert "no toolkit figures" in recorded_fragment("nope")


def test_a_runner_from_before_pipelines_still_gets_the_recorded_figures(con: Any) -> None:
    export_data("catalog", con=con, tables=["orders"])
    assert "orders" in run_cell(call_cell("recorded_fragment"), {})
