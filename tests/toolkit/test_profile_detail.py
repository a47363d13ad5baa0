"""A big table's profile: one scan for exact counts and ranges, the rest from a labelled sample.

On PostgreSQL, MariaDB and DuckDB, through read-only connections: a table over a million rows
(detail.DETAIL_ABOVE) and, with that threshold set to 0 and the sample as big as the table,
the shop's tables, whose sample figures must then equal the database's own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from catalog_toolkit import detail, profile_table, render_catalog, row_count, whole

from tests.toolkit.conftest import connect
from tests.toolkit.shop import Shop, duckdb_shop
from tests.toolkit.test_profile import column, run_as_admin

HUGE_ROWS = 1_200_000
HUGE_TABLE = {
    "postgres": "CREATE TABLE {s}.huge AS SELECT g AS id, g % 1000 AS v, g % 7 AS k,"
    " 'code-' || (g % 7) AS code, CASE WHEN g % 10 = 0 THEN NULL ELSE g % 5000 END AS n,"
    " CASE WHEN g = 777777 THEN 1 ELSE 0 END AS rare"
    " FROM generate_series(1, {n}) g; ALTER TABLE {s}.huge ADD PRIMARY KEY (id)",
    "mysql": "CREATE TABLE {s}.huge (PRIMARY KEY (id)) AS SELECT seq AS id, seq % 1000 AS v,"
    " seq % 7 AS k, CONCAT('code-', seq % 7) AS code,"
    " CASE WHEN seq % 10 = 0 THEN NULL ELSE seq % 5000 END AS n,"
    " CASE WHEN seq = 777777 THEN 1 ELSE 0 END AS rare FROM {s}.seq_1_to_{n}",
    "duckdb": "CREATE TABLE {s}.huge (id BIGINT PRIMARY KEY, v BIGINT, k BIGINT, code VARCHAR,"
    " n BIGINT, rare INTEGER); INSERT INTO {s}.huge SELECT g, g % 1000, g % 7,"
    " 'code-' || (g % 7), CASE WHEN g % 10 = 0 THEN NULL ELSE g % 5000 END,"
    " CASE WHEN g = 777777 THEN 1 ELSE 0 END FROM range(1, {n} + 1) AS r(g)",
}
METHODS = {"postgres": "random blocks", "mysql": "random key ranges", "duckdb": "random blocks"}


def huge(shop: Shop, **options: Any) -> dict[str, Any]:
    quote = "`" if shop.backend == "mysql" else '"'
    sql = HUGE_TABLE[shop.backend].format(s=f"{quote}{shop.schema}{quote}", n=HUGE_ROWS)
    if shop.backend == "postgres":
        import psycopg

        with psycopg.connect(shop.admin_dsn, autocommit=True) as db:
            db.execute(sql)
            db.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{shop.schema}" TO PUBLIC')
            db.execute(f'ANALYZE "{shop.schema}".huge')
    else:
        run_as_admin(shop, sql)
    return profile_table(connect(shop.reader_dsn), shop.table("huge"), **options)


def test_a_big_table_is_scanned_once_exactly_and_sampled_once_for_the_rest(shop: Shop) -> None:
    profile = huge(shop)
    assert not profile["errors"] and profile["rows"] == HUGE_ROWS
    assert profile["how"]["rows"] == "exact" and profile["scope"]["kind"] == "full"
    sampled = profile["scope"]["detail"]
    assert sampled["method"] == METHODS[shop.backend]
    assert detail.DETAIL_ROWS // 2 < sampled["rows_read"] < 2 * detail.DETAIL_ROWS
    label = f"exact, sample of {sampled['rows_read']:,} rows"
    # The scan's figures are the table's own.
    n = column(profile, "n")
    assert n["nulls"] == HUGE_ROWS // 10 and n["how"]["nulls"] == "exact"
    assert (n["min"], n["max"]) == (1, 4999) and n["how"]["min"] == "exact"
    key = column(profile, "id")
    assert key["distinct"] == HUGE_ROWS and key["how"]["distinct"] == "exact (enforced key)"
    # The sample's figures say so, and are close to the table's.
    v = column(profile, "v")
    assert v["how"]["distinct"] == f"estimate, sample of {sampled['rows_read']:,} rows"
    assert v["distinct"] == pytest.approx(1000, rel=0.05)
    assert v["how"]["quantiles"] == v["how"]["histogram"] == v["how"]["mean"] == label
    assert v["mean"] == pytest.approx(499.5, rel=0.05)
    assert sum(count for _, _, count in v["histogram"]) == sampled["rows_read"]
    assert v["histogram"][0][0] == 0 and v["histogram"][-1][1] == 999  # the table's range
    k = column(profile, "k")
    assert k["how"]["top_values"] == label and sorted(t["value"] for t in k["top_values"]) == [
        *range(7)
    ]
    code = column(profile, "code")
    assert code["how"]["lengths"] == label and code["length_max"] == 6
    # One row in 1.2M differs: the sample cannot see it, the scan's range can.
    rare = column(profile, "rare")
    assert (rare["min"], rare["max"]) == (0, 1) and rare["distinct"] >= 2
    assert "constant" not in {f["code"] for f in profile["flags"] if f["column"] == "rare"}
    page = render_catalog([profile])
    assert f"the rest from a sample of {sampled['rows_read']:,} rows" in page
    assert f"<small>({label})</small>" in page


def test_over_the_row_budget_duckdb_still_scans_once_and_postgres_reads_only_samples(
    shop: Shop,
) -> None:
    """Over the row budget: DuckDB's one scan stays whole (exact counts and ranges, no COUNT(*)
    after a sample); PostgreSQL's scan reads a block sample of about the budget's rows, and
    over `exact_count_max_rows` its row count is the planner's, labelled so; MySQL samples and
    counts exactly."""
    budget = 300_000
    profile = huge(shop, row_budget=budget, exact_count_max_rows=500_000)
    assert not profile["errors"]
    scope, n, key = profile["scope"], column(profile, "n"), column(profile, "id")
    if shop.backend == "duckdb":
        assert scope["kind"] == "full" and profile["rows"] == HUGE_ROWS
        assert profile["how"]["rows"] == "exact" and n["how"]["nulls"] == "exact"
        assert n["nulls"] == HUGE_ROWS // 10 and key["how"]["distinct"] == "exact (enforced key)"
    else:
        assert scope["kind"] == "sample" and budget // 3 < scope["rows_read"] < 3 * budget
        assert n["how"]["nulls"] == "exact, sample"
        assert n["null_rate"] == pytest.approx(0.1, abs=0.02)
    if shop.backend == "postgres":
        assert profile["how"]["rows"] == row_count.ESTIMATED  # ANALYZEd: close to the truth
        assert profile["rows"] == pytest.approx(HUGE_ROWS, rel=0.05)
        assert key["distinct"] == profile["rows"] and key["how"]["distinct"].startswith("estimate")
    if shop.backend == "mysql":
        assert profile["how"]["rows"] == "exact" and profile["rows"] == HUGE_ROWS
    v = column(profile, "v")  # the table's distinct count, from a sample whatever the scan
    assert v["distinct"] == pytest.approx(1000, rel=0.05) and "sample of" in v["how"]["distinct"]


SAME = ("mean", "std", "quantiles", "length_min", "length_mean", "length_max", "histogram")


def test_the_sample_s_figures_are_the_database_s_when_it_holds_every_row(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow's moments, quantiles, lengths, bins and value counts against the database's, the
    sample fetched two columns at a time as a wide table's is."""
    monkeypatch.setattr(whole, "WHOLE_ROWS", 0)  # DuckDB's figures from its own passes
    exact = {t: profile_table(connect(shop.reader_dsn), t) for t in shop.tables[:2]}
    monkeypatch.setattr(detail, "DETAIL_ABOVE", 0)
    monkeypatch.setattr(detail, "DETAIL_ROWS", 10_000_000)
    monkeypatch.setattr(detail, "DETAIL_VALUES", 20_000_000)  # 2 columns a fetch
    compared = set()
    for table, full in exact.items():
        sampled = profile_table(connect(shop.reader_dsn), table)
        assert not sampled["errors"] and sampled["scope"]["detail"]["rows_read"] == full["rows"]
        for ours, theirs in zip(sampled["columns"], full["columns"], strict=True):
            for key in (*SAME, "top_values", "distinct", "duplicates", "nulls", "min", "max"):
                assert _close(ours.get(key), theirs.get(key)), (table, ours["name"], key)
                compared |= {key} if ours.get(key) is not None else set()
            if "quantiles" in ours:
                assert ours["how"]["quantiles"].startswith("exact, sample of")
    assert compared >= {*SAME, "top_values", "distinct", "duplicates"} - {"std"}, compared


@pytest.fixture
def duck_shop(tmp_path: Path) -> Iterator[Shop]:
    """The shop in DuckDB only: the one backend whose small tables are fetched whole."""
    with duckdb_shop(tmp_path) as built:
        yield built


def test_a_small_duckdb_table_fetched_whole_has_the_database_s_figures_exactly(
    duck_shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """whole.py's one fetch reduced by Arrow against DuckDB's own passes, on every shop table:
    the same figures, each labelled `exact` (distinct counts too: every value was counted)."""
    shop = duck_shop
    fetched = {t: profile_table(connect(shop.reader_dsn), t) for t in shop.tables}
    monkeypatch.setattr(whole, "WHOLE_ROWS", 0)
    compared = set()
    for table, ours_profile in fetched.items():
        theirs_profile = profile_table(connect(shop.reader_dsn), table)
        assert not ours_profile["errors"] and ours_profile["rows"] == theirs_profile["rows"]
        assert ours_profile["scope"] == theirs_profile["scope"]  # comparable across runs
        pairs = zip(ours_profile["columns"], theirs_profile["columns"], strict=True)
        for ours, theirs in pairs:
            for key in (*SAME, "top_values", "distinct", "duplicates", "nulls", "min", "max"):
                assert _close(ours.get(key), theirs.get(key)), (table, ours["name"], key)
                compared |= {key} if ours.get(key) is not None else set()
            assert all(how.startswith("exact") for how in ours["how"].values()), ours["how"]
        assert ours_profile["flags"] == theirs_profile["flags"], table
        assert ours_profile["samples"] == theirs_profile["samples"], table  # the first rows
    assert compared >= {*SAME, "top_values", "distinct", "duplicates"}, compared


def _close(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, float) or isinstance(theirs, float):
        return ours == pytest.approx(theirs, rel=1e-6, abs=1e-6)
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(_close(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(_close, ours, theirs))
    return bool(ours == theirs)


def test_duj1_is_exact_on_the_whole_table_and_bounded_by_what_it_saw() -> None:
    assert detail.duj1(1000, 40, 0, 1000) == 40  # every row read
    assert detail.duj1(1000, 1000, 1000, 1_000_000) == 1_000_000  # all distinct: a key
    assert detail.duj1(1000, 7, 0, 1_000_000) == 7  # few values, each seen often
    assert 500 <= detail.duj1(1000, 500, 100, 1_000_000) <= 1_000_000


def test_a_table_over_the_row_budget_estimates_distinct_values_of_its_own_rows(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 rows over a row budget of 10,000, half of `u` null and the rest unique: the
    sample's nulls are the budget sample's, so the table's distinct count is its non-null
    rows (10,000), not its rows less the sample's nulls (15,000)."""
    import duckdb

    path = tmp_path / "budget.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE t AS SELECT g AS id, CASE WHEN g % 2 = 0 THEN g END AS u"
            " FROM range(20000) r(g)"
        )
    monkeypatch.setattr(detail, "DETAIL_ABOVE", 0)
    monkeypatch.setattr(detail, "DETAIL_ROWS", 2_000)
    profile = profile_table(connect(f"duckdb://{path}"), "t", row_budget=10_000)
    assert profile["rows"] == 20_000
    (u,) = [c for c in profile["columns"] if c["name"] == "u"]
    assert u["how"]["distinct"].startswith("estimate")
    assert 9_000 <= u["distinct"] <= 11_000, u["distinct"]


def test_a_duckdb_profile_never_imports_pandas(tmp_path: Path) -> None:
    """pandas costs a cold process 0.3 s, as much as a 5M-row scan: neither a small table's
    whole fetch nor a big one's sample may import it (`pa.array` of a NumPy array does)."""
    import duckdb

    path = tmp_path / "cold.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE t AS SELECT range AS id, range % 7 AS k, range * 0.5 AS x,"
            " TIMESTAMP '2020-01-01' + to_seconds(range) AS at, DATE '2020-01-01' + range::INT"
            " AS day, 'v' || (range % 3) AS s FROM range(5000)"
        )
    code = (
        "import sys, ibis\n"
        "from catalog_toolkit import detail, profile_table\n"
        f"con = ibis.duckdb.connect({str(path)!r}, read_only=True)\n"
        "whole = profile_table(con, 't')\n"
        "detail.DETAIL_ABOVE = 0\n"
        "sampled = profile_table(con, 't')\n"
        "assert not whole['errors'] and not sampled['errors']\n"
        "assert 'detail' in sampled['scope'] and 'detail' not in whole['scope']\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
