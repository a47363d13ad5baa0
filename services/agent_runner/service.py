"""Runs one agent: Claude through the loop, or the offline agent when no API key is set.

Each run is an `invoke_agent` span (OpenTelemetry's GenAI conventions) holding its `chat` and
`execute_tool` spans; its cost comes from the price table, and its end is counted in the
metrics and logged with the cost.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from catalog.v1 import agent_pb2 as pb

from services.agent_runner import translate
from services.agent_runner.config import Settings
from services.agent_runner.html import PageMeta, wrap_page
from services.agent_runner.llm import Llm
from services.agent_runner.loop import AgentEvent, AgentLoop, AgentOutcome, AgentRequest, StopReason
from services.agent_runner.metrics import count_run
from services.agent_runner.offline_agent import OfflineAgent
from services.agent_runner.report import context_limits, expand_report
from services.agent_runner.sandbox_tool import SandboxCodeRunner
from services.common.clients import SandboxClient
from services.common.logging import log_fields
from services.common.redaction import Redactor
from services.common.telemetry import span
from services.common.usage import TokenUsage

_log = logging.getLogger(__name__)
OFFLINE_MODEL = "offline"


class AgentService:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._llm = (
            None
            if settings.offline
            else Llm(
                settings.anthropic_api_key, settings.anthropic_base_url, settings.llm_max_retries
            )
        )
        # Only the configured managers, never an address from a request: the client routes
        # each lease to its manager by the lease id's prefix.
        self._sandboxes = SandboxClient(settings.sandbox_managers, plane=settings.control_plane)

    async def run(
        self,
        request: AgentRequest,
        lease_id: str,
        publish: Callable[[pb.RunAgentResponse], None],
    ) -> pb.RunAgentResponse:
        """The whole run; it always ends in a result, with a page, even when it failed."""
        started = time.monotonic()
        with span(f"invoke_agent {request.agent_name}", self._span_attributes(request)) as run:
            outcome = await self._outcome(request, lease_id, publish)
            cost = self._cost(request, outcome)
            run.set_attributes(_outcome_attributes(outcome, cost))
        count_run(request.agent_name, outcome.stop_reason.value, time.monotonic() - started)
        log_fields(
            _log,
            logging.INFO,
            "agent run cost",
            run=request.run_id,
            agent=request.agent_name,
            model=self._model(request),
            cost_usd=cost,
        )
        return self._result(request, outcome, cost)

    def _model(self, request: AgentRequest) -> str:
        return OFFLINE_MODEL if self._llm is None else request.model

    def _cost(self, request: AgentRequest, outcome: AgentOutcome) -> float | None:
        """USD from the price table; 0 offline, None for a model the table has no price for."""
        if self._llm is None:
            return 0.0
        return None if request.price is None else request.price.cost(outcome.usage)

    def _span_attributes(self, request: AgentRequest) -> dict[str, str]:
        return {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": request.agent_name,
            "gen_ai.provider.name": "anthropic" if self._llm is not None else OFFLINE_MODEL,
            "gen_ai.request.model": self._model(request),
        }

    async def _outcome(
        self,
        request: AgentRequest,
        lease_id: str,
        publish: Callable[[pb.RunAgentResponse], None],
    ) -> AgentOutcome:
        settings = self._settings

        async def emit(event: AgentEvent) -> None:
            publish(translate.event(event))

        redact = Redactor(request.redact_values)
        runner = SandboxCodeRunner(self._sandboxes, lease_id, redact, settings.tool_output_bytes)
        html_bytes, cell_s = request.max_page_bytes, settings.cell_timeout_s
        agent = (
            OfflineAgent(
                request,
                runner,
                emit,
                max_html_bytes=html_bytes,
                cell_timeout_s=cell_s,
                profile_concurrency=settings.profile_concurrency,
            )
            if self._llm is None
            else AgentLoop(
                request, self._llm, runner, emit, max_html_bytes=html_bytes, cell_timeout_s=cell_s
            )
        )
        try:
            outcome = await agent.run()
            # The prompt's max_page_bytes bounds the agent's own HTML, "before the figures are
            # added"; the page with them is held to this runner's ceiling (thousands of tables'
            # compact figures take 1.6 MB).
            limits = context_limits(request.context_json)
            filled = await expand_report(
                outcome.body_html, runner, settings.max_html_bytes, request.agent_name, limits
            )
            # the page too: a model could spell a secret out from pieces it was shown
            # the stop detail as well: it is stored with the page (run_store.py)
            outcome = dataclasses.replace(
                outcome, body_html=redact(filled), stop_detail=redact(outcome.stop_detail)
            )
        except Exception as exc:  # a bug must still end the run with a stored result
            log_fields(_log, logging.ERROR, "agent run failed", run=request.run_id, exc_info=exc)
            outcome = AgentOutcome(
                "<h1>No page was submitted</h1><p>The agent runner failed; see its log.</p>",
                TokenUsage(),
                StopReason.ERROR,
                False,
                0,
                "the agent runner failed",
            )
        return outcome

    def _result(
        self, request: AgentRequest, outcome: AgentOutcome, cost: float | None
    ) -> pb.RunAgentResponse:
        offline = self._llm is None
        model = self._model(request)
        page = wrap_page(
            outcome.body_html,
            PageMeta(
                agent_name=request.agent_name,
                model=model,
                generated_at=datetime.now(UTC),
                usage=outcome.usage,
                stop_reason=outcome.stop_reason.value,
                turns=outcome.turns,
                complete=outcome.complete,
                incomplete_reason=outcome.stop_detail,
                offline=offline,
                run_id=request.run_id,
                cost_usd=cost,
            ),
        )
        return pb.RunAgentResponse(
            result=pb.AgentResult(
                html=page,
                usage=translate.usage(outcome.usage),
                stop_reason=translate.STOP_REASONS[outcome.stop_reason],
                complete=outcome.complete,
                turns=outcome.turns,
                model=model,
                offline=offline,
                stop_detail=outcome.stop_detail,
                cost_usd=cost,
            )
        )

    async def close(self) -> None:
        await self._sandboxes.close()
        if self._llm is not None:
            await self._llm.close()


def _outcome_attributes(outcome: AgentOutcome, cost: float | None) -> dict[str, str | int | float]:
    usage = outcome.usage
    attributes: dict[str, str | int | float] = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_creation_input_tokens,
        "catalog.agent.stop_reason": outcome.stop_reason.value,
        "catalog.agent.turns": outcome.turns,
    }
    if cost is not None:
        attributes["catalog.cost_usd"] = cost
    return attributes
