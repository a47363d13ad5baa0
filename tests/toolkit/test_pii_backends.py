"""find_pii on PostgreSQL, MariaDB and DuckDB, through read-only sessions, on bench/pii_cases'
generated columns: what it tags, what it leaves alone, how it samples, and that no raw value
reaches its result, its digest, its stored data or its page."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from catalog_toolkit import find_pii, record
from catalog_toolkit.kits import KITS

from tests.toolkit.conftest import connect
from tests.toolkit.shop import BACKENDS

# The generator and its builders live beside the benchmark that measures the same set.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from pii_build import built
from pii_cases import Case, cases, tables

CASES = cases()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pii_db(backend: str, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A read-only connection to the generated tables, and their schema."""
    with built(backend, CASES, tmp_path) as (dsn, schema):
        con = connect(dsn)
        try:
            yield con, schema
        finally:
            con.disconnect()


def _tags(result: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    return {
        (entry["table"].rsplit(".", 1)[-1], column["name"]): {v["type"] for v in column["pii"]}
        for entry in result["tables"].values()
        for column in entry["columns"]
    }


def test_labelled_columns_are_tagged_and_traps_are_not(pii_db: tuple[Any, str]) -> None:
    con, schema = pii_db
    result = find_pii(con, [f"{schema}.{t}" for t in tables(CASES)])
    tags = _tags(result)
    assert all(entry["errors"] == [] for entry in result["tables"].values())
    for case in CASES:
        found = tags.get((case.table, case.column), set())
        if case.trap:
            assert found == set(), case.column
        if case.label in ("email", "payment_card", "iban", "ssn", "ip_address", "free_text"):
            assert case.label in found, case.column
    assert record.recalled("pii") is result


def test_big_tables_are_sampled_and_sparse_columns_read_on(pii_db: tuple[Any, str]) -> None:
    con, schema = pii_db
    result = find_pii(con, [f"{schema}.events", f"{schema}.customers"], sample_rows=100)
    events = result["tables"][f"{schema}.events"]
    assert events["sample"]["rows"] == 100
    assert events["sample"]["method"].startswith("random sample of about")
    customers = {c["name"]: c for c in result["tables"][f"{schema}.customers"]["columns"]}
    sparse = customers["date_of_birth"]  # 97% NULL: the 100 rows hold a few values at most
    assert sparse["sampled"] > 5 and sparse["pii"][0]["type"] == "date_of_birth"


def _raw_values(all_cases: list[Case]) -> set[str]:
    """Every labelled value long enough to be recognizable, as written and as digits."""
    raw: set[str] = set()
    for case in all_cases:
        if case.label is None or case.kind in ("date", "bool"):
            continue
        for value in case.values:
            text = str(value) if value is not None else ""
            if case.label == "free_text" and "Contact: " in text:
                text = text.split("Contact: ", 1)[1].removesuffix(" if anything changes.")
            if len(text) >= 8:
                raw.add(text)
                digits = "".join(ch for ch in text if ch.isdigit())
                raw.update({digits} if len(digits) >= 8 else set())
    return raw


def test_no_raw_value_leaves_in_result_digest_data_or_page(pii_db: tuple[Any, str]) -> None:
    con, schema = pii_db
    names = [f"{schema}.{t}" for t in tables(CASES)]
    digest = KITS["pii"].digest(con=con, tables=names, limits={"sample_rows": 300})
    exported = KITS["pii"].export(con=con, tables=names)
    page = KITS["pii"].render(exported)
    assert exported is record.recalled("pii") and exported["counts"]["sensitive_columns"] >= 30
    out = json.dumps([digest, exported], ensure_ascii=False) + page
    leaked = sorted(value for value in _raw_values(CASES) if value in out)
    assert leaked == []
    assert "***" in page
