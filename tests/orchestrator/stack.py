"""The whole stack for orchestrator tests: a Docker sandbox manager, an agent runner (against
the fake Anthropic API, or offline) and the orchestrator as a real `python -m` subprocess, so a
test can kill it with SIGKILL and start it again."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import secrets
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psycopg
import pytest
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc
from cryptography.fernet import Fernet

from services.agent_runner.app import run as run_agent_runner
from services.agent_runner.config import Settings as RunnerSettings
from services.agent_runner.prices import load_prices
from services.common.control_plane import ControlPlane
from services.common.ports import free_port
from services.common.readiness import wait_serving
from tests.fakes.anthropic_server import FakeAnthropic
from tests.sandbox_manager.conftest import (
    RunningManager,
    start_manager_process,
)

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Orch-Secret-pw-9931"
PRICES = REPO / "deploy" / "prices.yaml"
# The stack's manager, runners and orchestrators share one service token, as in production.
PLANE = ControlPlane(service_token=secrets.token_urlsafe(24))


def with_password(url: str, password: str = PASSWORD) -> str:
    """Trust auth ignores the password, so a run can carry a secret that must never show."""
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user.split(':')[0]}:{password}@{host}"


@pytest.fixture
def reader_table(postgres_table: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """postgres_table, reached as a role that may only read it: (URL with that role, schema)."""
    url, schema = postgres_table
    role = f"catalog_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    try:
        yield url.replace("postgres@", f"{role}@", 1), schema
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


@pytest.fixture
def pg_system_database() -> Iterator[str]:
    """A fresh PostgreSQL database for DBOS, which replicas share; dropped after the test."""
    name = f"catalog_replicas_{uuid.uuid4().hex[:10]}"
    admin_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def run_rows(system_database: str) -> list[tuple[str, str, str]]:
    """(workflow id, status, executor id) of every catalog run in a DBOS system database."""
    with psycopg.connect(system_database) as db:
        rows = db.execute(
            "SELECT workflow_uuid, status, executor_id FROM dbos.workflow_status"
            " WHERE name = 'catalog_workflow'"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


@dataclass
class Runner:
    address: str
    stop_event: asyncio.Event
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 60)


async def start_runner(manager_address: str, anthropic_base_url: str = "") -> Runner:
    """An in-process agent runner; offline unless a fake Anthropic URL is given."""
    port = free_port()
    settings = dataclasses.replace(
        RunnerSettings(),
        host="127.0.0.1",
        port=port,
        metrics_port=0,
        anthropic_api_key="test-key" if anthropic_base_url else "",
        anthropic_base_url=anthropic_base_url,
        sandbox_managers=(manager_address,),
        llm_max_retries=2,
        control_plane=PLANE,
        state_dir="",  # finished runs in memory: nothing left on disk
        # The shipped price table, as Settings.from_env loads it: a run with max_cost_usd
        # needs a price for the runner's model.
        prices_file=PRICES,
        prices=load_prices(PRICES),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent_runner(settings, stop))
    async with PLANE.channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
    return Runner(f"127.0.0.1:{port}", stop, task)


@dataclass
class Orchestrator:
    env: dict[str, str]
    process: asyncio.subprocess.Process
    log_path: Path
    address: str = field(init=False)
    http_url: str = field(init=False)
    channel: grpc.aio.Channel = field(init=False)
    stub: catalog_pb2_grpc.CatalogServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.address = f"127.0.0.1:{self.env['CATALOG_ORCHESTRATOR_GRPC_PORT']}"
        self.http_url = f"http://127.0.0.1:{self.env['CATALOG_ORCHESTRATOR_HTTP_PORT']}"
        self.channel = grpc.aio.insecure_channel(self.address)
        self.stub = catalog_pb2_grpc.CatalogServiceStub(self.channel)

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 90) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
            await asyncio.wait_for(self.process.wait(), timeout_s)
        await self.channel.close()
        return self.process.returncode or 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def orchestrator_env(
    workdir: Path, manager_address: str, runner_address: str, **overrides: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "CATALOG_ORCHESTRATOR_HOST": "127.0.0.1",
        "CATALOG_ORCHESTRATOR_GRPC_PORT": str(free_port()),
        "CATALOG_ORCHESTRATOR_HTTP_PORT": str(free_port()),
        "DBOS_SYSTEM_DATABASE_URL": f"sqlite:///{workdir}/dbos.sqlite",
        "CATALOG_EXECUTOR_ID": f"test-{workdir.name}",
        "CATALOG_SANDBOX_MANAGERS": manager_address,
        "CATALOG_AGENT_RUNNER": runner_address,
        "CATALOG_PROMPTS_DIR": str(REPO / "prompts"),
        "CATALOG_SECRET_KEY": Fernet.generate_key().decode(),
        "CATALOG_ACQUIRE_WAIT_S": "300",
        "CATALOG_SHUTDOWN_GRACE_S": "5",
        "CATALOG_STORAGE_RETRY_S": "3",
        "CATALOG_FILE_ROOTS": str(workdir),  # the tests' file:// prefixes live in their tmp_path
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
    }
    env.pop("ANTHROPIC_API_KEY", None)
    env.update(overrides)
    return env


async def start_orchestrator(env: dict[str, str], log_path: Path) -> Orchestrator:
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.orchestrator", env=env, cwd=REPO, stderr=log
        )
    orchestrator = Orchestrator(env, process, log_path)
    try:
        await wait_serving(orchestrator.address, process, timeout_s=60, name="the orchestrator")
    except RuntimeError as exc:
        await orchestrator.stop(signal.SIGKILL)
        raise RuntimeError(f"the orchestrator did not start: {orchestrator.log()[-2000:]}") from exc
    except BaseException:
        await orchestrator.stop(signal.SIGKILL)
        raise
    return orchestrator


def prompt_override(agent: str, yaml_text: str) -> dict[str, str]:
    return {f"CATALOG_PROMPT_{agent.upper()}_B64": base64.b64encode(yaml_text.encode()).decode()}


async def watch(
    stub: catalog_pb2_grpc.CatalogServiceStub, catalog_id: str
) -> list[pb.WatchCatalogResponse]:
    return [
        event
        async for event in stub.WatchCatalog(
            pb.WatchCatalogRequest(catalog_id=catalog_id), timeout=600
        )
    ]


async def wait_finished(
    stub: catalog_pb2_grpc.CatalogServiceStub, catalog_id: str, timeout_s: float = 600
) -> pb.Catalog:
    """Poll GetCatalog until the run is over."""
    done = (pb.CATALOG_STATUS_SUCCEEDED, pb.CATALOG_STATUS_FAILED, pb.CATALOG_STATUS_CANCELLED)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        catalog = (await stub.GetCatalog(pb.GetCatalogRequest(catalog_id=catalog_id))).catalog
        if catalog.status in done:
            return catalog
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{catalog_id} still {pb.CatalogStatus.Name(catalog.status)}")
        await asyncio.sleep(0.3)


# --- fixtures (re-exported by conftest.py) ----------------------------------------------------
StartOrchestrator = Callable[..., Awaitable[Orchestrator]]


@pytest.fixture(scope="module")
async def manager(docker_image: str) -> AsyncIterator[RunningManager]:
    """One Docker sandbox manager for a module's tests: 2 warm sandboxes, at most 4."""
    running = await start_manager_process(docker_image, min_warm="2", max_size="4", plane=PLANE)
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def offline_runner(manager: RunningManager) -> AsyncIterator[Runner]:
    runner = await start_runner(manager.address)
    yield runner
    await runner.stop()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def claude_runner(manager: RunningManager, fake: FakeAnthropic) -> AsyncIterator[Runner]:
    """A runner that talks to the fake Anthropic API instead of running offline."""
    runner = await start_runner(manager.address, fake.base_url)
    yield runner
    await runner.stop()


@pytest.fixture
async def start(
    tmp_path: Path, manager: RunningManager, offline_runner: Runner
) -> AsyncIterator[StartOrchestrator]:
    """Start orchestrators (the offline runner unless another address is given); a second
    start with the same workdir reuses its system database and executor id."""
    started: list[Orchestrator] = []
    secret_key = Fernet.generate_key().decode()  # one per test: a restart must open its seals

    async def start_one(
        runner_address: str = "", manager_address: str = "", **overrides: str
    ) -> Orchestrator:
        env = orchestrator_env(
            tmp_path,
            manager_address or manager.address,
            runner_address or offline_runner.address,
            **{"CATALOG_SECRET_KEY": secret_key, **overrides},
        )
        orchestrator = await start_orchestrator(env, tmp_path / "orchestrator.log")
        started.append(orchestrator)
        return orchestrator

    yield start_one
    for orchestrator in started:
        await orchestrator.stop()
