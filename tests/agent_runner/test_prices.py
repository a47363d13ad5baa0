"""The price table: what it accepts, how a model finds its price, and where a run's cost shows
(the runner's request check and the page header). The cost in GetCatalog and the metrics is
checked through the whole stack in tests/telemetry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from catalog.v1 import agent_pb2 as pb

from services.agent_runner import translate
from services.agent_runner.budget import Budget
from services.agent_runner.html import PageMeta, wrap_page
from services.agent_runner.prices import load_prices
from services.common.env import SettingsError
from services.common.errors import InvalidArgument
from services.common.usage import TokenUsage

REPO = Path(__file__).resolve().parents[2]
SHIPPED = load_prices(REPO / "deploy" / "prices.yaml")


def test_the_shipped_table_prices_the_default_model_per_million_tokens() -> None:
    usage = TokenUsage(1_000_000, 1_000_000, 1_000_000, 1_000_000)
    assert SHIPPED.cost("claude-sonnet-4-6", usage) == pytest.approx(3 + 15 + 3.75 + 0.3)
    # a dated snapshot takes its family's entry; an unknown model has no price
    assert SHIPPED.price("claude-sonnet-4-5-20250929") == SHIPPED.price("claude-sonnet-4-5")
    assert SHIPPED.cost("gpt-unknown", usage) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("models: {}", "needs a `models:` mapping"),
        ("models: {m: {input: 1, output: 2, cache_write: 3}}", "needs exactly"),
        ("models: {m: {input: -1, output: 2, cache_write: 3, cache_read: 4}}", "m.input"),
        ("models: {m: {input: x, output: 2, cache_write: 3, cache_read: 4}}", "m.input"),
        ("models: [", "not valid YAML"),
    ],
)
def test_a_bad_table_is_refused_naming_what_to_fix(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match="CATALOG_PRICES_FILE") as caught:
        load_prices(path)
    assert says in str(caught.value)


def _request(model: str, max_cost_usd: float) -> pb.RunAgentRequest:
    return pb.RunAgentRequest(
        run_id="run-1",
        agent_name="catalog",
        system_prompt="You document databases.",
        sandbox=pb.SandboxRef(lease_id="sm-x.1"),
        model=model,
        budget=pb.Budget(max_cost_usd=max_cost_usd),
    )


def test_a_cost_budget_needs_a_price_and_a_sane_number() -> None:
    agent = translate.agent_request(
        _request("claude-sonnet-4-6", 0.5), "claude-sonnet-4-6", Budget(), prices=SHIPPED
    )
    assert agent.budget.max_cost_usd == 0.5 and agent.price == SHIPPED.price("claude-sonnet-4-6")
    for model, cost, why in (
        ("mystery-model", 0.5, "needs a price"),
        ("claude-sonnet-4-6", -1, "0 or more"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            translate.agent_request(_request(model, cost), model, Budget(), prices=SHIPPED)
        assert [f for f, _ in caught.value.field_violations] == ["budget.max_cost_usd"]
        assert why in caught.value.message


@pytest.mark.parametrize(("cost", "shown"), [(0.04567, "0.0457"), (None, "unknown")])
def test_the_page_header_shows_the_cost(cost: float | None, shown: str) -> None:
    meta = PageMeta(
        agent_name="catalog",
        model="claude-sonnet-4-6",
        generated_at=datetime.now(UTC),
        usage=TokenUsage(10, 20),
        stop_reason="submitted",
        turns=1,
        complete=True,
        run_id="run-1",
        cost_usd=cost,
    )
    page = wrap_page("<p>body</p>", meta)
    assert f"<dt>Cost (USD)</dt><dd>{shown}" in page
