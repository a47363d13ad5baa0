"""Charts: whole SVG images that survive the runner's sanitizer and show hostile names as text."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import pytest
from catalog_toolkit import charts

from services.agent_runner.html import sanitize

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>&\"'"


def _decode(tag: str) -> ET.Element:
    """The SVG document inside an `<img>` tag, parsed (so it is well-formed XML)."""
    match = re.search(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', tag)
    assert match, tag
    # Our own output, not untrusted input.
    return ET.fromstring(base64.b64decode(match.group(1)))  # noqa: S314


def _texts(svg: ET.Element) -> list[str]:
    return [el.text or "" for el in svg.iter() if el.tag in (f"{SVG}text", f"{SVG}title")]


ALL_CHARTS = {
    "histogram": lambda label: charts.histogram([(0, 10, 5), (10, 20, 9)], label=label),
    "bars": lambda label: charts.bars([(HOSTILE, 7), ("b", 3)], label=label),
    "sparkline": lambda label: charts.sparkline([1, 2, None, 4], label=label, marks=[3]),
    "graph": lambda label: charts.graph(
        [HOSTILE, "orders"], [charts.Edge("orders", HOSTILE, "x -> y", True)], label=label
    ),
}


@pytest.mark.parametrize("kind", sorted(ALL_CHARTS))
def test_every_chart_is_an_image_the_sanitizer_keeps_whole(kind: str) -> None:
    tag = ALL_CHARTS[kind](HOSTILE)
    page = sanitize(f"<p>{kind}</p>{tag}", max_bytes=1 << 20)
    assert _decode(tag).tag == f"{SVG}svg"
    kept = re.search(r'src="([^"]+)"', page)
    assert kept and kept.group(1) == re.search(r'src="([^"]+)"', tag).group(1)  # type: ignore[union-attr]
    # The alternative text is the label, as text: no element came out of it.
    assert "<script" not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize("kind", sorted(ALL_CHARTS))
def test_a_hostile_name_is_text_inside_the_svg(kind: str) -> None:
    svg = _decode(ALL_CHARTS[kind](HOSTILE))
    assert not [el for el in svg.iter() if el.tag.endswith("script")]
    assert any(HOSTILE[:20] in text for text in _texts(svg))


def _bar_heights(svg: ET.Element) -> list[float]:
    """The heights of the histogram's bars, one `M x,y v-h h w v h z` each in its path."""
    (path,) = svg.iter(f"{SVG}path")
    return [float(h) for h in re.findall(r"v-([0-9.]+)", path.get("d", ""))]


def test_a_histogram_is_as_tall_as_its_counts() -> None:
    svg = _decode(charts.histogram([(0, 1, 10), (1, 2, 5), (2, 3, 0)], label="amount"))
    heights = _bar_heights(svg)
    assert len(heights) == 2  # the empty bin draws nothing
    assert heights[0] == pytest.approx(2 * heights[1])


def test_a_lone_outlier_still_shows() -> None:
    svg = _decode(charts.histogram([(0, 1, 100_000), (1, 2, 0), (2, 3, 1)], label="amount"))
    assert [h > 0 for h in _bar_heights(svg)] == [True, True]


def test_a_histogram_writes_its_axis_with_the_formatter_given() -> None:
    day = 86_400.0
    tag = charts.histogram(
        [(0.0, day, 3), (day, 2 * day, 4)],
        label="created_at",
        axis=lambda x: f"day {x / day:.0f}",
    )
    assert [t for t in _texts(_decode(tag)) if t.startswith("day")] == ["day 0", "day 2"]


def test_bars_keep_the_order_given_with_the_longest_bar_first() -> None:
    svg = _decode(charts.bars([("paid", 40), ("open", 10)], label="status"))
    widths = [float(r.get("width", 0)) for r in svg.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(4 * widths[1])
    assert [t for t in _texts(svg) if t in ("paid", "open")] == ["paid", "open"]


def test_a_sparkline_breaks_at_missing_runs_and_marks_the_anomaly() -> None:
    svg = _decode(charts.sparkline([5, 6, None, 7, 30], label="rows", marks=[4]))
    assert len(list(svg.iter(f"{SVG}polyline"))) == 2
    (dot,) = svg.iter(f"{SVG}circle")
    assert float(dot.get("cy", 0)) < 5  # the highest value sits at the top


def test_the_graph_draws_references_leftwards_and_inferred_ones_dashed() -> None:
    edges = [
        charts.Edge("orders", "customers", "customer_id -> id", False),
        charts.Edge("order_items", "orders", "order_id -> id", True),
    ]
    svg = _decode(charts.graph(["order_items", "orders", "customers"], edges, label="shop"))
    boxes = {
        text.text: float(rect.get("x", 0))
        for rect, text in zip(svg.iter(f"{SVG}rect"), svg.iter(f"{SVG}text"), strict=False)
    }
    assert boxes["customers"] < boxes["orders"] < boxes["order_items"]
    paths = [p for p in svg.iter(f"{SVG}path") if p.get("marker-end")]
    dashed = {
        p.findtext(f"{SVG}title", "").split(":")[0]: bool(p.get("stroke-dasharray")) for p in paths
    }
    assert dashed == {"orders → customers": False, "order_items → orders": True}


def test_a_cycle_of_references_still_draws() -> None:
    edges = [charts.Edge("a", "b", "", True), charts.Edge("b", "a", "", True)]
    assert _decode(charts.graph(["a", "b"], edges, label="cycle")).tag == f"{SVG}svg"


def test_nothing_to_draw_draws_nothing() -> None:
    assert charts.histogram([], label="x") == charts.bars([], label="x") == ""
    assert charts.sparkline([None, None], label="x") == charts.graph([], [], label="x") == ""
