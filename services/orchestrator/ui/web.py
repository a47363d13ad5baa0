"""What every UI page shares: templates, the caller's session and tenant, CSP, forms.

Pages are rendered by Jinja2 with autoescaping on for every template, so a value from data
(a table named `<img src=x onerror=alert(1)>`, a comment holding `</script>`) is text. The only
markup a template inserts unescaped is the toolkit's charts: `<img>` tags whose SVG is base64
inside a data: URI and whose alt text the toolkit escapes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.orchestrator.auth import ApiGuard
from services.orchestrator.tenants import DEFAULT_TENANT, Tenant
from services.orchestrator.ui.read_model import ReadModel
from services.orchestrator.ui.sessions import Session, Sessions
from services.orchestrator.ui.toolkit import module

HERE = Path(__file__).parent
# No inline script or style anywhere: scripts and styles come from /static only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# A stored page: its own origin, no script, no requests; only its inline styles and charts.
PAGE_CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)
PAGE_SIZE = 50


class LoginRequired(Exception):
    """Raised by `Ui.caller` when keys are configured and the session has none."""


@dataclass(frozen=True)
class Caller:
    session: Session
    tenant: Tenant
    fresh: bool  # the session is new: its cookie goes out with the response


class Ui:
    def __init__(
        self,
        model: ReadModel,
        guard: ApiGuard,
        tenants: dict[str, Tenant],
        agents: list[str],
        sessions: Sessions | None = None,
    ) -> None:
        self.model = model
        self.guard = guard
        self.tenants = tenants
        self.agents = agents
        self.sessions = sessions or Sessions()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters.update(pid=prefix_id, when=when, usd=usd, q=quote_param)
        self.env.globals.update(sparkline=sparkline)

    def caller(self, request: Request, *, login: bool = True) -> Caller:
        """The session (new if none) and its tenant; LoginRequired when a key is needed."""
        session = self.sessions.read(request)
        fresh = session is None
        if session is None:
            session = self.sessions.new(DEFAULT_TENANT if not self.guard.enabled else "")
        tenant = self.tenants.get(session.tenant) if self.guard.enabled else None
        if self.guard.enabled and tenant is None and login:
            raise LoginRequired
        return Caller(session, tenant or Tenant(DEFAULT_TENANT), fresh)

    def page(
        self, request: Request, caller: Caller, template: str, status: int = 200, **values: Any
    ) -> Response:
        html = self.env.get_template(template).render(
            csrf=self.sessions.csrf(caller.session),
            signed_in=bool(caller.session.key_id),
            auth=self.guard.enabled,
            tenant=caller.tenant.name,
            **values,
        )
        return self.respond(request, caller, HTMLResponse(html, status))

    def respond(self, request: Request, caller: Caller, response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        if caller.fresh:
            self.sessions.write(response, request, caller.session)
        return response

    async def form(self, request: Request, caller: Caller) -> dict[str, list[str]]:
        """The POSTed form; raises CsrfRefused unless it carries this session's token."""
        body = (await request.body()).decode("utf-8", errors="replace")
        fields = parse_qs(body, keep_blank_values=True)
        token = (fields.get("csrf") or [""])[0]
        if caller.fresh or not self.sessions.csrf_ok(caller.session, token):
            raise CsrfRefused
        return fields


class CsrfRefused(Exception):
    """A POST without this session's CSRF token."""


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def prefix_id(prefix: str) -> str:
    return base64.urlsafe_b64encode(prefix.encode()).decode().rstrip("=")


def prefix_of(pid: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(pid + "=" * (-len(pid) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def when(value: str | datetime | None) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (value or "").replace("T", " ").replace("Z", " UTC")


def usd(value: float | None) -> str:
    return "—" if not value else f"${value:,.4f}"


def quote_param(value: str) -> str:
    return quote(value, safe="")


def sparkline(values: list[float | None], label: str) -> Markup:
    """The toolkit's chart: an <img> whose alt text it escapes and whose SVG is base64."""
    return Markup(module("charts").sparkline(values, label=label))  # noqa: S704
