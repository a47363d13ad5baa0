"""Protos in, domain values out, and back. Request validation lives here, nowhere else."""

from __future__ import annotations

import json
import math
import re

from catalog.v1 import agent_pb2 as pb

from services.agent_runner.budget import Budget
from services.agent_runner.config import CEILING_VARS
from services.agent_runner.loop import (
    AgentEvent,
    AgentRequest,
    StopReason,
    ToolAnswered,
    ToolCalled,
    TurnStarted,
    UsageSoFar,
)
from services.agent_runner.prices import PriceTable
from services.common.errors import InvalidArgument
from services.common.usage import TokenUsage

# '@' too: the orchestrator names a scheduled run `{schedule_id}@{tick}` (schedule_tick.py)
_RUN_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")
STOP_REASONS = {
    StopReason.SUBMITTED: pb.STOP_REASON_SUBMITTED,
    StopReason.END_TURN: pb.STOP_REASON_END_TURN,
    StopReason.MAX_TOKENS: pb.STOP_REASON_MAX_TOKENS,
    StopReason.REFUSAL: pb.STOP_REASON_REFUSAL,
    StopReason.STOP_SEQUENCE: pb.STOP_REASON_STOP_SEQUENCE,
    StopReason.CONTEXT_WINDOW_EXCEEDED: pb.STOP_REASON_CONTEXT_WINDOW_EXCEEDED,
    StopReason.TOKEN_BUDGET: pb.STOP_REASON_TOKEN_BUDGET,
    StopReason.TURN_BUDGET: pb.STOP_REASON_TURN_BUDGET,
    StopReason.WALL_CLOCK_BUDGET: pb.STOP_REASON_WALL_CLOCK_BUDGET,
    StopReason.ERROR: pb.STOP_REASON_ERROR,
}


def agent_request(
    request: pb.RunAgentRequest,
    default_model: str,
    default_budget: Budget,
    *,
    ceiling: Budget | None = None,
    managers: tuple[str, ...] = (),
    max_page_bytes: int = 2 * 1024 * 1024,
    prices: PriceTable | None = None,
) -> AgentRequest:
    """The request as a domain value; InvalidArgument naming every field at fault.

    `ceiling`: the most each budget field may ask for. `managers`: the addresses a request's
    (deprecated) `sandbox.sandbox_manager_address` may name; the runner never dials another.
    `max_page_bytes`: the largest page a request may allow (CATALOG_AGENT_MAX_HTML_BYTES).
    `prices`: the price table; a cost budget needs the model's price in it.
    """
    problems = []
    if not _RUN_ID.match(request.run_id):
        problems.append(("run_id", "1 to 200 letters, digits or . _ : @ -"))
    if not request.agent_name:
        problems.append(("agent_name", "required"))
    if not request.system_prompt.strip():
        problems.append(("system_prompt", "required"))
    if not request.sandbox.lease_id:
        problems.append(("sandbox.lease_id", "required"))
    address = request.sandbox.sandbox_manager_address
    if address and address not in managers:
        problems.append(
            (
                "sandbox.sandbox_manager_address",
                "is not one of this runner's CATALOG_SANDBOX_MANAGERS; leave it empty (the "
                "lease id names its manager)",
            )
        )
    try:
        if not isinstance(json.loads(request.context_json or "{}"), dict):
            problems.append(("context_json", "must be a JSON object"))
    except ValueError:
        problems.append(("context_json", "is not valid JSON"))
    if not 0 <= request.max_page_bytes <= max_page_bytes:
        problems.append(
            (
                "max_page_bytes",
                f"must be 0 (the runner's maximum) up to {max_page_bytes}, this runner's "
                "CATALOG_AGENT_MAX_HTML_BYTES",
            )
        )
    budget = _budget(request.budget, default_budget, problems)
    if ceiling is not None:
        _check_ceiling(budget, ceiling, problems)
    model = request.model or default_model
    price = (prices or PriceTable()).price(model)
    if budget.max_cost_usd > 0 and price is None:
        problems.append(
            (
                "budget.max_cost_usd",
                f"needs a price for model {model!r}: add it to the runner's price table "
                "(CATALOG_PRICES_FILE), or leave max_cost_usd 0",
            )
        )
    if problems:
        fields = ", ".join(f"{name} ({why})" for name, why in problems)
        raise InvalidArgument(f"bad RunAgent request: {fields}", field_violations=problems)
    return AgentRequest(
        run_id=request.run_id,
        agent_name=request.agent_name,
        system_prompt=request.system_prompt,
        context_json=request.context_json or "{}",
        model=model,
        budget=budget,
        redact_values=tuple(request.redact_values),
        max_page_bytes=request.max_page_bytes or max_page_bytes,
        price=price,
    )


def _budget(message: pb.Budget, default: Budget, problems: list[tuple[str, str]]) -> Budget:
    for name in ("max_total_tokens", "max_turns", "max_output_tokens"):
        if getattr(message, name) < 0:
            problems.append((f"budget.{name}", "must not be negative"))
    wall_clock_s = message.wall_clock.seconds + message.wall_clock.nanos / 1e9
    if wall_clock_s < 0:
        problems.append(("budget.wall_clock", "must not be negative"))
    if not (math.isfinite(message.max_cost_usd) and message.max_cost_usd >= 0):
        problems.append(("budget.max_cost_usd", "must be a number of dollars, 0 or more"))
    return Budget(
        max_total_tokens=message.max_total_tokens or default.max_total_tokens,
        max_turns=message.max_turns or default.max_turns,
        wall_clock_s=wall_clock_s or default.wall_clock_s,
        max_output_tokens=message.max_output_tokens or default.max_output_tokens,
        max_cost_usd=message.max_cost_usd if math.isfinite(message.max_cost_usd) else 0.0,
    )


def _check_ceiling(budget: Budget, ceiling: Budget, problems: list[tuple[str, str]]) -> None:
    for name, variable in CEILING_VARS.items():
        asked, most = getattr(budget, name), getattr(ceiling, name)
        if asked > most:
            field = "budget.wall_clock" if name == "wall_clock_s" else f"budget.{name}"
            problems.append((field, f"{asked:g} is above the runner's ceiling {variable}={most:g}"))


def usage(value: TokenUsage) -> pb.Usage:
    return pb.Usage(
        input_tokens=value.input_tokens,
        output_tokens=value.output_tokens,
        cache_creation_input_tokens=value.cache_creation_input_tokens,
        cache_read_input_tokens=value.cache_read_input_tokens,
    )


def event(value: AgentEvent) -> pb.RunAgentResponse:
    if isinstance(value, TurnStarted):
        return pb.RunAgentResponse(turn_started=pb.TurnStarted(turn=value.turn))
    if isinstance(value, ToolCalled):
        return pb.RunAgentResponse(
            tool_call=pb.ToolCall(
                turn=value.turn,
                tool_use_id=value.tool_use_id,
                tool_name=value.tool_name,
                code=value.code,
                content_bytes=value.content_bytes,
            )
        )
    if isinstance(value, ToolAnswered):
        return pb.RunAgentResponse(
            tool_output=pb.ToolOutput(
                turn=value.turn,
                tool_use_id=value.tool_use_id,
                text=value.text,
                is_error=value.is_error,
            )
        )
    assert isinstance(value, UsageSoFar)
    return pb.RunAgentResponse(usage_update=pb.UsageUpdate(usage=usage(value.usage)))
