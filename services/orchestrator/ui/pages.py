"""The browsing pages: Home (prefixes and search), Prefix, Table and Compare."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from services.common.errors import ServiceError
from services.orchestrator.tenants import Tenant
from services.orchestrator.ui.figures import RunFigures
from services.orchestrator.ui.toolkit import module
from services.orchestrator.ui.web import PAGE_SIZE, Ui, prefix_of

CHART_RUNS = 60  # the runs a sparkline spans, newest last
SEARCH_LIMIT = 100


def router(ui: Ui) -> APIRouter:
    routes = APIRouter()

    @routes.get("/")
    async def home(request: Request, q: str = "", page: int = 1) -> Response:
        caller = ui.caller(request)
        prefixes = await ui.model.prefixes(caller.tenant)
        start = (max(page, 1) - 1) * PAGE_SIZE
        shown = prefixes[start : start + PAGE_SIZE]
        rows = [await _prefix_row(ui, caller.tenant, p) for p in shown]
        hits = await _search(ui, caller.tenant, prefixes, q.strip()) if q.strip() else []
        more = start + PAGE_SIZE < len(prefixes)
        return ui.page(
            request, caller, "home.html", rows=rows, q=q, hits=hits, page=page, more=more
        )

    @routes.get("/p/{pid}")
    async def prefix_page(request: Request, pid: str, page: int = 1) -> Response:
        caller = ui.caller(request)
        prefix = await _visible_prefix(ui, caller.tenant, pid)
        runs = await ui.model.prefix_runs(caller.tenant, prefix)
        start = (max(page, 1) - 1) * PAGE_SIZE
        shown = runs[start : start + PAGE_SIZE]
        window = [r.timestamp for r in runs if r.timestamp][:CHART_RUNS][::-1]
        figures = await ui.model.figures(prefix, window)
        tables = _table_series(window, figures)
        return ui.page(
            request,
            caller,
            "prefix.html",
            prefix=prefix,
            runs=shown,
            page=page,
            more=start + PAGE_SIZE < len(runs),
            total=len(runs),
            tables=tables,
            choices=[r.timestamp for r in shown if r.timestamp],
        )

    @routes.get("/p/{pid}/table")
    async def table_page(request: Request, pid: str, name: str) -> Response:
        caller = ui.caller(request)
        prefix = await _visible_prefix(ui, caller.tenant, pid)
        runs = await ui.model.prefix_runs(caller.tenant, prefix)
        window = [r.timestamp for r in runs if r.timestamp][:CHART_RUNS][::-1]
        figures = await ui.model.figures(prefix, window)
        seen = [t for t in window if name in figures[t].tables] if figures else []
        if not seen:
            raise HTTPException(404, "no run under this prefix profiled that table")
        body = await ui.model.document(prefix, seen[-1], "catalog.json")
        profile = json.loads(body)["tables"][name]
        series = [figures[t].tables[name] for t in seen]
        return ui.page(
            request,
            caller,
            "table.html",
            prefix=prefix,
            name=name,
            latest=seen[-1],
            profile=profile,
            charts=_column_charts(series),
            rows=[f.rows for f in series],
            changes=_schema_changes(seen, series),
        )

    @routes.get("/p/{pid}/compare")
    async def compare_page(request: Request, pid: str, a: str, b: str) -> Response:
        caller = ui.caller(request)
        prefix = await _visible_prefix(ui, caller.tenant, pid)
        earlier, later = sorted((a, b))
        if earlier == later:
            raise HTTPException(400, "pick two different runs to compare")
        try:
            docs = [await ui.model.document(prefix, t, "catalog.json") for t in (earlier, later)]
        except ServiceError as exc:
            raise HTTPException(404, "one of the runs stored no catalog data") from exc
        result = await asyncio.to_thread(_compare, earlier, later, docs)
        return ui.page(
            request, caller, "compare.html", prefix=prefix, a=earlier, b=later, result=result
        )

    return routes


async def _visible_prefix(ui: Ui, tenant: Tenant, pid: str) -> str:
    prefix = prefix_of(pid)
    if prefix is None or prefix not in await ui.model.prefixes(tenant):
        raise HTTPException(404, "no catalog prefix by that name")
    return prefix


async def _prefix_row(ui: Ui, tenant: Tenant, prefix: str) -> dict[str, Any]:
    runs = await ui.model.prefix_runs(tenant, prefix)
    stamped = [r.timestamp for r in runs if r.timestamp]
    counts = {}
    if stamped:
        counts = (await ui.model.figures(prefix, stamped[:1]))[stamped[0]].counts
    return {
        "prefix": prefix,
        "last": runs[0] if runs else None,
        "count": len(runs),
        "counts": counts,
    }


async def _search(ui: Ui, tenant: Tenant, prefixes: list[str], query: str) -> list[dict[str, str]]:
    """Tables and columns whose name, comment or description holds `query`, in latest runs."""
    needle, hits = query.casefold(), []
    for prefix in prefixes:
        stamped = [r.timestamp for r in await ui.model.prefix_runs(tenant, prefix) if r.timestamp]
        latest = await ui.model.figures(prefix, stamped[:1])
        for name, table in (latest[stamped[0]].tables if latest else {}).items():
            if needle in name.casefold():
                hits.append({"prefix": prefix, "table": name, "column": "", "text": name})
            hits += [
                {"prefix": prefix, "table": name, "column": column, "text": text}
                for column, text in table.words
                if needle in text.casefold()
            ]
            if len(hits) >= SEARCH_LIMIT:
                return hits[:SEARCH_LIMIT]
    return hits


def _table_series(window: list[str], figures: dict[str, RunFigures]) -> list[dict[str, Any]]:
    """Per table of the newest indexed run: rows, newest timestamp and null rate over runs."""
    latest = next(
        (figures[t] for t in reversed(window) if t in figures and figures[t].tables), None
    )
    if latest is None:
        return []
    out = []
    for name in sorted(latest.tables):
        points = [figures[t].tables.get(name) if t in figures else None for t in window]
        out.append(
            {
                "name": name,
                "rows": [p.rows if p else None for p in points],
                "newest": [p.newest if p else None for p in points],
                "nulls": [p.max_null_rate if p else None for p in points],
                "now": latest.tables[name],
            }
        )
    return out


def _column_charts(series: list[Any]) -> list[dict[str, Any]]:
    names = [name for name, _ in series[-1].columns]
    return [{"name": n, "nulls": [f.null_rates.get(n) for f in series]} for n in names]


def _schema_changes(stamps: list[str], series: list[Any]) -> list[dict[str, Any]]:
    changes = []
    for i in range(1, len(series)):
        before, after = dict(series[i - 1].columns), dict(series[i].columns)
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        retyped = [
            f"{c}: {before[c]} → {after[c]}"
            for c in sorted(set(before) & set(after))
            if before[c] != after[c]
        ]
        if added or removed or retyped:
            changes.append(
                {"at": stamps[i], "added": added, "removed": removed, "retyped": retyped}
            )
    return changes[::-1]


def _compare(earlier: str, later: str, docs: list[bytes]) -> dict[str, Any]:
    """The toolkit's comparison of two runs, each staged as the folder it reads."""
    compare = module("compare")
    with tempfile.TemporaryDirectory(prefix="catalog-ui-compare-") as history:
        for stamp, body in zip((earlier, later), docs, strict=True):
            os.mkdir(os.path.join(history, stamp))
            with open(os.path.join(history, stamp, "catalog.json"), "wb") as file:
                file.write(body)
        result: dict[str, Any] = compare.compare_runs(history, later)
    return result
