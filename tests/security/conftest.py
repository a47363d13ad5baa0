"""Sandboxes for the attack suite, hardened exactly as the sandbox manager starts them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.sandbox_manager.hardening import ContainerLimits, docker_run_argv
from services.sandbox_manager.kernel_client import KernelClient
from tests.conftest import TEST_LABEL, TEST_RUN
from tests.sandbox_manager.conftest import start_manager  # noqa: F401  (a fixture, shared)

SESSION_UID = 456_789  # what cells run as in these containers (the manager picks at random)


@pytest.fixture(scope="module")
async def isolated_kernel(docker_image: str) -> AsyncIterator[KernelClient]:
    """A container of the sandbox image with no network, its kernel on the attached stdio."""
    limits = ContainerLimits(memory_bytes=768 * 2**20, tmpfs_bytes=64 * 2**20, network_mode="none")
    name = f"security-test-{uuid.uuid4().hex[:8]}"
    argv = docker_run_argv(docker_image, name, limits, {TEST_LABEL: TEST_RUN}, SESSION_UID)
    client = await KernelClient.spawn(argv)
    try:
        yield client
    finally:
        await client.close()
