"""The grpc.aio server every service runs: error mapping, health, reflection, shutdown.

`build_server` makes a server with the service's `ControlPlane` (TLS, the service-token check)
or the caller's own guard (the orchestrator's API keys), then `ErrorInterceptor`, the standard
health service and server reflection; `serve_until_stopped`
runs it until SIGTERM/SIGINT and stops it gracefully.
grpcio-health-checking, grpcio-reflection and grpcio-status are used here only.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn, TypeAlias, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from services.common.control_plane import ControlPlane
from services.common.errors import ServiceError
from services.common.logging import log_fields
from services.common.telemetry import server_interceptors as tracing_interceptors

_log = logging.getLogger(__name__)

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

INTERNAL_MESSAGE = "internal error; see the server log"
_MiB = 1024 * 1024


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns a raised `ServiceError` into the call's status, anything else into INTERNAL.

    Wraps the async unary-unary and unary-stream handlers; other handlers pass as they are.
    Cancellation (a BaseException) and `context.abort` (AbortError) pass through untouched.
    """

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        unary, stream = handler.unary_unary, handler.unary_stream
        if unary is not None and inspect.iscoroutinefunction(unary):
            wrapped = grpc.unary_unary_rpc_method_handler
            behavior: Callable[..., Any] = _guard_call(unary, method)
        elif stream is not None and inspect.isasyncgenfunction(stream):
            wrapped, behavior = grpc.unary_stream_rpc_method_handler, _guard_stream(stream, method)
        elif stream is not None and inspect.iscoroutinefunction(stream):
            # a streaming handler that writes with context.write and returns None
            wrapped, behavior = grpc.unary_stream_rpc_method_handler, _guard_call(stream, method)
        else:
            return handler
        return wrapped(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _guard_call(behavior: Callable[..., Any], method: str) -> Callable[..., Awaitable[Any]]:
    async def guarded(request: Any, context: _Context) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_with(context, method, exc)

    return guarded


def _guard_stream(behavior: Callable[..., Any], method: str) -> Callable[..., AsyncIterator[Any]]:
    async def guarded(request: Any, context: _Context) -> AsyncIterator[Any]:
        try:
            # aclosing: on cancellation the handler's own cleanup runs now, not at GC
            async with contextlib.aclosing(behavior(request, context)) as responses:
                async for response in responses:
                    yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_with(context, method, exc)

    return guarded


async def _abort_with(context: _Context, method: str, exc: Exception) -> NoReturn:
    if isinstance(exc, ServiceError):
        status = _rich_status(exc)
        await context.abort(status.code, status.details, status.trailing_metadata)
    # the client learns nothing of an unexpected error; the log gets the traceback
    log_fields(_log, logging.ERROR, "unhandled error in handler", exc_info=exc, method=method)
    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


def _rich_status(error: ServiceError) -> grpc.Status:
    """The error as a google.rpc.Status, with a BadRequest detail for its field violations."""
    status = status_pb2.Status(code=error.status.value[0], message=error.message)
    if error.field_violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=text)
                for field, text in error.field_violations
            ]
        )
        status.details.add().Pack(bad_request)
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


@dataclass(frozen=True)
class ServiceRegistration:
    """One service to serve: its full name (e.g. "catalog.v1.SandboxManagerService") and
    the function that adds its servicer to a server."""

    name: str
    add_to_server: Callable[[grpc.aio.Server], None]


class RunningServer(NamedTuple):
    """A built (not yet started) server, its health servicer and the port it is bound to."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int


def _server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        # A second server on a taken port must fail, not silently share it with the first.
        ("grpc.so_reuseport", 0),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # ping idle clients so dead connections (and their leases' streams) go away
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # accept client keepalive pings as often as every 10 s instead of closing on them
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


async def build_server(
    port: int,
    services: Sequence[ServiceRegistration],
    plane: ControlPlane | None = None,
    *,
    host: str = "0.0.0.0",  # noqa: S104 (each service passes its configured host)
    max_message_bytes: int = 16 * _MiB,
    interceptors: Sequence[grpc.aio.ServerInterceptor] | None = None,
) -> RunningServer:
    """Make a server with `services`, health (all SERVING) and reflection, bound to host:port.

    Port 0 picks a free port; the result carries the bound one. The server is not started.
    With `plane` the port serves TLS only when the plane has a certificate, and admits only
    calls with the service token when it has one; without, it serves plaintext to anyone.
    `interceptors`, when given, replace the token check (the orchestrator's public API admits
    API keys instead). They run first, in order, before `ErrorInterceptor`: one that rejects a
    call returns a handler that aborts with its own status, so the call never reaches
    `ErrorInterceptor` or the servicer; the handler of an admitted call is the error-mapped one.
    With tracing on (services/common/telemetry.py) an admitted call is a span continuing the
    caller's trace.
    """
    plane = plane or ControlPlane()
    if interceptors is None:
        interceptors = plane.server_interceptors()
    credentials = plane.server_credentials()
    # Tracing sits inside the admission check (a rejected call is no span) and outside the
    # error mapping, so its span sees the status a call really ends with.
    server = grpc.aio.server(
        interceptors=[*interceptors, *tracing_interceptors(), ErrorInterceptor()],
        options=_server_options(max_message_bytes),
    )
    for service in services:
        service.add_to_server(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *(service.name for service in services)]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*(service.name for service in services), health.SERVICE_NAME, reflection.SERVICE_NAME],
        server,
    )
    try:
        address = f"{host}:{port}"
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        bound = 0
        cause: BaseException | None = exc
    else:
        cause = None
    if bound == 0:  # older grpcio reports a failed bind with 0 instead of raising
        raise OSError(
            f"cannot listen on {host}:{port}: the port is taken or the address is not local; "
            "choose another port"
        ) from cause
    return RunningServer(server, health_servicer, bound)


async def serve_until_stopped(
    server: grpc.aio.Server,
    health_servicer: health.aio.HealthServicer,
    *,
    grace_s: float,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM, SIGINT or `stop` is set, then shut down gracefully.

    Shutdown: every health status turns NOT_SERVING, in-flight calls get `grace_s` seconds
    to finish, then `on_stop` runs (e.g. to destroy the pool's containers).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()  # a no-op when already started
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    log_fields(_log, logging.INFO, "stopping", grace_s=grace_s)
    await health_servicer.enter_graceful_shutdown()
    try:
        await server.stop(grace_s)
    finally:
        if on_stop is not None:
            await on_stop()
