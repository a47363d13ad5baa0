"""What an agent may spend, and what it has spent.

Tokens are counted on all four usage fields: cache reads and writes cost money and context too,
and peers that count only ``input_tokens`` undercount badly once prompt caching works.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from services.common.usage import TokenUsage


@dataclass(frozen=True)
class Budget:
    max_total_tokens: int = 2_000_000
    max_turns: int = 40
    wall_clock_s: float = 1800.0
    max_output_tokens: int = 16_000  # per model response


@dataclass
class Spending:
    """The running totals of one agent run, checked before every turn."""

    budget: Budget
    usage: TokenUsage = field(default_factory=TokenUsage)
    turns: int = 0
    started: float = field(default_factory=time.monotonic)

    def seconds_left(self) -> float:
        return self.budget.wall_clock_s - (time.monotonic() - self.started)

    def exhausted(self) -> str:
        """The budget that is used up ("tokens", "turns", "wall_clock"), or ""."""
        if self.usage.total >= self.budget.max_total_tokens:
            return "tokens"
        if self.turns >= self.budget.max_turns:
            return "turns"
        if self.seconds_left() <= 0:
            return "wall_clock"
        return ""
