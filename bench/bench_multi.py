"""Several databases per run: one run over three sources against three one-source runs.

The same three tables (`customers` 2,000 rows, `orders` 20,000, `payments` 10,000) in a
PostgreSQL database of their own, a MariaDB database of their own (each read by a user with a
password) and a DuckDB file. On free ports: a sandbox manager (Docker, the sandbox image, the
DuckDB folder mounted read only, 2 warm sandboxes), an agent runner (offline: no
ANTHROPIC_API_KEY) and an orchestrator (SQLite system database, pages under a temporary
folder), each a `python -m` subprocess. A warm-up run first; then, ROUNDS times, each
one-source run and the three-source run, each after a pause that lets the pool refill, each
timed from StartCatalog to WatchCatalog's final event, with the default pipeline; each figure
is the median over the rounds (a run takes seconds, so one is noisy on a shared machine):

- multi.one_source_{postgres,mariadb,duckdb}_s: each one-source run;
- peer.three_one_source_runs_s: their sum, what three separate runs cost;
- multi.three_sources_s: the one run over the three sources;
- multi.overhead_x: the three-source run over the sum. Goal: at most 0.6 (the sources are
  profiled concurrently in the sandbox, and the run pays for one sandbox, one proof round and
  one agent loop).

Prints one JSON object a line: {"name", "value", "unit"}. The databases, users, folder and
subprocesses are removed or stopped at the end, also on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
from bench_agent import PLANE, runner_env
from bench_pipeline import orchestrator_env
from benchlib import Service, emit, free_port
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "CATALOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IMAGE = os.environ.get("CATALOG_SANDBOX_IMAGE", "catalog-agents/sandbox:latest")
TABLES = ["customers", "orders", "payments"]
CUSTOMERS, ORDERS, PAYMENTS = 2_000, 20_000, 10_000
PASSWORD = f"bench-{uuid.uuid4().hex[:12]}"
ROUNDS = 3
REFILL_S = 3.0  # with 2 warm, the pool replaces the sandbox a run released meanwhile
RUN_TIMEOUT_S = 300.0

# The tables in each backend's SQL: {seq} is a row generator of 1..n as column g.
DDL = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL,"
    " country CHAR(2) NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
    " amount DECIMAL(10, 2) NOT NULL, status VARCHAR(10) NOT NULL, created_at TIMESTAMP NOT NULL)",
    "CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,"
    " amount DECIMAL(10, 2) NOT NULL, paid_at TIMESTAMP NOT NULL)",
]
FILL = [
    f"INSERT INTO customers SELECT g, CONCAT('Customer ', g), CASE WHEN g % 3 = 0 THEN 'DE'"
    f" WHEN g % 3 = 1 THEN 'FR' ELSE 'US' END FROM {{seq:{CUSTOMERS}}}",
    f"INSERT INTO orders SELECT g, 1 + g % {CUSTOMERS}, (g % 97) * 1.25 + 3, CASE WHEN g % 4 = 0"
    " THEN 'new' ELSE 'shipped' END, TIMESTAMP '2026-01-01 00:00:00' + {hours} FROM"
    f" {{seq:{ORDERS}}}",
    f"INSERT INTO payments SELECT g, 1 + g * 7 % {ORDERS}, (g % 89) * 1.5 + 2,"
    f" TIMESTAMP '2026-01-01 00:30:00' + {{hours}} FROM {{seq:{PAYMENTS}}}",
]


def fill_sql(backend: str) -> list[str]:
    seq = {
        "postgres": "generate_series(1, {n}) AS t(g)",
        "mysql": "(SELECT seq AS g FROM seq_1_to_{n}) AS t",
        "duckdb": "range(1, {n} + 1) AS t(g)",
    }[backend]
    hours = {
        "postgres": "g * INTERVAL '1 minute'",
        "mysql": "INTERVAL g MINUTE",
        "duckdb": "g * INTERVAL 1 MINUTE",
    }[backend]
    out = []
    for sql in FILL:
        for n in (CUSTOMERS, ORDERS, PAYMENTS):
            sql = sql.replace(f"{{seq:{n}}}", seq.format(n=n))
        out.append(sql.replace("{hours}", hours))
    return out


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    database, role = f"bench_multi_{uuid.uuid4().hex[:8]}", f"bench_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    try:
        with psycopg.connect(
            POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}", autocommit=True
        ) as db:
            for sql in [*DDL, *fill_sql("postgres")]:
                db.execute(sql)
            db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
            db.execute("ANALYZE")
        host = POSTGRES_URL.split("@", 1)[1].rsplit("/", 1)[0]
        yield f"postgresql://{role}:{PASSWORD}@{host}/{database}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f"DROP ROLE IF EXISTS {role}")


@contextlib.contextmanager
def mariadb_database() -> Iterator[str]:
    import MySQLdb

    database, user = f"bench_multi_{uuid.uuid4().hex[:8]}", f"bench_reader_{uuid.uuid4().hex[:8]}"
    db = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    cur = db.cursor()
    cur.execute(f"CREATE DATABASE `{database}`")
    try:
        cur.execute(f"USE `{database}`")
        for sql in [*DDL, *fill_sql("mysql")]:
            cur.execute(sql)
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        cur.execute(f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'")
        cur.execute("ANALYZE TABLE customers, orders, payments")
        cur.fetchall()
        db.commit()
        yield f"mysql://{user}:{PASSWORD}@127.0.0.1:3306/{database}"
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        db.close()


def duckdb_file(folder: Path) -> str:
    path = folder / "shop.duckdb"
    with duckdb.connect(str(path)) as db:
        for sql in [*DDL, *fill_sql("duckdb")]:
            db.execute(sql)
    path.chmod(0o644)
    return f"duckdb://{path}"


def manager_env(port: int, folder: Path, data: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CATALOG_SANDBOX_MANAGER_ID": f"bench-multi-{uuid.uuid4().hex[:8]}",
        "CATALOG_SANDBOX_HOST": "127.0.0.1",
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "CATALOG_SANDBOX_PORT": str(port),
        "CATALOG_SANDBOX_METRICS_PORT": "0",
        "CATALOG_SANDBOX_BACKEND": "docker",
        "CATALOG_SANDBOX_IMAGE": IMAGE,
        "CATALOG_SANDBOX_DATA_MOUNT": str(data),
        "CATALOG_SANDBOX_MIN_WARM": "2",
        "CATALOG_SANDBOX_MAX_SIZE": "3",
    }


async def one_run(
    stub: catalog_pb2_grpc.CatalogServiceAsyncStub, sources: dict[str, str], out: Path
) -> float:
    """Seconds from StartCatalog to the final event of a run over `sources` (name -> DSN)."""
    request = pb.StartCatalogRequest(
        sources=[
            pb.DatabaseSource(name=name, db_conn_string=dsn, tables=TABLES)
            for name, dsn in sources.items()
        ],
        s3_prefix=f"file://{out}",
    )
    started = time.perf_counter()
    reply = await stub.StartCatalog(request)
    final = pb.Catalog()
    watch = pb.WatchCatalogRequest(catalog_id=reply.catalog_id)
    async for event in stub.WatchCatalog(watch, timeout=RUN_TIMEOUT_S):
        if event.WhichOneof("event") == "final":
            final = event.final
    elapsed = time.perf_counter() - started
    if final.status != pb.CATALOG_STATUS_SUCCEEDED:
        raise RuntimeError(f"the run over {', '.join(sources)} did not succeed: {final.error}")
    return elapsed


async def measure(folder: Path, dsns: dict[str, str]) -> dict[str, list[float]]:
    """Each round's seconds: by source for its one-source run, and "three" for the run over
    every source."""
    ports = {name: free_port() for name in ("manager", "runner", "grpc")}
    logs = {name: (folder / f"{name}.log").open("w+b") for name in ("manager", "runner", "orch")}
    manager = Service(
        "services.sandbox_manager",
        manager_env(ports["manager"], folder, folder / "data"),
        ports["manager"],
        logs["manager"],
    )
    runner = Service(
        "services.agent_runner",
        runner_env(ports["runner"], manager.address),
        ports["runner"],
        logs["runner"],
    )
    env = orchestrator_env(folder, ports["grpc"], manager.address, runner.address)
    env["CATALOG_PROMPTS_DIR"] = str(REPO / "prompts")
    orchestrator = Service("services.orchestrator", env, ports["grpc"], logs["orch"])
    services = (manager, runner, orchestrator)
    try:
        for service in services:
            await service.start()
        await asyncio.gather(*(s.wait_serving() for s in services))
        import grpc

        async with grpc.aio.insecure_channel(orchestrator.address) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            await one_run(stub, dsns, folder / "warm-up")  # imports, first leases
            seconds: dict[str, list[float]] = {name: [] for name in [*dsns, "three"]}
            for _ in range(ROUNDS):
                for name, dsn in [*dsns.items(), ("three", "")]:
                    await asyncio.sleep(REFILL_S)
                    sources = dsns if name == "three" else {name: dsn}
                    seconds[name].append(await one_run(stub, sources, folder / name))
            return seconds
    except BaseException:
        for service in services:
            print(f"{service.module}'s last log lines:", *service.tail(), sep="\n", file=sys.stderr)
        raise
    finally:
        for service in reversed(services):
            await service.stop()
        for log in logs.values():
            log.close()


def work_folder() -> Path:
    """A temporary folder with `data/` for the DuckDB file, which the sandbox user reads."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-multi-{uuid.uuid4().hex[:8]}-"))
    folder.chmod(0o755)
    (folder / "data").mkdir(mode=0o755)
    return folder


async def main() -> None:
    folder = work_folder()
    try:
        with postgres_database() as pg, mariadb_database() as maria:
            dsns = {"postgres": pg, "mariadb": maria, "duckdb": duckdb_file(folder / "data")}
            seconds = await measure(folder, dsns)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    three = medians.pop("three")
    for name, value in medians.items():
        emit(f"multi.one_source_{name}_s", value, "s")
    emit("peer.three_one_source_runs_s", sum(medians.values()), "s")
    emit("multi.three_sources_s", three, "s")
    emit("multi.overhead_x", three / sum(medians.values()), "x")


if __name__ == "__main__":
    asyncio.run(main())
