"""Kernel benchmark: a cell round trip and a reset, against the peers they replace.

Runs one hardened container of the sandbox image (no network) and measures, in the same run:
- kernel.exec_roundtrip_p50_ms: a `pass` cell over the container's attached stdio;
- kernel.reset_p50_ms: a reset with the standby worker ready, as between two agents;
- peer.docker_exec_p50_ms: `docker exec <container> python -c pass`;
- peer.fresh_interpreter_imports_ms: a new interpreter importing the kernel's libraries, timed
  inside the same container (so no docker exec overhead counts against the peer);
- the ratios, and the same two figures for the subprocess kernel on the host.

Prints one JSON object a line: {"name", "value", "unit"}.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

from catalog_kernel.preload import DEFAULT_MODULES

from services.sandbox_manager.hardening import ContainerLimits, docker_run_argv
from services.sandbox_manager.kernel_client import KernelClient

IMAGE = os.environ.get("CATALOG_SANDBOX_IMAGE", "catalog-agents/sandbox:latest")
EXEC_ROUNDS = 300
RESET_ROUNDS = 30
PEER_ROUNDS = 15


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


async def p50_ms(action: Callable[[], Awaitable[object]], rounds: int, idle_s: float = 0) -> float:
    samples = []
    for _ in range(rounds):
        if idle_s:
            await asyncio.sleep(idle_s)
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def kernel_figures(client: KernelClient) -> tuple[float, float]:
    await client.start_session({})
    for _ in range(20):  # warm up
        await client.execute("pass")
    exec_ms = await p50_ms(lambda: client.execute("pass"), EXEC_ROUNDS)
    # The standby worker is forked while the kernel is idle, as it is between two agents.
    reset_ms = await p50_ms(client.reset, RESET_ROUNDS, idle_s=0.1)
    return exec_ms, reset_ms


async def fresh_interpreter_ms(client: KernelClient) -> float:
    imports = ", ".join(m for m in DEFAULT_MODULES)
    cell = await client.execute(
        "import statistics, subprocess, sys, time\n"
        "samples = []\n"
        f"for _ in range({PEER_ROUNDS // 3}):\n"
        "    t = time.perf_counter()\n"
        f"    subprocess.run([sys.executable, '-c', 'import {imports}'], check=True)\n"
        "    samples.append((time.perf_counter() - t) * 1000)\n"
        "statistics.median(samples)",
        timeout_s=300,
    )
    if cell.status != "ok" or cell.result is None:
        raise RuntimeError(f"the fresh-interpreter peer failed: {cell.error}")
    return float(cell.result)


def docker_exec_ms(name: str) -> float:
    samples = []
    for _ in range(PEER_ROUNDS):
        started = time.perf_counter()
        subprocess.run(
            ["docker", "exec", name, "/opt/venv/bin/python", "-c", "pass"],
            check=True,
            capture_output=True,
        )
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def main() -> None:
    name = f"bench-kernel-{uuid.uuid4().hex[:8]}"
    argv = docker_run_argv(
        IMAGE, name, ContainerLimits(network_mode="none"), {"catalog-agents.bench": "1"}
    )
    container = await KernelClient.spawn(argv)
    try:
        exec_ms, reset_ms = await kernel_figures(container)
        fresh_ms = await fresh_interpreter_ms(container)
        docker_ms = docker_exec_ms(name)
    finally:
        await container.close()
    emit("kernel.exec_roundtrip_p50_ms", exec_ms, "ms")
    emit("kernel.reset_p50_ms", reset_ms, "ms")
    emit("peer.docker_exec_p50_ms", docker_ms, "ms")
    emit("peer.fresh_interpreter_imports_ms", fresh_ms, "ms")
    emit("kernel.reset_speedup_x", fresh_ms / reset_ms, "x")
    emit("kernel.exec_speedup_x", docker_ms / exec_ms, "x")

    process = await KernelClient.spawn([sys.executable, "-m", "catalog_kernel"])
    try:
        process_exec_ms, process_reset_ms = await kernel_figures(process)
    finally:
        await process.close()
    emit("kernel.process.exec_roundtrip_p50_ms", process_exec_ms, "ms")
    emit("kernel.process.reset_p50_ms", process_reset_ms, "ms")


if __name__ == "__main__":
    asyncio.run(main())
