"""Kernels for the tests: one pre-loaded subprocess kernel shared by the fast tests, and
containers of the sandbox image, hardened as the sandbox manager will run them."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator

import pytest

from services.sandbox_manager.hardening import ContainerLimits, docker_run_argv
from services.sandbox_manager.kernel_client import KernelClient
from tests.conftest import TEST_LABEL, TEST_RUN

SESSION_UID = 345_678  # what cells run as in the test container (the manager picks at random)


@pytest.fixture(scope="session")
async def shared_kernel() -> AsyncIterator[KernelClient]:
    client = await KernelClient.spawn([sys.executable, "-m", "catalog_kernel"])
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="session")
def container_name() -> str:
    return f"kernel-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
async def container_kernel(docker_image: str, container_name: str) -> AsyncIterator[KernelClient]:
    """One hardened container of the sandbox image, its kernel on the attached stdio.

    Host networking: the kernel's database tests open the test databases on the host's loopback
    directly (the manager's relay, which production sandboxes use, has tests of its own)."""
    limits = ContainerLimits(memory_bytes=768 * 2**20, network_mode="host")
    argv = docker_run_argv(
        docker_image, container_name, limits, {TEST_LABEL: TEST_RUN}, session_uid=SESSION_UID
    )
    client = await KernelClient.spawn(argv)
    try:
        yield client
    finally:
        await client.close()
