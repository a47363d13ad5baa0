"""The catalog workflow: orchestration only, deterministic; all I/O is in steps/.

    acquire a sandbox -> prove read only (listing the tables of a source given none)
    -> for each of the run's agents, in run order:
        skip it if its needs did not do what its run_when asks (recorded, naming the need);
        else a clean sandbox (the database re-opened, read only, if it reads the database;
        the history staged, this run's pages so far included, if it reads history),
        run it -> store its page and data
    -> release the sandbox, always

The run's agents and their order are data (CatalogInput.agents, from pipeline.py); this code
names none. The run's state is one DBOS event, `state` (a RunState), rewritten at every change
(GetCatalog reads it); each change is also appended to the `progress` stream (WatchCatalog
follows it). An agent whose sandbox died gets one more try on a fresh sandbox; a run gets one
fresh sandbox, and a second death ends it under the agent it hit (recorded as FAILED). An agent that
fails does not stop the run: the agents whose run_when allows it still run. The run then
fails with AGENT_FAILED naming the first agent that failed (CatalogFailure, so DBOS records
it as ERROR); every page written stays. A failure of the run's own parts (the sandbox, the
runner, the store) ends it at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

from dbos import DBOS
from dbos import error as dbos_error

from services.common.clients import SandboxClientError
from services.common.errors import ServiceError
from services.common.logging import log_fields
from services.common.source_names import DEFAULT, split
from services.orchestrator.agent_context import agent_context
from services.orchestrator.errors import CatalogFailure, SealingError
from services.orchestrator.metrics import run_ended
from services.orchestrator.pipeline import FAILED, SKIPPED, SUCCEEDED, Blocked
from services.orchestrator.probe_cell import ChosenSource
from services.orchestrator.prompts import AgentPrompt
from services.orchestrator.run_failures import SECOND_DEATH, agent_failure_message, run_failure
from services.orchestrator.run_state import (
    AgentSkipped,
    AgentStatus,
    AgentUsage,
    OutputRef,
    OutputWritten,
    RunAgent,
    RunError,
    RunFinished,
    RunState,
    Step,
    StepChanged,
)
from services.orchestrator.steps import agent_runs, history, pages, sandbox
from services.orchestrator.steps.agent_runs import AgentInput, AgentReport
from services.orchestrator.steps.runtime import now, publish, runtime
from services.orchestrator.steps.sandbox import LeaseRef

_log = logging.getLogger(__name__)
WORKFLOW_NAME = "catalog_workflow"
STATE_EVENT = "state"


@dataclass(frozen=True)
class CatalogInput:
    """The workflow's one input, as DBOS stores it: nothing in it is secret."""

    # Every source's connection string in one sealed token (sources.seal_sources); opened
    # only in steps.
    sealed_conn: str
    tables: list[str]  # the run's table names: `table`, `schema.table`, `billing/invoices`
    s3_prefix: str  # the validated, normalised output prefix
    allow_writable: bool = False  # accept a connection that can write
    tenant: str = "default"  # who owns the run (tenants.py); runs from before tenants: default
    request_digest: str = ""  # keyed hash of the request (service.py), to spot a reused key
    # The run's agents in run order (Pipeline.plan); runs from before pipelines: the default.
    agents: tuple[str, ...] = ()
    max_cost_usd: float = 0.0  # the most the run's model calls may cost (USD); 0: no limit
    schedule_id: str = ""  # the schedule that started the run (schedule_tick.py), if any
    tick_time: str = ""  # and the tick it is for, UTC ISO 8601
    # The run's sources by name, in request order; runs from before sources: () = default.
    sources: tuple[str, ...] = ()
    # The most tables a run catalogs (the catalog prompt's max_tables): a source given no
    # tables has its own listed in the sandbox, up to what the named ones leave of this.
    max_tables: int = 0
    # Not part of the request: what the read-only check chose on those sources. The workflow
    # sets it (and `tables`) on its copy once the check has listed them.
    chosen: tuple[ChosenSource, ...] = ()

    @property
    def source_names(self) -> list[str]:
        return list(self.sources or (DEFAULT,))


@dataclass
class _Pass:
    """The agents' outcomes so far, for run_when, and the first failure, for the run's error."""

    outcomes: dict[str, str]
    failure: CatalogFailure | None = None
    fresh: bool = True  # the sandbox holds only the read-only probe, the database open


@DBOS.workflow(name=WORKFLOW_NAME)
async def catalog_workflow(request: CatalogInput) -> RunState:
    """The run; logs a line as it starts (again when recovered) and as it ends."""
    agents = list(request.agents or runtime().pipeline.plan())
    state = RunState(list(request.tables), request.s3_prefix, agents=[RunAgent(a) for a in agents])
    _log_event(
        "workflow started",
        tables=len(request.tables),
        sources=request.source_names,
        s3_prefix=request.s3_prefix,
        agents=agents,
    )
    try:
        state.timestamp = await pages.fix_timestamp(request.s3_prefix)
        await _enter(state, Step.ACQUIRING_SANDBOX)
        held = [await sandbox.acquire_sandbox(sandbox.AcquireInput(request.sealed_conn, 1))]
        await _run_holding(state, request, held, agents)
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


async def _run_holding(
    state: RunState, request: CatalogInput, held: list[LeaseRef], agents: list[str]
) -> None:
    """The run with its sandboxes, each released whatever happens (but kept for recovery
    when the process, not the user, stops the run)."""
    release = True
    try:
        await _run(state, request, held, agents)
    except dbos_error.DBOSWorkflowCancelledError:
        await agent_runs.cancel_agents(agents)  # a user cancelled: stop them
        run_ended("cancelled", "", state)
        raise
    except asyncio.CancelledError:
        # A stopping process cancels us too: keep the sandbox for the run's recovery.
        release = await _cancelled_by_user()
        if release:
            run_ended("cancelled", "", state)
        raise
    except (
        ServiceError,
        SandboxClientError,
        SealingError,
        dbos_error.DBOSMaxStepRetriesExceeded,
    ) as exc:
        raise run_failure(exc, state.step) from exc
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


def _log_event(event: str, **fields: Any) -> None:
    log_fields(_log, logging.INFO, event, workflow_id=DBOS.workflow_id, **fields)


async def _run(
    state: RunState, request: CatalogInput, held: list[LeaseRef], agents: list[str]
) -> None:
    """The run proper; `held` lists every lease taken, the current one last."""
    pipeline = runtime().pipeline
    gone = pipeline.unknown(agents)
    if gone:  # recovered by a process whose prompts no longer have them
        message = f"these agents have no prompt any more: {', '.join(gone)}"
        raise CatalogFailure("INTERNAL", message, Step.ACQUIRING_SANDBOX)
    await _enter(state, Step.CHECKING_READ_ONLY)
    request = await _check_and_choose(state, request, held[-1])
    run = _Pass({})
    for name in agents:
        blocked = pipeline.blocked(name, run.outcomes)
        if blocked is not None:
            run.outcomes[name] = SKIPPED
            await _skip(state, name, blocked)
            continue
        prompt = pipeline.prompts[name]
        history_dir = await _prepare(state, request, held, prompt, run)
        ok = await _agent(state, request, held, prompt, history_dir, run)
        run.outcomes[name] = SUCCEEDED if ok else FAILED
    await _enter(state, Step.RELEASING)
    if run.failure is not None:
        raise run.failure


def _listed(request: CatalogInput) -> tuple[str, ...]:
    """The sources the request named no tables of: theirs are listed in the sandbox."""
    named = {split(t)[0] for t in request.tables}
    return tuple(n for n in request.source_names if n not in named)


async def _check_and_choose(
    state: RunState, request: CatalogInput, lease: LeaseRef
) -> CatalogInput:
    """The read-only proof; on sources given no tables, it lists theirs too. The run then
    goes on with the tables chosen, in source order, and GetCatalog shows them."""
    listed = _listed(request)
    limit = request.max_tables - len(request.tables)
    check = sandbox.ReadOnlyCheck(lease, request.tables, request.allow_writable, listed, limit)
    chosen = await sandbox.check_read_only(check)
    if not listed:  # (a run from before listing recorded a bool here)
        return request
    picked = {c.name: list(c.tables) for c in chosen}
    tables = [t for name in request.source_names for t in picked.get(name) or _own(request, name)]
    request = replace(request, tables=tables, chosen=tuple(chosen))
    state.tables = list(tables)
    left_out = {c.name: c.left_out + c.unnamed for c in chosen}
    _log_event("tables chosen", tables=len(tables), left_out=left_out)
    await _publish_state(state)
    return request


def _own(request: CatalogInput, source: str) -> list[str]:
    return [t for t in request.tables if split(t)[0] == source]


async def _skip(state: RunState, name: str, blocked: Blocked) -> None:
    reason = blocked.reason(name)
    state.set_agent(name, AgentStatus.SKIPPED, blocked.need, reason)
    log_fields(
        _log,
        logging.WARNING,
        "agent skipped",
        workflow_id=DBOS.workflow_id,
        agent=name,
        dependency=blocked.need,
        reason=reason,
    )
    await _publish_state(state)
    await publish(AgentSkipped(name, blocked.need, reason, now()))


async def _prepare(
    state: RunState, request: CatalogInput, held: list[LeaseRef], prompt: AgentPrompt, run: _Pass
) -> str:
    """A clean sandbox for the agent; returns the history folder ("" if it reads none). The
    first agent of a run that reads the database uses the sandbox as the check left it."""
    reads_database = "database" in prompt.reads
    fresh, run.fresh = run.fresh, False
    if fresh and reads_database and "history" not in prompt.reads:
        return ""
    await _enter(state, Step.RESETTING_SANDBOX)
    history_dir = await _clean_sandbox(request, held, prompt)
    if history_dir is None:
        name = prompt.agent_name
        state.set_agent(name, AgentStatus.FAILED, detail=SECOND_DEATH.format(name))
        raise CatalogFailure(
            "SANDBOX_UNAVAILABLE", SECOND_DEATH.format(name), Step.RESETTING_SANDBOX
        )
    return history_dir


async def _clean_sandbox(
    request: CatalogInput, held: list[LeaseRef], prompt: AgentPrompt
) -> str | None:
    """Reset the current sandbox (or, if it died, a fresh one), with the database open only
    for an agent that reads it, and stage the history if it reads that. None when the sandbox
    died and the run has had its fresh one already."""
    sealed = request.sealed_conn if "database" in prompt.reads else ""
    if not await sandbox.reset_sandbox(sandbox.ResetInput(held[-1], sealed)):
        if not await _replace_sandbox(request, held):
            return None
        await sandbox.reset_sandbox(sandbox.ResetInput(held[-1], sealed))
    if "history" not in prompt.reads:
        return ""
    return await history.stage_history(history.HistoryInput(held[-1], request.s3_prefix))


async def _agent(
    state: RunState,
    request: CatalogInput,
    held: list[LeaseRef],
    prompt: AgentPrompt,
    history_dir: str,
    run: _Pass,
) -> bool:
    """Run one agent (twice if its sandbox died) and store the page of the run kept, with its
    data; record how it ended. True when it submitted its page; a failure is kept in `run`
    for the run's end, but a second sandbox death ends the run here, the agent recorded."""
    name = prompt.agent_name
    state.set_agent(name, AgentStatus.RUNNING)
    await _enter(state, Step.RUNNING_AGENT, name)
    attempt, report, lost = await _attempts(state, request, held, prompt, history_dir)
    stored = pages.StoredPage("", "")
    if report.has_page and not lost:  # a dead sandbox cannot give the page's data
        page = pages.PageInput(attempt, request.s3_prefix, state.timestamp, Step.RUNNING_AGENT)
        stored = await pages.store_page(page)
    ok = report.stop == "SUBMITTED" and not stored.data_lost and not lost
    message = "" if ok else agent_failure_message(report, stored, lost)
    state.set_agent(name, AgentStatus.SUCCEEDED if ok else AgentStatus.FAILED, detail=message)
    await _record(state, report, stored)
    if lost:
        raise CatalogFailure("SANDBOX_UNAVAILABLE", message, Step.RUNNING_AGENT)
    if not ok and run.failure is None:
        code = "AGENT_DATA_LOST" if stored.data_lost else "AGENT_FAILED"
        run.failure = CatalogFailure(code, message, Step.RUNNING_AGENT)
    return ok


async def _attempts(
    state: RunState,
    request: CatalogInput,
    held: list[LeaseRef],
    prompt: AgentPrompt,
    history_dir: str,
) -> tuple[AgentInput, AgentReport, bool]:
    """The agent's run, and one more on a fresh sandbox if its sandbox died: the last run,
    how it ended, and whether its sandbox died with no fresh one left for it."""
    attempt = _attempt(state, request, held, prompt, history_dir, 1)
    report = await agent_runs.execute_agent(attempt)
    if not await _died(report, attempt):
        return attempt, report, False
    if not await _replace_sandbox(request, held):
        return attempt, report, True
    retry_dir = await _clean_sandbox(request, held, prompt)
    if retry_dir is None:
        return attempt, report, True
    attempt = _attempt(state, request, held, prompt, retry_dir, 2)
    report = await agent_runs.execute_agent(attempt)
    return attempt, report, await _died(report, attempt)


def _attempt(
    state: RunState,
    request: CatalogInput,
    held: list[LeaseRef],
    prompt: AgentPrompt,
    history_dir: str,
    number: int,
) -> AgentInput:
    context = agent_context(prompt, request, state.timestamp, history_dir)
    cost_left = _cost_left(request, state)
    return AgentInput(prompt.agent_name, held[-1], context, request.sealed_conn, number, cost_left)


async def _died(report: AgentReport, attempt: AgentInput) -> bool:
    return report.stop == "ERROR" and await sandbox.sandbox_lost(attempt.lease)


def _cost_left(request: CatalogInput, state: RunState) -> float:
    """What the next agent may spend: what the run has left (a cent's ten-thousandth at
    least, as 0 means no limit); the runner stops it there as at its token budget."""
    if not request.max_cost_usd:
        return 0.0
    return max(request.max_cost_usd - state.cost_usd, 1e-6)


async def _replace_sandbox(request: CatalogInput, held: list[LeaseRef]) -> bool:
    """The one retry a run gets after its sandbox died: a fresh sandbox, same settings.
    False when the run had it already (the caller reports the second death)."""
    if len(held) > 1:
        return False
    await sandbox.release_sandbox(held[-1])
    replacement = sandbox.AcquireInput(request.sealed_conn, 2, tolerate_lost=True)
    held.append(await sandbox.acquire_sandbox(replacement))
    return True


async def _record(state: RunState, report: AgentReport, stored: pages.StoredPage) -> None:
    state.usage.append(
        AgentUsage(report.agent_name, report.stop, report.turns, report.usage, report.cost_usd)
    )
    if stored.uri:
        output = OutputRef(report.agent_name, stored.uri, report.complete, stored.data_uri)
        state.outputs.append(output)
        await publish(OutputWritten(output, now()))
    await _publish_state(state)


async def _enter(state: RunState, step: Step, agent: str = "") -> None:
    state.step, state.agent = step, agent
    await _publish_state(state)
    await publish(StepChanged(step, now(), agent))


async def _publish_state(state: RunState) -> None:
    await DBOS.set_event_async(STATE_EVENT, state)
