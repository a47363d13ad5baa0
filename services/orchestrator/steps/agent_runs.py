"""Agent steps: run an agent through the runner; fetch a finished run's page; cancel runs.

The run id (`{workflow}.{agent}.{attempt}`) makes each call idempotent at the runner: a step
that runs again after a crash attaches to the run the runner still holds, or gets its stored
result, instead of paying for a second one. The page is not kept in DBOS (it may be megabytes):
the page step asks the runner for the finished run's result by the same id.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from dbos import DBOS, StepOptions

from services.common.clients import (
    AgentCall,
    AgentProgressEvent,
    AgentRun,
    AgentRunnerClient,
    OnProgress,
)
from services.common.errors import Unavailable
from services.common.logging import log_fields
from services.common.usage import TokenUsage
from services.orchestrator.run_state import AgentProgress
from services.orchestrator.sources import open_sources, source_secrets
from services.orchestrator.steps.runtime import Runtime, logged, now, publish, runtime
from services.orchestrator.steps.sandbox import LeaseRef

_log = logging.getLogger(__name__)
ATTEMPTS = (1, 2)  # a first run, and one more on a fresh sandbox if the first one's died


@dataclass(frozen=True)
class AgentInput:
    agent_name: str  # names the prompt (prompts/{agent_name}.yaml) and the page
    lease: LeaseRef  # the sandbox the agent runs its code in
    context_json: str  # the context injected into the agent's first message
    sealed_conn: str  # every DSN, sealed; their secrets are redacted from all the agent sends
    attempt: int  # one of ATTEMPTS: part of the run id
    max_cost_usd: float = 0.0  # what the agent may spend (what the run has left); 0: no limit


@dataclass(frozen=True)
class AgentReport:
    """What the workflow keeps of an agent run: how it ended, never its page."""

    agent_name: str
    stop: str  # an AgentStop value
    stop_detail: str
    complete: bool  # the page is whole (not cut short by a budget)
    turns: int
    usage: TokenUsage
    has_page: bool  # the agent submitted a page, for the page step to store
    cost_usd: float | None = None  # USD, from the runner's price table; None: unknown


def agent_run_id(workflow_id: str, agent_name: str, attempt: int) -> str:
    return f"{workflow_id}.{agent_name}.{attempt}"


def runner_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, Unavailable)


RUNNER_TRIES = 6


def runner_retries(name: str) -> StepOptions:
    """The options of a step that calls the runner: a runner that restarts is retried with the
    same run id, and a run it still holds is reattached (or its stored result returned). The
    first pause is CATALOG_RUNNER_RETRY_S, doubled at each try; after the last DBOS raises
    DBOSMaxStepRetriesExceeded, which the workflow reports as AGENT_RUNNER_UNAVAILABLE."""
    return {
        "name": name,
        "preemptible": True,
        "retries_allowed": True,
        "max_attempts": RUNNER_TRIES,
        "interval_seconds": runtime().settings.runner_retry_s,
        "backoff_rate": 2.0,
        "should_retry": runner_unreachable,
    }


async def execute_agent(request: AgentInput) -> AgentReport:
    """The step `run_agent` (its options are read from the settings at each call)."""
    return await DBOS.run_step_async(runner_retries("run_agent"), _execute_agent, request)


async def _execute_agent(request: AgentInput) -> AgentReport:
    """Run one agent through the runner, publishing its progress; return how it ended."""
    workflow_id = DBOS.workflow_id or ""
    agent_name = request.agent_name
    async with logged("run_agent", agent=agent_name, attempt=request.attempt):
        log_fields(_log, logging.INFO, "agent started", workflow_id=workflow_id, agent=agent_name)
        result = await _call_runner(runtime(), request, _publish_progress)
        log_fields(
            _log,
            logging.INFO,
            "agent ended",
            workflow_id=workflow_id,
            agent=agent_name,
            stop=result.stop.value,
            turns=result.turns,
            cost_usd=result.cost_usd,
            **asdict(result.usage),
        )
    return AgentReport(
        agent_name=agent_name,
        stop=result.stop.value,
        stop_detail=result.stop_detail,
        complete=result.complete,
        turns=result.turns,
        usage=result.usage,
        has_page=bool(result.html),
        cost_usd=result.cost_usd,
    )


async def finished_page(rt: Runtime, request: AgentInput) -> str:
    """The page of a run `execute_agent` finished: the runner's stored result for its id."""
    result = await _call_runner(rt, request, _ignore_progress)
    return result.html


async def _call_runner(rt: Runtime, request: AgentInput, on_progress: OnProgress) -> AgentRun:
    call = AgentCall(
        run_id=agent_run_id(DBOS.workflow_id or "", request.agent_name, request.attempt),
        agent_name=request.agent_name,
        system_prompt=rt.prompts[request.agent_name].system_prompt,
        context_json=request.context_json,
        lease_id=request.lease.lease_id,
        redact_values=source_secrets(open_sources(rt.sealer, request.sealed_conn)),
        # What the model is told (the prompt's limit) is what the runner holds it to.
        max_page_bytes=int(rt.prompts[request.agent_name].limits.get("max_page_bytes", 0)),
        max_cost_usd=request.max_cost_usd,
    )
    async with _runner(rt) as runner:
        return await runner.run(
            call, timeout_s=rt.settings.agent_timeout_s, on_progress=on_progress
        )


async def _publish_progress(event: AgentProgressEvent) -> None:
    await publish(AgentProgress(event.agent_name, event.turn, event.tool_name, event.usage, now()))


async def _ignore_progress(event: AgentProgressEvent) -> None:
    """A finished run's events replayed: published already, while it ran."""


async def cancel_agents(agent_names: list[str]) -> None:
    """Stop this run's agents at the runner. Not a step: like the release, it must run after
    a cancel, when steps no longer do."""
    workflow_id = DBOS.workflow_id or ""
    run_ids = [agent_run_id(workflow_id, a, n) for a in agent_names for n in ATTEMPTS]
    async with _runner(runtime()) as runner:
        await runner.cancel(run_ids)


def _runner(rt: Runtime) -> AgentRunnerClient:
    return AgentRunnerClient(rt.settings.agent_runner, plane=rt.settings.control_plane)
