"""`make demo`: catalog a sample shop twice, changing it in between, on embedded defaults.

The shop is two sources of one run: `app`, the shop's DuckDB database (demo/sample_db.py), and
`warehouse`, a second DuckDB file with a copy of `orders` that lags behind, so the catalog page
shows what differs across the two. Builds both under .catalog/demo-data, starts the three
services on free ports (SQLite system database, file:// storage under ./catalogs, Docker sandboxes
when an engine answers, else the process backend, saying the run is unisolated; the offline agent
unless ANTHROPIC_API_KEY is set), runs a catalog, changes the data and the schema, runs another,
and prints where every page is (one per agent of the pipeline, per run). Progress is printed as
the runs go; the services' logs go to .catalog/demo.log.

The anomalies agent judges a run against earlier ones and only learns until it has four. So,
before the first run under an empty prefix, the demo profiles the shop here and generates the
two weeks of daily runs before it with plausible drift (bench/histories.py): a `catalog.json`
per run, marked `"generated"`, with no page, so nobody takes them for real runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import grpc
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / d) for d in ("scripts", "demo", "bench")]
import histories  # noqa: E402
import sample_db  # noqa: E402
from serve import REPO, embedded_env, start_services, stop_services  # noqa: E402

from services.common.ports import free_port  # noqa: E402

# CATALOG_DEMO_DIR moves everything the demo writes (the tests use a temporary folder).
WORKDIR = Path(os.environ.get("CATALOG_DEMO_DIR", str(REPO))).resolve()
DATA = WORKDIR / ".catalog" / "demo-data"
DATABASE = DATA / "shop.duckdb"
WAREHOUSE = DATA / "warehouse.duckdb"
OUTPUT = WORKDIR / "catalogs"
PREFIX = f"file://{OUTPUT}/shop"
HISTORY_RUNS = 14  # daily runs: past the anomalies agent's learning, short of weekday seasonality
GENERATED = (
    "by demo/run_demo.py (bench/histories.py) from a profile of the demo database, with drift "
    "added: not a real run"
)
# Its own manager id, so it runs beside `make serve` (whose manager would otherwise share the
# default id and remove the demo's sandboxes, or lose its own); one per folder, so a demo run
# again in the same folder sweeps what a killed one left behind.
MANAGER_ID = f"demo-{hashlib.sha256(str(WORKDIR).encode()).hexdigest()[:12]}"


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def demo_env() -> dict[str, str]:
    ports = {name: str(free_port()) for name in ("manager", "runner", "grpc", "http")}
    return embedded_env(
        allow_unisolated=True,  # the demo runs without Docker too, and says so plainly
        CATALOG_SANDBOX_PORT=ports["manager"],
        CATALOG_SANDBOX_MANAGER_ID=MANAGER_ID,
        CATALOG_AGENT_PORT=ports["runner"],
        CATALOG_SANDBOX_METRICS_PORT="0",  # the demo shows pages, not metrics
        CATALOG_AGENT_METRICS_PORT="0",
        CATALOG_ORCHESTRATOR_GRPC_PORT=ports["grpc"],
        CATALOG_ORCHESTRATOR_HTTP_PORT=ports["http"],
        CATALOG_SANDBOX_MANAGERS=f"127.0.0.1:{ports['manager']}",
        CATALOG_AGENT_RUNNER=f"127.0.0.1:{ports['runner']}",
        # The sandbox reads the DuckDB file through a read-only mount and needs no network.
        CATALOG_SANDBOX_DATA_MOUNT=str(DATA),
        CATALOG_SANDBOX_NETWORK="none",
        CATALOG_SANDBOX_MIN_WARM="1",
        CATALOG_SANDBOX_MAX_SIZE="2",
        DBOS_SYSTEM_DATABASE_URL=f"sqlite:///{WORKDIR}/.catalog/demo.sqlite",
        CATALOG_SECRET_KEY_FILE=str(WORKDIR / ".catalog" / "secret.key"),
        CATALOG_AGENT_STATE_DIR=str(WORKDIR / ".catalog" / "demo-runner"),
        CATALOG_FILE_ROOTS=str(OUTPUT),
    )


def describe(event: pb.WatchCatalogResponse) -> str | None:
    kind = event.WhichOneof("event")
    if kind == "step_changed":
        step = pb.CatalogStep.Name(event.step_changed.step).removeprefix("CATALOG_STEP_")
        return " ".join(filter(None, ("step", step, event.step_changed.agent_name)))
    if kind == "agent_skipped":
        return f"  skipped: {event.agent_skipped.reason}"
    if kind == "agent_progress":
        p = event.agent_progress
        return f"  {p.agent_name} agent, turn {p.turn}: {p.tool_name}"
    if kind == "output_written":
        return f"  wrote {event.output_written.output.uri}"
    return None


def sources(app_tables: list[str]) -> list[pb.DatabaseSource]:
    """The run's two databases: the shop's and the warehouse's copy of its orders."""
    return [
        pb.DatabaseSource(name="app", db_conn_string=f"duckdb://{DATABASE}", tables=app_tables),
        pb.DatabaseSource(
            name="warehouse",
            db_conn_string=f"duckdb://{WAREHOUSE}",
            tables=sample_db.WAREHOUSE_TABLES,
        ),
    ]


def run_tables(app_tables: list[str]) -> list[str]:
    """The tables as the run names them: `source/table`."""
    return [f"{s.name}/{t}" for s in sources(app_tables) for t in s.tables]


def real_profile() -> dict[str, Any]:
    """The shop's catalog data as the catalog agent stores it, profiled here by the toolkit."""
    from catalog_kernel.connections import open_read_only
    from catalog_toolkit.profile import profile_table
    from catalog_toolkit.session import catalog_export

    cons = {
        s.name: open_read_only(s.db_conn_string, statement_timeout_s=120)[0]
        for s in sources(sample_db.TABLES)
    }
    try:
        tables = run_tables(sample_db.TABLES)
        for table in tables:
            profile_table(cons, table)
        return catalog_export(con=cons, tables=tables)
    finally:
        for con in cons.values():
            con.disconnect()


def generate_history() -> None:
    """Earlier runs' catalog.json under the demo's prefix, unless it holds runs already."""
    folder = OUTPUT / "shop"
    if folder.is_dir() and any(folder.iterdir()):
        return
    say(f"generating {HISTORY_RUNS} earlier daily runs' catalog data, marked as generated")
    now = histories.stamp(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    current = real_profile()
    for timestamp, data in histories.earlier_runs(current, now, runs=HISTORY_RUNS, seed=4711):
        (folder / timestamp).mkdir(parents=True)
        text = json.dumps({**data, "generated": GENERATED}, indent=1)
        (folder / timestamp / "catalog.json").write_text(text)


async def catalog(stub: catalog_pb2_grpc.CatalogServiceStub, tables: list[str]) -> pb.Catalog:
    started = await stub.StartCatalog(
        pb.StartCatalogRequest(sources=sources(tables), s3_prefix=PREFIX)
    )
    say(f"catalog {started.catalog_id} started for {', '.join(run_tables(tables))}")
    final = pb.Catalog()
    request = pb.WatchCatalogRequest(catalog_id=started.catalog_id)
    async for event in stub.WatchCatalog(request, timeout=3600):
        line = describe(event)
        if line:
            say(line)
        if event.WhichOneof("event") == "final":
            final = event.final
    if final.status != pb.CATALOG_STATUS_SUCCEEDED:
        raise SystemExit(
            f"demo: the catalog ended {pb.CatalogStatus.Name(final.status)}: {final.error}"
        )
    return final


async def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    os.chmod(DATA, 0o755)  # noqa: S103 (the sandbox's user reads it through the mount)
    say(f"building the sample database {DATABASE} and the warehouse's copy {WAREHOUSE}")
    sample_db.build(DATABASE)
    sample_db.build_warehouse(WAREHOUSE, DATABASE)
    for path in (DATABASE, WAREHOUSE):
        os.chmod(path, 0o644)
    generate_history()
    env = demo_env()
    if not os.environ.get("ANTHROPIC_API_KEY"):
        say("no ANTHROPIC_API_KEY: the offline agent writes the pages (set the key for Claude)")
    log_path = WORKDIR / ".catalog" / "demo.log"
    with log_path.open("ab") as log:
        running = await start_services(env, log)
        try:
            address = f"127.0.0.1:{env['CATALOG_ORCHESTRATOR_GRPC_PORT']}"
            async with grpc.aio.insecure_channel(address) as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                first = await catalog(stub, sample_db.TABLES)
                say(
                    "changing the database: new orders, a new column, events dropped, refunds added"
                )
                sample_db.evolve(DATABASE)
                second = await catalog(stub, sample_db.TABLES_AFTER)
        finally:
            await stop_services(running)
    print("\nThe pages:")
    for run in (first, second):
        for output in run.outputs:
            print(f"  {output.uri.removeprefix('file://')}")
    print(f"(services' logs: {log_path})")


if __name__ == "__main__":
    asyncio.run(main())
