"""The web UI, served by the orchestrator at `/` (docs/ui.md).

`mount(app, ...)` adds its pages, the login form and /static to the orchestrator's FastAPI app.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.common.errors import Unauthenticated
from services.orchestrator.auth import ApiGuard
from services.orchestrator.service import CatalogOperations
from services.orchestrator.tenants import DEFAULT_TENANT, Tenant
from services.orchestrator.ui import pages, runs
from services.orchestrator.ui.read_model import ReadModel
from services.orchestrator.ui.web import CSP, HERE, CsrfRefused, LoginRequired, Ui, login_redirect


def mount(
    app: FastAPI,
    operations: CatalogOperations,
    guard: ApiGuard,
    *,
    tenants: Sequence[Tenant] = (),
    agents: Sequence[str] = (),
    file_roots: Sequence[str] = (),
    prefixes: Sequence[str] = (),
) -> Ui:
    """Serve the UI on `app`; `file_roots` and `prefixes` are where stored runs are found."""
    named = {t.name: t for t in tenants}
    named.setdefault(DEFAULT_TENANT, Tenant(DEFAULT_TENANT))
    model = ReadModel(operations, file_roots, prefixes, tenanted=bool(tenants))
    ui = Ui(model, guard, named, list(agents))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.include_router(_login_router(ui))
    app.include_router(pages.router(ui))
    app.include_router(runs.router(ui))
    app.add_exception_handler(LoginRequired, lambda r, e: login_redirect(r))
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    return ui


def _csrf_refused(request: Request, exc: Exception) -> Response:
    message = "This form expired or did not come from this site: go back, reload and resend it."
    return HTMLResponse(message, 403, headers={"Content-Security-Policy": CSP})


def _login_router(ui: Ui) -> APIRouter:
    routes = APIRouter()

    @routes.get("/login")
    async def login_form(request: Request, next: str = "/") -> Response:
        caller = ui.caller(request, login=False)
        return ui.page(request, caller, "login.html", next=_local(next), error="")

    @routes.post("/login")
    async def login(request: Request) -> Response:
        caller = ui.caller(request, login=False)
        fields = await ui.form(request, caller)
        target = _local((fields.get("next") or ["/"])[0])
        try:
            who = ui.guard.caller(f"Bearer {(fields.get('key') or [''])[0].strip()}")
        except Unauthenticated:
            return ui.page(
                request,
                caller,
                "login.html",
                status=401,
                next=target,
                error="That key is not valid here.",
            )
        response = RedirectResponse(target, status_code=303)
        session = ui.sessions.new(who.tenant.name, who.key_id)  # a new id: no fixation
        ui.sessions.write(response, request, session)
        return response

    @routes.post("/logout")
    async def logout(request: Request) -> Response:
        caller = ui.caller(request, login=False)
        await ui.form(request, caller)
        response = RedirectResponse("/login" if ui.guard.enabled else "/", status_code=303)
        ui.sessions.write(response, request, ui.sessions.new())
        return response

    return routes


def _local(target: str) -> str:
    """Only a path on this site: a login never sends the browser elsewhere."""
    path = unquote(target)
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


__all__ = ["HTTPException", "mount"]
