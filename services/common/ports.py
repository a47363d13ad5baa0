"""The ports each service listens on unless told otherwise, and a free one for tests and demos.

The defaults are design.md's; each is overridable by its service's variable (named beside it).
Configs, the health probe, scripts/serve.py and the demo read them from here.
"""

from __future__ import annotations

import socket

SANDBOX_MANAGER = 50051  # CATALOG_SANDBOX_PORT
AGENT_RUNNER = 50052  # CATALOG_AGENT_PORT
ORCHESTRATOR_GRPC = 50053  # CATALOG_ORCHESTRATOR_GRPC_PORT
ORCHESTRATOR_HTTP = 8080  # CATALOG_ORCHESTRATOR_HTTP_PORT (its /metrics too)
# Prometheus text of the two internal services (design.md), for when they export metrics
SANDBOX_MANAGER_METRICS = 9461
AGENT_RUNNER_METRICS = 9462


def free_port() -> int:
    """A TCP port free on loopback now (another process may take it before it is bound)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
