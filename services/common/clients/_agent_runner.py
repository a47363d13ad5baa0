"""Async client of catalog.v1.AgentRunnerService: one agent run, its progress, its result.

    async with AgentRunnerClient("agent-runner:50052", plane=plane) as runner:
        run = await runner.run(call, timeout_s=600, on_progress=publish)

The run id makes the call idempotent: a caller that runs again after a crash attaches to the
run the runner still holds, or gets its stored result, instead of paying for a second one.
Failures are the shared service errors (`_errors.runner_error`).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self

import grpc
from catalog.v1 import agent_pb2 as pb
from catalog.v1 import agent_pb2_grpc
from google.protobuf import duration_pb2

from services.common.clients._errors import runner_error
from services.common.control_plane import ControlPlane
from services.common.errors import Unavailable
from services.common.usage import TokenUsage

if TYPE_CHECKING:
    from catalog.v1.agent_pb2_grpc import AgentRunnerServiceAsyncStub as _Stub


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
        """UNSPECIFIED for a reason this client does not know (a newer runner's)."""
        try:
            name = pb.StopReason.Name(value).removeprefix("STOP_REASON_")  # type: ignore[arg-type]
        except ValueError:
            return cls.UNSPECIFIED
        return cls(name) if name in cls.__members__ else cls.UNSPECIFIED


@dataclass(frozen=True)
class AgentCall:
    """One agent run. `redact_values` go to the runner only; they are never stored."""

    run_id: str
    agent_name: str
    system_prompt: str
    context_json: str
    lease_id: str
    redact_values: tuple[str, ...] = field(default=(), repr=False)
    max_page_bytes: int = 0  # the prompt's limit on the page; 0: the runner's maximum
    max_cost_usd: float = 0.0  # the most the run may cost (the runner's prices); 0: no limit


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
    cost_usd: float | None = None  # from the runner's price table; None: no price for the model


OnProgress = Callable[[AgentProgressEvent], Awaitable[None]]
# How long past the run's own wall-clock budget the call may take: the runner's last page.
_RESULT_GRACE_S = 60


class AgentRunnerClient:
    """Runs agents at one runner. The channel opens on first use; `close` (or the `async
    with` block's end) closes it."""

    def __init__(self, address: str, *, plane: ControlPlane | None = None) -> None:
        """`plane` carries the service token (and the CA when the runner serves TLS)."""
        self._address = address
        self._plane = plane or ControlPlane()
        self._channel: grpc.aio.Channel | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    def _stub(self) -> _Stub:
        if self._channel is None:
            self._channel = self._plane.channel(self._address)
        return agent_pb2_grpc.AgentRunnerServiceStub(self._channel)

    async def run(self, call: AgentCall, *, timeout_s: float, on_progress: OnProgress) -> AgentRun:
        """Run (or attach to) an agent and return its result; progress is reported as it comes.

        The lease alone names the sandbox: the runner finds its manager among its own.
        """
        request = pb.RunAgentRequest(
            run_id=call.run_id,
            agent_name=call.agent_name,
            system_prompt=call.system_prompt,
            context_json=call.context_json,
            sandbox=pb.SandboxRef(lease_id=call.lease_id),
            budget=pb.Budget(
                wall_clock=duration_pb2.Duration(seconds=int(timeout_s)),
                max_cost_usd=call.max_cost_usd,
            ),
            redact_values=list(call.redact_values),
            max_page_bytes=call.max_page_bytes,
        )
        stream = self._stub().RunAgent(request, timeout=timeout_s + _RESULT_GRACE_S)
        try:
            return await _follow(stream, call, on_progress)
        except grpc.aio.AioRpcError as exc:
            raise runner_error(exc, self._address) from exc

    async def cancel(self, run_ids: list[str], *, timeout_s: float = 10) -> None:
        """Stop these runs at the runner, if it still runs them; best effort (the runner stops
        a run anyway at its next sandbox call once the lease is gone)."""
        stub = self._stub()
        for run_id in run_ids:
            try:
                await stub.CancelAgentRun(
                    pb.CancelAgentRunRequest(run_id=run_id), timeout=timeout_s
                )
            except grpc.aio.AioRpcError:
                return


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
        cost_usd=result.cost_usd if result.HasField("cost_usd") else None,
    )
