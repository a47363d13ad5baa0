"""What an agent may spend, and what it has spent.

Tokens are counted on all four usage fields: cache reads and writes cost money and context too,
and peers that count only ``input_tokens`` undercount badly once prompt caching works. A cost
budget (a request's ``max_cost_usd``) is the same tokens priced by the model's entry in the price
table (prices.py); crossing it stops the run as the token budget does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from services.agent_runner.prices import ModelPrice
from services.common.usage import TokenUsage


@dataclass(frozen=True)
class Budget:
    max_total_tokens: int = 2_000_000
    max_turns: int = 40
    wall_clock_s: float = 1800.0
    max_output_tokens: int = 16_000  # per model response
    max_cost_usd: float = 0.0  # 0: no cost budget; else needs the model's price


@dataclass
class Spending:
    """The running totals of one agent run, checked before every turn."""

    budget: Budget
    price: ModelPrice | None = None  # the model's, to price the usage; None: unknown
    usage: TokenUsage = field(default_factory=TokenUsage)
    turns: int = 0
    started: float = field(default_factory=time.monotonic)

    def seconds_left(self) -> float:
        return self.budget.wall_clock_s - (time.monotonic() - self.started)

    @property
    def cost_usd(self) -> float | None:
        return None if self.price is None else self.price.cost(self.usage)

    def exhausted(self) -> str:
        """The budget that is used up ("tokens", "cost", "turns", "wall_clock"), or ""."""
        if self.usage.total >= self.budget.max_total_tokens:
            return "tokens"
        cost = self.cost_usd
        if self.budget.max_cost_usd > 0 and cost is not None and cost >= self.budget.max_cost_usd:
            return "cost"
        if self.turns >= self.budget.max_turns:
            return "turns"
        if self.seconds_left() <= 0:
            return "wall_clock"
        return ""
