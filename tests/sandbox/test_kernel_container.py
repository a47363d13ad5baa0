"""What only a real container shows: its memory limit, its user, its read-only root."""

from __future__ import annotations

import asyncio
import json

from services.sandbox_manager.kernel_client import KernelClient
from tests.sandbox.conftest import SESSION_UID


async def test_a_memory_hog_is_killed_and_the_kernel_survives(
    container_kernel: KernelClient,
) -> None:
    await container_kernel.start_session({})
    await container_kernel.execute("before = 'hog'")
    hog = await container_kernel.execute(
        "chunks = []\nwhile True:\n    chunks.append(b'x' * (64 * 2**20))", timeout_s=60
    )
    assert (hog.status, hog.state_lost) == ("crashed", True)
    assert hog.error and "SIGKILL" in hog.error["evalue"] and "memory" in hog.error["evalue"]
    # Same kernel process, a fresh worker, and the session still works.
    pong = await container_kernel.ping()
    assert pong["worker_alive"]
    assert (await container_kernel.execute("sum(range(10))")).result == "45"
    await container_kernel.end_session()


async def test_cells_run_unprivileged_on_a_read_only_root(container_kernel: KernelClient) -> None:
    await container_kernel.start_session({})
    cell = await container_kernel.execute(
        "import os\n"
        "try:\n    open('/opt/evil', 'w')\nexcept OSError as exc:\n    print(type(exc).__name__)\n"
        "(os.getuid(), os.getcwd(), os.environ['HOME'])"
    )
    assert cell.stdout == "OSError\n"
    assert cell.result == f"({SESSION_UID}, '/tmp', '/tmp')"
    await container_kernel.end_session()


async def test_the_container_is_hardened(
    container_kernel: KernelClient, container_name: str
) -> None:
    inspect = await asyncio.create_subprocess_exec(
        "docker", "inspect", container_name, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await inspect.communicate()
    config = json.loads(stdout)[0]
    host = config["HostConfig"]
    # Only what the kernel needs to run sessions as their own uid and kill all they start.
    assert host["CapDrop"] == ["ALL"]
    assert sorted(host["CapAdd"]) == ["CAP_KILL", "CAP_SETGID", "CAP_SETUID"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert set(host["Tmpfs"]) == {"/tmp"}
    assert host["Memory"] == 768 * 2**20 and host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] == 256 and host["NanoCpus"] == 10**9
    assert not host["Privileged"] and not host["Binds"] and config["Mounts"] == []
    assert config["Config"]["User"] == "0:0"  # the kernel; cells run as SESSION_UID
