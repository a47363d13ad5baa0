"""What telemetry costs: tracing on an execute round trip, and one scrape of each service's
metrics while the pool is busy.

- `trace.overhead_pct`: the median execute round trip of a trivial cell (`1 + 1`) through a
  sandbox manager with tracing on (the manager's server span, and here the runner's
  `execute_tool` span and client interceptor, exported over OTLP to a local collector in its
  own process, bench/otlp_sink.py) against the same with tracing off, interleaved call by call
  on two managers so drift hits both alike. Goal: at most 5%. The worst case: the kernel costs
  nothing, so the three spans' fixed cost (tens of microseconds each) is all the difference.
- `trace.query_cell.overhead_pct`: the same with a cell of the kind the agents run, one
  aggregate query over a 20,000-row table (about 10 ms in the kernel).
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
from typing import IO, TYPE_CHECKING, Any

from benchlib import Service, emit, free_port
from catalog.v1 import sandbox_pb2, sandbox_pb2_grpc
from cryptography.fernet import Fernet
from google.protobuf.duration_pb2 import Duration

from services.common.control_plane import ControlPlane
from services.common.telemetry import setup_tracing, shutdown_tracing, span

if TYPE_CHECKING:
    Stub = sandbox_pb2_grpc.SandboxManagerServiceAsyncStub

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 400
QUERY_ROUNDS = 150
WARM_UP = 20
# The worst case: a cell that costs the kernel nothing, so the round trip is all gRPC and spans.
TRIVIAL = "1 + 1"
# A cell of the kind the agents run, at their short end: one aggregate query over a small
# table (20,000 rows in SQLite, made once per lease), a few milliseconds in the kernel.
QUERY_SETUP = (
    "import sqlite3\n"
    "_bench_db = sqlite3.connect(':memory:')\n"
    "_bench_db.execute('CREATE TABLE orders (id INTEGER, status TEXT, amount REAL)')\n"
    "_bench_db.executemany('INSERT INTO orders VALUES (?, ?, ?)',"
    " ((i, ('new', 'paid', 'shipped', 'refunded')[i % 4], i * 0.37) for i in range(20000)))"
)
QUERY = (
    "_bench_db.execute('SELECT status, count(*), count(DISTINCT id), min(amount), max(amount),"
    " avg(amount) FROM orders GROUP BY status').fetchall()"
)
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


def sink_service(port: int, log: IO[bytes]) -> Service:
    """The local collector: an OTLP receiver in its own process (bench/otlp_sink.py)."""
    path = os.pathsep.join(filter(None, [str(REPO / "bench"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OTLP_SINK_PORT": str(port)}
    return Service("otlp_sink", env, port, log)


async def execute(stub: Stub, lease_id: str, code: str) -> None:
    async for _ in stub.Execute(sandbox_pb2.ExecuteRequest(lease_id=lease_id, code=code)):
        pass


async def lease(stub: Stub) -> str:
    request = sandbox_pb2.AcquireSandboxRequest(
        client_id="bench", wait_timeout=Duration(seconds=60)
    )
    reply = await stub.AcquireSandbox(request)
    return str(reply.lease.lease_id)


class Sides:
    """The two sides of the comparison: a lease on each manager, and a stub whose channel has
    the tracing interceptors (on) or not (off, built before tracing is on)."""

    def __init__(self, plain: Service, traced: Service) -> None:
        self.off_channel = ControlPlane().channel(plain.address)
        # the exporter reads the standard variables from the process environment, as in a service
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = traced.env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        setup_tracing("bench-telemetry", os.environ)
        self.on_channel = ControlPlane().channel(traced.address)
        self.off = sandbox_pb2_grpc.SandboxManagerServiceStub(self.off_channel)
        self.on = sandbox_pb2_grpc.SandboxManagerServiceStub(self.on_channel)
        self.leases = {"off": "", "on": ""}

    async def open(self) -> None:
        self.leases = {"off": await lease(self.off), "on": await lease(self.on)}
        for side, stub in (("off", self.off), ("on", self.on)):
            await execute(stub, self.leases[side], QUERY_SETUP)

    async def close(self) -> None:
        for side, stub in (("off", self.off), ("on", self.on)):
            await stub.ReleaseSandbox(sandbox_pb2.ReleaseSandboxRequest(lease_id=self.leases[side]))
        await self.off_channel.close()
        await self.on_channel.close()
        shutdown_tracing()  # the last spans go out while the collector still listens

    async def call(self, side: str, code: str) -> float:
        started = time.perf_counter()
        if side == "on":  # as the runner makes the call: inside its execute_tool span
            with span("execute_tool execute_python", {"gen_ai.tool.name": "execute_python"}):
                await execute(self.on, self.leases["on"], code)
        else:
            await execute(self.off, self.leases["off"], code)
        return time.perf_counter() - started


async def overhead_pct(sides: Sides, code: str, rounds: int, figure: str) -> float:
    """The on side's median round trip against the off side's, interleaved call by call."""
    samples: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(rounds + WARM_UP):
        for side in ("off", "on") if round_ % 2 else ("on", "off"):
            elapsed = await sides.call(side, code)
            if round_ >= WARM_UP:
                samples[side].append(elapsed)
    off_ms, on_ms = statistics.median(samples["off"]), statistics.median(samples["on"])
    emit(f"{figure}.execute_roundtrip_off_p50_ms", off_ms * 1000, "ms")
    emit(f"{figure}.execute_roundtrip_on_p50_ms", on_ms * 1000, "ms")
    return (on_ms - off_ms) / off_ms * 100


async def tracing_figures(plain: Service, traced: Service) -> None:
    sides = Sides(plain, traced)
    await sides.open()
    try:
        emit("trace.overhead_pct", await overhead_pct(sides, TRIVIAL, ROUNDS, "trace"), "pct")
        query = await overhead_pct(sides, QUERY, QUERY_ROUNDS, "trace.query_cell")
        emit("trace.query_cell.overhead_pct", query, "pct")
    finally:
        await sides.close()


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
    names = ("sink", "off", "off_m", "on", "on_m", "run", "run_m", "grpc", "http")
    ports = {name: free_port() for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as work:
        # closed with the process; each service logs to its own (benchlib.Service.tail)
        logs = {name: tempfile.TemporaryFile() for name in ("sink", "off", "on", "run", "orc")}  # noqa: SIM115
        sink = sink_service(ports["sink"], logs["sink"])
        endpoint = f"http://{sink.address}"
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
        services = [sink, plain, traced, runner, orchestrator]
        try:
            for service in services:
                await service.start()
            for service in services:
                await service.wait_serving()
            await tracing_figures(plain, traced)
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
            for service in reversed(services):  # the collector last: it takes their last spans
                await service.stop()


if __name__ == "__main__":
    asyncio.run(main())
