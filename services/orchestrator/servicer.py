"""catalog.v1.CatalogService: proto in, a CatalogOperations call, proto out.

Each call acts for the tenant of its API key (the guard's interceptor admitted it already)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from catalog.v1 import agent_pb2, catalog_pb2_grpc
from catalog.v1 import catalog_pb2 as pb
from google.protobuf import timestamp_pb2

from services.common.errors import InvalidArgument
from services.orchestrator.auth import ApiGuard
from services.orchestrator.service import CatalogOperations, CatalogView, StartRequest
from services.orchestrator.tenants import Tenant

_Context = grpc.aio.ServicerContext[Any, Any]


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, operations: CatalogOperations, guard: ApiGuard) -> None:
        self._ops = operations
        self._guard = guard

    def _tenant(self, context: _Context) -> Tenant:
        return self._guard.grpc_caller(context.invocation_metadata()).tenant

    async def StartCatalog(
        self, request: pb.StartCatalogRequest, context: _Context
    ) -> pb.StartCatalogResponse:
        catalog_id = await self._ops.start(
            StartRequest(
                db_conn_string=request.db_conn_string,
                tables=list(request.tables),
                s3_prefix=request.s3_prefix,
                idempotency_key=request.idempotency_key,
                allow_writable=request.allow_writable,
            ),
            self._tenant(context),
        )
        return pb.StartCatalogResponse(catalog_id=catalog_id)

    async def GetCatalog(
        self, request: pb.GetCatalogRequest, context: _Context
    ) -> pb.GetCatalogResponse:
        view = await self._ops.get(_id(request), self._tenant(context))
        return pb.GetCatalogResponse(catalog=to_proto(view))

    async def ListCatalogs(
        self, request: pb.ListCatalogsRequest, context: _Context
    ) -> pb.ListCatalogsResponse:
        if request.status not in pb.CatalogStatus.values():
            raise InvalidArgument(
                f"status {request.status} is not a CatalogStatus",
                field_violations=[("status", "use a CatalogStatus value, or leave it unset")],
            )
        status = pb.CatalogStatus.Name(request.status).removeprefix("CATALOG_STATUS_")
        views, token = await self._ops.list(
            self._tenant(context),
            request.page_size,
            request.page_token,
            "" if status == "UNSPECIFIED" else status,
        )
        return pb.ListCatalogsResponse(catalogs=[to_proto(v) for v in views], next_page_token=token)

    async def WatchCatalog(
        self, request: pb.WatchCatalogRequest, context: _Context
    ) -> AsyncIterator[pb.WatchCatalogResponse]:
        async for event in self._ops.watch(_id(request), self._tenant(context)):
            message = _watch_event(event)
            if message is not None:
                yield message

    async def CancelCatalog(
        self, request: pb.CancelCatalogRequest, context: _Context
    ) -> pb.CancelCatalogResponse:
        view = await self._ops.cancel(_id(request), self._tenant(context))
        return pb.CancelCatalogResponse(catalog=to_proto(view))


def _id(request: pb.GetCatalogRequest | pb.WatchCatalogRequest | pb.CancelCatalogRequest) -> str:
    if not request.catalog_id:
        raise InvalidArgument(
            "catalog_id is required", field_violations=[("catalog_id", "the id StartCatalog gave")]
        )
    return request.catalog_id


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _watch_event(event: dict[str, Any] | CatalogView) -> pb.WatchCatalogResponse | None:
    if isinstance(event, CatalogView):
        return pb.WatchCatalogResponse(final=to_proto(event))
    kind = event.get("kind")
    if kind == "step":
        changed = pb.StepChanged(step=_step(event["step"]), time=_timestamp(event["time"]))
        return pb.WatchCatalogResponse(step_changed=changed)
    if kind == "agent":
        progress = pb.AgentProgress(
            agent_name=event["agent_name"],
            turn=event["turn"],
            tool_name=event["tool_name"],
            usage=agent_pb2.Usage(**event["usage"]),
        )
        return pb.WatchCatalogResponse(agent_progress=progress)
    if kind == "output":
        return pb.WatchCatalogResponse(output_written=pb.OutputWritten(output=_output(event)))
    return None


def _step(name: str) -> pb.CatalogStep.ValueType:
    return pb.CatalogStep.Value(f"CATALOG_STEP_{name}")


def _output(output: dict[str, Any]) -> pb.OutputObject:
    return pb.OutputObject(
        agent_name=output["agent_name"],
        uri=output["uri"],
        complete=output["complete"],
        data_uri=output.get("data_uri", ""),
    )


def to_proto(view: CatalogView) -> pb.Catalog:
    catalog = pb.Catalog(
        catalog_id=view.catalog_id,
        status=pb.CatalogStatus.Value(f"CATALOG_STATUS_{view.status}"),
        current_step=_step(view.current_step),
        tables=view.tables,
        s3_prefix=view.s3_prefix,
        timestamp=view.timestamp,
        outputs=[_output(o) for o in view.outputs],
        agent_usage=[
            pb.AgentUsage(
                agent_name=u["agent_name"],
                usage=agent_pb2.Usage(**u["usage"]),
                stop_reason=agent_pb2.StopReason.Value(f"STOP_REASON_{u['stop_reason']}"),
                turns=u["turns"],
            )
            for u in view.agent_usage
        ],
        create_time=_timestamp(view.create_time.timestamp()),
        update_time=_timestamp(view.update_time.timestamp()),
    )
    if view.error:
        catalog.error.CopyFrom(
            pb.CatalogError(
                code=view.error["code"],
                message=view.error["message"],
                step=_step(view.error["step"]),
            )
        )
    return catalog
