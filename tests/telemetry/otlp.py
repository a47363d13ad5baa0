"""A real OTLP trace receiver in the test process: the gRPC TraceService of opentelemetry-proto,
keeping every span the services export, with the service that sent it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    span: Span

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.span.attributes)


@dataclass
class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    endpoint: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = str(attributes(resource_spans.resource.attributes).get("service.name"))
            for scope in resource_spans.scope_spans:
                self.spans.extend(ReceivedSpan(service, s) for s in scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    async def wait_for(self, found: Callable[[list[ReceivedSpan]], bool], timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not found(self.spans):
            if asyncio.get_running_loop().time() > deadline:
                names = sorted({(s.service, s.name) for s in self.spans})
                raise TimeoutError(f"the spans did not arrive; got {names}")
            await asyncio.sleep(0.2)


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    receiver.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await server.stop(1)
