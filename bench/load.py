"""Load test (`make load`): many catalogs at once against two replicas and two managers.

Starts on free ports two sandbox managers (Docker backend unless LOAD_BACKEND=process; pools
of LOAD_POOL sandboxes, 4, half kept warm), one agent runner (offline: no ANTHROPIC_API_KEY)
and two orchestrators on one PostgreSQL system database made for the run (queue concurrency
4 each, CATALOG_SANDBOX_MANAGERS naming both managers). The catalogued table is a 200-row
PostgreSQL table in a schema of its own, read by a role that may only read it. Then LOAD_COUNT
catalogs (200) are submitted, alternately to each replica, spread evenly over LOAD_SUBMIT_S
(20 s), each with the agents LOAD_AGENTS (catalog) and a file:// prefix, and waited for
(LOAD_TIMEOUT_S, 3600 s). Figures, one JSON line each:

- load.catalogs_per_min: runs finished per minute, first submit to last finish.
- load.p95_s: the 95th percentile of a run's time, its DBOS row's creation to its end.
- load.failed_runs: runs that ended FAILED (goal 0; their codes go to stderr).
- load.lost_runs: runs submitted but not finished by the timeout, or missing in DBOS (goal 0).
- load.leaked_containers: leases still held once every run ended, plus containers of either
  manager left after both stopped (goal 0).
- load.spread_min_share: the smaller replica's share of the runs, and of the leases between
  the managers (0.5 is even), as load.replica_share and load.manager_share.

Everything made (database, schema, role, folder, containers) is removed at the end.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from benchlib import Service, emit, free_port
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc, sandbox_pb2, sandbox_pb2_grpc
from cryptography.fernet import Fernet

from services.common.control_plane import ControlPlane

REPO = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("CATALOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
COUNT = int(os.environ.get("LOAD_COUNT", "200"))
SUBMIT_S = float(os.environ.get("LOAD_SUBMIT_S", "20"))
POOL = int(os.environ.get("LOAD_POOL", "4"))
BACKEND = os.environ.get("LOAD_BACKEND", "docker")
AGENTS = [a for a in os.environ.get("LOAD_AGENTS", "catalog").split(",") if a]
TIMEOUT_S = float(os.environ.get("LOAD_TIMEOUT_S", "3600"))
IMAGE = os.environ.get("CATALOG_SANDBOX_IMAGE", "catalog-agents/sandbox:latest")
PLANE = ControlPlane(service_token=secrets.token_urlsafe(24))
TAG = uuid.uuid4().hex[:8]


def made_in_postgres() -> tuple[str, str, str]:
    """(system database URL, reader URL, schema): a database for DBOS, a table, a reader."""
    database, schema, role = f"catalog_load_{TAG}", f"load_{TAG}", f"load_reader_{TAG}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(
            f"CREATE TABLE {schema}.orders AS SELECT g AS id, g % 17 AS customer_id,"
            " g * 1.5 AS amount, now() - g * interval '1 hour' AS placed_at"
            " FROM generate_series(1, 200) AS g"
        )
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    base = ADMIN_URL.rsplit("/", 1)[0]
    reader = base.replace("postgres@", f"{role}@", 1) + "/postgres"
    return f"{base}/{database}", reader, schema


def remove_from_postgres() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "catalog_load_{TAG}" WITH (FORCE)')
        admin.execute(f"DROP SCHEMA IF EXISTS load_{TAG} CASCADE")
        admin.execute(f"DROP ROLE IF EXISTS load_reader_{TAG}")


def manager_env(port: int, manager_id: str) -> dict[str, str]:
    return {
        **os.environ,
        "CATALOG_SANDBOX_MANAGER_ID": manager_id,
        "CATALOG_SANDBOX_HOST": "127.0.0.1",
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "CATALOG_SANDBOX_PORT": str(port),
        "CATALOG_SANDBOX_METRICS_PORT": "0",
        "CATALOG_SANDBOX_BACKEND": BACKEND,
        "CATALOG_SANDBOX_IMAGE": IMAGE,
        "CATALOG_SANDBOX_MIN_WARM": str(max(1, POOL // 2)),
        "CATALOG_SANDBOX_MAX_SIZE": str(POOL),
        "CATALOG_SANDBOX_MEMORY_BYTES": str(768 * 2**20),
    }


def runner_env(port: int, managers: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CATALOG_AGENT_STATE_DIR": "",
        "CATALOG_AGENT_HOST": "127.0.0.1",
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "CATALOG_AGENT_PORT": str(port),
        "CATALOG_AGENT_METRICS_PORT": "0",
        "CATALOG_SANDBOX_MANAGERS": managers,
    }
    env.pop("ANTHROPIC_API_KEY", None)  # no key: the offline agent
    return env


def orchestrator_env(
    port: int, name: str, system_db: str, managers: str, runner: str, folder: Path, key: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "CATALOG_ORCHESTRATOR_HOST": "127.0.0.1",
        "CATALOG_ORCHESTRATOR_GRPC_PORT": str(port),
        "CATALOG_ORCHESTRATOR_HTTP_PORT": str(free_port()),
        "DBOS_SYSTEM_DATABASE_URL": system_db,
        "CATALOG_EXECUTOR_ID": f"load-{name}-{TAG}",
        "CATALOG_QUEUE_CONCURRENCY": "4",
        "CATALOG_SANDBOX_MANAGERS": managers,
        "CATALOG_AGENT_RUNNER": runner,
        "CATALOG_PROMPTS_DIR": str(REPO / "prompts"),
        "CATALOG_SECRET_KEY": key,
        "CATALOG_FILE_ROOTS": str(folder),
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "CATALOG_ACQUIRE_WAIT_S": str(TIMEOUT_S),
    }
    env.pop("ANTHROPIC_API_KEY", None)
    return env


ROWS_SQL = (
    "SELECT workflow_uuid, status, created_at, updated_at, executor_id"
    " FROM dbos.workflow_status WHERE name = 'catalog_workflow'"
)


def dbos_rows(system_db: str) -> dict[str, tuple[str, int, int, str]]:
    with psycopg.connect(system_db) as db:
        rows = db.execute(ROWS_SQL).fetchall()
    return {r[0]: (r[1], int(r[2]), int(r[3]), r[4]) for r in rows}


async def submit_all(
    stubs: list[catalog_pb2_grpc.CatalogServiceAsyncStub], reader: str, schema: str, out: Path
) -> tuple[list[str], float]:
    """COUNT starts spread over SUBMIT_S, alternately to each replica: (ids, first submit)."""
    first = time.time()
    gap = SUBMIT_S / max(COUNT, 1)

    async def one(n: int) -> str:
        await asyncio.sleep(n * gap)
        request = pb.StartCatalogRequest(
            db_conn_string=reader,
            tables=[f"{schema}.orders"],
            s3_prefix=f"file://{out}/run-{n}",
            agents=AGENTS,
        )
        reply = await stubs[n % len(stubs)].StartCatalog(request, timeout=120)
        return reply.catalog_id

    ids = await asyncio.gather(*(one(n) for n in range(COUNT)))
    took = time.time() - first
    print(f"load: {COUNT} submitted in {took:.1f} s", file=sys.stderr)
    return list(ids), first


async def wait_all(system_db: str, ids: list[str]) -> dict[str, tuple[str, int, int, str]]:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        rows = dbos_rows(system_db)
        done = [i for i in ids if rows.get(i, ("",))[0] in ("SUCCESS", "ERROR")]
        if len(done) == len(ids) or time.monotonic() > deadline:
            return rows
        print(f"load: {len(done)}/{len(ids)} finished", file=sys.stderr, flush=True)
        await asyncio.sleep(5)


async def leases_held(addresses: list[str]) -> int:
    held = 0
    for address in addresses:
        async with PLANE.channel(address) as channel:
            stub = sandbox_pb2_grpc.SandboxManagerServiceStub(channel)
            listed = await stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest(), timeout=30)
            held += listed.pool.leased
    return held


def containers_of(manager_id: str) -> int:
    if BACKEND != "docker":
        return 0
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=catalog-agents.manager={manager_id}"],
        capture_output=True,
        text=True,
    )
    return len(listed.stdout.split())


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0


def share(counts: list[int]) -> float:
    return min(counts) / sum(counts) if sum(counts) else 0.0


async def failed_codes(stub: catalog_pb2_grpc.CatalogServiceAsyncStub, failed: list[str]) -> None:
    for catalog_id in failed[:20]:
        got = await stub.GetCatalog(pb.GetCatalogRequest(catalog_id=catalog_id), timeout=30)
        error = got.catalog.error
        print(f"load: {catalog_id} FAILED {error.code}: {error.message}", file=sys.stderr)


async def measure(folder: Path, system_db: str, reader: str, schema: str, logs: list[Path]) -> None:
    manager_ids = [f"load-sm{n}-{TAG}" for n in (1, 2)]
    ports = [free_port(), free_port()]
    addresses = [f"127.0.0.1:{p}" for p in ports]
    managers_list = ",".join(addresses)
    services: list[Service] = []
    leaked_leases = 0
    try:
        for manager_id, port, log in zip(manager_ids, ports, logs, strict=False):
            services.append(
                Service(
                    "services.sandbox_manager", manager_env(port, manager_id), port, log.open("w+b")
                )
            )
        runner_port = free_port()
        services.append(
            Service(
                "services.agent_runner",
                runner_env(runner_port, managers_list),
                runner_port,
                (folder / "runner.log").open("w+b"),
            )
        )
        key = Fernet.generate_key().decode()
        for name in ("a", "b"):
            port = free_port()
            env = orchestrator_env(
                port, name, system_db, managers_list, f"127.0.0.1:{runner_port}", folder, key
            )
            services.append(
                Service(
                    "services.orchestrator", env, port, (folder / f"orch-{name}.log").open("w+b")
                )
            )
        for service in services:  # one after another: the orchestrators' DBOS set-up races
            await service.start()
            await service.wait_serving()
        channels = [PLANE.channel(s.address) for s in services[3:]]
        stubs = [catalog_pb2_grpc.CatalogServiceStub(c) for c in channels]
        ids, first = await submit_all(stubs, reader, schema, folder / "out")
        rows = await wait_all(system_db, ids)
        report(ids, rows, first, [log.read_text(errors="replace") for log in logs])
        failed = [i for i in ids if rows.get(i, ("",))[0] == "ERROR"]
        await failed_codes(stubs[0], failed)
        leaked_leases = await leases_held(addresses)
        for channel in channels:
            await channel.close()
    finally:
        for service in reversed(services):
            await service.stop()
    left = sum(containers_of(m) for m in manager_ids)
    emit("load.leaked_containers", leaked_leases + left, "count")


def report(
    ids: list[str], rows: dict[str, tuple[str, int, int, str]], first: float, logs: list[str]
) -> None:
    finished = [rows[i] for i in ids if rows.get(i, ("",))[0] in ("SUCCESS", "ERROR")]
    last_end = max((r[2] for r in finished), default=int(first * 1000)) / 1000
    emit("load.count", len(ids), "runs")
    emit("load.catalogs_per_min", len(finished) / max(last_end - first, 1e-9) * 60, "runs/min")
    emit("load.p95_s", p95([(r[2] - r[1]) / 1000 for r in finished]), "s")
    emit("load.failed_runs", sum(1 for r in finished if r[0] == "ERROR"), "count")
    emit("load.lost_runs", len(ids) - len(finished), "count")
    by_replica = [sum(1 for r in finished if r[3].startswith(f"load-{n}-")) for n in "ab"]
    emit("load.replica_share", share(by_replica), "fraction")
    leases = [log.count('"message": "lease acquired"') for log in logs]
    emit("load.manager_share", share(leases), "fraction")


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="catalog-load-") as name:
        folder = Path(name)
        logs = [folder / "sm1.log", folder / "sm2.log"]
        try:
            system_db, reader, schema = made_in_postgres()
            await measure(folder, system_db, reader, schema, logs)
        finally:
            remove_from_postgres()


if __name__ == "__main__":
    asyncio.run(main())
