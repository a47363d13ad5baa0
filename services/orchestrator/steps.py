"""The catalog workflow's steps: every piece of I/O it does, each a named DBOS step.

Steps take and return plain, secret-free values: DBOS stores them in its tables. The sealed
connection string is opened only inside the steps that hand it to the sandbox or the runner.
A step that was running at a crash runs again on recovery, so each one is safe to repeat:
agent runs carry a run id the runner deduplicates, and pages are written once.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from dbos import DBOS

from services.common.errors import ServiceError, Unavailable
from services.common.logging import log_fields
from services.orchestrator import agents
from services.orchestrator.config import Settings
from services.orchestrator.keys import make_timestamp, object_name, parse_prefix
from services.orchestrator.page_data import read_page_data
from services.orchestrator.probe_cell import ProbeReport, probe_code
from services.orchestrator.prompts import AgentPrompt
from services.orchestrator.sealing import Sealer, secret_values
from services.orchestrator.storage import Store, open_store
from services.sandbox_manager.client import (
    LeaseLost,
    SandboxClient,
    SandboxClientError,
    SessionSettings,
)

_log = logging.getLogger(__name__)
PROGRESS_STREAM = "progress"
_HISTORY_CHUNK_BYTES = 256 * 1024
_T = TypeVar("_T")


class CatalogFailure(Exception):
    """A run that cannot go on; `code` is CatalogError.code, `step` the CatalogStep name."""

    def __init__(self, code: str, message: str, step: str) -> None:
        super().__init__(code, message, step)  # all three, so DBOS can pickle it
        self.code, self.message, self.step = code, message, step

    def __str__(self) -> str:
        return f"{self.code} at {self.step}: {self.message}"


@dataclass(frozen=True)
class Runtime:
    """What the steps need from the running process; installed once at start-up."""

    settings: Settings
    sealer: Sealer
    prompts: dict[str, AgentPrompt] = field(repr=False)


_runtime: Runtime | None = None


def install_runtime(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the orchestrator's steps ran before install_runtime()")
    return _runtime


@dataclass(frozen=True)
class LeaseRef:
    lease_id: str
    manager_address: str


@dataclass(frozen=True)
class AgentOutcome:
    """What the workflow keeps of an agent run: where its page is, never the page."""

    agent_name: str
    uri: str
    complete: bool
    stop: str
    stop_detail: str
    turns: int
    usage: dict[str, int]
    data_uri: str = ""  # the JSON beside the page; "" when the sandbox could not export it


@asynccontextmanager
async def _logged(step: str, **fields: Any) -> AsyncIterator[None]:
    workflow_id = DBOS.workflow_id
    started = time.monotonic()
    log_fields(_log, logging.INFO, "step started", workflow_id=workflow_id, step=step, **fields)
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        log_fields(
            _log,
            logging.INFO,
            "step ended",
            workflow_id=workflow_id,
            step=step,
            outcome=outcome,
            seconds=round(time.monotonic() - started, 3),
        )


async def publish(event: dict[str, Any]) -> None:
    """Add a progress event to the run's stream (read by WatchCatalog)."""
    await DBOS.write_stream_async(PROGRESS_STREAM, {**event, "time": time.time()})


# --- the steps -------------------------------------------------------------------------------
_last_timestamp_ms = 0


@DBOS.step(name="fix_timestamp")
async def fix_timestamp(s3_prefix: str) -> str:
    """The run's timestamp, recorded once, so keys stay the same across recovery.

    Two runs under one prefix must not share a timestamp (write-once would hand the second
    the first one's pages), so a millisecond is never given out twice by this process, and
    one that already names a run under the prefix is skipped.
    """
    global _last_timestamp_ms
    store = _store(runtime().settings, s3_prefix)
    taken = set(
        await _storage_call(
            store.list_runs, "list earlier runs", "STORAGE_UNAVAILABLE", "ACQUIRING_SANDBOX"
        )
    )
    candidate_ms = max(int(time.time() * 1000), _last_timestamp_ms + 1)
    while (timestamp := _timestamp_at(candidate_ms)) in taken:
        candidate_ms += 1
    _last_timestamp_ms = candidate_ms
    return timestamp


def _timestamp_at(epoch_ms: int) -> str:
    return make_timestamp(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


@DBOS.step(name="acquire_sandbox", preemptible=True)
async def acquire_sandbox(sealed_conn: str, attempt: int) -> LeaseRef:
    rt = runtime()
    async with _logged("acquire_sandbox", attempt=attempt):
        session = _session(rt.settings, rt.sealer.open(sealed_conn))
        async with _sandboxes(rt.settings) as client:
            try:
                lease = await client.acquire(
                    session,
                    lease_ttl_s=rt.settings.lease_ttl_s,
                    wait_timeout_s=rt.settings.acquire_wait_s,
                    labels={"workflow_id": DBOS.workflow_id or "", "attempt": str(attempt)},
                    client_id="orchestrator",
                )
            except SandboxClientError as exc:
                raise CatalogFailure(
                    "SANDBOX_UNAVAILABLE", f"no sandbox could be leased: {exc}", "ACQUIRING_SANDBOX"
                ) from exc
            if lease.session.connect_error:
                await client.release(lease.lease_id)
                raise CatalogFailure(
                    "DATABASE_UNREACHABLE",
                    f"the sandbox could not open the database: {lease.session.connect_error}"
                    + _loopback_hint(session.db_dsn),
                    "ACQUIRING_SANDBOX",
                )
            return LeaseRef(lease.lease_id, client.manager_address(lease))


def _loopback_hint(conn_string: str) -> str:
    host = urlsplit(conn_string).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1"):
        return (
            " (the database host is loopback: the sandbox manager dials it for the sandbox, "
            "from where the manager runs; a manager in a container sees only its own loopback "
            "there, so use a host name the manager can reach)"
        )
    return ""


def _session(settings: Settings, conn_string: str) -> SessionSettings:
    return SessionSettings(db_dsn=conn_string, statement_timeout_s=settings.statement_timeout_s)


@DBOS.step(name="check_read_only", preemptible=True)
async def check_read_only(lease: LeaseRef, tables: list[str], allow_writable: bool) -> bool:
    """Prove the connection is read only: a write must fail. Also that every table exists."""
    rt = runtime()
    async with (
        _logged("check_read_only"),
        _sandboxes(rt.settings) as client,
    ):
        execution = await client.execute(lease.lease_id, probe_code(tables), timeout_s=120)
        probe = ProbeReport.from_stdout(execution.stdout) if execution.ok else None
        if probe is None:
            raise CatalogFailure(
                "DATABASE_UNREACHABLE",
                "the read-only check could not run in the sandbox: "
                + (execution.error.evalue if execution.error else "no answer"),
                "CHECKING_READ_ONLY",
            )
    for warning in probe.warnings:
        log_fields(
            _log, logging.WARNING, "read-only check", workflow_id=DBOS.workflow_id, warning=warning
        )
    if probe.missing:
        raise CatalogFailure(
            "TABLE_NOT_FOUND",
            "these tables do not exist or cannot be read: " + ", ".join(probe.missing),
            "CHECKING_READ_ONLY",
        )
    if probe.writable and not allow_writable:
        raise CatalogFailure(
            "WRITABLE_CONNECTION",
            f"the database user can write ({probe.why}): connect as a user with read "
            "rights only (or to a read-only replica), or set allow_writable to accept it",
            "CHECKING_READ_ONLY",
        )
    return probe.writable


@DBOS.step(name="reset_sandbox")
async def reset_sandbox(lease: LeaseRef) -> bool:
    """A clean interpreter for the summary agent, with no database connection at all.

    False when the sandbox has died since: the caller moves to a fresh one.
    """
    rt = runtime()
    async with _logged("reset_sandbox"), _sandboxes(rt.settings) as client:
        try:
            await client.reset(lease.lease_id, SessionSettings(), timeout_s=120)
        except LeaseLost:
            return False
    return True


@DBOS.step(name="stage_history", preemptible=True)
async def stage_history(lease: LeaseRef, s3_prefix: str) -> str:
    """Copy earlier runs' pages into the sandbox; return the folder the summary agent reads.

    A copy is read only towards the store whatever the store allows, and needs no storage
    credentials inside the sandbox.
    """
    rt = runtime()
    store = _store(rt.settings, s3_prefix)
    async with _logged("stage_history"), _sandboxes(rt.settings) as client:
        root = await _sandbox_folder(client, lease.lease_id, "history")
        budget = rt.settings.history_max_bytes
        runs = await _storage_call(
            store.list_runs, "list earlier runs", "STORAGE_UNAVAILABLE", "RESETTING_SANDBOX"
        )
        for timestamp in runs[len(runs) - rt.settings.history_runs :][::-1]:
            names = await _storage_call(
                functools.partial(store.list_run_objects, timestamp),
                "list a run's pages",
                "STORAGE_UNAVAILABLE",
                "RESETTING_SANDBOX",
            )
            # The data first: the comparison needs it, the pages are for reading.
            for name in sorted(names, key=lambda n: not n.endswith(".json")):
                body = await _storage_call(
                    functools.partial(store.read, timestamp, name),
                    f"read {name}",
                    "STORAGE_UNAVAILABLE",
                    "RESETTING_SANDBOX",
                )
                if len(body) > budget:
                    continue
                budget -= len(body)
                await _upload(client, lease.lease_id, f"{root}/{timestamp}/{name}", body)
        return root


async def _sandbox_folder(client: SandboxClient, lease_id: str, name: str) -> str:
    code = f"import os\n_p = os.path.abspath({name!r})\nos.makedirs(_p, exist_ok=True)\nprint(_p)"
    execution = await client.execute(lease_id, code, timeout_s=30)
    if not execution.ok or not execution.stdout.strip():
        raise Unavailable("could not make a folder in the sandbox")
    return execution.stdout.strip()


async def _upload(client: SandboxClient, lease_id: str, path: str, body: bytes) -> None:
    for start in range(0, max(len(body), 1), _HISTORY_CHUNK_BYTES):
        chunk = base64.b64encode(body[start : start + _HISTORY_CHUNK_BYTES]).decode()
        code = (
            "import base64, os\n"
            f"os.makedirs(os.path.dirname({path!r}), exist_ok=True)\n"
            f"with open({path!r}, {'wb' if start == 0 else 'ab'!r}) as _f:\n"
            f"    _f.write(base64.b64decode({chunk!r}))\n"
        )
        execution = await client.execute(lease_id, code, timeout_s=60)
        if not execution.ok:
            raise Unavailable(f"could not copy {path} into the sandbox")


def _runner_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, Unavailable)


# A runner that restarts is retried with the same run id: a run it still holds is reattached.
@DBOS.step(
    name="run_agent",
    preemptible=True,
    retries_allowed=True,
    max_attempts=6,
    interval_seconds=2.0,
    backoff_rate=2.0,
    should_retry=_runner_unreachable,
)
async def run_agent(
    agent_name: str,
    lease: LeaseRef,
    context: dict[str, Any],
    sealed_conn: str,
    s3_prefix: str,
    timestamp: str,
    attempt: int,
) -> AgentOutcome:
    """Run one agent through the runner and write its page; return where the page is."""
    rt = runtime()
    workflow_id = DBOS.workflow_id or ""
    call = agents.AgentCall(
        run_id=agent_run_id(workflow_id, agent_name, attempt),
        agent_name=agent_name,
        system_prompt=rt.prompts[agent_name].system_prompt,
        context_json=json.dumps(context),
        lease_id=lease.lease_id,
        redact_values=secret_values(rt.sealer.open(sealed_conn)),
    )
    async with _logged("run_agent", agent=agent_name, attempt=attempt):
        log_fields(_log, logging.INFO, "agent started", workflow_id=workflow_id, agent=agent_name)
        result = await agents.run_agent(
            rt.settings.agent_runner,
            call,
            timeout_s=rt.settings.agent_timeout_s,
            on_progress=_publish_progress,
            plane=rt.settings.control_plane,
        )
        log_fields(
            _log,
            logging.INFO,
            "agent ended",
            workflow_id=workflow_id,
            agent=agent_name,
            stop=result.stop.value,
            turns=result.turns,
            **asdict(result.usage),
        )
        uri = data_uri = ""
        # A first run that lost its sandbox is run again on a fresh one (workflows._agent):
        # its page, which only says that no page was made, must not take the write-once key.
        retried = result.stop is agents.AgentStop.ERROR and attempt == 1 and await _lost(lease)
        if result.html and not retried:
            step = "CATALOG_AGENT" if agent_name == "catalog" else "SUMMARY_AGENT"
            store = _store(rt.settings, s3_prefix)
            # The data first: a page in place means its data is in place too (or never will be).
            data = await _page_data(lease, agent_name, context, call.redact_values)
            if data is not None:
                name = object_name(agent_name, "json")
                data_uri = await _write_page(store, timestamp, name, data, "application/json", step)
            name = object_name(agent_name, "html")
            uri = await _write_page(
                store, timestamp, name, result.html.encode(), "text/html; charset=utf-8", step
            )
    return AgentOutcome(
        agent_name,
        uri,
        result.complete,
        result.stop.value,
        result.stop_detail,
        result.turns,
        asdict(result.usage),
        data_uri,
    )


async def _page_data(
    lease: LeaseRef, agent_name: str, context: dict[str, Any], secrets: tuple[str, ...]
) -> bytes | None:
    """The page's data from the sandbox, or None (logged) when the sandbox cannot give it."""
    rt = runtime()
    try:
        async with _sandboxes(rt.settings) as client:
            return await read_page_data(client, lease.lease_id, agent_name, context, secrets)
    except (SandboxClientError, ValueError) as exc:
        log_fields(
            _log,
            logging.WARNING,
            "page data not stored",
            workflow_id=DBOS.workflow_id,
            agent=agent_name,
            error=str(exc)[:300],
        )
        return None


async def _publish_progress(event: agents.AgentProgressEvent) -> None:
    await publish({"kind": "agent", **asdict(event)})


async def _write_page(
    store: Store, timestamp: str, name: str, body: bytes, content_type: str, step: str
) -> str:
    async def write() -> str:
        written = await store.write_once(timestamp, name, body, content_type)
        log_fields(
            _log,
            logging.INFO,
            "page written" if written.created else "page already written; kept",
            workflow_id=DBOS.workflow_id,
            key=written.key,
            size=written.size,
        )
        return written.uri

    return await _storage_call(write, f"write {name}", "OUTPUT_WRITE_FAILED", step)


async def _storage_call(call: Callable[[], Awaitable[_T]], what: str, code: str, step: str) -> _T:
    """Retry an unreachable store with backoff for CATALOG_STORAGE_RETRY_S (a finished agent's
    page must survive a blip); then, or on any other refusal, fail the run."""
    give_up_at = time.monotonic() + runtime().settings.storage_retry_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Unavailable as exc:
            pause = min(0.5 * 2 ** (attempt - 1), 15.0)
            if time.monotonic() + pause > give_up_at:
                message = f"could not {what} after {attempt} tries: {exc.message}"
                raise CatalogFailure(code, message, step) from exc
            await asyncio.sleep(pause)
        except ServiceError as exc:
            raise CatalogFailure(code, f"could not {what}: {exc.message}", step) from exc


@DBOS.step(name="sandbox_lost")
async def sandbox_lost(lease: LeaseRef) -> bool:
    """Whether the lease is gone (its sandbox died), so a run on a fresh one may help."""
    return await _lost(lease)


async def _lost(lease: LeaseRef) -> bool:
    async with _sandboxes(runtime().settings) as client:
        try:
            await client.renew(lease.lease_id, timeout_s=30)
        except LeaseLost:
            return True
        except SandboxClientError:
            return False
    return False


def agent_run_id(workflow_id: str, agent_name: str, attempt: int) -> str:
    return f"{workflow_id}.{agent_name}.{attempt}"


async def cancel_agents() -> None:
    """Stop this run's agents at the runner. Not a step, for the same reason as the release."""
    workflow_id = DBOS.workflow_id or ""
    run_ids = [agent_run_id(workflow_id, a, n) for a in ("catalog", "summary") for n in (1, 2)]
    settings = runtime().settings
    await agents.cancel_runs(settings.agent_runner, run_ids, plane=settings.control_plane)


async def release_sandbox(lease: LeaseRef) -> None:
    """End the lease. Not a step: it must run in a `finally` even after a cancel, and it is
    idempotent; lease expiry in the manager backs it when even this cannot run."""
    settings = runtime().settings
    try:
        async with _sandboxes(settings) as client:
            await client.release(lease.lease_id, timeout_s=30)
    except (SandboxClientError, OSError) as exc:
        log_fields(_log, logging.WARNING, "release failed; the lease will expire", error=str(exc))


def _sandboxes(settings: Settings) -> SandboxClient:
    """A client of the configured managers, with the service token (and TLS) they expect."""
    return SandboxClient(settings.sandbox_managers, plane=settings.control_plane)


def _store(settings: Settings, s3_prefix: str) -> Store:
    return open_store(parse_prefix(s3_prefix), endpoint_url=settings.s3_endpoint_url or None)
