"""The HTTP API: `POST /catalog` starts a catalog (202 and its id), `GET /catalog/{id}` shows it.

Validation errors are 422 with each field named, in FastAPI's own shape
(`{"detail": [{"loc": ["body", field], "msg": ...}]}`), whether pydantic or the domain found
them; the submitted values are never echoed back, since one of them holds a password.

Each call acts for the tenant of its API key: another tenant's catalog is 404 like an unknown
one, a prefix outside the tenant's is 403, an idempotency key reused with other inputs is 409.
A body over `max_request_bytes` is 413: at once when its Content-Length says so (nothing of it
is read), else as soon as the bytes read pass the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
)
from services.common.metrics import CONTENT_TYPE
from services.orchestrator.auth import ApiGuard, Caller
from services.orchestrator.catalog_models import StartRequest
from services.orchestrator.http_schedules import (
    SourceBody,
    WebhookBody,
    schedule_routes,
    sources,
    webhooks,
)
from services.orchestrator.schedule_ops import ScheduleOperations
from services.orchestrator.service import CatalogOperations

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024


class CatalogRequest(BaseModel):
    db_conn_string: SecretStr = Field(
        default=SecretStr(""),
        description="database URL (with `tables`: one source, `default`); never shown",
    )
    tables: list[str] = Field(default=[], description="`table` or `schema.table` names")
    sources: list[SourceBody] = Field(
        default=[], description="several databases, instead of db_conn_string and tables"
    )
    s3_prefix: str = Field(default="", description="`s3://bucket/path` or `file:///abs/path`")
    idempotency_key: str = Field(default="", description="a retry with it finds the same run")
    allow_writable: bool = False
    agents: list[str] = Field(
        default=[], description="agents to run (their dependencies are added); empty: the default"
    )
    max_cost_usd: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="USD the run may spend; 0: no limit"
    )
    webhooks: list[WebhookBody] = Field(default=[], description="told of the run's end")


def make_app(
    operations: CatalogOperations,
    guard: ApiGuard,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    metrics: Callable[[], Awaitable[bytes]] | None = None,
    schedules: ScheduleOperations | None = None,
) -> FastAPI:
    """The app; `metrics`, when given, answers `GET /metrics` (Prometheus text, no API key:
    it holds counts only, like /healthz)."""
    app = FastAPI(title="Catalog Agents", version="1")
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    as_caller = Depends(guard.http_caller())

    @app.post("/catalog", status_code=202)
    async def start_catalog(body: CatalogRequest, caller: Caller = as_caller) -> dict[str, str]:
        catalog_id = await operations.start(
            StartRequest(
                db_conn_string=body.db_conn_string.get_secret_value(),
                tables=body.tables,
                s3_prefix=body.s3_prefix,
                idempotency_key=body.idempotency_key,
                allow_writable=body.allow_writable,
                agents=body.agents,
                max_cost_usd=body.max_cost_usd,
                webhooks=webhooks(body.webhooks),
                sources=sources(body.sources),
            ),
            caller.tenant,
        )
        return {"catalog_id": catalog_id, "status_url": f"/catalog/{catalog_id}"}

    @app.get("/catalog/{catalog_id}")
    async def get_catalog(catalog_id: str, caller: Caller = as_caller) -> dict[str, Any]:
        view = asdict(await operations.get(catalog_id, caller.tenant))
        return {**view, "create_time": view["create_time"].isoformat(),
                "update_time": view["update_time"].isoformat()}  # fmt: skip

    if schedules is not None:
        app.include_router(schedule_routes(schedules, guard))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if metrics is not None:
        scrape = metrics

        @app.get("/metrics")
        async def prometheus_metrics() -> Response:
            return Response(await scrape(), media_type=CONTENT_TYPE)

    app.add_exception_handler(RequestValidationError, _validation_failed)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    return app


async def _validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    if isinstance(exc, InvalidArgument):
        detail = [
            {"loc": ["body", *_path(name)], "msg": why, "type": "value_error"}
            for name, why in exc.field_violations
        ] or [{"loc": ["body"], "msg": exc.message, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)
    return JSONResponse({"detail": exc.message}, status_code=_http_status(exc))


def _http_status(exc: ServiceError) -> int:
    kinds = ((NotFound, 404), (PermissionDenied, 403), (FailedPrecondition, 409))
    found = next((status for kind, status in kinds if isinstance(exc, kind)), None)
    return found or (503 if exc.status.name == "UNAVAILABLE" else 500)


class _TooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over the limit of {max_bytes} bytes")


class BodyLimit:
    """ASGI middleware refusing bodies over `max_bytes` with 413, before reading them when
    Content-Length tells, else once the bytes read pass the limit (the app's read raises)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if _content_length(scope) > self._max:
            too_large = _TooLarge(self._max)
            response = JSONResponse({"detail": too_large.detail}, 413, {"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._max:
                raise _TooLarge(self._max)
            return message

        await self._app(scope, limited, send)


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0  # a bad one: the server refuses it
    return 0


def _path(field_name: str) -> list[str | int]:
    """`tables[2]` -> ["tables", 2] and `schedule.webhooks[0].url` -> ["schedule", "webhooks",
    0, "url"], as pydantic writes locations."""
    path: list[str | int] = []
    for part in field_name.split("."):
        name, _, index = part.partition("[")
        path += [name, int(index.rstrip("]"))] if index else [name]
    return path
