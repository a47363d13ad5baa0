"""The rendered figures: readable at 50 tables, escaped, kept whole by the runner's sanitizer."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import duckdb
import ibis
from catalog_toolkit import REPORT_MARKER, profile_table, render_catalog

from services.agent_runner import report
from services.agent_runner.html import sanitize

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def test_the_runner_fills_the_same_marker_the_toolkit_documents() -> None:
    assert report.REPORT_MARKER == REPORT_MARKER


def test_a_catalog_of_50_tables_has_contents_and_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "wide.duckdb"
    with duckdb.connect(str(path)) as db:
        for i in range(50):
            db.execute(
                f"CREATE TABLE t{i:02d} (id INTEGER PRIMARY KEY, name VARCHAR, amount DOUBLE,"
                " created_at TIMESTAMP, status VARCHAR, note VARCHAR, qty INTEGER,"
                " flag BOOLEAN, code VARCHAR, price DECIMAL(10, 2), country VARCHAR, extra INTEGER)"
            )
            db.execute(
                f"INSERT INTO t{i:02d} SELECT g, ?, g * 1.5, TIMESTAMP '2026-01-01' + to_days(g),"
                " ['a', 'b', 'c'][1 + g % 3], NULL, g % 5, g % 2 = 0, 'C' || g, g, 'DE', NULL"
                " FROM range(200) t(g)",
                [HOSTILE],
            )
    con = ibis.duckdb.connect(str(path), read_only=True)
    profiles = [profile_table(con, f"t{i:02d}") for i in range(50)]
    page = sanitize(render_catalog(profiles), max_bytes=2 * 1024 * 1024)
    # One contents line per table, each linking to a section that exists on the page.
    links = re.findall(r'<a href="#([^"]+)"', page)
    ids = set(re.findall(r' id="([^"]+)"', page))
    assert len(links) >= 50 and set(links) <= ids
    assert len(page.encode()) < 1024 * 1024, len(page.encode())  # opens in any browser
    # Charts for every table: 5 histograms (id, amount, created_at, qty, price; `extra` is
    # all null) and bars for the 3 text columns and the boolean with top values.
    assert page.count("<img") == 50 * 9
    tags = [re.sub(r' src="data:image/svg\+xml;base64,[^"]*"', "", t) for t in _tags(page)]
    assert not [t for t in tags if "script" in t or "onerror" in t or "src=" in t]
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # the value shows as text


def _tags(page: str) -> list[str]:
    return re.findall(r"<[^>]*>", page)


def test_the_charts_survive_the_sanitizer_and_hostile_names_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "hostile.duckdb"
    name = '"' + HOSTILE.replace('"', '""') + '"'
    with duckdb.connect(str(path)) as db:
        db.execute(f"CREATE TABLE {name} ({name} INTEGER, placed TIMESTAMP, status VARCHAR)")
        db.execute(
            f"INSERT INTO {name} SELECT g, TIMESTAMP '2026-03-01' + to_hours(g),"
            " CASE WHEN g % 2 = 0 THEN ? ELSE 'paid' END FROM range(500) t(g)",
            [HOSTILE],
        )
    con = ibis.duckdb.connect(str(path), read_only=True)
    profile = profile_table(con, HOSTILE)
    rendered = render_catalog([profile])
    page = sanitize(rendered, max_bytes=1 << 20)
    # Every chart reaches the page whole: the same images, in the same order.
    sources = re.findall(r'<img src="([^"]+)"', rendered)
    assert len(sources) == 3 and re.findall(r'<img src="([^"]+)"', page) == sources
    alts = re.findall(r'alt="([^"]*)"', page)
    assert alts[0].startswith("distribution of &lt;img src=x onerror=") and "<" not in alts[0]
    # The time axis reads as dates, and the hostile name and value are text inside the SVGs.
    texts = [_svg_text(source) for source in sources]
    assert ">2026-03-01<" in texts[1] and ">2026-03-21<" in texts[1]
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in texts[0]  # the column name, as a title
    assert "&lt;img src=x" in texts[2]  # the top value, cut to fit, as a label
    assert not [t for t in _tags(page) if "<script" in t or "onerror=" in t.split(" alt=")[0]]


def test_a_profile_from_before_the_charts_still_renders() -> None:
    old = {
        "table": "shop.orders",
        "rows": 3,
        "columns": [{"name": "amount", "type": "float64", "min": 1.0, "max": 3.0, "how": {}}],
    }
    page = sanitize(render_catalog([old]), max_bytes=1 << 20)
    assert "amount" in page and "<img" not in page


def _svg_text(source: str) -> str:
    return base64.b64decode(source.split("base64,", 1)[1]).decode()
