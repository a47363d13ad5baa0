"""Prometheus metrics: each service keeps its own registry and serves it as text.

prometheus_client is imported here and in each service's `metrics.py` only. The sandbox manager
and the agent runner serve `/metrics` on a port of their own (a small HTTP server in a thread,
so a scrape never waits for the event loop); the orchestrator serves it on its HTTP API's port.
Labels have few values (states, reasons, models, agent names): never a run, lease or table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from services.common.logging import log_fields

_log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """Serve `registry` at http://host:port/metrics; return the function that stops it. Port 0
    serves nothing. OSError, naming the port, when it is taken."""
    if port == 0:
        return lambda: None
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise OSError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror}): the port is taken; "
            "choose another (or 0 for none)"
        ) from exc
    log_fields(_log, logging.INFO, "serving metrics", host=host, port=port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
