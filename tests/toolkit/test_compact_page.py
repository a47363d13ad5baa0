"""The compact catalog page: many tables stay navigable, and the page's bytes per table flat."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import ibis
from catalog_toolkit import profile_tables, record, render_catalog
from catalog_toolkit.compact_page import COMPACT_OVER
from catalog_toolkit.kits import recorded_fragment

from services.agent_runner.html import sanitize

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
PAGE_CAP = 2 * 1024 * 1024  # the runner's max_html_bytes


def _profiles(tmp_path: Path, count: int) -> list[dict]:
    path = tmp_path / "many.duckdb"
    with duckdb.connect(str(path)) as db:
        for i in range(count):
            db.execute(
                f"CREATE TABLE t{i:04d} AS SELECT g AS id, g % 97 AS k,"
                " CASE WHEN g % 10 = 0 THEN NULL ELSE g * 1.5 END AS amount,"
                " ['new', 'paid', 'done'][1 + g % 3] AS status, ? AS label,"
                " TIMESTAMP '2024-01-01' + to_hours(g) AS created_at, g % 7 = 0 AS flag,"
                " NULL::INTEGER AS empty, g % 13 AS bucket, 'note ' || (g % 50) AS note"
                " FROM range(300) t(g)",
                [HOSTILE],
            )
    con = ibis.duckdb.connect(str(path), read_only=True)
    try:
        return profile_tables(con, [f"t{i:04d}" for i in range(count)])
    finally:
        con.disconnect()


def test_over_the_threshold_the_page_is_compact_navigable_and_flat(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path, 12)
    full = sanitize(render_catalog(profiles), max_bytes=PAGE_CAP)
    compact = sanitize(render_catalog(profiles, compact=True), max_bytes=PAGE_CAP)
    assert "<img" in full and "<img" not in compact  # no charts, samples or top values
    # Every table is a folded section whose summary names it; the contents' links resolve.
    assert compact.count("<details id=") == 12
    assert "<b>t0007</b> 300 rows, 10 columns, 2 warnings</summary>" in compact
    links = re.findall(r'<a href="#([^"]+)"', compact)
    assert links and set(links) <= set(re.findall(r' id="([^"]+)"', compact))
    # Each column: name, type, null share and distinct count, aligned on its own line.
    assert re.search(r"\namount +decimal\(21, 1\) +10% +270\n", compact)
    assert re.search(r"\nempty +int32 +100% +0  ! every value is null\n", compact)
    assert "&lt;script&gt;" not in compact  # the hostile value is no figure the page keeps
    # A few hundred bytes a table, whatever the count: 3,000 tables fit the page cap.
    per_table = len(compact.partition("</nav>")[2].encode()) / 12
    assert per_table * 3000 < PAGE_CAP - 200_000, per_table


def test_the_prompt_limit_sets_the_threshold(tmp_path: Path) -> None:
    record.reset()
    _profiles(tmp_path, 3)  # recorded in the session, as in a sandbox
    # 3 tables, under the default threshold: the full page, as today
    assert COMPACT_OVER > 3 and "<img" in recorded_fragment("catalog")
    page = sanitize(recorded_fragment("catalog", limits={"compact_over": 2}), max_bytes=PAGE_CAP)
    assert "<img" not in page and page.count("<details id=") == 3
