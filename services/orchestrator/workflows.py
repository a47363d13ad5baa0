"""The catalog workflow: orchestration only, deterministic; all I/O is in steps.py.

    acquire a sandbox -> prove read only -> catalog agent (writes catalog.html)
    -> reset the sandbox, copy earlier runs in -> summary agent (writes summary.html)
    -> release the sandbox, always

The run's state is one DBOS event, `state`, rewritten at every change (GetCatalog reads it);
each change is also appended to the `progress` stream (WatchCatalog follows it). An agent
whose sandbox died gets one more try on a fresh sandbox. A failed run raises CatalogFailure,
so DBOS records it as ERROR; pages already written stay.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from dbos import DBOS
from dbos import error as dbos_error

from services.common.clients import SandboxClientError
from services.common.errors import ServiceError
from services.common.logging import log_fields
from services.orchestrator import steps
from services.orchestrator.errors import CatalogFailure, SealingError
from services.orchestrator.steps import LeaseRef, StoredAgentRun

_log = logging.getLogger(__name__)
WORKFLOW_NAME = "catalog_workflow"
STATE_EVENT = "state"
_AGENT_STEPS = {"catalog": "CATALOG_AGENT", "summary": "SUMMARY_AGENT"}


@dataclass(frozen=True)
class CatalogInput:
    """The workflow's one input, as DBOS stores it: nothing in it is secret."""

    sealed_conn: str  # the connection string, sealed (sealing.py); opened only in steps
    tables: list[str]  # table names, `table` or `schema.table`
    s3_prefix: str  # the validated, normalised output prefix
    allow_writable: bool = False  # accept a connection that can write
    tenant: str = "default"  # who owns the run (tenants.py); runs from before tenants: default
    request_digest: str = ""  # keyed hash of the request (service.py), to spot a reused key


@dataclass
class _State:
    tables: list[str]
    s3_prefix: str
    step: str = "ACQUIRING_SANDBOX"
    timestamp: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None


@DBOS.workflow(name=WORKFLOW_NAME)
async def catalog_workflow(request: CatalogInput) -> dict[str, Any]:
    """The run; logs a line as it starts (again when recovered) and as it ends."""
    state = _State(list(request.tables), request.s3_prefix)
    _log_event("workflow started", tables=len(request.tables), s3_prefix=request.s3_prefix)
    try:
        state.timestamp = await steps.fix_timestamp(request.s3_prefix)
        await _enter(state, "ACQUIRING_SANDBOX")
        held = [await steps.acquire_sandbox(request.sealed_conn, 1)]
        release = True
        try:
            await _run(state, request, held)
        except dbos_error.DBOSWorkflowCancelledError:
            await steps.cancel_agents()  # a user cancelled the run: stop its agent too
            raise
        except asyncio.CancelledError:
            # A stopping process cancels us too: keep the sandbox for the run's recovery.
            release = await _cancelled_by_user()
            raise
        except (ServiceError, SandboxClientError, SealingError) as exc:
            raise _failure(exc, state.step) from exc
        finally:
            if release:
                for lease in held:  # idempotent: releasing a released lease is a no-op
                    await steps.release_sandbox(lease)
    except CatalogFailure as failure:
        state.error = {"code": failure.code, "message": failure.message, "step": failure.step}
        await _publish_state(state)
        _log_event("workflow ended", status="FAILED", code=failure.code, step=failure.step)
        raise
    await _enter(state, "DONE")
    await steps.publish({"kind": "final"})
    _log_event("workflow ended", status="SUCCEEDED", outputs=[o["uri"] for o in state.outputs])
    return asdict(state)


async def _cancelled_by_user() -> bool:
    try:
        status = await DBOS.get_workflow_status_async(DBOS.workflow_id or "")
    except Exception:  # the system database is going away with the process
        return False
    return status is not None and status.status == "CANCELLED"


def _failure(exc: Exception, step: str) -> CatalogFailure:
    """A dependency's failure as the run's error; the messages are ours, free of secrets."""
    if isinstance(exc, SandboxClientError):
        return CatalogFailure("SANDBOX_UNAVAILABLE", f"the sandbox failed: {exc}", step)
    if isinstance(exc, SealingError):
        return CatalogFailure("INTERNAL", str(exc), step)
    code = "AGENT_RUNNER_UNAVAILABLE" if step.endswith("_AGENT") else "INTERNAL"
    return CatalogFailure(code, str(exc), step)


def _log_event(event: str, **fields: Any) -> None:
    log_fields(_log, logging.INFO, event, workflow_id=DBOS.workflow_id, **fields)


async def _run(state: _State, request: CatalogInput, held: list[LeaseRef]) -> None:
    """The run proper; `held` lists every lease taken, the current one last."""
    lease = held[-1]
    await _enter(state, "CHECKING_READ_ONLY")
    await steps.check_read_only(lease, request.tables, request.allow_writable)
    await _enter(state, "CATALOG_AGENT")
    lease = await _agent(state, request, held, "catalog", {"tables": request.tables})
    await _enter(state, "RESETTING_SANDBOX")
    if not await steps.reset_sandbox(lease):  # it died after the catalog agent: take another
        lease = await _replace_sandbox(request, held)
        await steps.reset_sandbox(lease)
    history_dir = await steps.stage_history(lease, request.s3_prefix)
    await _enter(state, "SUMMARY_AGENT")
    context = {
        "s3_prefix": request.s3_prefix,
        "current_timestamp": state.timestamp,
        "history_dir": history_dir,
    }
    await _agent(state, request, held, "summary", context)
    await _enter(state, "RELEASING")


async def _agent(
    state: _State,
    request: CatalogInput,
    held: list[LeaseRef],
    agent_name: str,
    context: dict[str, Any],
) -> LeaseRef:
    """Run one agent, with one more try on a fresh sandbox if its sandbox died."""
    lease = held[-1]
    args = (request.sealed_conn, request.s3_prefix, state.timestamp)
    outcome = await steps.run_agent(agent_name, lease, context, *args, 1)
    if outcome.stop == "ERROR" and await steps.sandbox_lost(lease):
        lease = await _replace_sandbox(request, held)
        if agent_name == "summary":
            await steps.reset_sandbox(lease)
            context = {**context, "history_dir": await steps.stage_history(lease, args[1])}
        outcome = await steps.run_agent(agent_name, lease, context, *args, 2)
    await _record(state, outcome)
    if outcome.stop != "SUBMITTED":
        raise CatalogFailure("AGENT_FAILED", _failure_message(outcome), _AGENT_STEPS[agent_name])
    return lease


async def _replace_sandbox(request: CatalogInput, held: list[LeaseRef]) -> LeaseRef:
    """The one retry a run gets after its sandbox died: a fresh sandbox, same settings."""
    if len(held) > 1:
        raise CatalogFailure(
            "SANDBOX_UNAVAILABLE", "a second sandbox died during the run", "RESETTING_SANDBOX"
        )
    await steps.release_sandbox(held[-1])
    held.append(await steps.acquire_sandbox(request.sealed_conn, 2))
    return held[-1]


async def _record(state: _State, outcome: StoredAgentRun) -> None:
    usage = {"agent_name": outcome.agent_name, "stop_reason": outcome.stop, "turns": outcome.turns}
    state.usage.append({**usage, "usage": outcome.usage})
    if outcome.uri:
        output = {
            "agent_name": outcome.agent_name,
            "uri": outcome.uri,
            "complete": outcome.complete,
            "data_uri": outcome.data_uri,
        }
        state.outputs.append(output)
        await steps.publish({"kind": "output", **output})
    await _publish_state(state)


def _failure_message(outcome: StoredAgentRun) -> str:
    kept = f"; its incomplete page is at {outcome.uri}" if outcome.uri else ""
    detail = f" ({outcome.stop_detail})" if outcome.stop_detail else ""
    return f"the {outcome.agent_name} agent stopped with {outcome.stop}{detail}{kept}"


async def _enter(state: _State, step: str) -> None:
    state.step = step
    await _publish_state(state)
    await steps.publish({"kind": "step", "step": step})


async def _publish_state(state: _State) -> None:
    await DBOS.set_event_async(STATE_EVENT, asdict(state))
