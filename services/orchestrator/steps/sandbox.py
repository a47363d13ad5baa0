"""Sandbox steps: lease one, prove it read only, reset it, notice it died, release it."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from dbos import DBOS

from services.common.clients import LeaseLost, SandboxClientError, SessionSettings
from services.common.logging import log_fields
from services.orchestrator.config import Settings
from services.orchestrator.connect_errors import connect_failure
from services.orchestrator.errors import CatalogFailure
from services.orchestrator.probe_cell import ProbeReport, probe_code
from services.orchestrator.run_state import Step
from services.orchestrator.steps.runtime import logged, runtime, sandboxes

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseRef:
    lease_id: str
    manager_address: str  # the manager that holds it


@dataclass(frozen=True)
class AcquireInput:
    sealed_conn: str  # the connection string, sealed; opened only inside the step
    attempt: int  # 1 for the run's first sandbox, 2 for the one after a sandbox died


@dataclass(frozen=True)
class ResetInput:
    lease: LeaseRef
    sealed_conn: str  # sealed; "" for an agent that does not read the database


@dataclass(frozen=True)
class ReadOnlyCheck:
    lease: LeaseRef
    tables: list[str]  # each must exist and be readable
    allow_writable: bool  # accept a user that can write (the request said so)


def acquire_key(workflow_id: str, attempt: int) -> str:
    """The acquire's idempotency key: a step that runs again after a crash (before DBOS
    recorded the lease) gets the lease it took the first time, not a second one."""
    digest = hashlib.sha256(workflow_id.encode()).hexdigest()[:32]
    return f"catalog-run.{digest}.{attempt}"


@DBOS.step(name="acquire_sandbox", preemptible=True)
async def acquire_sandbox(request: AcquireInput) -> LeaseRef:
    rt = runtime()
    async with logged("acquire_sandbox", attempt=request.attempt):
        session = _session(rt.settings, rt.sealer.open(request.sealed_conn))
        async with sandboxes(rt.settings) as client:
            workflow_id = DBOS.workflow_id or ""
            labels = {"workflow_id": workflow_id, "attempt": str(request.attempt)}
            try:
                lease = await client.acquire(
                    session,
                    lease_ttl_s=rt.settings.lease_ttl_s,
                    wait_timeout_s=rt.settings.acquire_wait_s,
                    labels=labels,
                    client_id="orchestrator",
                    idempotency_key=acquire_key(workflow_id, request.attempt),
                )
            except SandboxClientError as exc:
                raise CatalogFailure(
                    "SANDBOX_UNAVAILABLE",
                    f"no sandbox could be leased: {exc}",
                    Step.ACQUIRING_SANDBOX,
                ) from exc
            if lease.session.connect_error:
                await client.release(lease.lease_id)
                code, message = connect_failure(lease.session.connect_error)
                raise CatalogFailure(code, message, Step.ACQUIRING_SANDBOX)
            return LeaseRef(lease.lease_id, client.manager_address(lease))


def _session(settings: Settings, conn_string: str) -> SessionSettings:
    return SessionSettings(db_dsn=conn_string, statement_timeout_s=settings.statement_timeout_s)


@DBOS.step(name="check_read_only", preemptible=True)
async def check_read_only(check: ReadOnlyCheck) -> bool:
    """Prove the connection is read only: a write must fail. Also that every table exists."""
    rt = runtime()
    async with logged("check_read_only"), sandboxes(rt.settings) as client:
        execution = await client.execute(
            check.lease.lease_id, probe_code(check.tables), timeout_s=120
        )
        probe = ProbeReport.from_stdout(execution.stdout) if execution.ok else None
        if probe is None:
            raise CatalogFailure(
                "DATABASE_UNREACHABLE",
                "the read-only check could not run in the sandbox: "
                + (execution.error.evalue if execution.error else "no answer"),
                Step.CHECKING_READ_ONLY,
            )
    for warning in probe.warnings:
        log_fields(
            _log, logging.WARNING, "read-only check", workflow_id=DBOS.workflow_id, warning=warning
        )
    if probe.missing:
        raise CatalogFailure(
            "TABLE_NOT_FOUND",
            "these tables do not exist or cannot be read: " + ", ".join(probe.missing),
            Step.CHECKING_READ_ONLY,
        )
    if probe.writable and not check.allow_writable:
        raise CatalogFailure(
            "WRITABLE_CONNECTION",
            f"the database user can write ({probe.why}): connect as a user with read "
            "rights only (or to a read-only replica), or set allow_writable to accept it",
            Step.CHECKING_READ_ONLY,
        )
    return probe.writable


@DBOS.step(name="reset_sandbox")
async def reset_sandbox(request: ResetInput) -> bool:
    """A clean interpreter for the next agent: the database opened again as at the lease
    (the connection the run proved read only) when the agent reads it, else none at all.

    False when the sandbox has died since: the caller moves to a fresh one.
    """
    rt = runtime()
    with_database = bool(request.sealed_conn)
    session = (
        _session(rt.settings, rt.sealer.open(request.sealed_conn))
        if with_database
        else SessionSettings()
    )
    async with logged("reset_sandbox", database=with_database), sandboxes(rt.settings) as client:
        try:
            opened = await client.reset(request.lease.lease_id, session, timeout_s=120)
        except LeaseLost:
            return False
    if opened.connect_error:
        raise CatalogFailure(
            "DATABASE_UNREACHABLE",
            f"the sandbox could not open the database again: {opened.connect_error}",
            Step.RESETTING_SANDBOX,
        )
    return True


@DBOS.step(name="sandbox_lost")
async def sandbox_lost(lease: LeaseRef) -> bool:
    """Whether the lease is gone (its sandbox died), so a run on a fresh one may help."""
    rt = runtime()
    async with sandboxes(rt.settings) as client:
        try:
            await client.renew(lease.lease_id, timeout_s=30)
        except LeaseLost:
            return True
        except SandboxClientError:
            return False
    return False


async def release_sandbox(lease: LeaseRef) -> None:
    """End the lease. Not a step: it must run in a `finally` even after a cancel, and it is
    idempotent; lease expiry in the manager backs it when even this cannot run."""
    settings = runtime().settings
    try:
        async with sandboxes(settings) as client:
            await client.release(lease.lease_id, timeout_s=30)
    except (SandboxClientError, OSError) as exc:
        log_fields(_log, logging.WARNING, "release failed; the lease will expire", error=str(exc))
