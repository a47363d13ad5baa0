"""A local OTLP trace receiver that takes every export, in a process of its own as a collector
runs: the bench's client must not pay for receiving the spans it measures.

`python -m otlp_sink` (with bench/ on the path) serves TraceService and health on
127.0.0.1:$OTLP_SINK_PORT until SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    async def Export(self, request: object, context: object) -> object:
        return trace_service_pb2.ExportTraceServiceResponse()


async def serve(port: int) -> None:
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Sink(), server)  # type: ignore[no-untyped-call]
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(serve(int(os.environ["OTLP_SINK_PORT"])))
