"""catalog.v1.AgentRunnerService: each RPC translates, calls the service, translates back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from catalog.v1 import agent_pb2 as pb
from catalog.v1 import agent_pb2_grpc

from services.agent_runner import translate
from services.agent_runner.config import Settings
from services.agent_runner.runs import RunRegistry
from services.agent_runner.service import AgentService
from services.common.errors import InvalidArgument, NotFound
from services.common.logging import log_fields

_log = logging.getLogger(__name__)

_Context = grpc.aio.ServicerContext[Any, Any]


class AgentRunnerServicer(agent_pb2_grpc.AgentRunnerServiceServicer):
    def __init__(
        self, settings: Settings, agents: AgentService, runs: RunRegistry[pb.RunAgentResponse]
    ) -> None:
        self._settings = settings
        self._agents = agents
        self._runs = runs

    async def RunAgent(
        self, request: pb.RunAgentRequest, context: _Context
    ) -> AsyncIterator[pb.RunAgentResponse]:
        settings = self._settings
        agent = translate.agent_request(
            request,
            settings.model,
            settings.budget,
            ceiling=settings.budget_ceiling,
            managers=settings.sandbox_managers,
            max_page_bytes=settings.max_html_bytes,
            prices=settings.prices,
        )
        lease_id = request.sandbox.lease_id

        async def start(publish: Any) -> pb.RunAgentResponse:
            return await self._agents.run(agent, lease_id, publish)

        async for event in self._runs.attach(agent.run_id, start):
            yield event

    async def CancelAgentRun(
        self, request: pb.CancelAgentRunRequest, context: _Context
    ) -> pb.CancelAgentRunResponse:
        if not request.run_id:
            raise InvalidArgument("run_id is empty", field_violations=[("run_id", "required")])
        cancelled = await self._runs.cancel(request.run_id)
        if cancelled:
            log_fields(_log, logging.INFO, "agent run cancelled", run=request.run_id)
        return pb.CancelAgentRunResponse(cancelled=cancelled)

    async def GetAgentRun(
        self, request: pb.GetAgentRunRequest, context: _Context
    ) -> pb.GetAgentRunResponse:
        if not request.run_id:
            raise InvalidArgument("run_id is empty", field_violations=[("run_id", "required")])
        run = await self._runs.get(request.run_id)
        if run is None:
            raise NotFound(
                f"no agent run {request.run_id!r}: it never started here or its "
                "result has passed its retention"
            )
        if run.final is None:
            usage = [e.usage_update.usage for e in run.events if e.HasField("usage_update")]
            turns = [e.turn_started.turn for e in run.events if e.HasField("turn_started")]
            return pb.GetAgentRunResponse(
                run_id=run.run_id,
                state=pb.AGENT_RUN_STATE_RUNNING,
                usage=usage[-1] if usage else None,
                turns=turns[-1] if turns else 0,
            )
        result = run.final.result
        return pb.GetAgentRunResponse(
            run_id=run.run_id,
            state=pb.AGENT_RUN_STATE_FINISHED,
            result=result,
            usage=result.usage,
            turns=result.turns,
        )
