"""The agent runner as the orchestrator uses it: one RunAgent call, its progress, its result.

The run id makes the call idempotent: a step that runs again after a crash attaches to the
run the runner still holds, or gets its stored result, instead of paying for a second one.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from catalog.v1 import agent_pb2 as pb
from catalog.v1 import agent_pb2_grpc
from google.protobuf import duration_pb2

from services.common.control_plane import ControlPlane
from services.common.errors import DeadlineExceeded, InvalidArgument, Unavailable
from services.common.usage import TokenUsage


class AgentStop(enum.StrEnum):
    """Why an agent stopped, as the runner labels it (StopReason without its prefix)."""

    SUBMITTED = "SUBMITTED"
    END_TURN = "END_TURN"
    MAX_TOKENS = "MAX_TOKENS"
    REFUSAL = "REFUSAL"
    STOP_SEQUENCE = "STOP_SEQUENCE"
    CONTEXT_WINDOW_EXCEEDED = "CONTEXT_WINDOW_EXCEEDED"
    TOKEN_BUDGET = "TOKEN_BUDGET"
    TURN_BUDGET = "TURN_BUDGET"
    WALL_CLOCK_BUDGET = "WALL_CLOCK_BUDGET"
    ERROR = "ERROR"
    UNSPECIFIED = "UNSPECIFIED"

    @classmethod
    def from_proto(cls, value: int) -> AgentStop:
        return cls(pb.StopReason.Name(value).removeprefix("STOP_REASON_"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class AgentCall:
    """One agent run. `redact_values` go to the runner only; they are never stored."""

    run_id: str
    agent_name: str
    system_prompt: str
    context_json: str
    lease_id: str
    redact_values: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class AgentProgressEvent:
    agent_name: str
    turn: int
    tool_name: str
    usage: TokenUsage


@dataclass(frozen=True)
class AgentRun:
    html: str
    usage: TokenUsage
    stop: AgentStop
    complete: bool
    turns: int
    model: str
    offline: bool
    stop_detail: str


OnProgress = Callable[[AgentProgressEvent], Awaitable[None]]


async def run_agent(
    address: str,
    call: AgentCall,
    *,
    timeout_s: float,
    on_progress: OnProgress,
    plane: ControlPlane | None = None,
) -> AgentRun:
    """Run (or attach to) an agent and return its result; progress is reported as it comes.

    The lease alone names the sandbox: the runner finds its manager among its own.
    `plane` carries the service token (and the CA when the runner serves TLS).
    """
    request = pb.RunAgentRequest(
        run_id=call.run_id,
        agent_name=call.agent_name,
        system_prompt=call.system_prompt,
        context_json=call.context_json,
        sandbox=pb.SandboxRef(lease_id=call.lease_id),
        budget=pb.Budget(wall_clock=duration_pb2.Duration(seconds=int(timeout_s))),
        redact_values=list(call.redact_values),
    )
    async with (plane or ControlPlane()).channel(address) as channel:
        stub = agent_pb2_grpc.AgentRunnerServiceStub(channel)
        try:
            return await _follow(stub.RunAgent(request, timeout=timeout_s + 60), call, on_progress)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, address) from exc


async def _follow(
    stream: grpc.aio.UnaryStreamCall[pb.RunAgentRequest, pb.RunAgentResponse],
    call: AgentCall,
    on_progress: OnProgress,
) -> AgentRun:
    usage = TokenUsage()
    async for event in stream:
        kind = event.WhichOneof("event")
        if kind == "usage_update":
            usage = TokenUsage.from_proto(event.usage_update.usage)
        elif kind == "tool_call":
            tool = event.tool_call
            await on_progress(AgentProgressEvent(call.agent_name, tool.turn, tool.tool_name, usage))
        elif kind == "result":
            return _result(event.result)
    raise Unavailable(f"the agent runner ended the {call.agent_name} run without a result")


def _result(result: pb.AgentResult) -> AgentRun:
    return AgentRun(
        html=result.html,
        usage=TokenUsage.from_proto(result.usage),
        stop=AgentStop.from_proto(result.stop_reason),
        complete=result.complete,
        turns=result.turns,
        model=result.model,
        offline=result.offline,
        stop_detail=result.stop_detail,
    )


def _translate(exc: grpc.aio.AioRpcError, address: str) -> Exception:
    code, detail = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(f"the agent runner refused the run: {detail}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the agent run took longer than allowed: {detail}")
    return Unavailable(f"the agent runner at {address} failed ({code.name}): {detail}")


async def cancel_runs(
    address: str,
    run_ids: list[str],
    *,
    timeout_s: float = 10,
    plane: ControlPlane | None = None,
) -> None:
    """Stop these runs at the runner, if it still runs them; best effort (the runner stops a
    run anyway at its next sandbox call once the lease is gone)."""
    async with (plane or ControlPlane()).channel(address) as channel:
        stub = agent_pb2_grpc.AgentRunnerServiceStub(channel)
        for run_id in run_ids:
            try:
                await stub.CancelAgentRun(
                    pb.CancelAgentRunRequest(run_id=run_id), timeout=timeout_s
                )
            except grpc.aio.AioRpcError:
                return
