"""The agent runner's Prometheus metrics (served on CATALOG_AGENT_METRICS_PORT, 9462).

What do runs cost? Tokens by kind and model, counted as each model call returns (in the spirit
of OpenTelemetry's `gen_ai.client.token.usage`, with the cache kinds apart), their cost in USD
from the price table, and the runs by agent and how they stopped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common.usage import TokenUsage

REGISTRY = CollectorRegistry()

TOKENS = Counter(
    "catalog_agent_tokens_total",
    "Model tokens used, by model and kind (input, output, cache_read, cache_creation)",
    ["model", "type"],
    registry=REGISTRY,
)
COST = Counter(
    "catalog_agent_cost_usd_total",
    "What the model calls cost, in US dollars, from the price table (models without a price "
    "count nothing)",
    ["model"],
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    "catalog_agent_model_calls_total",
    "Model calls, by model and the response's stop reason",
    ["model", "stop_reason"],
    registry=REGISTRY,
)
RUNS = Counter(
    "catalog_agent_runs_total",
    "Agent runs finished, by agent and stop reason",
    ["agent", "stop_reason"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "catalog_agent_run_duration_seconds",
    "Time an agent run took, by agent",
    ["agent"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
    registry=REGISTRY,
)


def count_call(model: str, usage: TokenUsage, stop_reason: str, cost_usd: float | None) -> None:
    """One model call's tokens and cost."""
    for kind, tokens in (
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_read", usage.cache_read_input_tokens),
        ("cache_creation", usage.cache_creation_input_tokens),
    ):
        TOKENS.labels(model, kind).inc(tokens)
    MODEL_CALLS.labels(model, stop_reason or "none").inc()
    if cost_usd is not None:
        COST.labels(model).inc(cost_usd)


def count_run(agent: str, stop_reason: str, seconds: float) -> None:
    RUNS.labels(agent, stop_reason).inc()
    RUN_DURATION.labels(agent).observe(seconds)
