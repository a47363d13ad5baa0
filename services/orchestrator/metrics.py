"""The orchestrator's Prometheus metrics, served at `/metrics` on its HTTP port (8080).

Runs by how they ended (status, and the failure code), their duration and cost, the queue's
depth (read from DBOS's system database at each scrape, so every replica reports the shared
queue), and the storage writes with their latency.
"""

from __future__ import annotations

import time
from datetime import datetime

from dbos import DBOS
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.metrics import render
from services.orchestrator.run_state import RunState

REGISTRY = CollectorRegistry()

RUNS = Counter(
    "catalog_runs_total",
    "Catalog runs ended, by status (succeeded, failed, cancelled) and failure code (none when "
    "it succeeded)",
    ["status", "code"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "catalog_run_duration_seconds",
    "Time from a run's start (its timestamp) to its end, by status",
    ["status"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 2700, 3600, 5400, 7200, 14400),
    registry=REGISTRY,
)
RUN_COST = Histogram(
    "catalog_run_cost_usd",
    "What a run's model calls cost, in US dollars (the runner's price table)",
    ["status"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50),
    registry=REGISTRY,
)
QUEUE = Gauge(
    "catalog_queue_runs",
    "Runs in the queue now: queued (waiting for a worker) or running",
    ["state"],
    registry=REGISTRY,
)
STORAGE_WRITES = Counter(
    "catalog_storage_writes_total",
    "Objects written to storage, by store (s3, file) and outcome (created, existed, error)",
    ["store", "outcome"],
    registry=REGISTRY,
)
STORAGE_WRITE_SECONDS = Histogram(
    "catalog_storage_write_duration_seconds",
    "Time one storage write took, by store",
    ["store"],
    registry=REGISTRY,
)
_QUEUED = {"ENQUEUED": "queued", "DELAYED": "queued", "PENDING": "running"}


def run_ended(status: str, code: str, state: RunState) -> None:
    """Count a run that ended; its duration counts from its timestamp, when it got one."""
    RUNS.labels(status, code or "none").inc()
    RUN_COST.labels(status).observe(state.cost_usd)
    if state.timestamp:
        started = datetime.fromisoformat(state.timestamp.replace("Z", "+00:00")).timestamp()
        RUN_DURATION.labels(status).observe(max(0.0, time.time() - started))


async def scrape(queue_name: str) -> bytes:
    """The metrics as Prometheus text, the queue's depth read now."""
    runs = await DBOS.list_queued_workflows_async(
        queue_name=queue_name, load_input=False, load_output=False
    )
    counts = dict.fromkeys(("queued", "running"), 0)
    for run in runs:
        state = _QUEUED.get(run.status)
        if state:
            counts[state] += 1
    for state, count in counts.items():
        QUEUE.labels(state).set(count)
    return render(REGISTRY)
