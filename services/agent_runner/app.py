"""Assembles the agent runner: settings -> agents and runs -> gRPC server, and runs it."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from catalog.v1 import agent_pb2 as pb
from catalog.v1 import agent_pb2_grpc

from services.agent_runner.config import Settings
from services.agent_runner.metrics import REGISTRY
from services.agent_runner.run_store import RunStore
from services.agent_runner.runs import RunRegistry
from services.agent_runner.service import AgentService
from services.agent_runner.servicer import AgentRunnerServicer
from services.common.env import SettingsError
from services.common.grpc_server import ServiceRegistration, build_server, serve_until_stopped
from services.common.logging import log_fields
from services.common.metrics import serve_metrics

SERVICE_NAME = "catalog.v1.AgentRunnerService"
_log = logging.getLogger(__name__)


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`). SettingsError, before anything starts, when no
    service token guards a non-loopback host."""
    plane = settings.control_plane
    plane.check_listener(settings.host, "CATALOG_AGENT_HOST", "the agent runner")
    runs: RunRegistry[pb.RunAgentResponse] = RunRegistry(
        settings.run_retention_s, settings.max_retained_runs, open_store(settings)
    )
    agents = AgentService(settings)
    servicer = AgentRunnerServicer(settings, agents, runs)
    registration = ServiceRegistration(
        SERVICE_NAME,
        lambda server: agent_pb2_grpc.add_AgentRunnerServiceServicer_to_server(servicer, server),
    )
    server, health, port = await build_server(
        settings.port, [registration], plane, host=settings.host
    )
    stop_metrics = serve_metrics(REGISTRY, settings.host, settings.metrics_port)
    log_fields(
        _log,
        logging.INFO,
        "agent runner serving",
        port=port,
        metrics_port=settings.metrics_port,
        priced_models=len(settings.prices.models),
        model=settings.model,
        offline=settings.offline,
        sandbox_managers=list(settings.sandbox_managers),
        tls=plane.serves_tls,
        service_token=bool(plane.service_token),
        state_dir=settings.state_dir or "(memory only)",
    )
    if settings.offline:
        log_fields(
            _log,
            logging.WARNING,
            "no ANTHROPIC_API_KEY: the offline agent writes the pages, without a language model",
        )

    async def stop_all() -> None:
        stop_metrics()
        await runs.close()
        await agents.close()

    await serve_until_stopped(
        server, health, grace_s=settings.shutdown_grace_s, on_stop=stop_all, stop=stop
    )


def open_store(settings: Settings) -> RunStore | None:
    """The finished runs' file, or None when CATALOG_AGENT_STATE_DIR is empty (memory only)."""
    if not settings.state_dir:
        return None
    try:
        return RunStore(
            Path(settings.state_dir), settings.run_retention_s, settings.max_retained_runs
        )
    except (OSError, sqlite3.Error) as exc:
        raise SettingsError(
            f"CATALOG_AGENT_STATE_DIR={settings.state_dir!r} cannot hold the finished runs: {exc}"
        ) from exc
