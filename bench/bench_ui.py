"""The web UI's speed: `ui.prefix_page_ms` and `ui.table_page_ms` (p95, a prefix of 1,000 runs
of 50 tables each, once indexed; loopback round trips, an upper bound of the server's time),
`ui.prefix_first_visit_s` (the first visit, which indexes the catalog.json of the 60 newest
runs, those the charts span) and
`ui.first_paint_ms` (Chromium's first contentful paint of a run page, median of 5).

The runs are written to a file:// prefix, as runs from before the UI would be; the orchestrator
runs as a subprocess whose sandbox manager never answers (no run is started here).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from benchlib import Service, emit, free_port
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.orchestrator.ui.web import prefix_id  # noqa: E402
from tests.ui.stored_runs import timestamp, write_runs  # noqa: E402

RUNS = int(os.environ.get("BENCH_UI_RUNS", "1000"))
TABLES = 50
SAMPLES = 40


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
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        paints = []
        for _ in range(5):
            page = await chromium.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(url)
            paints.append(float(await page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0].startTime"
            )))  # fmt: skip
            await page.close()
        await chromium.close()
    return statistics.median(paints)


async def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-ui-") as work,
        open(Path(work) / "orchestrator.log", "w+b") as log,  # noqa: ASYNC230 (before any await)
    ):
        write_runs(Path(work) / "shop", RUNS, TABLES)
        http = free_port()
        env = {
            **os.environ,
            "CATALOG_ORCHESTRATOR_HOST": "127.0.0.1",
            "CATALOG_ORCHESTRATOR_GRPC_PORT": str(grpc := free_port()),
            "CATALOG_ORCHESTRATOR_HTTP_PORT": str(http),
            "DBOS_SYSTEM_DATABASE_URL": f"sqlite:///{work}/dbos.sqlite",
            "CATALOG_SANDBOX_MANAGERS": f"127.0.0.1:{free_port()}",
            "CATALOG_AGENT_RUNNER": f"127.0.0.1:{free_port()}",
            "CATALOG_SECRET_KEY": Fernet.generate_key().decode(),
            "CATALOG_FILE_ROOTS": work,
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "protos"), str(REPO / "sandbox")]),
        }
        service = Service("services.orchestrator", env, grpc, log)
        await service.start()
        try:
            await service.wait_serving()
            await measure(f"http://127.0.0.1:{http}", f"file://{work}/shop")
        finally:
            await service.stop()


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
