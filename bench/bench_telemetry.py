"""What telemetry costs: tracing on an execute round trip, and one scrape of each service's
metrics while the pool is busy.

- `trace.overhead_pct`: the median execute round trip through a sandbox manager with tracing
  on (the manager's server span, and here the runner's `execute_tool` span and client
  interceptor, exported over OTLP to a local receiver) against the same with tracing off,
  interleaved call by call on two managers so drift hits both alike. Goal: at most 5%.
- `metrics.scrape_ms`: one scrape of `/metrics`, the slowest of the three services' medians,
  with 8 leases busy running cells. Goal: under 20 ms. Each service's median is printed too.

The managers use the process backend with a light kernel (no heavy preloads): what is measured
is the gRPC and telemetry path, not the sandbox's start.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchlib import Service, emit, free_port
from catalog.v1 import sandbox_pb2, sandbox_pb2_grpc
from cryptography.fernet import Fernet
from google.protobuf.duration_pb2 import Duration

from services.common.control_plane import ControlPlane
from services.common.telemetry import setup_tracing, span

if TYPE_CHECKING:
    Stub = sandbox_pb2_grpc.SandboxManagerServiceAsyncStub

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 400
SCRAPES = 30
BUSY_LEASES = 8


def manager_env(port: int, metrics_port: int, traced_to: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {
        "CATALOG_SANDBOX_MANAGER_ID": f"bench-telemetry-{port}",
        "CATALOG_SANDBOX_HOST": "127.0.0.1",
        "CATALOG_SANDBOX_PORT": str(port),
        "CATALOG_SANDBOX_METRICS_PORT": str(metrics_port),
        "CATALOG_SANDBOX_BACKEND": "process",
        "CATALOG_SANDBOX_MIN_WARM": "1",
        "CATALOG_SANDBOX_MAX_SIZE": str(BUSY_LEASES),
        "CATALOG_KERNEL_PRELOAD": "json",
    }
    if traced_to:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = traced_to
    return env


async def otlp_sink() -> tuple[object, str]:
    """A local OTLP receiver that takes every export (the collector's part)."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    class Sink(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(self, request: object, context: object) -> object:
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Sink(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"http://127.0.0.1:{port}"


async def execute(stub: Stub, lease_id: str) -> None:
    request = sandbox_pb2.ExecuteRequest(lease_id=lease_id, code="1 + 1")
    async for _ in stub.Execute(request):
        pass


async def lease(stub: Stub) -> str:
    request = sandbox_pb2.AcquireSandboxRequest(
        client_id="bench", wait_timeout=Duration(seconds=60)
    )
    reply = await stub.AcquireSandbox(request)
    return str(reply.lease.lease_id)


async def overhead_pct(plain: Service, traced: Service) -> float:
    # The traced side's client: a channel with the tracing interceptors, each call in a span
    # as the runner makes it; the plain side's: a channel without (built before tracing is on).
    off_channel = ControlPlane().channel(plain.address)
    # the exporter reads the standard variables from the process environment, as in a service
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = traced.env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    setup_tracing("bench-telemetry", os.environ)
    on_channel = ControlPlane().channel(traced.address)
    off = sandbox_pb2_grpc.SandboxManagerServiceStub(off_channel)
    on = sandbox_pb2_grpc.SandboxManagerServiceStub(on_channel)
    off_lease, on_lease = await lease(off), await lease(on)
    samples: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(ROUNDS + 20):
        for side in ("off", "on") if round_ % 2 else ("on", "off"):
            started = time.perf_counter()
            if side == "on":
                with span("execute_tool execute_python", {"gen_ai.tool.name": "execute_python"}):
                    await execute(on, on_lease)
            else:
                await execute(off, off_lease)
            if round_ >= 20:  # warm-up rounds are not counted
                samples[side].append(time.perf_counter() - started)
    await off.ReleaseSandbox(sandbox_pb2.ReleaseSandboxRequest(lease_id=off_lease))
    await on.ReleaseSandbox(sandbox_pb2.ReleaseSandboxRequest(lease_id=on_lease))
    await off_channel.close()
    await on_channel.close()
    off_ms, on_ms = statistics.median(samples["off"]), statistics.median(samples["on"])
    emit("trace.execute_roundtrip_off_p50_ms", off_ms * 1000, "ms")
    emit("trace.execute_roundtrip_on_p50_ms", on_ms * 1000, "ms")
    return (on_ms - off_ms) / off_ms * 100


def scrape_ms(url: str) -> float:
    samples = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            response.read()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def busy(stub: Stub) -> list[asyncio.Task[None]]:
    """8 leases, each running a cell that sleeps through the scrapes."""
    leases = [await lease(stub) for _ in range(BUSY_LEASES)]
    code = "import time; time.sleep(30)"
    return [
        asyncio.create_task(
            _drain(stub.Execute(sandbox_pb2.ExecuteRequest(lease_id=lease_id, code=code)))
        )
        for lease_id in leases
    ]


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def main() -> None:
    sink, endpoint = await otlp_sink()
    ports = {
        name: free_port() for name in ("off", "off_m", "on", "on_m", "run", "run_m", "grpc", "http")
    }
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as work:
        # closed with the process; each service logs to its own (benchlib.Service.tail)
        logs = {name: tempfile.TemporaryFile() for name in ("off", "on", "run", "orc")}  # noqa: SIM115
        plain = Service(
            "services.sandbox_manager",
            manager_env(ports["off"], ports["off_m"]),
            ports["off"],
            logs["off"],
        )
        traced = Service(
            "services.sandbox_manager",
            manager_env(ports["on"], ports["on_m"], endpoint),
            ports["on"],
            logs["on"],
        )
        runner = Service(
            "services.agent_runner",
            {
                **os.environ,
                "CATALOG_AGENT_PORT": str(ports["run"]),
                "CATALOG_AGENT_METRICS_PORT": str(ports["run_m"]),
                "CATALOG_SANDBOX_MANAGERS": plain.address,
                "ANTHROPIC_API_KEY": "",
                "CATALOG_PRICES_FILE": str(REPO / "deploy" / "prices.yaml"),
            },
            ports["run"],
            logs["run"],
        )
        orchestrator = Service(
            "services.orchestrator",
            {
                **os.environ,
                "CATALOG_ORCHESTRATOR_HOST": "127.0.0.1",
                "CATALOG_ORCHESTRATOR_GRPC_PORT": str(ports["grpc"]),
                "CATALOG_ORCHESTRATOR_HTTP_PORT": str(ports["http"]),
                "CATALOG_SECRET_KEY": Fernet.generate_key().decode(),
                "DBOS_SYSTEM_DATABASE_URL": f"sqlite:///{work}/dbos.sqlite",
                "CATALOG_SANDBOX_MANAGERS": plain.address,
                "CATALOG_AGENT_RUNNER": runner.address,
                "CATALOG_PROMPTS_DIR": str(REPO / "prompts"),
            },
            ports["grpc"],
            logs["orc"],
        )
        services = [plain, traced, runner, orchestrator]
        try:
            for service in services:
                await service.start()
            for service in services:
                await service.wait_serving()
            emit("trace.overhead_pct", await overhead_pct(plain, traced), "pct")
            tasks = await busy(
                sandbox_pb2_grpc.SandboxManagerServiceStub(ControlPlane().channel(plain.address))
            )
            await asyncio.sleep(1)
            urls = {
                "orchestrator": f"http://127.0.0.1:{ports['http']}/metrics",
                "manager": f"http://127.0.0.1:{ports['off_m']}/metrics",
                "runner": f"http://127.0.0.1:{ports['run_m']}/metrics",
            }
            medians = {name: await asyncio.to_thread(scrape_ms, url) for name, url in urls.items()}
            for name, value in medians.items():
                emit(f"metrics.scrape_ms.{name}", value, "ms")
            emit("metrics.scrape_ms", max(medians.values()), "ms")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for service in services:
                await service.stop()
            await sink.stop(1)  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main())
