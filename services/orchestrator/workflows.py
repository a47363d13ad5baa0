"""The catalog workflow: orchestration only, deterministic; all I/O is in steps/.

    acquire a sandbox -> prove read only -> for each agent in AGENTS:
        (a clean sandbox and earlier runs' pages first, if it reads history)
        run it -> store its page and data
    -> release the sandbox, always

The run's state is one DBOS event, `state` (a RunState), rewritten at every change (GetCatalog
reads it); each change is also appended to the `progress` stream (WatchCatalog follows it). An
agent whose sandbox died gets one more try on a fresh sandbox. A failed run raises
CatalogFailure, so DBOS records it as ERROR; pages already written stay.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from dbos import DBOS
from dbos import error as dbos_error

from services.common.clients import SandboxClientError
from services.common.errors import ServiceError
from services.common.logging import log_fields
from services.orchestrator.errors import CatalogFailure, SealingError
from services.orchestrator.metrics import run_ended
from services.orchestrator.run_state import (
    AgentUsage,
    OutputRef,
    OutputWritten,
    RunError,
    RunFinished,
    RunState,
    Step,
    StepChanged,
)
from services.orchestrator.steps import agent_runs, history, pages, sandbox
from services.orchestrator.steps.agent_runs import AgentInput, AgentReport
from services.orchestrator.steps.runtime import now, publish
from services.orchestrator.steps.sandbox import LeaseRef

_log = logging.getLogger(__name__)
WORKFLOW_NAME = "catalog_workflow"
STATE_EVENT = "state"


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the run, in the order they run."""

    name: str  # its prompt and its page's name
    step: Step  # the run's step while it works
    reads_history: bool  # gets a clean sandbox and the earlier runs' pages, not the database


AGENTS = (
    AgentSpec("catalog", Step.CATALOG_AGENT, reads_history=False),
    AgentSpec("summary", Step.SUMMARY_AGENT, reads_history=True),
)


@dataclass(frozen=True)
class CatalogInput:
    """The workflow's one input, as DBOS stores it: nothing in it is secret."""

    sealed_conn: str  # the connection string, sealed (sealing.py); opened only in steps
    tables: list[str]  # table names, `table` or `schema.table`
    s3_prefix: str  # the validated, normalised output prefix
    allow_writable: bool = False  # accept a connection that can write
    tenant: str = "default"  # who owns the run (tenants.py); runs from before tenants: default
    request_digest: str = ""  # keyed hash of the request (service.py), to spot a reused key
    max_cost_usd: float = 0.0  # the most the run's model calls may cost (USD); 0: no limit


@DBOS.workflow(name=WORKFLOW_NAME)
async def catalog_workflow(request: CatalogInput) -> RunState:
    """The run; logs a line as it starts (again when recovered) and as it ends."""
    state = RunState(list(request.tables), request.s3_prefix)
    _log_event("workflow started", tables=len(request.tables), s3_prefix=request.s3_prefix)
    try:
        state.timestamp = await pages.fix_timestamp(request.s3_prefix)
        await _enter(state, Step.ACQUIRING_SANDBOX)
        held = [await sandbox.acquire_sandbox(sandbox.AcquireInput(request.sealed_conn, 1))]
        await _run_holding(state, request, held)
    except CatalogFailure as failure:
        state.error = RunError(failure.code, failure.message, failure.step)
        await _publish_state(state)
        _log_event(
            "workflow ended",
            status="FAILED",
            code=failure.code,
            step=failure.step,
            cost_usd=state.cost_usd,
        )
        run_ended("failed", failure.code, state)
        raise
    await _enter(state, Step.DONE)
    await publish(RunFinished(now()))
    _log_event(
        "workflow ended",
        status="SUCCEEDED",
        outputs=[o.uri for o in state.outputs],
        cost_usd=state.cost_usd,
    )
    run_ended("succeeded", "", state)
    return state


async def _run_holding(state: RunState, request: CatalogInput, held: list[LeaseRef]) -> None:
    """The run with its sandboxes, each released whatever happens (but kept for recovery
    when the process, not the user, stops the run)."""
    release = True
    try:
        await _run(state, request, held)
    except dbos_error.DBOSWorkflowCancelledError:
        await agent_runs.cancel_agents([a.name for a in AGENTS])  # a user cancelled: stop them
        run_ended("cancelled", "", state)
        raise
    except asyncio.CancelledError:
        # A stopping process cancels us too: keep the sandbox for the run's recovery.
        release = await _cancelled_by_user()
        if release:
            run_ended("cancelled", "", state)
        raise
    except (ServiceError, SandboxClientError, SealingError) as exc:
        raise _failure(exc, state.step) from exc
    finally:
        if release:
            for lease in held:  # idempotent: releasing a released lease is a no-op
                await sandbox.release_sandbox(lease)


async def _cancelled_by_user() -> bool:
    try:
        status = await DBOS.get_workflow_status_async(DBOS.workflow_id or "")
    except Exception:  # the system database is going away with the process
        return False
    return status is not None and status.status == "CANCELLED"


def _failure(exc: Exception, step: Step) -> CatalogFailure:
    """A dependency's failure as the run's error; the messages are ours, free of secrets."""
    if isinstance(exc, SandboxClientError):
        return CatalogFailure("SANDBOX_UNAVAILABLE", f"the sandbox failed: {exc}", step)
    if isinstance(exc, SealingError):
        return CatalogFailure("INTERNAL", str(exc), step)
    agent_steps = {agent.step for agent in AGENTS}
    code = "AGENT_RUNNER_UNAVAILABLE" if step in agent_steps else "INTERNAL"
    return CatalogFailure(code, str(exc), step)


def _log_event(event: str, **fields: Any) -> None:
    log_fields(_log, logging.INFO, event, workflow_id=DBOS.workflow_id, **fields)


async def _run(state: RunState, request: CatalogInput, held: list[LeaseRef]) -> None:
    """The run proper; `held` lists every lease taken, the current one last."""
    await _enter(state, Step.CHECKING_READ_ONLY)
    check = sandbox.ReadOnlyCheck(held[-1], request.tables, request.allow_writable)
    await sandbox.check_read_only(check)
    for agent in AGENTS:
        history_dir = ""
        if agent.reads_history:
            await _enter(state, Step.RESETTING_SANDBOX)
            history_dir = await _clean_sandbox(request, held)
        await _enter(state, agent.step)
        await _agent(state, request, held, agent, history_dir)
    await _enter(state, Step.RELEASING)


async def _clean_sandbox(request: CatalogInput, held: list[LeaseRef]) -> str:
    """Reset the current sandbox (or, if it died, a fresh one) and stage the history in it."""
    if not await sandbox.reset_sandbox(held[-1]):
        await _replace_sandbox(request, held)
        await sandbox.reset_sandbox(held[-1])
    return await history.stage_history(history.HistoryInput(held[-1], request.s3_prefix))


def _context(agent: AgentSpec, request: CatalogInput, timestamp: str, history_dir: str) -> str:
    """What the agent is told (the design's injected context), as JSON."""
    if agent.reads_history:
        context: dict[str, Any] = {
            "s3_prefix": request.s3_prefix,
            "current_timestamp": timestamp,
            "history_dir": history_dir,
        }
    else:
        context = {"tables": request.tables}
    return json.dumps(context)


async def _agent(
    state: RunState,
    request: CatalogInput,
    held: list[LeaseRef],
    agent: AgentSpec,
    history_dir: str,
) -> None:
    """Run one agent, with one more try on a fresh sandbox if its sandbox died; store its page."""
    context = _context(agent, request, state.timestamp, history_dir)
    run = AgentInput(
        agent.name, held[-1], context, request.sealed_conn, 1, _cost_left(request, state)
    )
    report = await agent_runs.execute_agent(run)
    if report.stop == "ERROR" and await sandbox.sandbox_lost(run.lease):
        await _replace_sandbox(request, held)
        if agent.reads_history:
            history_dir = await _clean_sandbox(request, held)
        context = _context(agent, request, state.timestamp, history_dir)
        run = AgentInput(
            agent.name, held[-1], context, request.sealed_conn, 2, _cost_left(request, state)
        )
        report = await agent_runs.execute_agent(run)
    stored = pages.StoredPage("", "")
    if report.has_page:
        page = pages.PageInput(run, request.s3_prefix, state.timestamp, agent.step)
        stored = await pages.store_page(page)
    await _record(state, report, stored)
    if report.stop != "SUBMITTED":
        raise CatalogFailure("AGENT_FAILED", _failure_message(report, stored), agent.step)


def _cost_left(request: CatalogInput, state: RunState) -> float:
    """What the next agent may spend: what the run has left (a cent's ten-thousandth at
    least, as 0 means no limit); the runner stops it there as at its token budget."""
    if not request.max_cost_usd:
        return 0.0
    return max(request.max_cost_usd - state.cost_usd, 1e-6)


async def _replace_sandbox(request: CatalogInput, held: list[LeaseRef]) -> None:
    """The one retry a run gets after its sandbox died: a fresh sandbox, same settings."""
    if len(held) > 1:
        raise CatalogFailure(
            "SANDBOX_UNAVAILABLE", "a second sandbox died during the run", Step.RESETTING_SANDBOX
        )
    await sandbox.release_sandbox(held[-1])
    held.append(await sandbox.acquire_sandbox(sandbox.AcquireInput(request.sealed_conn, 2)))


async def _record(state: RunState, report: AgentReport, stored: pages.StoredPage) -> None:
    state.usage.append(
        AgentUsage(report.agent_name, report.stop, report.turns, report.usage, report.cost_usd)
    )
    if stored.uri:
        output = OutputRef(report.agent_name, stored.uri, report.complete, stored.data_uri)
        state.outputs.append(output)
        await publish(OutputWritten(output, now()))
    await _publish_state(state)


def _failure_message(report: AgentReport, stored: pages.StoredPage) -> str:
    kept = f"; its incomplete page is at {stored.uri}" if stored.uri else ""
    detail = f" ({report.stop_detail})" if report.stop_detail else ""
    return f"the {report.agent_name} agent stopped with {report.stop}{detail}{kept}"


async def _enter(state: RunState, step: Step) -> None:
    state.step = step
    await _publish_state(state)
    await publish(StepChanged(step, now()))


async def _publish_state(state: RunState) -> None:
    await DBOS.set_event_async(STATE_EVENT, state)
