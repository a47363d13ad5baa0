"""The fault suite: each case breaks one real part mid-run and checks what the README promises.

Every case ends with the run SUCCEEDED or FAILED with a documented code, and then: no lease
left (a killed holder's ends with its time to live at the latest), no container left after the
manager stops, each page written once and with its JSON, and the run finished in DBOS. Each
case records its outcome in docs/chaos.md's table. `make chaos` runs them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import psycopg
import pytest
from catalog.v1.catalog_pb2_grpc import CatalogServiceStub

from services.common.ports import free_port
from tests.chaos.conftest import Stack
from tests.chaos.harness import (
    MotoS3,
    Service,
    check_not_lost,
    check_outcome,
    check_pages,
    file_keys,
    no_lease_left,
    restart_manager,
    terminate_backends,
)
from tests.fakes.anthropic_server import Reply, tool_use
from tests.orchestrator.stack import REPO, run_rows

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
S3_DOWN_S = float(os.environ.get("CATALOG_CHAOS_S3_DOWN_S", "30"))
RECOVERY_AFTER_S = float(os.environ.get("CATALOG_CHAOS_RECOVERY_AFTER_S", "10"))
OUTCOMES: dict[str, str] = {}  # case -> outcome, printed at the end (conftest)
FIGURES: dict[str, float] = {}  # name -> value, printed as bench lines at the end


def submit(text: str) -> Reply:
    return Reply(tool_use("submit_html", {"content": f"<h1>{text}</h1>"}))


class Gate:
    """A model call that waits until the case has broken something, then submits."""

    def __init__(self, text: str = "after the fault") -> None:
        self.called, self.open = asyncio.Event(), asyncio.Event()
        self.text = text

    async def __call__(self, body: dict[str, Any]) -> Reply:
        self.called.set()
        await self.open.wait()
        return submit(self.text)

    async def reached(self) -> None:
        await asyncio.wait_for(self.called.wait(), 180)


async def check_all(stack: Stack, catalog_id: str, keys: Callable[[], list[str]]) -> str:
    final = await stack.finished(catalog_id)
    outcome = check_outcome(final)
    await no_lease_left(stack.manager)
    check_pages(keys(), final)
    check_not_lost(stack.system_database, catalog_id)
    return outcome


def in_folder(stack: Stack) -> tuple[str, Callable[[], list[str]]]:
    out = stack.workdir / "out"
    return f"file://{out}", lambda: file_keys(out) if out.exists() else []


def in_bucket(s3: MotoS3) -> tuple[str, Callable[[], list[str]]]:
    bucket = f"chaos-{uuid.uuid4().hex[:10]}"
    s3.client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/runs", lambda: s3.keys(bucket)


def record(case: str, outcome: str) -> None:
    OUTCOMES[case] = outcome


async def test_manager_killed_mid_cell(stack: Stack) -> None:
    cell_sent = asyncio.Event()

    async def long_cell(body: dict[str, Any]) -> Reply:
        cell_sent.set()
        return Reply(tool_use("execute_python", {"code": "import time\ntime.sleep(20)\n1"}))

    stack.fake.script(long_cell, *[submit("after the manager died")] * 4)
    prefix, keys = in_folder(stack)
    catalog_id = await stack.start(prefix)
    await asyncio.wait_for(cell_sent.wait(), 180)
    await asyncio.sleep(3)  # the cell is running in its sandbox
    await stack.manager.stop(signal.SIGKILL)
    await restart_manager(stack.manager)  # same id: it removes the dead one's sandboxes
    record("manager killed mid-cell", await check_all(stack, catalog_id, keys))


async def test_runner_killed_mid_turn(stack: Stack) -> None:
    gate = Gate()
    stack.fake.script(gate, *[submit("after the runner died")] * 3)
    prefix, keys = in_folder(stack)
    catalog_id = await stack.start(prefix)
    await gate.reached()
    await stack.runner.kill()
    await stack.runner.start()  # same port and state folder
    gate.open.set()
    record("runner killed mid-turn", await check_all(stack, catalog_id, keys))


async def test_orchestrator_killed_mid_agent(stack: Stack) -> None:
    gate = Gate()
    stack.fake.script(gate, *[submit("after the orchestrator died")] * 3)
    prefix, keys = in_folder(stack)
    catalog_id = await stack.start(prefix)
    await gate.reached()
    await stack.orchestrator.kill()
    await stack.orchestrator.start()  # same executor id: DBOS recovers the run
    gate.open.set()
    record("orchestrator killed mid-agent", await check_all(stack, catalog_id, keys))


async def test_orchestrator_killed_during_the_page_write(stack: Stack, s3: MotoS3) -> None:
    gate = Gate()
    stack.fake.script(gate, *[submit("after the orchestrator died")] * 3)
    prefix, keys = in_bucket(s3)
    catalog_id = await stack.start(prefix)
    await gate.reached()
    s3.freeze()  # the page's PUT hangs: the kill lands inside the write
    gate.open.set()
    await asyncio.sleep(4)
    await stack.orchestrator.kill()
    s3.thaw()
    await stack.orchestrator.start()
    record("orchestrator killed during the page write", await check_all(stack, catalog_id, keys))


async def test_a_replica_killed_mid_agent_is_taken_over_by_the_other(stack: Stack) -> None:
    """recovery.takeover_s: from the kill -9 to the run resuming under the survivor's id."""
    gate = Gate()
    stack.fake.script(gate, *[submit("finished by the survivor")] * 3)
    first = stack.orchestrator
    await first.kill(signal.SIGTERM)  # again, with the other replica and a short threshold
    first.env["CATALOG_RECOVERY_AFTER_S"] = str(RECOVERY_AFTER_S)
    await first.start()
    second = Service(
        first.module,
        {
            **first.env,
            "CATALOG_EXECUTOR_ID": "chaos-survivor",
            "CATALOG_ORCHESTRATOR_GRPC_PORT": str(free_port()),
            "CATALOG_ORCHESTRATOR_HTTP_PORT": str(free_port()),
        },
        "",
        stack.workdir / "survivor.log",
    )
    second.address = f"127.0.0.1:{second.env['CATALOG_ORCHESTRATOR_GRPC_PORT']}"
    await second.start()
    try:
        prefix, keys = in_folder(stack)
        catalog_id = await stack.start(prefix)
        await gate.reached()
        ((_, _, owner),) = run_rows(stack.system_database)
        dead, survivor = (
            (first, second)
            if owner == first.env["CATALOG_EXECUTOR_ID"]
            else (
                second,
                first,
            )
        )
        killed_at = time.monotonic()
        await dead.kill()
        survivor_id = survivor.env["CATALOG_EXECUTOR_ID"]
        for _ in range(int((RECOVERY_AFTER_S + 60) * 10)):
            if run_rows(stack.system_database)[0][2] == survivor_id:
                break
            await asyncio.sleep(0.1)
        FIGURES["recovery.takeover_s"] = took = time.monotonic() - killed_at
        assert took < RECOVERY_AFTER_S + 10, took
        gate.open.set()
        async with grpc.aio.insecure_channel(survivor.address) as channel:
            stack.stub = CatalogServiceStub(channel)
            outcome = await check_all(stack, catalog_id, keys)
        record("orchestrator replica killed mid-agent", outcome)
    finally:
        gate.open.set()
        await second.kill(signal.SIGTERM)


async def test_postgres_sessions_of_dbos_terminated_mid_run(stack: Stack) -> None:
    """A restart of PostgreSQL as DBOS sees it: every session of its database cut at once.
    (Restarting the server itself would break the other tests sharing it.)"""
    gate = Gate()
    stack.fake.script(gate, *[submit("after the database restart")] * 3)
    prefix, keys = in_folder(stack)
    catalog_id = await stack.start(prefix)
    await gate.reached()
    database = stack.system_database.rsplit("/", 1)[1]
    cut = terminate_backends(ADMIN_URL, database=database)
    assert cut > 0
    gate.open.set()
    await asyncio.sleep(1)
    terminate_backends(ADMIN_URL, database=database)  # again while the run goes on
    record("PostgreSQL sessions of DBOS terminated", await check_all(stack, catalog_id, keys))


async def test_s3_stopped_then_started_again(stack: Stack, s3: MotoS3) -> None:
    gate = Gate()
    stack.fake.script(gate, *[submit("after the store came back")] * 3)
    prefix, keys = in_bucket(s3)
    catalog_id = await stack.start(prefix)
    await gate.reached()
    s3.freeze()
    gate.open.set()
    await asyncio.sleep(S3_DOWN_S)
    s3.thaw()
    record(f"S3 stopped for {S3_DOWN_S:.0f} s", await check_all(stack, catalog_id, keys))


async def test_the_catalogued_database_goes_away_mid_profile(stack: Stack) -> None:
    url, schema = stack.reader
    role = url.split("://", 1)[1].split("@", 1)[0].split(":")[0]

    async def cut_then_profile(body: dict[str, Any]) -> Reply:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"ALTER ROLE {role} NOLOGIN")
        terminate_backends(ADMIN_URL, role=role)
        code = f"import catalog_toolkit\ncatalog_toolkit.profile_table(con, '{schema}.orders')"
        return Reply(tool_use("execute_python", {"code": code}))

    stack.fake.script(cut_then_profile, *[submit("profiled what it could")] * 4)
    prefix, keys = in_folder(stack)
    catalog_id = await stack.start(prefix)
    try:
        outcome = await check_all(stack, catalog_id, keys)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"ALTER ROLE {role} LOGIN")
    record("the catalogued database goes away mid-profile", outcome)


@pytest.mark.dockerd_restart
async def test_dockerd_restarted_under_a_running_pool(stack: Stack) -> None:
    cell_sent = asyncio.Event()

    async def long_cell(body: dict[str, Any]) -> Reply:
        cell_sent.set()
        return Reply(tool_use("execute_python", {"code": "import time\ntime.sleep(20)\n1"}))

    stack.fake.script(long_cell, *[submit("after dockerd restarted")] * 4)
    prefix, keys = in_folder(stack)
    catalog_id = await stack.start(prefix)
    await asyncio.wait_for(cell_sent.wait(), 180)
    await asyncio.sleep(3)
    await restart_dockerd()
    record("dockerd restarted under a running pool", await check_all(stack, catalog_id, keys))


async def restart_dockerd() -> None:
    await asyncio.to_thread(_restart_dockerd)


def _restart_dockerd() -> None:
    """systemd's restart where there is one, else stop dockerd and start it as `make` does."""
    if shutil.which("systemctl") and _run(["systemctl", "is-active", "--quiet", "docker"]) == 0:
        assert _run(["systemctl", "restart", "docker"]) == 0
        return
    pids = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    for pid in pids:
        os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _run(["pidof", "dockerd"]) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _run(["bash", str(REPO / "scripts" / "ensure_docker.sh")]) == 0


def _run(argv: list[str]) -> int:
    return subprocess.run(argv, capture_output=True).returncode
