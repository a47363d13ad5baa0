"""The HTTP API: `POST /catalog` starts a catalog (202 and its id), `GET /catalog/{id}` shows it.

Validation errors are 422 with each field named, in FastAPI's own shape
(`{"detail": [{"loc": ["body", field], "msg": ...}]}`), whether pydantic or the domain found
them; the submitted values are never echoed back, since one of them holds a password.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SecretStr

from services.common.errors import InvalidArgument, NotFound, ServiceError
from services.orchestrator.auth import ApiGuard
from services.orchestrator.service import CatalogOperations, StartRequest


class CatalogRequest(BaseModel):
    db_conn_string: SecretStr = Field(description="database URL; its password is never shown")
    tables: list[str] = Field(min_length=1, description="`table` or `schema.table` names")
    s3_prefix: str = Field(description="`s3://bucket/path` or `file:///abs/path`")
    idempotency_key: str = Field(default="", description="a retry with it finds the same run")
    allow_writable: bool = False


def make_app(operations: CatalogOperations, guard: ApiGuard) -> FastAPI:
    app = FastAPI(title="Catalog Agents", version="1")
    authorized = [Depends(guard.http_dependency())]

    @app.post("/catalog", status_code=202, dependencies=authorized)
    async def start_catalog(body: CatalogRequest) -> dict[str, str]:
        catalog_id = await operations.start(
            StartRequest(
                db_conn_string=body.db_conn_string.get_secret_value(),
                tables=body.tables,
                s3_prefix=body.s3_prefix,
                idempotency_key=body.idempotency_key,
                allow_writable=body.allow_writable,
            )
        )
        return {"catalog_id": catalog_id, "status_url": f"/catalog/{catalog_id}"}

    @app.get("/catalog/{catalog_id}", dependencies=authorized)
    async def get_catalog(catalog_id: str) -> dict[str, Any]:
        view = asdict(await operations.get(catalog_id))
        return {**view, "create_time": view["create_time"].isoformat(),
                "update_time": view["update_time"].isoformat()}  # fmt: skip

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

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
    status = 404 if isinstance(exc, NotFound) else 503 if exc.status.name == "UNAVAILABLE" else 500
    return JSONResponse({"detail": exc.message}, status_code=status)


def _path(field_name: str) -> list[str | int]:
    """`tables[2]` -> ["tables", 2], as pydantic writes locations."""
    name, _, index = field_name.partition("[")
    return [name, int(index.rstrip("]"))] if index else [name]
