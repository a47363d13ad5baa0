"""How a run's failures are worded: a dependency's failure as the run's error, and why an agent
did not give its page. The messages are ours, free of secrets."""

from __future__ import annotations

from dbos import error as dbos_error

from services.common.clients import SandboxClientError
from services.orchestrator.errors import CatalogFailure, SealingError
from services.orchestrator.run_state import Step
from services.orchestrator.steps import pages
from services.orchestrator.steps.agent_runs import AgentReport

SECOND_DEATH = "a second sandbox died during the run, under the {} agent; run the catalog again"


def run_failure(exc: Exception, step: Step) -> CatalogFailure:
    """A dependency's failure as the run's error; the messages are ours, free of secrets."""
    if isinstance(exc, SandboxClientError):
        return CatalogFailure("SANDBOX_UNAVAILABLE", f"the sandbox failed: {exc}", step)
    if isinstance(exc, SealingError):
        return CatalogFailure("INTERNAL", str(exc), step)
    if isinstance(exc, dbos_error.DBOSMaxStepRetriesExceeded):
        # Only the steps that call the runner retry, and only while it is unreachable.
        last = f": {exc.errors[-1]}" if exc.errors else ""
        message = f"the agent runner stayed unreachable after {exc.max_retries} tries{last}"
        return CatalogFailure("AGENT_RUNNER_UNAVAILABLE", message, step)
    code = "AGENT_RUNNER_UNAVAILABLE" if step == Step.RUNNING_AGENT else "INTERNAL"
    return CatalogFailure(code, str(exc), step)


def agent_failure_message(report: AgentReport, stored: pages.StoredPage, lost: bool) -> str:
    name = report.agent_name
    if lost:
        return SECOND_DEATH.format(name)
    if stored.data_lost:
        return (
            f"the {name} agent's data could not be exported: its sandbox's lease had ended "
            "(an orchestrator down longer than CATALOG_LEASE_TTL_S, or the sandbox died after "
            "the agent), so its page was not stored either; run the catalog again"
        )
    kept = f"; its incomplete page is at {stored.uri}" if stored.uri else ""
    detail = f" ({report.stop_detail})" if report.stop_detail else ""
    return f"the {name} agent stopped with {report.stop}{detail}{kept}"
