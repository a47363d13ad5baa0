"""The web UI's speed: `ui.prefix_page_ms` and `ui.table_page_ms` (p95, a prefix of 1,000 runs
of 50 tables each, once indexed; loopback round trips, an upper bound of the server's time),
`ui.prefix_first_visit_s` (the first visit, which indexes the catalog.json of the 60 newest
runs, those the charts span), `ui.first_paint_ms` (Chromium's first contentful paint of a run
page, median of 5), and `ui.live_lag_ms` (p95, goal < 300): from a progress event in DBOS
to its line in an open run page. The event's own `time` (set by the workflow as it writes the
event to its DBOS stream) against the wall clock in Chromium when the line is added to the
page's DOM (a MutationObserver), for every event written after the page's event stream
opened, over LIVE_RUNS real runs of the shipped pipeline (offline agents, process sandboxes,
two DuckDB tables; about 25 events a run). Each line is checked to be its event's, read back
from DBOS after the run.

The stored runs are written to a file:// prefix, as runs from before the UI would be; the
orchestrator runs as a subprocess (SQLite system database). Its sandbox manager and agent
runner start only after the page figures are taken, for the live runs.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import aiohttp
from bench_agent import PLANE, manager_env, runner_env
from bench_pipeline import build_database
from benchlib import Service, emit, free_port
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.orchestrator.run_state import RunFinished  # noqa: E402
from services.orchestrator.steps.runtime import PROGRESS_STREAM  # noqa: E402
from services.orchestrator.ui.runs import describe  # noqa: E402
from services.orchestrator.ui.web import prefix_id  # noqa: E402
from tests.ui.stored_runs import timestamp, write_runs  # noqa: E402

RUNS = int(os.environ.get("BENCH_UI_RUNS", "1000"))
CHROMIUM = "/usr/bin/chromium"
PYTHONPATH = os.pathsep.join([str(REPO), str(REPO / "protos"), str(REPO / "sandbox")])
PATHS = {"PYTHONPATH": PYTHONPATH}
TABLES = 50
SAMPLES = 40
LIVE_RUNS = 2
# The paint may be recorded after `load` on a busy machine: wait for its entry.
FIRST_PAINT = """() => new Promise((resolve) => new PerformanceObserver((list) => {
  const paint = list.getEntriesByName("first-contentful-paint")[0];
  if (paint) resolve(paint.startTime);
}).observe({type: "paint", buffered: true}))"""
# In the page before its own scripts: when its EventSource opens, and when each line reaches
# #events (Date.now(): the same wall clock as the workflow's time.time()).
LIVE_WATCH = """
window.__live = {open: 0, lines: []};
const NativeEventSource = window.EventSource;
window.EventSource = class extends NativeEventSource {
  constructor(url, init) {
    super(url, init);
    this.addEventListener("open", () => { window.__live.open = Date.now(); });
  }
};
document.addEventListener("DOMContentLoaded", () => {
  const events = document.getElementById("events");
  if (!events) return;
  new MutationObserver((records) => {
    const at = Date.now();
    for (const r of records) for (const n of r.addedNodes) {
      window.__live.lines.push({at, text: n.textContent});
    }
  }).observe(events, {childList: true});
});
"""


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


async def timed_get(client: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with client.get(url) as response:
        await response.read()
        assert response.status == 200, f"{url}: {response.status}"
    return (time.perf_counter() - started) * 1000


async def first_paint(url: str) -> float:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        paints = []
        for _ in range(5):
            page = await chromium.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(url)
            paints.append(float(await page.evaluate(FIRST_PAINT)))
            await page.close()
        await chromium.close()
    return statistics.median(paints)


def orchestrator_env(work: str, grpc: int, http: int, manager: int, runner: int) -> dict[str, str]:
    return {
        **os.environ,
        "CATALOG_ORCHESTRATOR_HOST": "127.0.0.1",
        "CATALOG_ORCHESTRATOR_GRPC_PORT": str(grpc),
        "CATALOG_ORCHESTRATOR_HTTP_PORT": str(http),
        "DBOS_SYSTEM_DATABASE_URL": f"sqlite:///{work}/dbos.sqlite",
        "CATALOG_SANDBOX_MANAGERS": f"127.0.0.1:{manager}",
        "CATALOG_AGENT_RUNNER": f"127.0.0.1:{runner}",
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "CATALOG_SECRET_KEY": Fernet.generate_key().decode(),
        "CATALOG_FILE_ROOTS": work,
        "CATALOG_PROMPTS_DIR": str(REPO / "prompts"),
        "PYTHONPATH": PYTHONPATH,
    }


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as work:
        write_runs(Path(work) / "shop", RUNS, TABLES)
        ports = {name: free_port() for name in ("grpc", "http", "manager", "runner")}
        logs = {name: (Path(work) / f"{name}.log").open("w+b") for name in ("orch", "mgr", "run")}
        env = orchestrator_env(work, *(ports[n] for n in ("grpc", "http", "manager", "runner")))
        services = [Service("services.orchestrator", env, ports["grpc"], logs["orch"])]
        url = f"http://127.0.0.1:{ports['http']}"
        try:
            await services[0].start()
            await services[0].wait_serving()
            await measure(url, f"file://{work}/shop")
            # the manager and runner start now: they were idle bystanders of the page figures
            services += helpers(work, ports["manager"], ports["runner"], logs)
            for service in services[1:]:
                await service.start()
            await asyncio.gather(*(s.wait_serving() for s in services[1:]))
            lags = await live_lags(url, services[0].address, Path(work))
            emit("ui.live_lag_ms", p95(lags), "ms")
        except BaseException:
            for service in services:
                print(f"{service.module}:", *service.tail(), sep="\n", file=sys.stderr)
            raise
        finally:
            for service in reversed(services):
                await service.stop()
            for log in logs.values():
                log.close()


def helpers(work: str, manager: int, runner: int, logs: Mapping[str, IO[bytes]]) -> list[Service]:
    """A sandbox manager (process backend, 2 warm) and an offline agent runner."""
    manager_vars = manager_env(manager, f"bench-ui-{manager}")
    manager_vars |= {"CATALOG_SANDBOX_MIN_WARM": "2", "CATALOG_SANDBOX_MAX_SIZE": "3"}
    runner_vars = runner_env(runner, f"127.0.0.1:{manager}")
    return [
        Service("services.sandbox_manager", manager_vars | PATHS, manager, logs["mgr"]),
        Service("services.agent_runner", runner_vars | PATHS, runner, logs["run"]),
    ]


async def live_lags(url: str, grpc_address: str, work: Path) -> list[float]:
    """Each live event's lag (ms) over LIVE_RUNS runs, each followed in a fresh page."""
    import grpc
    from playwright.async_api import async_playwright

    build_database(work / "shop.duckdb")
    lags: list[float] = []
    async with (
        async_playwright() as playwright,
        grpc.aio.insecure_channel(grpc_address) as channel,
    ):
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        for _ in range(LIVE_RUNS):
            reply = await stub.StartCatalog(
                pb.StartCatalogRequest(
                    db_conn_string=f"duckdb:///{work}/shop.duckdb",
                    tables=["customers", "orders"],
                    s3_prefix=f"file://{work}/live",
                )
            )
            page = await chromium.new_page(viewport={"width": 1280, "height": 800})
            await page.add_init_script(LIVE_WATCH)
            await page.goto(f"{url}/runs/{reply.catalog_id}")
            await page.locator("body[data-run-done]").wait_for(timeout=120_000)
            seen = await page.evaluate("window.__live")
            await page.close()
            lags += matched(seen, await stored_events(work, reply.catalog_id))
        await chromium.close()
    print(
        f"bench_ui: {len(lags)} live events over {LIVE_RUNS} runs, lag median "
        f"{statistics.median(lags):.0f} ms, max {max(lags):.0f} ms",
        file=sys.stderr,
    )
    return lags


async def stored_events(work: Path, catalog_id: str) -> list[Any]:
    """The run's progress events as its DBOS stream holds them, RunFinished left out."""
    from dbos import DBOSClient

    client = DBOSClient(system_database_url=f"sqlite:///{work}/dbos.sqlite")
    try:
        return [
            event
            async for event in client.read_stream_async(catalog_id, PROGRESS_STREAM)
            if not isinstance(event, RunFinished)
        ]
    finally:
        client.destroy()


def matched(seen: dict[str, Any], events: list[Any]) -> list[float]:
    """The lags of the events written after the page's stream opened (earlier ones arrive
    as a catch-up burst); every line must be its event's."""
    lines = seen["lines"]  # then the run's final state, as a line or two
    if len(lines) < len(events):
        raise RuntimeError(f"{len(events)} events in DBOS, {len(lines)} lines in the page")
    lags = []
    for line, event in zip(lines, events, strict=False):
        if line["text"] != describe(event):
            raise RuntimeError(f"line {line['text']!r} is not event {describe(event)!r}")
        if event.time * 1000 >= seen["open"]:
            lags.append(line["at"] - event.time * 1000)
    return lags


async def measure(url: str, prefix: str) -> None:
    base = f"{url}/p/{prefix_id(prefix)}"
    async with aiohttp.ClientSession() as client:
        emit("ui.prefix_first_visit_s", await timed_get(client, base) / 1000, "s")
        prefix_ms = [await timed_get(client, base) for _ in range(SAMPLES)]
        emit("ui.prefix_page_ms", p95(prefix_ms), "ms")
        names = [f"table_{i:03d}" for i in range(TABLES - 1)]
        table_ms = [
            await timed_get(client, f"{base}/table?name={quote(names[i % len(names)])}")
            for i in range(SAMPLES)
        ]
        emit("ui.table_page_ms", p95(table_ms), "ms")
    emit("ui.first_paint_ms", await first_paint(f"{base}/r/{timestamp(RUNS - 1)}"), "ms")


if __name__ == "__main__":
    asyncio.run(main())
