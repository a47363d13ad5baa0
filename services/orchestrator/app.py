"""The orchestrator process: DBOS, the gRPC CatalogService and the HTTP API in one event loop.

Start-up order follows the DBOS notes: configure and launch DBOS (which recovers this
executor's unfinished workflows), register the queue, then serve. Shutdown: the servers stop
taking calls, then DBOS is destroyed, giving running workflows a grace period; a workflow cut
off here is recovered by the next start with the same executor id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Generator
from pathlib import Path

import uvicorn
from catalog.v1 import catalog_pb2_grpc
from dbos import DBOS, DBOSConfig

from services.common.grpc_server import ServiceRegistration, build_server, serve_until_stopped
from services.common.logging import log_fields
from services.common.telemetry import tracing_enabled
from services.orchestrator import ui
from services.orchestrator.auth import ApiGuard, AuthSettings, log_auth_mode
from services.orchestrator.catalog_models import WebhookPolicy
from services.orchestrator.config import Settings
from services.orchestrator.errors import CatalogFailure
from services.orchestrator.http_api import make_app
from services.orchestrator.metrics import scrape
from services.orchestrator.pipeline import load_pipeline
from services.orchestrator.schedule_ops import ScheduleOperations
from services.orchestrator.schedule_tick import TICK_QUEUE
from services.orchestrator.sealing import load_sealer
from services.orchestrator.service import CatalogOperations, default_file_roots
from services.orchestrator.servicer import CatalogServicer
from services.orchestrator.steps.runtime import Runtime, install_runtime
from services.orchestrator.takeover import Takeover, uses_postgres
from services.orchestrator.watch_slots import WatchSlots

SERVICE_NAME = "catalog.v1.CatalogService"
QUEUE_NAME = "catalogs"
_log = logging.getLogger(__name__)


class _EmbeddedUvicorn(uvicorn.Server):
    """Uvicorn without its own signal handling: the gRPC side owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def dbos_config(settings: Settings) -> DBOSConfig:
    url = settings.system_database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_ahead_log(path)
    return {
        "name": "catalog-agents",
        "system_database_url": url,
        "application_version": settings.application_version,
        "executor_id": settings.executor_id,
        "notification_listener_polling_interval_sec": 0.1,
        # How soon a replica's ticking follows a schedule's pause, resume, update or delete (a
        # query of the schedules table a second); DBOS's 30 s let a paused schedule go on
        # firing for up to half a minute once its first minute had passed.
        "scheduler_polling_interval_sec": 1.0,
        # The workflow and its steps as spans, through the tracer provider the OTEL_* variables
        # set up (services/common/telemetry.py); DBOS exports nothing of its own.
        "enable_otlp": tracing_enabled(),
    }


def _write_ahead_log(path: Path) -> None:
    """Put a SQLite system database in write-ahead-log mode (kept in the file). A run writes
    it some 40 times (each step's record, its state, each progress event); with the rollback
    journal each commit cost ~15 ms here, with the log ~1.5 ms, as durable (synchronous
    stays FULL: the log is synced at each commit). Needs a local filesystem, as SQLite does."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")


def _dbos_logs_as_json() -> None:
    """DBOS logs through its own console handler; send its records to ours (JSON lines)."""
    dbos_logger = logging.getLogger("dbos")
    for handler in list(dbos_logger.handlers):
        dbos_logger.removeHandler(handler)
    dbos_logger.propagate = True
    for old in [f for f in dbos_logger.filters if isinstance(f, _HandledFailures)]:
        dbos_logger.removeFilter(old)  # one, however often the app starts in a process
    dbos_logger.addFilter(_HandledFailures())


class _HandledFailures(logging.Filter):
    """Drops DBOS's ERROR, with a full traceback, for a workflow that raised CatalogFailure.

    That failure is the run's documented outcome (DATABASE_UNREACHABLE, TABLE_NOT_FOUND, ...),
    which the workflow logs once itself ("workflow ended", with its code and step); DBOS's copy
    would bury it under dozens of lines. Any other exception DBOS logs is a bug, and stays.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        raised = record.exc_info[1] if record.exc_info else None
        return not isinstance(raised, CatalogFailure)


async def _claim_executor_id(settings: Settings) -> Takeover | None:
    """With PostgreSQL, hold this replica's liveness lock (takeover.py); None with SQLite."""
    if not uses_postgres(settings.system_database_url):
        return None
    after_s = settings.recovery_after_s
    takeover = Takeover(
        settings.system_database_url,
        settings.executor_id,
        settings.application_version,
        after_s,
        every_s=max(0.2, min(5.0, after_s / 3)),
    )
    await takeover.claim()
    return takeover


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    pipeline = load_pipeline(settings.prompts_dir, os.environ)  # a bad prompt fails here
    prompts = pipeline.prompts
    sealer = load_sealer(settings.secret_key, settings.secret_key_file)
    install_runtime(Runtime(settings, sealer, prompts, pipeline))
    auth = AuthSettings(
        settings.api_keys, settings.rate_per_s, settings.rate_burst, tenants=settings.tenants
    )
    guard = ApiGuard(auth)
    log_auth_mode(auth)

    takeover = await _claim_executor_id(settings)  # before DBOS recovers this id's runs
    DBOS(config=dbos_config(settings))
    _dbos_logs_as_json()
    DBOS.launch()
    watching = asyncio.create_task(takeover.watch()) if takeover else None
    queue = await DBOS.register_queue_async(
        QUEUE_NAME, worker_concurrency=settings.queue_concurrency, polling_interval_sec=0.2
    )
    operations = CatalogOperations(
        queue,
        sealer,
        int(prompts["catalog"].limits["max_tables"]),  # the prompt's limit: what the model is told
        settings.file_roots,
        pipeline=pipeline,
        tenanted=bool(settings.tenants),
        webhooks=WebhookPolicy(bool(settings.webhook_secret), settings.webhook_allow_http),
        max_sources=settings.max_sources,
    )
    # DBOS enqueues each tick here; a short poll keeps the tick-to-run lag small. One tick at a
    # time across replicas: a tick's overlap check and the start of its run are then never
    # interleaved with another tick's (a manual trigger beside a scheduled tick would otherwise
    # both see no live run, and both start one). A tick takes milliseconds.
    await DBOS.register_queue_async(TICK_QUEUE, polling_interval_sec=0.1, global_concurrency=1)
    schedules = ScheduleOperations(operations, settings.schedule_min_interval_s)
    if not settings.file_roots:
        log_fields(
            _log,
            logging.INFO,
            "file:// prefixes must lie under ./catalogs; set CATALOG_FILE_ROOTS for others",
            file_roots=list(default_file_roots()),
        )
    servicer = CatalogServicer(
        operations, guard, WatchSlots(settings.max_watches_per_key), schedules
    )
    registration = ServiceRegistration(
        SERVICE_NAME,
        lambda server: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server),
    )
    grpc_server = await build_server(
        settings.grpc_port,
        [registration],
        settings.control_plane,
        host=settings.host,
        max_message_bytes=settings.max_request_bytes,
        interceptors=[guard.grpc_interceptor()],  # API keys, not the service token
    )
    app = make_app(
        operations,
        guard,
        settings.max_request_bytes,
        metrics=lambda: scrape(QUEUE_NAME),
        schedules=schedules,
    )
    ui.mount(
        app,
        operations,
        guard,
        tenants=settings.tenants,
        agents=list(pipeline.agents),
        file_roots=settings.file_roots or default_file_roots(),
        prefixes=settings.ui_prefixes,
    )
    http = _EmbeddedUvicorn(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            **settings.control_plane.uvicorn_ssl(),  # type: ignore[arg-type]
        )
    )
    http_task = asyncio.create_task(http.serve())

    async def on_stop() -> None:
        http.should_exit = True
        await http_task
        # Running workflows get the grace period; one cut off resumes at the next start.
        grace = int(settings.shutdown_grace_s)
        await asyncio.to_thread(DBOS.destroy, workflow_completion_timeout_sec=grace)
        if watching is not None and takeover is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await takeover.close()

    log_fields(
        _log,
        logging.INFO,
        "serving",
        grpc_port=grpc_server.port,
        http_port=settings.http_port,
        tls=settings.control_plane.serves_tls,
        executor_id=settings.executor_id,
        application_version=settings.application_version,
        prompts={name: prompt.digest for name, prompt in prompts.items()},
        pipeline=list(pipeline.agents),
    )
    await serve_until_stopped(
        grpc_server.server,
        grpc_server.health,
        grace_s=settings.shutdown_grace_s,
        on_stop=on_stop,
        stop=stop,
    )
