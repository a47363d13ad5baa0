"""Pipeline benchmark: what a four-agent run costs beyond its agents' own time.

Builds a small DuckDB file (2 tables of 1,000 rows) in a temporary folder and starts, on free
ports, a sandbox manager (process backend, 1 warm sandbox), an agent runner (offline: no
ANTHROPIC_API_KEY) and an orchestrator (`python -m services.orchestrator`, SQLite system
database, pages under the temporary folder). Its prompts are a temporary folder: the shipped
prompts, and a pipeline of four agents: the shipped default pipeline when it has four or more
(its first three and the summary), else catalog and summary with two test-only agents between
them (`bench_a`, `bench_b`: needs catalog, run_when always; with no kit in the toolkit the
offline agent answers them at once with an ERROR page, so the run ends FAILED, which changes
nothing in what is measured: each still gets its reset, its run, its page and data stored).
The manager keeps 2 sandboxes warm, and each run starts 8 s after the last (a warm-up run
first), so a warm sandbox waits for it: the pool's cold start is bench_sandbox.py's figure.
Then 3 runs (StartCatalog, then WatchCatalog to the end), each figure the median of the 3:

- pipeline.overhead_ms: from the orchestrator's "workflow started" log line to its "workflow
  ended" line, minus the agents' own time: the sum of the `run_agent` steps' durations (its
  "step ended" lines: the runner's whole run of the agent, the offline agent's cells included).
  What is left is orchestration: lease, read-only check, resets, history staging, storing each
  page and its data (the export cell included), DBOS's own bookkeeping, release. Goal: < 200.
- pipeline.agents_ms: the agents' own time, as above, for scale.
- pipeline.end_to_end_ms: StartCatalog to WatchCatalog's final event, as a caller sees it
  (adds the queue's pick-up, polled every 0.2 s, and the stream's polling).

Prints one JSON object a line: {"name", "value", "unit"}. Everything runs under a temporary
folder, removed at the end; the three subprocesses are stopped with SIGTERM, also on failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import duckdb
from bench_agent import PLANE, manager_env, runner_env
from benchlib import Service, emit, free_port
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 3
WARM_UP_S = 8.0
AGENTS = 4
TEST_AGENT = """version: 1
agent: {name}
description: A test-only agent of the pipeline benchmark.
instructions: Describe the tables in at most `max_page_bytes` bytes.
limits: {{max_page_bytes: 100000}}
html_format: One short page.
needs: [catalog]
run_when: always
"""


def build_database(path: Path) -> None:
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE customers AS SELECT i AS id, 'c' || i AS name FROM range(1000) t(i);"
            "CREATE TABLE orders AS SELECT i AS id, i % 1000 AS customer_id, i * 1.5 AS amount "
            "FROM range(1000) t(i);"
        )


def prompts_folder(folder: Path) -> list[str]:
    """The prompts and a four-agent pipeline in `folder`; returns the pipeline's agents."""
    shutil.copytree(REPO / "prompts", folder)
    shipped = (folder / "pipeline.yaml").read_text()
    default = shipped.split("agents: [", 1)[1].split("]", 1)[0].replace(" ", "").split(",")
    if len(default) >= AGENTS:
        agents = [*[a for a in default if a != "summary"][: AGENTS - 1], "summary"]
    else:
        agents = ["catalog", "bench_a", "bench_b", "summary"]
        for name in ("bench_a", "bench_b"):
            (folder / f"{name}.yaml").write_text(TEST_AGENT.format(name=name))
    (folder / "pipeline.yaml").write_text(f"version: 1\nagents: [{', '.join(agents)}]\n")
    return agents


def orchestrator_env(folder: Path, grpc_port: int, manager: str, runner: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CATALOG_ORCHESTRATOR_HOST": "127.0.0.1",
        "CATALOG_ORCHESTRATOR_GRPC_PORT": str(grpc_port),
        "CATALOG_ORCHESTRATOR_HTTP_PORT": str(free_port()),
        "DBOS_SYSTEM_DATABASE_URL": f"sqlite:///{folder}/dbos.sqlite",
        "CATALOG_EXECUTOR_ID": f"bench-pipeline-{folder.name}",
        "CATALOG_SANDBOX_MANAGERS": manager,
        "CATALOG_AGENT_RUNNER": runner,
        "CATALOG_PROMPTS_DIR": str(folder / "prompts"),
        "CATALOG_SECRET_KEY": Fernet.generate_key().decode(),
        "CATALOG_FILE_ROOTS": str(folder),
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
    }
    env.pop("ANTHROPIC_API_KEY", None)
    return env


async def one_run(
    stub: catalog_pb2_grpc.CatalogServiceAsyncStub, db: Path, out: Path
) -> tuple[str, float]:
    started = time.perf_counter()
    reply = await stub.StartCatalog(
        pb.StartCatalogRequest(
            db_conn_string=f"duckdb:///{db}",
            tables=["customers", "orders"],
            s3_prefix=f"file://{out}",
        )
    )
    final = pb.Catalog()
    async for event in stub.WatchCatalog(
        pb.WatchCatalogRequest(catalog_id=reply.catalog_id), timeout=600
    ):
        if event.WhichOneof("event") == "final":
            final = event.final
    elapsed_ms = (time.perf_counter() - started) * 1000
    ran = [a.agent_name for a in final.agents if a.status != pb.AGENT_STATUS_SKIPPED]
    if len(ran) != AGENTS or len(final.outputs) != AGENTS:
        raise RuntimeError(f"not every agent ran and wrote its page: {final}")
    return reply.catalog_id, elapsed_ms


def timings(log_lines: list[str], workflow_id: str) -> tuple[float, float]:
    """(workflow ms, agents' ms) from the orchestrator's JSON log lines of one workflow."""
    lines = [json.loads(line) for line in log_lines if line.startswith("{")]
    mine = [line for line in lines if line.get("workflow_id") == workflow_id]

    def at(message: str) -> float:
        (line,) = [x for x in mine if x["message"] == message]
        return datetime.fromisoformat(line["time"]).timestamp() * 1000

    steps: dict[str, float] = {}
    for x in mine:
        if x["message"] == "step ended":
            steps[x["step"]] = steps.get(x["step"], 0.0) + x["seconds"] * 1000
    print(f"bench_pipeline: steps' ms {json.dumps(steps)}", file=sys.stderr)
    return at("workflow ended") - at("workflow started"), steps.get("run_agent", 0.0)


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-pipeline-{uuid.uuid4().hex[:8]}-"))
    agents = prompts_folder(folder / "prompts")
    print(f"bench_pipeline: agents {', '.join(agents)}", file=sys.stderr)
    db = folder / "shop.duckdb"
    build_database(db)
    ports = {name: free_port() for name in ("manager", "runner", "grpc")}
    logs = {name: (folder / f"{name}.log").open("w+b") for name in ("manager", "runner", "orch")}
    manager = Service(
        "services.sandbox_manager",
        {
            **manager_env(ports["manager"], f"bench-pipeline-{folder.name[-8:]}"),
            # a warm sandbox is waiting for each run: the pool's cold start is not the
            # pipeline's cost (bench_sandbox.py measures it)
            "CATALOG_SANDBOX_MIN_WARM": "2",
            "CATALOG_SANDBOX_MAX_SIZE": "3",
        },
        ports["manager"],
        logs["manager"],
    )
    runner = Service(
        "services.agent_runner",
        runner_env(ports["runner"], manager.address),
        ports["runner"],
        logs["runner"],
    )
    orchestrator = Service(
        "services.orchestrator",
        orchestrator_env(folder, ports["grpc"], manager.address, runner.address),
        ports["grpc"],
        logs["orch"],
    )
    results: list[tuple[float, float, float]] = []
    try:
        await manager.start()
        await runner.start()
        await orchestrator.start()
        await asyncio.gather(*(s.wait_serving() for s in (manager, runner, orchestrator)))
        import grpc

        async with grpc.aio.insecure_channel(orchestrator.address) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            await one_run(stub, db, folder / "catalogs")  # warm-up: imports, first lease
            for _ in range(ROUNDS):
                await asyncio.sleep(WARM_UP_S)  # the pool replaces the sandbox just released
                workflow_id, end_to_end_ms = await one_run(stub, db, folder / "catalogs")
                await asyncio.sleep(0.5)  # the last log lines reach the file
                workflow_ms, agents_ms = timings(orchestrator.tail(100_000), workflow_id)
                results.append((workflow_ms - agents_ms, agents_ms, end_to_end_ms))
    except BaseException:
        for service in (manager, runner, orchestrator):
            print(f"{service.module}'s last log lines:", *service.tail(), sep="\n", file=sys.stderr)
        raise
    finally:
        for service in (orchestrator, runner, manager):
            await service.stop()
        for log in logs.values():
            log.close()
        shutil.rmtree(folder, ignore_errors=True)
    emit("pipeline.overhead_ms", statistics.median(r[0] for r in results), "ms")
    emit("pipeline.agents_ms", statistics.median(r[1] for r in results), "ms")
    emit("pipeline.end_to_end_ms", statistics.median(r[2] for r in results), "ms")


if __name__ == "__main__":
    asyncio.run(main())
