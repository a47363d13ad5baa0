"""Assembles the sandbox manager: settings -> backend -> pool -> gRPC server, and runs it."""

from __future__ import annotations

import asyncio
import logging

from catalog.v1 import sandbox_pb2_grpc

from services.common.grpc_server import ServiceRegistration, build_server, serve_until_stopped
from services.common.logging import log_fields
from services.common.metrics import serve_metrics
from services.sandbox_manager.backend import Backend
from services.sandbox_manager.config import Settings
from services.sandbox_manager.id_lock import ManagerIdLock, lock_path
from services.sandbox_manager.metrics import REGISTRY, watch_pool
from services.sandbox_manager.pool import Pool
from services.sandbox_manager.servicer import SandboxManagerServicer

SERVICE_NAME = "catalog.v1.SandboxManagerService"
_log = logging.getLogger(__name__)


def make_backend(settings: Settings) -> Backend:
    if settings.backend == "process":
        from services.sandbox_manager.process_backend import ProcessBackend

        return ProcessBackend(
            settings.manager_id, settings.kernel_ready_timeout_s, settings.exec_queue_events
        )
    from services.sandbox_manager.docker_backend import DockerBackend, RelaySettings

    return DockerBackend(
        settings.manager_id,
        settings.image,
        settings.limits,
        settings.kernel_ready_timeout_s,
        RelaySettings(settings.relay_dir, settings.pgbouncer, settings.relay_deny),
        settings.exec_queue_events,
    )


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``); then stop and destroy every sandbox.

    SettingsError, before anything starts, when no service token guards a non-loopback host,
    or when a live manager holds this manager's id (see id_lock).
    """
    plane = settings.control_plane
    plane.check_listener(settings.host, "CATALOG_SANDBOX_HOST", "the sandbox manager")
    # Before the orphan sweep, which would remove a live holder's sandboxes.
    lock = ManagerIdLock(lock_path(settings.manager_id, settings.backend, settings.relay_dir))
    lock.acquire(settings.manager_id)
    try:
        await _serve(settings, stop)
    finally:
        lock.release()


async def _serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    plane = settings.control_plane
    pool = Pool(settings, make_backend(settings))
    servicer = SandboxManagerServicer(pool)
    registration = ServiceRegistration(
        SERVICE_NAME,
        lambda server: sandbox_pb2_grpc.add_SandboxManagerServiceServicer_to_server(
            servicer, server
        ),
    )
    # Bind before any sandbox starts: a manager that cannot serve must leave nothing behind.
    server, health, port = await build_server(
        settings.port, [registration], plane, host=settings.host
    )
    stop_metrics = serve_metrics(REGISTRY, settings.host, settings.metrics_port)
    unwatch = watch_pool(lambda: {state.value: n for state, n in pool.counts().items()})
    try:
        await pool.start()
    except BaseException:
        unwatch()
        stop_metrics()
        await pool.close()
        raise
    log_fields(
        _log,
        logging.INFO,
        "sandbox manager serving",
        port=port,
        metrics_port=settings.metrics_port,
        manager=settings.manager_id,
        backend=settings.backend,
        min_warm=settings.min_warm,
        max_size=settings.max_size,
        tls=plane.serves_tls,
        service_token=bool(plane.service_token),
    )

    async def stop_all() -> None:
        unwatch()
        stop_metrics()
        await pool.close()

    await serve_until_stopped(
        server, health, grace_s=settings.shutdown_grace_s, on_stop=stop_all, stop=stop
    )
