"""Sandbox manager benchmark: leases, cells and resets over gRPC, against a cold container.

Starts a real manager (`python -m services.sandbox_manager`) on a free port: the Docker backend,
network mode "none", its own manager id, a pool of 8 warm sandboxes at most 8, default limits.
Every figure goes through the manager's gRPC API (grpc.aio), as an agent would see it:
- sandbox.acquire_warm_p50_ms (and _p95_ms): AcquireSandbox under load, on its own manager with a
  pool of 4 (LOAD_POOL_SIZE): 8 catalogs in a row, each acquiring as soon as the one before
  released, holding its lease for CATALOG_HOLD_S of cells and a reset (a catalog by the offline
  agent holds it for seconds), then releasing; three such runs. A released sandbox is destroyed,
  so this is the warm pool refilling in the background while leases come and go;
- sandbox.execute_roundtrip_p50_ms (and _p99_ms): Execute of `pass` on a held lease, from the call
  to the end of its stream;
- sandbox.reset_p50_ms: ResetSandbox round trip, with 100 ms idle before each reset: the kernel
  forks its standby worker while it is idle, as it is between two agents;
- sandbox.concurrent16_seconds: 16 clients at once each acquire (waiting up to 120 s, since the
  pool holds 8), run 20 cells and release; wall-clock seconds for all 16. Every cell must succeed;
- peer.docker_run_cold_ms: the peer a warm lease replaces, a cold `docker run --rm -i` of the same
  image with the same hardening until its kernel says hello (its imports are loaded);
- sandbox.acquire_speedup_x: the cold run over the warm acquire.

Then the same under gVisor (CATALOG_SANDBOX_RUNTIME=runsc), when dockerd has runsc registered
(scripts/ensure_docker.sh does it; otherwise a note on stderr and no runsc figures), with a pool of
RUNSC_POOL_SIZE: sandbox.runsc.acquire_warm_p50_ms, sandbox.runsc.execute_roundtrip_p50_ms (and
_p99_ms), sandbox.runsc.reset_p50_ms, and sandbox.runsc.cold_start_ms, a cold `docker run
--runtime runsc` until the kernel says hello. The 16-client run is for runc only.

At the end the manager is stopped with SIGTERM, and the benchmark fails if any container with its
label is left. Prints one JSON object a line: {"name", "value", "unit"}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchlib import Service, emit, free_port
from catalog.v1 import sandbox_pb2, sandbox_pb2_grpc
from google.protobuf.duration_pb2 import Duration

from services.common.control_plane import ControlPlane
from services.sandbox_manager.backend import MANAGER_LABEL
from services.sandbox_manager.hardening import ContainerLimits, docker_run_argv
from services.sandbox_manager.kernel_client import KernelClient

IMAGE = os.environ.get("CATALOG_SANDBOX_IMAGE", "catalog-agents/sandbox:latest")
POOL_SIZE = 8
RUNSC_POOL_SIZE = 4  # gVisor sandboxes cost more memory; the warm handoff does not need 8
LOAD_POOL_SIZE = 4
CATALOGS_IN_A_ROW = 8
LOAD_RUNS = 3
CATALOG_HOLD_S = 1.0
EXEC_ROUNDS = 300
RESET_ROUNDS = 30
RESET_IDLE_S = 0.1
CLIENTS = 16
CELLS_PER_CLIENT = 20
CELL = "x = sum(range(1000)); x"
CELL_RESULT = "499500"
PEER_ROUNDS = 5
PEER_LABEL = "catalog-agents.bench"
OK = sandbox_pb2.EXECUTION_STATUS_OK

if TYPE_CHECKING:
    Stub = sandbox_pb2_grpc.SandboxManagerServiceAsyncStub


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def labelled_containers(label: str, value: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}={value}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def remove_containers(ids: list[str]) -> None:
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def seconds(value: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(round(value * 1e9))
    return duration


async def timed_ms(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


# The services measured require a service token, as deployed ones do.
PLANE = ControlPlane(service_token=secrets.token_urlsafe(24))


# --- the peer: a cold container -------------------------------------------------------------
async def docker_run_cold_ms(run_id: str, runtime: str) -> float:
    samples = []
    for round_ in range(PEER_ROUNDS):
        argv = docker_run_argv(
            IMAGE,
            f"bench-sandbox-peer-{run_id}-{runtime}-{round_}",
            ContainerLimits(network_mode="none", runtime=runtime),
            {PEER_LABEL: run_id},
        )
        started = time.perf_counter()
        client = await KernelClient.spawn(argv)
        samples.append((time.perf_counter() - started) * 1000)
        await client.close()
    return statistics.median(samples)


# --- the manager ----------------------------------------------------------------------------
def registered_runtimes() -> set[str]:
    info = subprocess.run(
        ["docker", "info", "--format", "{{json .Runtimes}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(info.stdout))


def manager_env(port: int, manager_id: str, runtime: str, pool_size: int) -> dict[str, str]:
    return {
        **os.environ,
        "CATALOG_SANDBOX_MANAGER_ID": manager_id,
        "CATALOG_SANDBOX_HOST": "127.0.0.1",
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "CATALOG_SANDBOX_PORT": str(port),
        "CATALOG_SANDBOX_METRICS_PORT": "0",
        "CATALOG_SANDBOX_BACKEND": "docker",
        "CATALOG_SANDBOX_IMAGE": IMAGE,
        "CATALOG_SANDBOX_NETWORK": "none",
        "CATALOG_SANDBOX_RUNTIME": runtime,
        "CATALOG_SANDBOX_MIN_WARM": str(pool_size),
        "CATALOG_SANDBOX_MAX_SIZE": str(pool_size),
    }


async def wait_all_warm(stub: Stub, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        pool = (await stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest())).pool
        if pool.warm >= pool.max_size:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the pool did not become warm in {timeout_s} s: {pool}")
        await asyncio.sleep(0.01)


async def acquire(stub: Stub, wait_s: float = 0) -> str:
    reply = await stub.AcquireSandbox(
        sandbox_pb2.AcquireSandboxRequest(wait_timeout=seconds(wait_s), client_id="bench-sandbox")
    )
    return reply.lease.lease_id


async def execute(stub: Stub, lease_id: str, code: str) -> tuple[int, str]:
    """Run one cell; return its finished status and the text of its result."""
    status, result = sandbox_pb2.EXECUTION_STATUS_UNSPECIFIED, ""
    async for event in stub.Execute(sandbox_pb2.ExecuteRequest(lease_id=lease_id, code=code)):
        kind = event.WhichOneof("event")
        if kind == "result":
            result = event.result.text_plain
        elif kind == "error":
            result = f"{event.error.ename}: {event.error.evalue}"
        elif kind == "finished":
            status = event.finished.status
    return status, result


async def release(stub: Stub, lease_id: str) -> None:
    await stub.ReleaseSandbox(sandbox_pb2.ReleaseSandboxRequest(lease_id=lease_id))


async def acquire_in_a_row_ms(stub: Stub) -> list[float]:
    """Catalogs back to back on a warm pool that destroys every released sandbox."""
    samples = []
    for _ in range(LOAD_RUNS):
        await wait_all_warm(stub)
        for _ in range(CATALOGS_IN_A_ROW):
            started = time.perf_counter()
            lease_id = await acquire(stub, wait_s=120)
            samples.append((time.perf_counter() - started) * 1000)
            await hold_like_a_catalog(stub, lease_id)
            await release(stub, lease_id)
    return samples


async def hold_like_a_catalog(stub: Stub, lease_id: str) -> None:
    """Cells for CATALOG_HOLD_S, with a reset half way, as between a catalog and its summary."""
    until = time.monotonic() + CATALOG_HOLD_S
    reset_at = time.monotonic() + CATALOG_HOLD_S / 2
    while time.monotonic() < until:
        status, result = await execute(stub, lease_id, CELL)
        if (status, result) != (OK, CELL_RESULT):
            raise RuntimeError(f"a cell failed under load: {status} {result}")
        if reset_at and time.monotonic() >= reset_at:
            await stub.ResetSandbox(sandbox_pb2.ResetSandboxRequest(lease_id=lease_id))
            reset_at = 0
        await asyncio.sleep(0.05)


async def execute_and_reset_ms(stub: Stub) -> tuple[list[float], list[float]]:
    lease_id = await acquire(stub, wait_s=120)
    try:

        async def run_pass() -> None:
            status, result = await execute(stub, lease_id, "pass")
            if status != OK:
                raise RuntimeError(f"`pass` finished with status {status}: {result}")

        for _ in range(20):  # warm up
            await run_pass()
        exec_ms = [await timed_ms(run_pass) for _ in range(EXEC_ROUNDS)]
        request = sandbox_pb2.ResetSandboxRequest(lease_id=lease_id)
        reset_ms = []
        for _ in range(RESET_ROUNDS):
            await asyncio.sleep(RESET_IDLE_S)
            reset_ms.append(await timed_ms(lambda: stub.ResetSandbox(request)))
    finally:
        await release(stub, lease_id)
    return exec_ms, reset_ms


async def concurrent_seconds(stub: Stub) -> float:
    async def client() -> list[tuple[int, str]]:
        lease_id = await acquire(stub, wait_s=120)
        try:
            return [await execute(stub, lease_id, CELL) for _ in range(CELLS_PER_CLIENT)]
        finally:
            await release(stub, lease_id)

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    failed = [o for cells in outcomes for o in cells if o != (OK, CELL_RESULT)]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {CLIENTS * CELLS_PER_CLIENT} cells failed, e.g. {failed[0]}"
        )
    return elapsed


@dataclass
class Figures:
    """What one manager measured, under one runtime."""

    cold_ms: float  # a cold `docker run` of the same image under the same runtime
    acquire_ms: list[float]  # 8 catalogs in a row on a pool of 4, three times
    exec_ms: list[float]
    reset_ms: list[float]
    concurrent_s: float | None


@contextlib.asynccontextmanager
async def running_manager(manager_id: str, runtime: str, pool_size: int) -> AsyncIterator[Stub]:
    """A manager under `runtime` with a warm pool of `pool_size`; no container may outlive it."""
    with tempfile.TemporaryFile() as log:
        port = free_port()
        env = manager_env(port, manager_id, runtime, pool_size)
        manager = Service("services.sandbox_manager", env, port, log)
        try:
            await manager.start()
            await manager.wait_serving()
            async with PLANE.channel(manager.address) as channel:
                yield sandbox_pb2_grpc.SandboxManagerServiceStub(channel)
        except BaseException:
            print("the manager's last log lines:", *manager.tail(), sep="\n", file=sys.stderr)
            raise
        finally:
            try:
                await manager.stop()
            finally:
                left = labelled_containers(MANAGER_LABEL, manager_id)
                if left:
                    remove_containers(left)
                    raise RuntimeError(f"containers outlived manager {manager_id}: {left}")


async def measure(run_id: str, runtime: str, pool_size: int, concurrent: bool) -> Figures:
    """Time a cold run; then leases under load on a pool of 4, and cells, resets and (for runc)
    16 concurrent clients on a pool of `pool_size`."""
    cold_ms = await docker_run_cold_ms(run_id, runtime)
    async with running_manager(f"bench-{run_id}-{runtime}-load", runtime, LOAD_POOL_SIZE) as stub:
        acquire_ms = await acquire_in_a_row_ms(stub)
    async with running_manager(f"bench-{run_id}-{runtime}", runtime, pool_size) as stub:
        await wait_all_warm(stub)
        exec_ms, reset_ms = await execute_and_reset_ms(stub)
        concurrent_s = None
        if concurrent:
            await wait_all_warm(stub)
            concurrent_s = await concurrent_seconds(stub)
    return Figures(cold_ms, acquire_ms, exec_ms, reset_ms, concurrent_s)


def emit_cells(prefix: str, figures: Figures) -> None:
    emit(f"{prefix}.acquire_warm_p50_ms", statistics.median(figures.acquire_ms), "ms")
    emit(f"{prefix}.acquire_warm_p95_ms", percentile(figures.acquire_ms, 0.95), "ms")
    emit(f"{prefix}.execute_roundtrip_p50_ms", statistics.median(figures.exec_ms), "ms")
    emit(f"{prefix}.execute_roundtrip_p99_ms", percentile(figures.exec_ms, 0.99), "ms")
    emit(f"{prefix}.reset_p50_ms", statistics.median(figures.reset_ms), "ms")


async def main() -> None:
    run_id = uuid.uuid4().hex[:8]
    try:
        runc = await measure(run_id, "runc", POOL_SIZE, concurrent=True)
        runsc: Figures | None = None
        if "runsc" in registered_runtimes():
            runsc = await measure(run_id, "runsc", RUNSC_POOL_SIZE, concurrent=False)
        else:
            print(
                "bench_sandbox: dockerd has no runtime runsc, no gVisor figures "
                "(scripts/ensure_docker.sh registers it)",
                file=sys.stderr,
            )
    finally:
        remove_containers(labelled_containers(PEER_LABEL, run_id))

    emit_cells("sandbox", runc)
    assert runc.concurrent_s is not None
    emit("sandbox.concurrent16_seconds", runc.concurrent_s, "s")
    emit("peer.docker_run_cold_ms", runc.cold_ms, "ms")
    emit("sandbox.acquire_speedup_x", runc.cold_ms / statistics.median(runc.acquire_ms), "x")
    if runsc is not None:
        emit_cells("sandbox.runsc", runsc)
        emit("sandbox.runsc.cold_start_ms", runsc.cold_ms, "ms")


if __name__ == "__main__":
    asyncio.run(main())
