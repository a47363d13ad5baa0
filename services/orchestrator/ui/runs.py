"""The run pages: a run live over SSE, its stored pages framed, Cancel, and the New run form."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from services.common.errors import InvalidArgument, NotFound, ServiceError
from services.orchestrator.catalog_models import CatalogView, StartRequest
from services.orchestrator.object_names import is_object_name, is_timestamp
from services.orchestrator.run_state import (
    AgentProgress,
    AgentSkipped,
    OutputWritten,
    StepChanged,
)
from services.orchestrator.ui.read_model import store
from services.orchestrator.ui.web import PAGE_CSP, Caller, Ui, prefix_id, prefix_of

_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json"}


def router(ui: Ui) -> APIRouter:
    routes = APIRouter()

    @routes.get("/runs/{catalog_id}")
    async def run_page(request: Request, catalog_id: str) -> Response:
        caller = ui.caller(request)
        view = await _run(ui, caller, catalog_id)
        return ui.page(
            request,
            caller,
            "run.html",
            view=view,
            **_outputs(view.s3_prefix, view.timestamp, _names(view)),
        )

    @routes.get("/runs/{catalog_id}/events")
    async def run_events(request: Request, catalog_id: str) -> Response:
        caller = ui.caller(request)
        await _run(ui, caller, catalog_id)
        stream = StreamingResponse(_events(ui, caller, catalog_id), media_type="text/event-stream")
        stream.headers["X-Accel-Buffering"] = "no"
        return ui.respond(request, caller, stream)

    @routes.post("/runs/{catalog_id}/cancel")
    async def cancel(request: Request, catalog_id: str) -> Response:
        caller = ui.caller(request)
        await ui.form(request, caller)
        await ui.model.operations.cancel(catalog_id, caller.tenant)
        ui.model.forget(catalog_id)
        return RedirectResponse(f"/runs/{catalog_id}", status_code=303)

    @routes.get("/p/{pid}/r/{timestamp}")
    async def stored_run(request: Request, pid: str, timestamp: str) -> Response:
        caller = ui.caller(request)
        prefix = await _prefix(ui, caller, pid)
        names = await _objects(prefix, timestamp)
        return ui.page(
            request,
            caller,
            "run.html",
            view=None,
            prefix=prefix,
            timestamp=timestamp,
            **_outputs(prefix, timestamp, names),
        )

    @routes.get("/p/{pid}/r/{timestamp}/o/{name}")
    async def stored_object(request: Request, pid: str, timestamp: str, name: str) -> Response:
        caller = ui.caller(request)
        prefix = await _prefix(ui, caller, pid)
        if not is_timestamp(timestamp) or not is_object_name(name):
            raise HTTPException(404, "no such page")
        try:
            body = await store(prefix).read(timestamp, name)
        except NotFound as exc:
            raise HTTPException(404, "no such page") from exc
        kind = _TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")
        headers = {
            "Content-Security-Policy": PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
        }
        return Response(body, media_type=kind, headers=headers)

    @routes.get("/new")
    async def new_form(request: Request) -> Response:
        caller = ui.caller(request)
        return ui.page(request, caller, "new.html", agents=ui.agents, problems=[], values={})

    @routes.post("/new")
    async def new_run(request: Request) -> Response:
        caller = ui.caller(request)
        fields = await ui.form(request, caller)
        first = {k: v[0].strip() for k, v in fields.items() if v}
        tables = [t.strip() for t in first.get("tables", "").replace(",", "\n").splitlines()]
        try:
            catalog_id = await ui.model.operations.start(
                StartRequest(
                    db_conn_string=first.get("dsn", ""),
                    tables=[t for t in tables if t],
                    s3_prefix=first.get("prefix", ""),
                    agents=fields.get("agents", []),
                ),
                caller.tenant,
            )
        except (InvalidArgument, ServiceError) as exc:
            problems = list(getattr(exc, "field_violations", ())) or [("", exc.message)]
            values = {k: first.get(k, "") for k in ("tables", "prefix")}  # never the DSN
            return ui.page(
                request,
                caller,
                "new.html",
                status=400,
                agents=ui.agents,
                problems=problems,
                values=values,
            )
        ui.model.forget(catalog_id)
        return RedirectResponse(f"/runs/{catalog_id}", status_code=303)

    return routes


async def _run(ui: Ui, caller: Caller, catalog_id: str) -> CatalogView:
    try:
        return await ui.model.run(catalog_id, caller.tenant)
    except NotFound as exc:
        raise HTTPException(404, "no run has that id") from exc


async def _prefix(ui: Ui, caller: Caller, pid: str) -> str:
    prefix = prefix_of(pid)
    if prefix is None or prefix not in await ui.model.prefixes(caller.tenant):
        raise HTTPException(404, "no catalog prefix by that name")
    return prefix


async def _objects(prefix: str, timestamp: str) -> list[str]:
    if not is_timestamp(timestamp):
        raise HTTPException(404, "no such run")
    names = await store(prefix).list_run_objects(timestamp)
    if not names:
        raise HTTPException(404, "no such run")
    return names


def _names(view: CatalogView) -> list[str]:
    uris = [o.uri for o in view.outputs] + [o.data_uri for o in view.outputs if o.data_uri]
    return [uri.rsplit("/", 1)[-1] for uri in uris]


def _outputs(prefix: str, timestamp: str, names: list[str]) -> dict[str, Any]:
    """The run's pages, each with its frame's address and its JSON's when stored."""
    base = f"/p/{prefix_id(prefix)}/r/{timestamp}/o/" if prefix and timestamp else ""
    pages = [n for n in names if n.endswith(".html")]
    return {
        "pages": [
            {
                "name": n.removesuffix(".html"),
                "url": base + n,
                "json": base + n.replace(".html", ".json")
                if n.replace(".html", ".json") in names
                else "",
            }
            for n in pages
        ]
    }


async def _events(ui: Ui, caller: Caller, catalog_id: str) -> AsyncIterator[str]:
    """Each progress event as an SSE message with the run's panel re-rendered, then `done`."""
    yield "retry: 2000\n\n"
    async for event in ui.model.operations.watch(catalog_id, caller.tenant):
        view = await ui.model.operations.get(catalog_id, caller.tenant)
        yield _message("progress", ui, view, describe(event))
    view = await ui.model.operations.get(catalog_id, caller.tenant)
    ui.model.forget(catalog_id)
    yield _message("done", ui, view, f"run {view.status.lower()}")


def _message(kind: str, ui: Ui, view: CatalogView, line: str) -> str:
    names = _names(view)
    panel = ui.env.get_template("_live.html").render(view=view)
    frames = ui.env.get_template("_pages.html").render(
        **_outputs(view.s3_prefix, view.timestamp, names)
    )
    data = {
        "status": view.status,
        "panel": panel,
        "pages": frames,
        "line": line,
        "outputs": len(names),
    }
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


def describe(event: object) -> str:
    if isinstance(event, StepChanged):
        return f"step {event.step.value.lower()}" + (f" ({event.agent})" if event.agent else "")
    if isinstance(event, AgentProgress):
        return f"{event.agent_name}: turn {event.turn}, {event.tool_name}"
    if isinstance(event, OutputWritten):
        return f"{event.output.agent_name} wrote {event.output.uri.rsplit('/', 1)[-1]}"
    if isinstance(event, AgentSkipped):
        return f"{event.agent_name} skipped: {event.reason}"
    if isinstance(event, CatalogView):
        return f"run {event.status.lower()}"
    return type(event).__name__
