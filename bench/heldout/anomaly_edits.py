"""What an incident does to a run's stored profile, as the next catalog run would see it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Catalog = dict[str, Any]
Edit = Callable[[Catalog], None]


def _column(catalog: Catalog, table: str, name: str) -> dict[str, Any]:
    return next(c for c in catalog["tables"][table]["columns"] if c["name"] == name)


def drop(table: str, keep: float) -> Edit:
    """Rows deleted by mistake: counts shrink, rates and means stay."""

    def edit(catalog: Catalog) -> None:
        p = catalog["tables"][table]
        p["rows"] = p["row_estimate"] = int(p["rows"] * keep)
        for c in p["columns"]:
            c["nulls"] = int(c["nulls"] * keep)
            if c.get("key"):
                c["distinct"] = p["rows"]

    return edit


def duplicate(table: str, factor: float) -> Edit:
    """The load ran twice: rows multiply, distinct values do not."""

    def edit(catalog: Catalog) -> None:
        p = catalog["tables"][table]
        p["rows"] = p["row_estimate"] = int(p["rows"] * factor)
        for c in p["columns"]:
            c["nulls"] = int(c["nulls"] * factor)

    return edit


def nulls(table: str, name: str, rate: float | None) -> Edit:
    """The column's null rate becomes `rate` (None: exactly one null appears)."""

    def edit(catalog: Catalog) -> None:
        rows = catalog["tables"][table]["rows"]
        c = _column(catalog, table, name)
        c["nulls"] = 1 if rate is None else int(rows * rate)
        c["null_rate"] = round(c["nulls"] / rows, 6)
        c["distinct"] = min(c["distinct"], rows - c["nulls"])

    return edit


def retype(table: str, name: str, to: str) -> Edit:
    """Upstream changed the column's type; a string loses the numeric figures."""

    def edit(catalog: Catalog) -> None:
        c = _column(catalog, table, name)
        c["type"] = to
        if to == "string":
            for figure in ("mean", "std", "quantiles"):
                c.pop(figure, None)
            c["min"], c["max"] = str(c["min"]), str(c["max"])
            c.update(length_min=4, length_mean=8.5, length_max=10)

    return edit


def rename(table: str, old: str, new: str) -> Edit:
    def edit(catalog: Catalog) -> None:
        _column(catalog, table, old)["name"] = new

    return edit


def scale(table: str, name: str, k: float) -> Edit:
    """A unit change (dollars to cents, milliseconds to microseconds) over the whole table."""

    def edit(catalog: Catalog) -> None:
        c = _column(catalog, table, name)
        for figure in ("mean", "std", "min", "max"):
            c[figure] = c[figure] * k
        c["quantiles"] = {q: v * k for q, v in c["quantiles"].items()}

    return edit


def collapse(table: str, name: str) -> Edit:
    """A join or default gone wrong: every row holds the same value."""

    def edit(catalog: Catalog) -> None:
        c = _column(catalog, table, name)
        c["distinct"] = 1
        if "top_values" in c:
            rows = catalog["tables"][table]["rows"]
            c["top_values"] = [{"value": c["top_values"][0]["value"], "count": rows}]
        if "quantiles" in c:
            c["min"] = c["max"] = c["mean"]
            c["std"] = 0.0
            c["quantiles"] = dict.fromkeys(c["quantiles"], c["mean"])

    return edit
