"""An agent runner on real gRPC, a fake Anthropic API it talks to, and a real sandbox manager."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from catalog.v1 import agent_pb2 as pb
from catalog.v1 import agent_pb2_grpc

from services.agent_runner.app import run as run_agent_runner
from services.agent_runner.config import Settings
from services.common.clients import SandboxClient
from services.common.ports import free_port
from tests.fakes.anthropic_server import FakeAnthropic
from tests.sandbox_manager.conftest import RunningManager, start_manager_process

MODEL = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
async def manager(docker_image: str) -> AsyncIterator[RunningManager]:
    """One sandbox manager (Docker containers) for the module's tests."""
    running = await start_manager_process(docker_image, min_warm="2", max_size="4")
    yield running
    await running.stop()


@pytest.fixture
async def lease(manager: RunningManager) -> AsyncIterator[str]:
    async with SandboxClient([manager.address]) as client, client.lease() as held:
        yield held.lease_id


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@dataclasses.dataclass(frozen=True)
class Runner:
    stub: agent_pb2_grpc.AgentRunnerServiceStub
    address: str


StartRunner = Callable[..., Awaitable[Runner]]


@pytest.fixture
async def start_runner(
    manager: RunningManager, fake: FakeAnthropic, tmp_path: Path
) -> AsyncIterator[StartRunner]:
    """Start an in-process runner against the fake API (or offline); return a stub to it.

    Its finished runs go to the test's own folder, so no run id is known from another test."""
    stops: list[tuple[asyncio.Event, asyncio.Task[None], grpc.aio.Channel]] = []

    async def start(offline: bool = False, **overrides: object) -> Runner:
        settings = dataclasses.replace(
            Settings(),
            host="127.0.0.1",
            port=free_port(),
            metrics_port=0,
            model=MODEL,
            anthropic_api_key="" if offline else "test-key",
            anthropic_base_url=fake.base_url,
            sandbox_managers=(manager.address,),
            llm_max_retries=2,
            **{"state_dir": str(tmp_path / "runner-state"), **overrides},
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run_agent_runner(settings, stop))
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}")
        await asyncio.wait_for(channel.channel_ready(), 10)
        stops.append((stop, task, channel))
        return Runner(agent_pb2_grpc.AgentRunnerServiceStub(channel), f"127.0.0.1:{settings.port}")

    yield start
    for stop, task, channel in stops:
        stop.set()
        await channel.close()
        await asyncio.wait_for(task, 60)


def run_request(lease_id: str, run_id: str = "run-1", **fields: object) -> pb.RunAgentRequest:
    defaults: dict[str, object] = {
        "run_id": run_id,
        "agent_name": "catalog",
        "system_prompt": "You catalog databases. Explore with execute_python, then submit_html.",
        "context_json": '{"tables": ["events"]}',
        "sandbox": pb.SandboxRef(lease_id=lease_id),
    }
    defaults.update(fields)
    return pb.RunAgentRequest(**defaults)  # type: ignore[arg-type]


async def collect(stream: AsyncIterator[pb.RunAgentResponse]) -> list[pb.RunAgentResponse]:
    return [event async for event in stream]
