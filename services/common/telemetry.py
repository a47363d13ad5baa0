"""Tracing for every service: the one module that sets up OpenTelemetry.

Export is configured only by the standard `OTEL_*` variables, read by the SDK itself:
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or
`OTEL_TRACES_EXPORTER` turn tracing on; `OTEL_EXPORTER_OTLP_PROTOCOL` picks gRPC (the default)
or `http/protobuf`; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and
`OTEL_BSP_*` work as the SDK documents them; `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none` turn it off. With none of them set no tracer provider is installed:
the API's no-op tracer answers, and the gRPC interceptors are not even added, so tracing costs
nothing measurable.

A trace follows a catalog across the three services: the official gRPC interceptors
(`opentelemetry-instrumentation-grpc`) on every server and client carry the context, DBOS makes
the workflow and its steps spans (`enable_otlp`), and the runner adds the GenAI spans
(`invoke_agent`, `chat`, `execute_tool`). Spans carry names, counts and durations only: never
code, data, prompts, connection strings or keys.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import trace

from services.common.env import SettingsError
from services.common.logging import log_fields

_log = logging.getLogger(__name__)
_ON_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
)
TRACER_NAME = "catalog_agents"
# Probes and tooling, not work: a health check every few seconds would be a trace of its own.
_UNTRACED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in _ON_VARS)


def tracing_enabled() -> bool:
    """Whether a tracer provider is installed (by `setup_tracing`, or by the embedding app)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def setup_tracing(service_name: str, env: Mapping[str, str]) -> bool:
    """Install a tracer provider exporting as the `OTEL_*` variables say; False when they ask
    for nothing (then nothing is installed). `service_name` unless OTEL_SERVICE_NAME is set.
    `env` decides whether and how; the SDK's exporter reads its own settings (endpoint,
    headers) from the process environment, so pass `os.environ`."""
    if not tracing_requested(env) or tracing_enabled():
        return tracing_enabled()
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    trace.set_tracer_provider(provider)
    log_fields(
        _log,
        logging.INFO,
        "tracing on",
        service=provider.resource.attributes.get(SERVICE_NAME, service_name),
        exporter=_exporter_name(env),
    )
    return True


def _exporter_name(env: Mapping[str, str]) -> str:
    return env.get("OTEL_TRACES_EXPORTER", "").strip().lower().split(",")[0] or "otlp"


def _protocol(env: Mapping[str, str]) -> str:
    return (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or ""
    ).strip() or "grpc"


def _exporter(env: Mapping[str, str]) -> Any:
    """The exporter OTEL_TRACES_EXPORTER names; each reads its own OTEL_EXPORTER_* settings."""
    name = _exporter_name(env)
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise SettingsError(f"OTEL_TRACES_EXPORTER={name!r}: use otlp, console or none")
    if _protocol(env) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def shutdown_tracing() -> None:
    """Send the spans still buffered (at a service's stop)."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The gRPC server interceptor that continues the caller's trace; none with tracing off."""
    if not tracing_enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(filter_=_traced)  # type: ignore[no-untyped-call]
    return [interceptor]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """The gRPC client interceptors that pass the trace on; none with tracing off."""
    if not tracing_enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors(filter_=_traced)  # type: ignore[no-untyped-call]
    return interceptors


def _traced(details: grpc.HandlerCallDetails | grpc.aio.ClientCallDetails) -> bool:
    """The interceptors' filter: every call but health checks and reflection."""
    method = details.method
    if isinstance(method, bytes):  # grpc.aio may pass the client's method as bytes
        method = method.decode()
    return not method.startswith(_UNTRACED_PREFIXES)


def tracer() -> trace.Tracer:
    return _tracer_of(trace.get_tracer_provider())


# One tracer per provider: the SDK's get_tracer builds a new Tracer and re-adds a warnings
# filter on every call, tens of microseconds on each span of an execute round trip.
@functools.cache
def _tracer_of(provider: trace.TracerProvider) -> trace.Tracer:
    return provider.get_tracer(TRACER_NAME)


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
) -> Iterator[trace.Span]:
    """A span under the current one. Callers pass only names, counts and durations."""
    with tracer().start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current
