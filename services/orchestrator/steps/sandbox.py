"""Sandbox steps: lease one, prove it read only, reset it, notice it died, release it.

A run's databases (sources.py) open in the sandbox together: the one source "default" as the
session's `db_dsn`, as before sources; several as its `databases` (`cons[name]`). Each failure
names its source, unless the run has only "default", whose messages stay as they were.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from dbos import DBOS

from services.common.clients import (
    LeaseLost,
    SandboxClientError,
    SandboxSession,
    SessionSettings,
)
from services.common.logging import log_fields
from services.common.redaction import Redactor
from services.common.source_names import DEFAULT
from services.orchestrator.config import Settings
from services.orchestrator.connect_errors import connect_failure
from services.orchestrator.errors import CatalogFailure
from services.orchestrator.probe_cell import ChosenSource, ProbeReport, probe_code
from services.orchestrator.run_state import Step
from services.orchestrator.sources import open_sources, source_secrets
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
    # Of several sources, go on without one that no longer opens (as a reset does): the
    # sandbox that replaces a dead one, after the run proved every source.
    tolerate_lost: bool = False


@dataclass(frozen=True)
class ResetInput:
    lease: LeaseRef
    sealed_conn: str  # sealed; "" for an agent that does not read the database


@dataclass(frozen=True)
class ReadOnlyCheck:
    lease: LeaseRef
    tables: list[str]  # each must exist and be readable
    allow_writable: bool  # accept a user that can write (the request said so)
    listed: tuple[str, ...] = ()  # sources the request named no tables of: list theirs
    limit: int = 0  # and choose up to this many tables over them all


def acquire_key(workflow_id: str, attempt: int) -> str:
    """The acquire's idempotency key: a step that runs again after a crash (before DBOS
    recorded the lease) gets the lease it took the first time, not a second one."""
    digest = hashlib.sha256(workflow_id.encode()).hexdigest()[:32]
    return f"catalog-run.{digest}.{attempt}"


@DBOS.step(name="acquire_sandbox", preemptible=True)
async def acquire_sandbox(request: AcquireInput) -> LeaseRef:
    rt = runtime()
    async with logged("acquire_sandbox", attempt=request.attempt):
        dsns = open_sources(rt.sealer, request.sealed_conn)
        session = _session(rt.settings, dsns)
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
            failed = _unopened(lease.session, dsns)
            if failed and not (request.tolerate_lost and len(failed) < len(dsns)):
                await client.release(lease.lease_id)
                raise _connect_failure(failed, dsns)
            _log_left_out(failed)
            return LeaseRef(lease.lease_id, client.manager_address(lease))


def _session(settings: Settings, dsns: dict[str, str]) -> SessionSettings:
    timeout = settings.statement_timeout_s
    if list(dsns) == [DEFAULT]:
        return SessionSettings(db_dsn=dsns[DEFAULT], statement_timeout_s=timeout)
    return SessionSettings(databases=dsns, statement_timeout_s=timeout)


def _unopened(session: SandboxSession, dsns: dict[str, str]) -> list[tuple[str, str]]:
    """(source, error) of each source the kernel could not open, the error scrubbed of every
    secret of the run (the kernel scrubs it already; this holds for all the run's DSNs)."""
    redact = Redactor(source_secrets(dsns))
    failed = [(d.name, d.connect_error) for d in session.databases if d.connect_error]
    if not failed and session.connect_error:  # a kernel that reports only the first
        failed = [(next(iter(dsns), DEFAULT), session.connect_error)]
    reported = {d.name for d in session.databases}
    if session.databases:  # a source the sandbox says nothing of is not open either
        unsaid = "the sandbox did not report this source (is its manager older than the run?)"
        failed += [(name, unsaid) for name in dsns if name not in reported]
    return [(name, redact(error)) for name, error in failed]


def _log_left_out(failed: list[tuple[str, str]]) -> None:
    for source, error in failed:
        log_fields(
            _log,
            logging.WARNING,
            "source not opened again; the agent runs with the others",
            workflow_id=DBOS.workflow_id,
            source=source,
            error=error[:300],
        )


def _named(source: str, message: str, dsns: dict[str, str]) -> str:
    """`message` about one source, naming it unless the run has only "default"."""
    return message if list(dsns) == [DEFAULT] else f"the source `{source}`: {message}"


def _connect_failure(failed: list[tuple[str, str]], dsns: dict[str, str]) -> CatalogFailure:
    """The run's error for sources that would not open: the first's code, every message."""
    found = [(name, *connect_failure(error)) for name, error in failed]
    message = "; ".join(_named(name, said, dsns) for name, _, said in found)
    return CatalogFailure(found[0][1], message, Step.ACQUIRING_SANDBOX)


@DBOS.step(name="check_read_only", preemptible=True)
async def check_read_only(check: ReadOnlyCheck) -> list[ChosenSource]:
    """Prove the connection is read only: a write must fail. Also that every table exists.
    Returns the tables chosen on the sources `check.listed` names (none: [])."""
    rt = runtime()
    code = probe_code(check.tables, list(check.listed), check.limit)
    async with logged("check_read_only"), sandboxes(rt.settings) as client:
        execution = await client.execute(check.lease.lease_id, code, timeout_s=120)
        probe = ProbeReport.from_stdout(execution.stdout) if execution.ok else None
        if probe is None:
            raise CatalogFailure(
                "DATABASE_UNREACHABLE",
                "the read-only check could not run in the sandbox: "
                + (execution.error.evalue if execution.error else "no answer"),
                Step.CHECKING_READ_ONLY,
            )
    _log_warnings(probe)
    failure = _probe_failure(probe, check.allow_writable) or _choice_failure(probe, check)
    if failure is not None:
        raise failure
    return probe.chosen


def _choice_failure(probe: ProbeReport, check: ReadOnlyCheck) -> CatalogFailure | None:
    """TABLE_NOT_FOUND when a listed source could not be listed, or the run has no table."""
    if not check.listed:
        return None
    step, many = Step.CHECKING_READ_ONLY, [c.name for c in probe.chosen] != [DEFAULT]
    failed = [c for c in probe.chosen if c.error or c.name not in check.listed]
    if failed or len(probe.chosen) != len(check.listed):
        said = "; ".join(f"`{c.name}`: {c.error}" for c in failed) or "no answer"
        return CatalogFailure("TABLE_NOT_FOUND", f"the tables could not be listed: {said}", step)
    if not check.tables and not any(c.tables for c in probe.chosen):
        where = "the sources' default schemas have" if many else "the default schema has"
        return CatalogFailure(
            "TABLE_NOT_FOUND", f"the request names no tables, and {where} none", step
        )
    return None


_MISSING = "these tables do not exist or cannot be read: "
_READ_ONLY_FIX = (
    "connect as a user with read rights only (or to a read-only replica), or set "
    "allow_writable to accept it"
)


def _per_source(probe: ProbeReport) -> bool:
    """Whether the probe's findings are worded per source: the run has sources other than
    the one "default" (and the toolkit reported them)."""
    return bool(probe.by_source) and list(probe.by_source) != [DEFAULT]


def _probe_failure(probe: ProbeReport, allow_writable: bool) -> CatalogFailure | None:
    """TABLE_NOT_FOUND, else WRITABLE_CONNECTION (unless allowed), naming each source."""
    step = Step.CHECKING_READ_ONLY
    sources = probe.by_source.items() if _per_source(probe) else ()
    missing = [
        f"on the source `{n}`: {_MISSING}{', '.join(p.missing)}" for n, p in sources if p.missing
    ]
    if missing or probe.missing:
        return CatalogFailure(
            "TABLE_NOT_FOUND", "; ".join(missing) or _MISSING + ", ".join(probe.missing), step
        )
    if allow_writable:
        return None
    writable = [f"the source `{n}` can write ({p.why})" for n, p in sources if p.writable]
    if writable:
        return CatalogFailure(
            "WRITABLE_CONNECTION", f"{'; '.join(writable)}: {_READ_ONLY_FIX}", step
        )
    if probe.writable:
        return CatalogFailure(
            "WRITABLE_CONNECTION",
            f"the database user can write ({probe.why}): {_READ_ONLY_FIX}",
            step,
        )
    return None


def _log_warnings(probe: ProbeReport) -> None:
    found = [(n, w) for n, p in probe.by_source.items() for w in p.warnings]
    if not _per_source(probe):
        found = [("", w) for w in probe.warnings]
    for source, warning in found:
        named = {"source": source} if source else {}
        fields: dict[str, Any] = {"workflow_id": DBOS.workflow_id, "warning": warning, **named}
        log_fields(_log, logging.WARNING, "read-only check", **fields)


@DBOS.step(name="reset_sandbox")
async def reset_sandbox(request: ResetInput) -> bool:
    """A clean interpreter for the next agent: the databases opened again as at the lease
    (the connections the run proved read only) when the agent reads them, else none at all.
    Of several sources, one that no longer opens is left out (logged) and the agent runs
    with the others; the run fails when none opens.

    False when the sandbox has died since: the caller moves to a fresh one.
    """
    rt = runtime()
    dsns = open_sources(rt.sealer, request.sealed_conn) if request.sealed_conn else {}
    session = _session(rt.settings, dsns) if dsns else SessionSettings()
    async with logged("reset_sandbox", database=bool(dsns)), sandboxes(rt.settings) as client:
        try:
            opened = await client.reset(request.lease.lease_id, session, timeout_s=120)
        except LeaseLost:
            return False
    failed = _unopened(opened, dsns) if dsns else []
    if len(failed) >= len(dsns) and failed:
        raise CatalogFailure(
            "DATABASE_UNREACHABLE", _reopen_message(failed, dsns), Step.RESETTING_SANDBOX
        )
    _log_left_out(failed)
    return True


def _reopen_message(failed: list[tuple[str, str]], dsns: dict[str, str]) -> str:
    if list(dsns) == [DEFAULT]:
        return f"the sandbox could not open the database again: {failed[0][1]}"
    said = "; ".join(f"the source `{name}`: {error}" for name, error in failed)
    return f"the sandbox could not open any source again: {said}"


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
