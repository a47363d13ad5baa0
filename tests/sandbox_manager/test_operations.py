"""What operators and the platform rely on: grpcurl, crash recovery, shutdown, hardening, scale."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from catalog.v1 import sandbox_pb2 as pb

from tests.sandbox_manager.conftest import StartManager, labelled_containers

GRPCURL = str(Path(sys.executable).parent / "grpcurl")


async def grpcurl(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        GRPCURL,
        "-plaintext",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def docker_inspect(container_id: str) -> dict:
    process = await asyncio.create_subprocess_exec(
        "docker", "inspect", container_id, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    return json.loads(output)[0]


async def wait_for_warm(stub, count: int = 1) -> pb.ListSandboxesResponse:
    for _ in range(300):
        listed = await stub.ListSandboxes(pb.ListSandboxesRequest())
        if listed.pool.warm >= count:
            return listed
        await asyncio.sleep(0.2)
    raise TimeoutError("the pool did not warm up")


async def test_an_operator_lists_describes_and_checks_health_with_grpcurl(
    start_manager: StartManager,
) -> None:
    manager = await start_manager()
    await wait_for_warm(manager.stub)
    services = await grpcurl(manager.address, "list")
    assert "catalog.v1.SandboxManagerService" in services.split()
    assert "grpc.health.v1.Health" in services.split()
    described = await grpcurl(manager.address, "describe", "catalog.v1.SandboxManagerService")
    for rpc in (
        "AcquireSandbox",
        "Execute",
        "ResetSandbox",
        "ReleaseSandbox",
        "RenewLease",
        "ListSandboxes",
        "DescribeSandbox",
    ):
        assert f"rpc {rpc}" in described
    health = json.loads(await grpcurl(manager.address, "grpc.health.v1.Health/Check"))
    assert health == {"status": "SERVING"}
    listed = json.loads(
        await grpcurl("-d", "{}", manager.address, "catalog.v1.SandboxManagerService/ListSandboxes")
    )
    assert listed["pool"]["manager_id"] == manager.manager_id
    sandbox_id = listed["sandboxes"][0]["sandbox_id"]
    one = json.loads(
        await grpcurl(
            "-d",
            json.dumps({"sandbox_id": sandbox_id}),
            manager.address,
            "catalog.v1.SandboxManagerService/DescribeSandbox",
        )
    )
    assert one["sandbox"]["state"] == "SANDBOX_STATE_WARM"
    assert one["sandbox"]["backend"] == "SANDBOX_BACKEND_DOCKER"


async def test_a_manager_killed_hard_cleans_up_when_it_starts_again(
    start_manager: StartManager,
) -> None:
    first = await start_manager(min_warm="2")
    await wait_for_warm(first.stub, 2)
    await first.stub.AcquireSandbox(pb.AcquireSandboxRequest())
    left_behind = labelled_containers(first.manager_id)
    assert len(left_behind) >= 2
    await first.stop(signal.SIGKILL)
    second = await start_manager(manager_id=first.manager_id, min_warm="1")
    await wait_for_warm(second.stub)
    remaining = set(labelled_containers(first.manager_id))
    assert not remaining & set(left_behind)


async def test_a_graceful_shutdown_removes_every_container(start_manager: StartManager) -> None:
    manager = await start_manager(min_warm="2")
    await wait_for_warm(manager.stub, 2)
    lease = (await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    call = manager.stub.Execute(
        pb.ExecuteRequest(lease_id=lease.lease_id, code="import time\ntime.sleep(30)")
    )
    assert labelled_containers(manager.manager_id)
    assert await manager.stop(signal.SIGTERM) == 0
    call.cancel()
    assert labelled_containers(manager.manager_id) == []


async def test_containers_are_hardened_on_a_dedicated_network(start_manager: StartManager) -> None:
    network = "catalog-agents-test-net"
    manager = await start_manager(network=network, pids="128", cpus="0.5")
    listed = await wait_for_warm(manager.stub)
    sandbox = listed.sandboxes[0]
    assert sandbox.network_mode == network
    config = await docker_inspect(sandbox.container_id)
    host = config["HostConfig"]
    # The kernel keeps only what it needs to run cells as their own uid and kill all they start.
    assert host["CapDrop"] == ["ALL"] and sorted(host["CapAdd"]) == ["KILL", "SETGID", "SETUID"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True and set(host["Tmpfs"]) == {"/tmp"}
    assert host["Memory"] == 768 * 2**20 and host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] == 128 and host["NanoCpus"] == 5 * 10**8
    # One host folder only: the sandbox's own relay folder, read only (see db_relay).
    relay = f"/run/catalog-agents/relay/{sandbox.sandbox_id}"
    assert not host["Privileged"] and host["Binds"] == [f"{relay}:/run/catalog-db:ro"]
    assert [(m["Source"], m["RW"]) for m in config["Mounts"]] == [(relay, False)]
    assert config["Config"]["User"] == "0:0"
    session_uid = next(int(v.split("=")[1]) for v in config["Config"]["Env"] if "SESSION_UID=" in v)
    assert session_uid >= 200_000  # cells run as a uid of this container's own
    assert host["NetworkMode"] == network
    assert config["Config"]["Labels"]["catalog-agents.manager"] == manager.manager_id
    inspected = await asyncio.create_subprocess_exec(
        "docker", "network", "inspect", network, stdout=asyncio.subprocess.PIPE
    )
    net = json.loads((await inspected.communicate())[0])[0]
    assert net["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    # No Docker socket inside, and nothing of the host's file system.
    lease = (await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    events = [
        e
        async for e in manager.stub.Execute(
            pb.ExecuteRequest(
                lease_id=lease.lease_id,
                code="import os\n(os.path.exists('/var/run/docker.sock'), os.path.exists('/work'))",
            )
        )
    ]
    assert events[0].result.text_plain == "(False, False)"


async def test_the_network_is_made_even_when_a_longer_name_contains_its_name(
    start_manager: StartManager,
) -> None:
    """Docker's name filter matches substrings: `x` must not be taken for `x_default`."""
    network = "catalog-agents-test-substring"  # one name for every run: no network piles up
    for command in (
        ["rm", network],
        ["rm", f"{network}_default"],
        ["create", f"{network}_default"],
    ):
        await asyncio.to_thread(
            subprocess.run, ["docker", "network", *command], capture_output=True
        )
    try:
        manager = await start_manager(network=network)
        listed = await wait_for_warm(manager.stub)
        assert listed.sandboxes[0].network_mode == network
    finally:
        remove = ["docker", "network", "rm", f"{network}_default"]
        await asyncio.to_thread(subprocess.run, remove, capture_output=True)


async def test_the_process_backend_serves_and_warns(start_manager: StartManager) -> None:
    manager = await start_manager(backend="process")
    lease = (await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    events = [
        e
        async for e in manager.stub.Execute(
            pb.ExecuteRequest(lease_id=lease.lease_id, code="import os\nos.getpid() != 1")
        )
    ]
    assert events[0].result.text_plain == "True"
    listed = await manager.stub.ListSandboxes(pb.ListSandboxesRequest())
    assert listed.pool.backend == pb.SANDBOX_BACKEND_PROCESS


async def test_a_process_manager_killed_hard_leaves_no_scratch_folder(
    start_manager: StartManager,
) -> None:
    first = await start_manager(backend="process", min_warm="2")
    await wait_for_warm(first.stub, 2)
    folder = f"catalog-sandbox-{glob.escape(first.manager_id)}.*"
    pattern = os.path.join(tempfile.gettempdir(), folder)
    assert len(glob.glob(pattern)) >= 2
    await first.stop(signal.SIGKILL)
    second = await start_manager(manager_id=first.manager_id, backend="process", min_warm="1")
    await wait_for_warm(second.stub)
    assert len(glob.glob(pattern)) == 1  # only the new warm sandbox's
    assert await second.stop(signal.SIGTERM) == 0
    assert glob.glob(pattern) == []


async def test_sixteen_leases_share_a_pool_of_eight(start_manager: StartManager) -> None:
    manager = await start_manager(min_warm="8", max_size="8", network="none")
    await wait_for_warm(manager.stub, 8)
    stub = manager.stub

    async def agent(number: int) -> list[str]:
        acquired = await stub.AcquireSandbox(
            pb.AcquireSandboxRequest(client_id=f"agent-{number}"), timeout=300
        )
        lease_id = acquired.lease.lease_id
        results = []
        try:
            await asyncio.sleep(0.05)  # hold the lease a moment, so the others must wait
            for cell in range(20):
                events = [
                    e
                    async for e in stub.Execute(
                        pb.ExecuteRequest(
                            lease_id=lease_id, code=f"total = {number} * 100 + {cell}\ntotal"
                        )
                    )
                ]
                assert events[-1].finished.status == pb.EXECUTION_STATUS_OK, events
                results.append(events[0].result.text_plain)
        finally:
            await stub.ReleaseSandbox(pb.ReleaseSandboxRequest(lease_id=lease_id))
        return results

    outcomes = await asyncio.gather(*(agent(n) for n in range(16)))
    for number, results in enumerate(outcomes):
        assert results == [str(number * 100 + cell) for cell in range(20)]
    listed = await stub.ListSandboxes(pb.ListSandboxesRequest())
    assert len(listed.sandboxes) <= 8 and listed.pool.leased == 0
    assert await manager.stop() == 0
    assert labelled_containers(manager.manager_id) == []


async def test_a_second_manager_on_a_taken_port_fails(start_manager: StartManager) -> None:
    manager = await start_manager(backend="process")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.sandbox_manager",
        env={**manager.env, "CATALOG_SANDBOX_MANAGER_ID": "intruder"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    assert b"the port is taken" in stderr
    # The first manager is untouched.
    listed = await manager.stub.ListSandboxes(pb.ListSandboxesRequest())
    assert listed.pool.manager_id == manager.manager_id


async def test_a_data_folder_can_be_mounted_read_only_for_duckdb_files(
    start_manager: StartManager,
) -> None:
    import duckdb

    folder = tempfile.mkdtemp(prefix="catalog-data-")
    try:
        os.chmod(folder, 0o755)  # the sandbox's user must be able to enter it
        path = os.path.join(folder, "shop.duckdb")
        with duckdb.connect(path) as db:
            db.execute("CREATE TABLE orders AS SELECT range AS id FROM range(500)")
        os.chmod(path, 0o644)
        manager = await start_manager(data_mount=folder, network="none")
        acquired = await manager.stub.AcquireSandbox(
            pb.AcquireSandboxRequest(session=pb.SessionConfig(db_dsn=f"duckdb://{path}"))
        )
        assert acquired.session.connect_error == ""
        lease_id = acquired.lease.lease_id
        code = (
            "rows = con.table('orders').count().execute()\n"
            "try:\n"
            "    open(" + repr(os.path.join(folder, "x")) + ", 'w')\n"
            "    wrote = True\n"
            "except OSError:\n"
            "    wrote = False\n"
            "(rows, wrote)"
        )
        events = [
            e async for e in manager.stub.Execute(pb.ExecuteRequest(lease_id=lease_id, code=code))
        ]
        assert events[0].result.text_plain == "(500, False)"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_duckdb_file_the_sandbox_cannot_see_names_the_data_mount(
    start_manager: StartManager,
) -> None:
    import duckdb

    mounted, outside = (tempfile.mkdtemp(prefix="catalog-data-") for _ in range(2))
    try:
        path = os.path.join(outside, "shop.duckdb")  # on the host, in no mounted folder
        with duckdb.connect(path) as db:
            db.execute("CREATE TABLE orders AS SELECT 1 AS id")
        os.chmod(mounted, 0o755)
        for settings in ({}, {"data_mount": mounted}):
            manager = await start_manager(network="none", **settings)
            acquired = await manager.stub.AcquireSandbox(
                pb.AcquireSandboxRequest(session=pb.SessionConfig(db_dsn=f"duckdb://{path}"))
            )
            error = acquired.session.connect_error
            assert "CATALOG_SANDBOX_DATA_MOUNT" in error and path in error, error
            await manager.stop()
    finally:
        shutil.rmtree(mounted, ignore_errors=True)
        shutil.rmtree(outside, ignore_errors=True)
