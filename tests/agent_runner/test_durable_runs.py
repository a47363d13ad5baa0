"""A finished run outlives its runner: a runner killed with kill -9 and started again answers
the same run id with the stored result, and the model is not called (nor paid) a second time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from catalog.v1 import agent_pb2 as pb
from catalog.v1 import agent_pb2_grpc

from services.common.ports import free_port
from services.common.readiness import wait_serving
from tests.agent_runner.conftest import MODEL, collect, run_request
from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use
from tests.sandbox_manager.conftest import RunningManager

SECRET = "pw-Durable-S3cret"
PAGE = f"<h1>Catalog</h1><p>the password is {SECRET}</p>"

StartProcess = Callable[[], Awaitable[asyncio.subprocess.Process]]


@pytest.fixture
async def runner_process(
    manager: RunningManager, fake: FakeAnthropic, tmp_path: Path
) -> AsyncIterator[tuple[StartProcess, list[str]]]:
    """Start `python -m services.agent_runner` processes sharing one state folder; each start
    appends its address. All are killed after the test."""
    started: list[asyncio.subprocess.Process] = []
    addresses: list[str] = []

    async def start() -> asyncio.subprocess.Process:
        port = free_port()
        env = {
            **os.environ,
            "CATALOG_AGENT_HOST": "127.0.0.1",
            "CATALOG_AGENT_PORT": str(port),
            "CATALOG_SANDBOX_MANAGERS": manager.address,
            "ANTHROPIC_API_KEY": "test-key",
            "ANTHROPIC_BASE_URL": fake.base_url,
            "CATALOG_AGENT_MODEL": MODEL,
            "CATALOG_AGENT_STATE_DIR": str(tmp_path / "state"),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.agent_runner", env=env
        )
        started.append(process)
        await wait_serving(f"127.0.0.1:{port}", process, timeout_s=60, name="the runner")
        addresses.append(f"127.0.0.1:{port}")
        return process

    yield start, addresses
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_killed_runner_answers_a_finished_run_from_its_store(
    runner_process: tuple[StartProcess, list[str]],
    fake: FakeAnthropic,
    lease: str,
    tmp_path: Path,
) -> None:
    start, addresses = runner_process
    fake.script(Reply(tool_use("submit_html", {"content": PAGE})))
    request = run_request(lease, run_id="durable-1", redact_values=[SECRET])
    first_runner = await start()
    async with runner_stub(addresses[-1]) as stub:
        first = (await collect(stub.RunAgent(request)))[-1].result
    assert first.stop_reason == pb.STOP_REASON_SUBMITTED and len(fake.requests) == 1
    assert "[redacted]" in first.html and SECRET not in first.html
    first_runner.send_signal(signal.SIGKILL)
    await first_runner.wait()

    await start()  # the same state folder, another port
    async with runner_stub(addresses[-1]) as stub:
        again = await collect(stub.RunAgent(request))
        stored = await stub.GetAgentRun(pb.GetAgentRunRequest(run_id="durable-1"))
    assert len(again) == 1 and again[0].result == first
    assert stored.state == pb.AGENT_RUN_STATE_FINISHED and stored.result == first
    assert len(fake.requests) == 1  # the agent ran, and was paid for, once
    # What the runner kept on disk holds the page redacted, never the secret.
    kept = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file())
    assert b"[redacted]" in kept and SECRET.encode() not in kept
    assert SECRET not in json.dumps(fake.requests[0].body)


@contextlib.asynccontextmanager
async def runner_stub(address: str) -> AsyncIterator[agent_pb2_grpc.AgentRunnerServiceStub]:
    async with grpc.aio.insecure_channel(address) as channel:
        yield agent_pb2_grpc.AgentRunnerServiceStub(channel)
