"""What the attack tests share: hardened sandboxes and real managers, under each runtime.

`sandbox_runtime` runs a test once under runc (Docker's default) and once under runsc (gVisor).
`make test` registers runsc with dockerd (scripts/ensure_docker.sh), so a missing runsc fails the
test, saying how to register it. Starts under runsc are slow: parametrise few tests with it.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.sandbox_manager.hardening import ContainerLimits, docker_run_argv
from services.sandbox_manager.kernel_client import KernelClient
from tests.conftest import TEST_LABEL, TEST_RUN
from tests.sandbox.conftest import shared_kernel as shared_kernel
from tests.sandbox_manager.conftest import start_manager as start_manager

RUNTIMES = ["runc", "runsc"]
# Where scripts/ensure_docker.sh writes why runsc could not run on this host.
RUNSC_FAILED = Path("/var/lib/catalog-agents/runsc-failed")
SESSION_UID = 456_789  # what cells run as in these containers (the manager picks at random)


def registered_runtimes() -> set[str]:
    """The runtimes dockerd lists in `docker info`."""
    info = subprocess.run(
        ["docker", "info", "--format", "{{json .Runtimes}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(info.stdout))


@pytest.fixture(scope="session", params=RUNTIMES)
def sandbox_runtime(request: pytest.FixtureRequest) -> str:
    """A CATALOG_SANDBOX_RUNTIME value dockerd knows: "runc", then "runsc"."""
    runtime: str = request.param
    if runtime in registered_runtimes():
        return runtime
    why = f"dockerd has no runtime {runtime!r}"
    if RUNSC_FAILED.exists():
        why += f" (ensure_docker.sh found it cannot run here: {RUNSC_FAILED.read_text().strip()})"
    fix = "run `bash scripts/ensure_docker.sh` as root (make test does), which registers runsc"
    pytest.fail(f"{why}: {fix}", pytrace=False)


@pytest.fixture(scope="module")
async def isolated_kernel(docker_image: str, sandbox_runtime: str) -> AsyncIterator[KernelClient]:
    """A container of the sandbox image with no network, its kernel on the attached stdio."""
    limits = ContainerLimits(
        memory_bytes=768 * 2**20,
        tmpfs_bytes=64 * 2**20,
        network_mode="none",
        runtime=sandbox_runtime,
    )
    name = f"security-test-{uuid.uuid4().hex[:8]}"
    argv = docker_run_argv(docker_image, name, limits, {TEST_LABEL: TEST_RUN}, SESSION_UID)
    client = await KernelClient.spawn(argv)
    try:
        yield client
    finally:
        await client.close()
