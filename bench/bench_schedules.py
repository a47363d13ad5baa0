"""Schedules and webhooks, over BENCH_SCHEDULE_TICKS (default 60) ticks of a 1-second schedule
fired by two orchestrator replicas on one PostgreSQL system database:

- `schedule.fire_lag_p95_ms` (goal < 1,000, Temporal's bound): from a tick's time to the
  start of its run's workflow (DBOS's `started_at_epoch_ms`, when a replica dequeued it).
  DBOS delays each tick by a random jitter of up to a tenth of the interval (at most 10 s) so
  replicas do not fire at once: up to 100 ms of this figure at 1 s; a schedule every minute
  would add up to 6 s.
- `webhook.delivery_p50_ms`: from a run's end (its workflow's last update in DBOS) to the
  local receiver's 2xx, over every run (each fails in about a second: no sandbox manager is
  there, as in tests/orchestrator/test_schedules.py).
- `schedule.exactly_once` (goal exactly 1.0): runs started against the ticks of the cron
  between the first and the last tick fired. A lost tick makes it less than 1, a tick run
  twice more.

The replicas are `python -m services.orchestrator` subprocesses; the system database is a
fresh PostgreSQL database on 127.0.0.1:5432, dropped at the end. Takes about two minutes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from benchlib import Service, emit, free_port
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc
from cryptography.fernet import Fernet
from standardwebhooks import Webhook as Verifier

REPO = Path(__file__).resolve().parents[1]
PYTHONPATH = os.pathsep.join([str(REPO), str(REPO / "protos"), str(REPO / "sandbox")])
TICKS = int(os.environ.get("BENCH_SCHEDULE_TICKS", "60"))
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
DRAIN_S = 30  # at most, after the pause: the last runs end and their deliveries land
_ENDED = {"SUCCESS", "ERROR", "CANCELLED"}


class Receiver:
    """Verifies each delivery's signature and notes when it answered 2xx, by catalog id."""

    def __init__(self) -> None:
        self.answered_ms: dict[str, float] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        payload = Verifier(SECRET).verify(await request.text(), dict(request.headers))
        self.answered_ms.setdefault(payload["data"]["catalog_id"], time.time() * 1000)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def replica_env(work: str, system_db: str, secret_key: str, name: str) -> dict[str, str]:
    return {
        **os.environ,
        "CATALOG_ORCHESTRATOR_HOST": "127.0.0.1",
        "CATALOG_ORCHESTRATOR_GRPC_PORT": str(free_port()),
        "CATALOG_ORCHESTRATOR_HTTP_PORT": str(free_port()),
        "DBOS_SYSTEM_DATABASE_URL": system_db,
        "CATALOG_EXECUTOR_ID": f"bench-{name}",
        "CATALOG_SANDBOX_MANAGERS": f"127.0.0.1:{free_port()}",  # nobody: runs fail fast
        "CATALOG_AGENT_RUNNER": f"127.0.0.1:{free_port()}",
        "CATALOG_SECRET_KEY": secret_key,
        "CATALOG_ACQUIRE_WAIT_S": "1",
        "CATALOG_SCHEDULE_MIN_INTERVAL_S": "1",
        "CATALOG_WEBHOOK_SECRET": SECRET,
        "CATALOG_WEBHOOK_ALLOW_HTTP": "1",
        "CATALOG_WEBHOOK_ALLOW_PRIVATE": "1",
        "CATALOG_FILE_ROOTS": work,
        "CATALOG_PROMPTS_DIR": str(REPO / "prompts"),
        "PYTHONPATH": PYTHONPATH,
    }


async def fire(address: str, work: str, hook_url: str) -> tuple[str, float]:
    """Create the schedule, let it tick TICKS times, pause it; returns its id and when the
    pause was answered (ms since the epoch)."""
    import grpc

    async with grpc.aio.insecure_channel(address) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        request = pb.StartCatalogRequest(
            db_conn_string="postgresql://reader:pw@127.0.0.1:5432/nowhere",
            tables=["t"],
            s3_prefix=f"file://{work}/out",
        )
        schedule = pb.Schedule(
            cron="* * * * * *",
            overlap=pb.SCHEDULE_OVERLAP_ALLOW,
            request=request,
            webhooks=[pb.Webhook(url=hook_url)],
        )
        made = await stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule))
        schedule_id = made.schedule.schedule_id
        await asyncio.sleep(TICKS + 0.5)
        await stub.PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule_id))
        return schedule_id, time.time() * 1000


def runs_of(system_db: str, schedule_id: str) -> tuple[list[Any], int]:
    """The schedule's runs (id, executor, started ms, updated ms, status), and its ticks."""
    with psycopg.connect(system_db) as db:
        runs = db.execute(
            "SELECT workflow_uuid, executor_id, started_at_epoch_ms, updated_at, status"
            " FROM dbos.workflow_status WHERE name = 'catalog_workflow' AND workflow_uuid LIKE %s",
            (f"{schedule_id}@%",),
        ).fetchall()
        (ticks,) = db.execute(
            "SELECT count(*) FROM dbos.workflow_status"
            " WHERE name = 'schedule_tick' AND workflow_uuid LIKE %s",
            (f"sched-{schedule_id}-%",),
        ).fetchone() or (0,)
    return runs, int(ticks)


async def drained(system_db: str, schedule_id: str, receiver: Receiver) -> tuple[list[Any], int]:
    """runs_of, once every run has ended and been delivered (or DRAIN_S has passed)."""
    deadline = time.monotonic() + DRAIN_S
    while True:
        runs, ticks = runs_of(system_db, schedule_id)
        done = all(r[4] in _ENDED and r[0] in receiver.answered_ms for r in runs)
        if done or time.monotonic() > deadline:
            return runs, ticks
        await asyncio.sleep(0.5)


def tick_ms(run_id: str) -> float:
    return datetime.fromisoformat(run_id.partition("@")[2]).timestamp() * 1000


def report(
    runs: list[Any], ticks_fired: int, answered_ms: dict[str, float], paused_ms: float
) -> None:
    tick_times = sorted(tick_ms(r[0]) for r in runs)
    window = round((tick_times[-1] - tick_times[0]) / 1000) + 1 if tick_times else 0
    lags = sorted(r[2] - tick_ms(r[0]) for r in runs if r[2] is not None)
    deliveries = [answered_ms[r[0]] - r[3] for r in runs if r[0] in answered_ms]
    p95 = lags[max(0, round(0.95 * len(lags)) - 1)] if lags else float("nan")
    emit("schedule.fire_lag_p95_ms", p95, "ms")
    emit("webhook.delivery_p50_ms", statistics.median(deliveries) if deliveries else -1, "ms")
    emit("schedule.exactly_once", len(runs) / window if window else 0.0, "ratio")
    by_executor: dict[str, int] = {}
    for run in runs:
        by_executor[run[1]] = by_executor.get(run[1], 0) + 1
    print(
        f"bench_schedules: {len(runs)} runs for {window} ticks of the cron "
        f"({ticks_fired} tick workflows, {len({r[0] for r in runs})} distinct runs), "
        f"started by {by_executor}, {sum(t > paused_ms + 1000 for t in tick_times)} of them "
        f"for ticks over 1 s after the pause; fire lag median {statistics.median(lags):.0f} ms, "
        f"max {lags[-1]:.0f} ms; {len(deliveries)} deliveries; "
        f"load average {os.getloadavg()[0]:.2f}",
        file=sys.stderr,
    )


async def main() -> None:
    name = f"bench_sched_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    system_db = f"postgresql://postgres@127.0.0.1:5432/{name}"
    receiver = Receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-schedules-") as work:
            await receiver.start()
            await run_replicas(work, system_db, receiver)
    finally:
        await receiver.stop()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def run_replicas(work: str, system_db: str, receiver: Receiver) -> None:
    secret_key = Fernet.generate_key().decode()
    replicas = []
    for name in ("a", "b"):
        env = replica_env(work, system_db, secret_key, name)
        log = (Path(work) / f"{name}.log").open("w+b")
        port = int(env["CATALOG_ORCHESTRATOR_GRPC_PORT"])
        replicas.append(Service("services.orchestrator", env, port, log))
    try:
        for replica in replicas:  # one after the other: both migrate the same database
            await replica.start()
            await replica.wait_serving()
        schedule_id, paused_ms = await fire(replicas[0].address, work, receiver.url)
        runs, ticks = await drained(system_db, schedule_id, receiver)
    except BaseException:
        for replica in replicas:
            print(f"{replica.module}:", *replica.tail(), sep="\n", file=sys.stderr)
        raise
    finally:
        for replica in replicas:
            await replica.stop()
            replica.log.close()
    report(runs, ticks, receiver.answered_ms, paused_ms)


if __name__ == "__main__":
    asyncio.run(main())
