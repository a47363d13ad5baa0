"""Real sandbox managers for the tests: `python -m services.sandbox_manager` subprocesses on free
ports, with real Docker containers (or kernel subprocesses for the process backend)."""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO

import grpc
import pytest
from catalog.v1 import sandbox_pb2_grpc

from services.common.control_plane import ControlPlane
from services.common.ports import free_port
from services.common.readiness import wait_serving
from services.sandbox_manager.backend import MANAGER_LABEL


@dataclass
class RunningManager:
    manager_id: str
    address: str
    process: asyncio.subprocess.Process
    env: dict[str, str]
    # the service token and TLS it was started with; `channel` sends and verifies with them
    plane: ControlPlane = field(default_factory=ControlPlane)
    channel: grpc.aio.Channel = field(init=False)
    stub: sandbox_pb2_grpc.SandboxManagerServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.channel = self.plane.channel(self.address)
        self.stub = sandbox_pb2_grpc.SandboxManagerServiceStub(self.channel)

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
            await asyncio.wait_for(self.process.wait(), timeout_s)
        await self.channel.close()
        return self.process.returncode or 0


def labelled_containers(manager_id: str) -> list[str]:
    """Ids of the containers that carry this manager's label, running or not."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={MANAGER_LABEL}={manager_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


StartManager = Callable[..., Awaitable[RunningManager]]
RELAY_DIR = "/run/catalog-agents/relay"  # the managers' default CATALOG_SANDBOX_RELAY_DIR


def plane_env(plane: ControlPlane) -> dict[str, str]:
    """The environment that gives a service `plane`'s token and TLS files."""
    values = {
        "CATALOG_SERVICE_TOKEN": plane.service_token,
        "CATALOG_TLS_CERT_FILE": plane.tls_cert_file,
        "CATALOG_TLS_KEY_FILE": plane.tls_key_file,
        "CATALOG_TLS_CA_FILE": plane.tls_ca_file,
    }
    return {name: value for name, value in values.items() if value}


async def start_manager_process(
    docker_image: str,
    manager_id: str | None = None,
    *,
    plane: ControlPlane | None = None,
    stderr: IO[bytes] | None = None,
    **settings: str,
) -> RunningManager:
    """`python -m services.sandbox_manager` on a free port, serving once this returns.

    Defaults: the Docker backend with no network (the test databases on the host's loopback
    are reached through the manager's relay), a pool of 1 warm and at most 2 sandboxes, a
    unique manager id, and no service token (allowed on loopback); `plane` gives it a token and
    TLS, which its `stub` then uses. `stderr`: a file for its logs (default: the test's).
    """
    plane = plane or ControlPlane()
    manager_id = manager_id or f"test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "CATALOG_SANDBOX_MANAGER_ID": manager_id,
        "CATALOG_SANDBOX_PORT": str(port),
        "CATALOG_SANDBOX_METRICS_PORT": "0",  # many managers at once: no fixed metrics port
        "CATALOG_SANDBOX_HOST": "127.0.0.1",
        "CATALOG_SANDBOX_IMAGE": docker_image,
        "CATALOG_SANDBOX_MIN_WARM": "1",
        "CATALOG_SANDBOX_MAX_SIZE": "2",
        "CATALOG_SANDBOX_MEMORY_BYTES": str(768 * 2**20),
        **{f"CATALOG_SANDBOX_{key.upper()}": value for key, value in settings.items()},
        **plane_env(plane),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.sandbox_manager",
        env=env,
        stderr=stderr,
    )
    manager = RunningManager(manager_id, f"127.0.0.1:{port}", process, env, plane)
    try:
        await wait_serving(manager.address, process, timeout_s=60, name="the manager", plane=plane)
    except BaseException:
        await manager.stop(signal.SIGKILL)
        raise
    return manager


@pytest.fixture
async def start_manager(docker_image: str) -> AsyncIterator[StartManager]:
    """Start managers with extra CATALOG_SANDBOX_* settings (see start_manager_process);
    all are stopped after the test, and none may leave a container behind."""
    started: list[RunningManager] = []

    async def start(manager_id: str | None = None, **settings: str) -> RunningManager:
        manager = await start_manager_process(docker_image, manager_id, **settings)
        started.append(manager)
        return manager

    yield start
    for manager in started:
        await manager.stop()
    leftovers = {m.manager_id: labelled_containers(m.manager_id) for m in started}
    assert not any(leftovers.values()), f"containers outlived their manager: {leftovers}"
    folders = [p for m in started for p in glob.glob(f"{RELAY_DIR}/{m.manager_id}.*")]
    assert not folders, f"relay folders outlived their manager: {folders}"
    locks = [
        p for m in started for p in glob.glob(f"{RELAY_DIR}/.catalog-manager-{m.manager_id}.*")
    ]
    assert not locks, f"id locks outlived their manager: {locks}"
