"""catalog.v1.CatalogService: proto in, a CatalogOperations call, proto out (translate.py).

Each call acts for the tenant of its API key (the guard's interceptor admitted it already)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc

from services.orchestrator import translate
from services.orchestrator import translate_schedules as ts
from services.orchestrator.auth import ApiGuard
from services.orchestrator.schedule_ops import ScheduleOperations
from services.orchestrator.service import CatalogOperations
from services.orchestrator.tenants import Tenant
from services.orchestrator.watch_slots import WatchSlots

_Context = grpc.aio.ServicerContext[Any, Any]


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(
        self,
        operations: CatalogOperations,
        guard: ApiGuard,
        watches: WatchSlots,
        schedules: ScheduleOperations,
    ) -> None:
        self._ops = operations
        self._schedules = schedules
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
        views, token = await self._ops.list(
            tenant, request.page_size, request.page_token, status, request.schedule_id
        )
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

    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: _Context
    ) -> pb.CreateScheduleResponse:
        spec = ts.schedule_request(request.schedule)
        view = await self._schedules.create(spec, self._tenant(context))
        return pb.CreateScheduleResponse(schedule=ts.schedule(view))

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: _Context
    ) -> pb.GetScheduleResponse:
        view = await self._schedules.get(ts.schedule_id(request), self._tenant(context))
        return pb.GetScheduleResponse(schedule=ts.schedule(view))

    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: _Context
    ) -> pb.ListSchedulesResponse:
        tenant = self._tenant(context)
        views, token = await self._schedules.list(tenant, request.page_size, request.page_token)
        found = [ts.schedule(v) for v in views]
        return pb.ListSchedulesResponse(schedules=found, next_page_token=token)

    async def UpdateSchedule(
        self, request: pb.UpdateScheduleRequest, context: _Context
    ) -> pb.UpdateScheduleResponse:
        spec = ts.schedule_request(request.schedule)
        schedule_id = request.schedule.schedule_id
        view = await self._schedules.update(schedule_id, spec, self._tenant(context))
        return pb.UpdateScheduleResponse(schedule=ts.schedule(view))

    async def PauseSchedule(
        self, request: pb.PauseScheduleRequest, context: _Context
    ) -> pb.PauseScheduleResponse:
        view = await self._schedules.pause(ts.schedule_id(request), self._tenant(context))
        return pb.PauseScheduleResponse(schedule=ts.schedule(view))

    async def ResumeSchedule(
        self, request: pb.ResumeScheduleRequest, context: _Context
    ) -> pb.ResumeScheduleResponse:
        view = await self._schedules.resume(ts.schedule_id(request), self._tenant(context))
        return pb.ResumeScheduleResponse(schedule=ts.schedule(view))

    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: _Context
    ) -> pb.DeleteScheduleResponse:
        await self._schedules.delete(ts.schedule_id(request), self._tenant(context))
        return pb.DeleteScheduleResponse()

    async def TriggerSchedule(
        self, request: pb.TriggerScheduleRequest, context: _Context
    ) -> pb.TriggerScheduleResponse:
        outcome = await self._schedules.trigger(ts.schedule_id(request), self._tenant(context))
        return pb.TriggerScheduleResponse(catalog_id=outcome.catalog_id)
