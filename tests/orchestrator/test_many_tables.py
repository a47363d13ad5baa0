"""A run whose request names no tables: the read-only check lists the default schema's, the
run keeps the first `max_tables` in name order, and the page says so, in its compact form.

Through the whole stack on PostgreSQL (gRPC, DBOS, a Docker sandbox, the offline agent), with
60 small tables, a limit of 50 and the compact form from 20 tables (the prompt's limits,
lowered here rather than building the 3,000 tables bench/bench_scale.py measures)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from catalog.v1 import catalog_pb2 as pb

from tests.conftest import POSTGRES_URL
from tests.orchestrator.stack import (
    PASSWORD,
    REPO,
    StartOrchestrator,
    prompt_override,
    wait_finished,
    with_password,
)

TABLES, LIMIT, COMPACT = 60, 50, 20


@pytest.fixture
def estate() -> Iterator[str]:
    """A schema of 60 tables, the default schema of a role that may only read it: its URL."""
    schema, role = f"estate_{uuid.uuid4().hex[:8]}", f"estate_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        for n in range(TABLES):
            admin.execute(
                f"CREATE TABLE {schema}.t{n:02d} AS SELECT g AS id, g % 7 AS k, "
                "CASE WHEN g % 4 = 0 THEN NULL ELSE 'v' || g END AS label "
                "FROM generate_series(1, 20) g"
            )
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"ALTER ROLE {role} SET search_path = {schema}")
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    try:
        yield with_password(POSTGRES_URL.replace("postgres@", f"{role}@", 1))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def _limits(max_tables: int, compact_over: int) -> dict[str, str]:
    shipped = (REPO / "prompts" / "catalog.yaml").read_text()
    changed = re.sub(r"(?m)^  max_tables: \d+", f"  max_tables: {max_tables}", shipped)
    changed = re.sub(r"(?m)^  compact_over: \d+", f"  compact_over: {compact_over}", changed)
    assert changed.count(f": {max_tables} ") and changed.count(f": {compact_over} ")
    return prompt_override("catalog", changed)


async def test_no_tables_named_catalogs_the_first_max_tables_and_says_how_many_were_left(
    start: StartOrchestrator, estate: str, tmp_path: Path
) -> None:
    orchestrator = await start(**_limits(LIMIT, COMPACT))
    out = tmp_path / "out"
    started = await orchestrator.stub.StartCatalog(
        pb.StartCatalogRequest(db_conn_string=estate, s3_prefix=f"file://{out}", agents=["catalog"])
    )
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error

    chosen = [f"t{n:02d}" for n in range(LIMIT)]  # the first 50 in name order
    assert list(final.tables) == chosen
    page = next(out.rglob("catalog.html")).read_text()
    assert (
        "The request named no tables: the run listed its default schema's and chose 50 of its "
        "60 tables, the first in name order; 10 were left out over the run's limit." in page
    )
    # The compact form: one folded section per table, linked from the contents, no charts.
    assert page.count("<details id=") == LIMIT and "<img" not in page
    assert 'href="#t-t00"' in page and "t59" not in page
    data = json.loads(next(out.rglob("catalog.json")).read_text())
    assert data["requested"] == chosen and data["counts"]["tables"] == LIMIT
    assert PASSWORD not in page


async def test_a_source_given_no_tables_shares_the_limit_with_the_named_ones(
    start: StartOrchestrator, estate: str, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start(**_limits(LIMIT, COMPACT))
    url, schema = reader_table
    out = tmp_path / "out"
    sources = [
        pb.DatabaseSource(name="shop", db_conn_string=url, tables=[f"{schema}.orders"]),
        pb.DatabaseSource(name="estate", db_conn_string=estate),  # none named: listed
    ]
    started = await orchestrator.stub.StartCatalog(
        pb.StartCatalogRequest(sources=sources, s3_prefix=f"file://{out}", agents=["catalog"])
    )
    final = await wait_finished(orchestrator.stub, started.catalog_id)
    assert final.status == pb.CATALOG_STATUS_SUCCEEDED, final.error

    # The named table first (request order), then 49 of the estate's 60: the limit is 50.
    listed = [f"estate/t{n:02d}" for n in range(LIMIT - 1)]
    assert list(final.tables) == [f"shop/{schema}.orders", *listed]
    page = next(out.rglob("catalog.html")).read_text()
    assert "no tables of the source <code>estate</code>: " in page
    assert "chose 49 of its 60 tables, the first in name order; 11 were left out" in page
    assert page.count("<details id=") == LIMIT
