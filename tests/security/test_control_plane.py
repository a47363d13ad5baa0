"""Attacks on the control plane: a stranger calling the sandbox manager or the agent runner,
a request steering the runner to another address or past its budget, eavesdropping on a
plaintext connection, and reading other callers' lease ids from a listing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from catalog.v1 import agent_pb2, agent_pb2_grpc, sandbox_pb2, sandbox_pb2_grpc
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.agent_runner.app import run as run_agent_runner
from services.agent_runner.config import Settings as RunnerSettings
from services.common.clients import SandboxClient, SandboxClientError
from services.common.control_plane import ControlPlane
from services.common.ports import free_port
from tests.sandbox_manager.conftest import RunningManager, start_manager_process

REPO = Path(__file__).resolve().parents[2]
GRPCURL = str(Path(sys.executable).parent / "grpcurl")
PLANE = ControlPlane(service_token=secrets.token_urlsafe(24))
LIST = "catalog.v1.SandboxManagerService/ListSandboxes"


@pytest.fixture(scope="module")
async def manager(docker_image: str) -> AsyncIterator[RunningManager]:
    running = await start_manager_process(docker_image, plane=PLANE, min_warm="1", max_size="2")
    yield running
    await running.stop()


@pytest.fixture
async def runner(manager: RunningManager) -> AsyncIterator[str]:
    """An offline agent runner that requires PLANE's token; yields its address."""
    port = free_port()
    settings = dataclasses.replace(
        RunnerSettings(),
        port=port,
        metrics_port=0,
        anthropic_api_key="",
        sandbox_managers=(manager.address,),
        control_plane=PLANE,
        state_dir="",  # finished runs in memory: nothing left on disk
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent_runner(settings, stop))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
    yield f"127.0.0.1:{port}"
    stop.set()
    await asyncio.wait_for(task, 60)


async def run(*argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, output.decode()


def refusal(error: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[grpc.StatusCode, str]:
    return error.value.code(), error.value.details() or ""


async def test_execute_without_token_is_unauthenticated(manager: RunningManager) -> None:
    async with grpc.aio.insecure_channel(manager.address) as channel:
        stranger = sandbox_pb2_grpc.SandboxManagerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as acquired:
            await stranger.AcquireSandbox(sandbox_pb2.AcquireSandboxRequest(), timeout=10)
        request = sandbox_pb2.ExecuteRequest(lease_id=f"{manager.manager_id}.x", code="1")
        with pytest.raises(grpc.aio.AioRpcError) as executed:
            _ = [event async for event in stranger.Execute(request, timeout=10)]
    for error in (acquired, executed):
        code, details = refusal(error)
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert "CATALOG_SERVICE_TOKEN" in details
    # A guessed token fares no better; the manager's own client without one says what to set.
    async with ControlPlane(service_token="guessed").channel(manager.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as guessed:
            await sandbox_pb2_grpc.SandboxManagerServiceStub(channel).ListSandboxes(
                sandbox_pb2.ListSandboxesRequest(), timeout=10
            )
    assert refusal(guessed)[0] == grpc.StatusCode.UNAUTHENTICATED
    async with SandboxClient([manager.address]) as tokenless:
        with pytest.raises(SandboxClientError, match="CATALOG_SERVICE_TOKEN"):
            await tokenless.acquire(wait_timeout_s=10)
    # The holder of the token is served.
    listed = await manager.stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest(), timeout=10)
    assert listed.pool.manager_id == manager.manager_id


async def test_list_sandboxes_hides_lease_ids(manager: RunningManager) -> None:
    async with (
        SandboxClient([manager.address], plane=PLANE) as client,
        client.lease(client_id="nightly", labels={"team": "data"}) as lease,
    ):
        listed = await manager.stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest())
        leased = [s for s in listed.sandboxes if s.state == sandbox_pb2.SANDBOX_STATE_LEASED]
        assert [s.sandbox_id for s in leased] == [lease.sandbox_id]
        described = await manager.stub.DescribeSandbox(
            sandbox_pb2.DescribeSandboxRequest(sandbox_id=lease.sandbox_id)
        )
    for shown in (leased[0], described.sandbox):
        # operators still see who holds it, until when, and its labels
        assert shown.lease.client_id == "nightly" and shown.labels["team"] == "data"
        assert shown.lease.expire_time.seconds > 0
        assert shown.lease.lease_id == ""
    for reply in (listed, described):
        assert lease.lease_id.encode() not in reply.SerializeToString()


async def test_runner_refuses_an_unconfigured_manager_address(
    manager: RunningManager, runner: str
) -> None:
    dialed: list[str] = []

    async def trap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dialed.append("connected")
        writer.close()

    server = await asyncio.start_server(trap, "127.0.0.1", 0)
    trap_address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    request = agent_pb2.RunAgentRequest(
        run_id="steered-1",
        agent_name="catalog",
        system_prompt="catalog",
        sandbox=agent_pb2.SandboxRef(
            lease_id=f"{manager.manager_id}.abc", sandbox_manager_address=trap_address
        ),
    )
    try:
        async with PLANE.channel(runner) as channel:
            stub = agent_pb2_grpc.AgentRunnerServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                _ = [event async for event in stub.RunAgent(request, timeout=30)]
        await asyncio.sleep(0.5)
    finally:
        server.close()
        await server.wait_closed()
    code, details = refusal(refused)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "sandbox.sandbox_manager_address" in details and "CATALOG_SANDBOX_MANAGERS" in details
    assert dialed == []  # the runner never went there
    # and without the token the runner answers nothing at all
    async with grpc.aio.insecure_channel(runner) as channel:
        stranger = agent_pb2_grpc.AgentRunnerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
            await stranger.GetAgentRun(agent_pb2.GetAgentRunRequest(run_id="x"), timeout=10)
    assert refusal(unauthenticated)[0] == grpc.StatusCode.UNAUTHENTICATED


async def test_runner_budget_above_ceiling_is_refused(manager: RunningManager, runner: str) -> None:
    request = agent_pb2.RunAgentRequest(
        run_id="greedy-1",
        agent_name="catalog",
        system_prompt="catalog",
        sandbox=agent_pb2.SandboxRef(lease_id=f"{manager.manager_id}.abc"),
        budget=agent_pb2.Budget(
            max_turns=10_000, wall_clock=duration_pb2.Duration(seconds=30 * 24 * 3600)
        ),
    )
    async with PLANE.channel(runner) as channel:
        stub = agent_pb2_grpc.AgentRunnerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            _ = [event async for event in stub.RunAgent(request, timeout=30)]
    code, details = refusal(refused)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "CATALOG_AGENT_CEILING_TURNS=200" in details
    assert "CATALOG_AGENT_CEILING_WALL_CLOCK_S=14400" in details


async def test_health_and_reflection_need_no_token(manager: RunningManager, runner: str) -> None:
    for address, service in (
        (manager.address, "catalog.v1.SandboxManagerService"),
        (runner, "catalog.v1.AgentRunnerService"),
    ):
        status, listed = await run(GRPCURL, "-plaintext", address, "list")
        assert status == 0 and service in listed.split(), listed
        status, health = await run(GRPCURL, "-plaintext", address, "grpc.health.v1.Health/Check")
        assert status == 0 and json.loads(health) == {"status": "SERVING"}
    # The operator's grpcurl needs the token for anything else, and is told which setting.
    status, refused = await run(GRPCURL, "-plaintext", "-d", "{}", manager.address, LIST)
    assert status != 0 and "Unauthenticated" in refused and "CATALOG_SERVICE_TOKEN" in refused
    bearer = f"authorization: Bearer {PLANE.service_token}"
    status, listed = await run(
        GRPCURL, "-plaintext", "-H", bearer, "-d", "{}", manager.address, LIST
    )
    assert status == 0 and json.loads(listed)["pool"]["manager_id"] == manager.manager_id


async def test_tls_listener_serves_only_tls(docker_image: str, tmp_path: Path) -> None:
    status, printed = await run(sys.executable, "scripts/dev_certs.py", str(tmp_path))
    assert status == 0, printed
    files = dict(line.split("=", 1) for line in printed.split())
    plane = dataclasses.replace(
        PLANE,
        tls_cert_file=files["CATALOG_TLS_CERT_FILE"],
        tls_key_file=files["CATALOG_TLS_KEY_FILE"],
        tls_ca_file=files["CATALOG_TLS_CA_FILE"],
    )
    manager = await start_manager_process(docker_image, plane=plane, min_warm="0")
    try:
        listed = await manager.stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest(), timeout=10)
        assert listed.pool.manager_id == manager.manager_id
        # A plaintext client gets nothing, not even health.
        async with grpc.aio.insecure_channel(manager.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as plaintext:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
        assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
        # A client that trusts another CA refuses the manager's certificate.
        other = tmp_path / "other"
        assert (await run(sys.executable, "scripts/dev_certs.py", str(other)))[0] == 0
        stranger = ControlPlane(tls_ca_file=str(other / "ca.pem"))
        async with stranger.channel(manager.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as untrusted:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
        assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE
        # The README's operator commands.
        ca = files["CATALOG_TLS_CA_FILE"]
        status, services = await run(GRPCURL, "-cacert", ca, manager.address, "list")
        assert status == 0 and "catalog.v1.SandboxManagerService" in services, services
        assert (await run(GRPCURL, "-plaintext", manager.address, "list"))[0] != 0
    finally:
        await manager.stop()


@pytest.mark.parametrize(
    ("module", "host_var"),
    [
        ("services.sandbox_manager", "CATALOG_SANDBOX_HOST"),
        ("services.agent_runner", "CATALOG_AGENT_HOST"),
    ],
)
async def test_a_service_without_a_token_refuses_to_listen_beyond_loopback(
    module: str, host_var: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CATALOG_SERVICE_TOKEN"}
    env |= {
        host_var: "0.0.0.0",
        "CATALOG_SANDBOX_PORT": str(free_port()),
        "CATALOG_AGENT_PORT": str(free_port()),
        "CATALOG_SANDBOX_METRICS_PORT": "0",
        "CATALOG_AGENT_METRICS_PORT": "0",
        "CATALOG_SANDBOX_BACKEND": "process",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, env=env, cwd=REPO, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    assert "CATALOG_SERVICE_TOKEN is not set" in stderr.decode()
