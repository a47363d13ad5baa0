"""catalog.v1.CatalogService: proto in, a CatalogOperations call, proto out (translate.py).

Each call acts for the tenant of its API key (the guard's interceptor admitted it already)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc

from services.orchestrator import translate
from services.orchestrator.auth import ApiGuard
from services.orchestrator.service import CatalogOperations
from services.orchestrator.tenants import Tenant
from services.orchestrator.watch_slots import WatchSlots

_Context = grpc.aio.ServicerContext[Any, Any]


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, operations: CatalogOperations, guard: ApiGuard, watches: WatchSlots) -> None:
        self._ops = operations
        self._guard = guard
        self._watches = watches

    def _tenant(self, context: _Context) -> Tenant:
        return self._guard.grpc_caller(context.invocation_metadata()).tenant

    async def StartCatalog(
        self, request: pb.StartCatalogRequest, context: _Context
    ) -> pb.StartCatalogResponse:
        start = translate.start_request(request)
        catalog_id = await self._ops.start(start, self._tenant(context))
        return pb.StartCatalogResponse(catalog_id=catalog_id)

    async def GetCatalog(
        self, request: pb.GetCatalogRequest, context: _Context
    ) -> pb.GetCatalogResponse:
        view = await self._ops.get(translate.catalog_id(request), self._tenant(context))
        return pb.GetCatalogResponse(catalog=translate.catalog(view))

    async def ListCatalogs(
        self, request: pb.ListCatalogsRequest, context: _Context
    ) -> pb.ListCatalogsResponse:
        status = translate.status_filter(request.status)
        tenant = self._tenant(context)
        views, token = await self._ops.list(tenant, request.page_size, request.page_token, status)
        catalogs = [translate.catalog(v) for v in views]
        return pb.ListCatalogsResponse(catalogs=catalogs, next_page_token=token)

    async def WatchCatalog(
        self, request: pb.WatchCatalogRequest, context: _Context
    ) -> AsyncIterator[pb.WatchCatalogResponse]:
        caller = self._guard.grpc_caller(context.invocation_metadata())
        with self._watches.hold(caller.key_id):
            async for event in self._ops.watch(translate.catalog_id(request), caller.tenant):
                message = translate.watch_event(event)
                if message is not None:
                    yield message

    async def CancelCatalog(
        self, request: pb.CancelCatalogRequest, context: _Context
    ) -> pb.CancelCatalogResponse:
        view = await self._ops.cancel(translate.catalog_id(request), self._tenant(context))
        return pb.CancelCatalogResponse(catalog=translate.catalog(view))
