"""Small charts for the pages: SVG drawn here, shipped as `<img src="data:image/svg+xml;...">`.

The runner's sanitizer drops inline `<svg>` (scripts and foreign content hide there) but keeps
an image's `data:` URI, and a browser never runs a script nor loads a resource inside an image.
So every chart is a whole SVG document, base64-encoded into an `<img>` tag, with its text
XML-escaped here and its `alt` text HTML-escaped: a table named `<script>` stays a label.

One drawing code serves every agent: a histogram of a column's distribution, bars for its top
values, a sparkline for a figure over runs, and a graph of tables for relations.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from html import escape
from typing import NamedTuple
from xml.sax.saxutils import escape as xml_escape

BAR = "#2563eb"
MARK = "#dc2626"
MUTED = "#6b7280"
FONT = "font-family='system-ui,sans-serif' font-size='11'"
LABEL_CHARS = 28


class Edge(NamedTuple):
    """A reference from one table to another: `source` holds the key that points at `target`."""

    source: str
    target: str
    text: str  # e.g. "customer_id -> id"
    inferred: bool  # drawn dashed; declared constraints are drawn solid


def image(svg: str, *, label: str, width: int, height: int) -> str:
    """`svg` as an `<img>` tag the sanitizer keeps; `label` is its alternative text."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (
        f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(label)}" '
        f'width="{width}" height="{height}">'
    )


def _svg(body: str, width: int, height: int, label: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img'><title>{xml_escape(label)}</title>"
        f"{body}</svg>"
    )


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return xml_escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:.3g}"


def histogram(
    bins: Sequence[tuple[float, float, int]],
    *,
    label: str,
    width: int = 180,
    height: int = 48,
    axis: Callable[[float], str] = _number,
) -> str:
    """Bars for `(low, high, count)` bins, lowest first, with the range written underneath;
    `axis` writes a bin edge (epoch seconds as a date, say, for a time column).

    The bars are one path: a page draws hundreds of these, and a title per bar would be
    bytes nobody sees (an image shows no tooltips). A bin that is not empty is at least 1 px
    tall, so a lone outlier still shows."""
    if not bins:
        return ""
    top = max(count for _, _, count in bins) or 1
    plot = height - 14
    step = width / len(bins)
    tall = [max(count / top * plot, 1.0) if count else 0.0 for _, _, count in bins]
    path = "".join(
        f"M{i * step + 0.5:.1f},{plot}v-{h:.1f}h{max(step - 1, 1):.1f}v{h:.1f}z"
        for i, h in enumerate(tall)
        if h
    )
    scale = (
        f"<text x='0' y='{height - 2}' {FONT} fill='{MUTED}'>"
        f"{xml_escape(axis(bins[0][0]))}</text>"
        f"<text x='{width}' y='{height - 2}' {FONT} fill='{MUTED}' text-anchor='end'>"
        f"{xml_escape(axis(bins[-1][1]))}</text>"
    )
    body = f"<path fill='{BAR}' d='{path}'/>{scale}"
    return image(_svg(body, width, height, label), label=label, width=width, height=height)


def bars(items: Sequence[tuple[str, int]], *, label: str, width: int = 240) -> str:
    """Horizontal bars for `(value, count)` pairs, in the order given (most frequent first)."""
    if not items:
        return ""
    row = 16
    height = row * len(items)
    top = max(count for _, count in items) or 1
    text_width = width * 0.45
    room = width - text_width - 52
    body = "".join(
        f"<text x='{text_width - 4:.0f}' y='{i * row + 12}' {FONT} text-anchor='end'>"
        f"{_short(name, 22)}</text>"
        f"<rect x='{text_width:.0f}' y='{i * row + 3}' width='{max(count / top * room, 1):.1f}' "
        f"height='{row - 5}' fill='{BAR}'/>"
        f"<text x='{text_width + count / top * room + 4:.0f}' y='{i * row + 12}' {FONT} "
        f"fill='{MUTED}'>{count:,}</text>"
        for i, (name, count) in enumerate(items)
    )
    return image(_svg(body, width, height, label), label=label, width=width, height=height)


def sparkline(
    values: Sequence[float | None],
    *,
    label: str,
    marks: Sequence[int] = (),
    width: int = 120,
    height: int = 28,
) -> str:
    """A line through `values` (oldest first; None is a gap), the points in `marks` in red."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = (width - 6) / max(len(values) - 1, 1)

    def point(i: int, value: float) -> tuple[float, float]:
        return 3 + i * step, height - 3 - (value - low) / span * (height - 6)

    segments: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            segments.append([])
        else:
            segments[-1].append(point(i, value))
    lines = "".join(
        "<polyline fill='none' stroke='"
        + BAR
        + "' stroke-width='1.5' points='"
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
        + "'/>"
        for segment in segments
        if segment
    )
    dots = "".join(
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='{MARK}'/>"
        for i in marks
        if 0 <= i < len(values) and (value := values[i]) is not None
        for x, y in [point(i, value)]
    )
    return image(_svg(lines + dots, width, height, label), label=label, width=width, height=height)


def _layers(nodes: Sequence[str], edges: Sequence[Edge]) -> list[list[str]]:
    """Columns of tables: a table sits one column right of every table it references, so the
    references all point left; a cycle stops the climb instead of looping."""
    targets: dict[str, set[str]] = {node: set() for node in nodes}
    for edge in edges:
        if edge.source in targets and edge.target in targets and edge.source != edge.target:
            targets[edge.source].add(edge.target)
    depth: dict[str, int] = {}

    def depth_of(node: str, seen: frozenset[str]) -> int:
        if node not in depth:
            reachable = [t for t in targets[node] if t not in seen]
            depth[node] = 1 + max((depth_of(t, seen | {node}) for t in reachable), default=-1)
        return depth[node]

    columns: list[list[str]] = []
    for node in nodes:
        level = depth_of(node, frozenset())
        columns.extend([] for _ in range(level + 1 - len(columns)))
        columns[level].append(node)
    return columns


def graph(nodes: Sequence[str], edges: Sequence[Edge], *, label: str) -> str:
    """Tables as boxes in columns, references as arrows: declared solid, inferred dashed."""
    if not nodes:
        return ""
    box_width, box_height, gap_x, gap_y = 170, 24, 70, 14
    columns = _layers(nodes, edges)
    place: dict[str, tuple[float, float]] = {}
    for c, column in enumerate(columns):
        for r, node in enumerate(column):
            place[node] = (10 + c * (box_width + gap_x), 10 + r * (box_height + gap_y))
    width = 20 + len(columns) * box_width + (len(columns) - 1) * gap_x
    height = 20 + max(len(c) for c in columns) * (box_height + gap_y) - gap_y
    boxes = "".join(
        f"<rect x='{x}' y='{y}' width='{box_width}' height='{box_height}' rx='4' fill='#eff6ff' "
        f"stroke='{BAR}'/><text x='{x + 6}' y='{y + 16}' {FONT}>{_short(node)}</text>"
        for node, (x, y) in place.items()
    )
    arrows = "".join(_arrow(edge, place, box_width, box_height) for edge in edges)
    legend = (
        f"<text x='10' y='{height + 14}' {FONT} fill='{MUTED}'>solid: declared key, "
        "dashed: inferred from the data</text>"
    )
    marker = (
        "<defs><marker id='head' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
        f"markerHeight='7' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='{MUTED}'/>"
        "</marker></defs>"
    )
    total = height + 20
    body = marker + arrows + boxes + legend
    return image(_svg(body, width, total, label), label=label, width=width, height=total)


def _arrow(
    edge: Edge, place: dict[str, tuple[float, float]], box_width: int, box_height: int
) -> str:
    if edge.source not in place or edge.target not in place:
        return ""
    (sx, sy), (tx, ty) = place[edge.source], place[edge.target]
    start = (sx, sy + box_height / 2)
    end = (tx + box_width, ty + box_height / 2)
    if edge.source == edge.target or end[0] > start[0]:  # a self or backward reference loops
        start, end = (sx + box_width, sy + 6), (tx + box_width, ty + box_height - 6)
        bend = 40.0
        path = (
            f"M{start[0]:.0f},{start[1]:.0f} C{start[0] + bend:.0f},{start[1]:.0f} "
            f"{end[0] + bend:.0f},{end[1]:.0f} {end[0]:.0f},{end[1]:.0f}"
        )
    else:
        middle = (start[0] + end[0]) / 2
        path = (
            f"M{start[0]:.0f},{start[1]:.0f} C{middle:.0f},{start[1]:.0f} "
            f"{middle:.0f},{end[1]:.0f} {end[0]:.0f},{end[1]:.0f}"
        )
    dash = " stroke-dasharray='5,4'" if edge.inferred else ""
    return (
        f"<path d='{path}' fill='none' stroke='{MUTED}' stroke-width='1.3'{dash} "
        f"marker-end='url(#head)'><title>{xml_escape(edge.source)} → "
        f"{xml_escape(edge.target)}: {xml_escape(edge.text)}</title></path>"
    )
