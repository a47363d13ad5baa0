"""The OCI runtime under the sandboxes: cells run under runc and under gVisor, and a runtime that
dockerd does not know stops the manager at start with the way to fix it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

from services.common.clients import SandboxClient
from services.common.ports import free_port
from tests.sandbox_manager.conftest import StartManager, labelled_containers

HOST_KERNEL = os.uname().release


async def container_runtimes(manager_id: str) -> set[str]:
    ids = labelled_containers(manager_id)
    process = await asyncio.create_subprocess_exec(
        "docker", "inspect", *ids, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    return {container["HostConfig"]["Runtime"] for container in json.loads(output)}


async def test_sandbox_runs_cells_under_each_runtime(
    sandbox_runtime: str, start_manager: StartManager
) -> None:
    manager = await start_manager(runtime=sandbox_runtime, network="none")
    async with SandboxClient([manager.address], call_timeout_s=120) as client:
        async with client.lease() as lease:
            first = await client.execute(lease.lease_id, "import os\nx = 41\nos.uname().release")
            assert first.ok, first.error
            # Under gVisor the cell talks to gVisor's own kernel, never the host's.
            seen_kernel = (first.result or "").strip("'")
            assert (seen_kernel == HOST_KERNEL) is (sandbox_runtime == "runc"), seen_kernel
            second = await client.execute(lease.lease_id, "x + 1")
            assert second.result == "42"
            await client.reset(lease.lease_id)
            after = await client.execute(lease.lease_id, "x")
            assert after.error is not None and after.error.ename == "NameError"
        assert await container_runtimes(manager.manager_id) == {sandbox_runtime}


async def test_unknown_runtime_is_refused_at_start_with_a_fix(docker_image: str) -> None:
    manager_id = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CATALOG_SANDBOX_MANAGER_ID": manager_id,
        "CATALOG_SANDBOX_HOST": "127.0.0.1",
        "CATALOG_SANDBOX_PORT": str(free_port()),
        "CATALOG_SANDBOX_METRICS_PORT": "0",
        "CATALOG_SANDBOX_IMAGE": docker_image,
        "CATALOG_SANDBOX_RUNTIME": "gvisor-typo",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.sandbox_manager",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    said = output.decode()
    assert process.returncode == 1, said
    last = said.strip().splitlines()[-1]
    assert last.startswith("sandbox_manager: CATALOG_SANDBOX_RUNTIME=gvisor-typo but dockerd has")
    assert "runc" in last and "/etc/docker/daemon.json" in last and "kill -HUP" in last
    assert "Traceback" not in said
    assert labelled_containers(manager_id) == []
