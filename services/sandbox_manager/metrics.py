"""The sandbox manager's Prometheus metrics (served on CATALOG_SANDBOX_METRICS_PORT, 9461).

Is the pool starving? `catalog_sandboxes{state}` (read from the pool at each scrape), how long
acquires wait, how long cells run, and why containers were replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()

ACQUIRE_WAIT = Histogram(
    "catalog_sandbox_acquire_wait_seconds",
    "Time from an AcquireSandbox call to its lease, waiting for a warm sandbox included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
ACQUIRE_FAILURES = Counter(
    "catalog_sandbox_acquire_failures_total",
    "AcquireSandbox calls that got no lease, by reason (pool_exhausted, backend_unavailable)",
    ["reason"],
    registry=REGISTRY,
)
EXECUTE_DURATION = Histogram(
    "catalog_sandbox_execute_duration_seconds",
    "Time a cell ran in its sandbox, by how it ended (ok, error, timeout, crashed, cancelled)",
    ["status"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
REPLACEMENTS = Counter(
    "catalog_sandbox_replacements_total",
    "Sandbox containers destroyed and replaced, by reason (lease_ended, crashed, "
    "died_while_warm, died_at_lease, failed_probe)",
    ["reason"],
    registry=REGISTRY,
)


class _SandboxStates(Collector):
    """`catalog_sandboxes{state}`, counted when scraped: nothing to keep in step."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "catalog_sandboxes", "Sandboxes of this manager, by state", labels=["state"]
        )
        for state, count in self._counts().items():
            family.add_metric([state], count)
        yield family


def watch_pool(counts: Callable[[], Mapping[str, int]]) -> Callable[[], None]:
    """Report `counts()` (state -> sandboxes) at each scrape; returns the undo."""
    collector = _SandboxStates(counts)
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)
