"""Waiting for a freshly started service: poll grpc.health.v1 until it reports SERVING.

Used by whatever starts services as subprocesses (`make serve`, the demo, the benchmarks and
the tests), so each learns the same way, and as early, that a service is up or has died.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.control_plane import ControlPlane


async def wait_serving(
    address: str,
    process: asyncio.subprocess.Process,
    timeout_s: float,
    name: str = "the service",
    *,
    plane: ControlPlane | None = None,
) -> None:
    """Return once `address` answers SERVING. RuntimeError when `process` exits first,
    TimeoutError when `timeout_s` passes. `plane` dials TLS when it has a CA file."""
    async with (plane or ControlPlane()).channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + timeout_s
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} at {address} did not serve within {timeout_s:g} s")
            await asyncio.sleep(0.2)
