"""The agent loop on its own: the real anthropic SDK against the fake Messages API, and a fake
CodeRunner (tests/fakes/code_runner.py) instead of a sandbox, so budgets, tool errors, stop
reasons and the forced submit are checked in seconds. test_runner.py runs the same through gRPC
with real sandboxes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.agent_runner.budget import Budget
from services.agent_runner.llm import Llm
from services.agent_runner.loop import (
    AgentEvent,
    AgentLoop,
    AgentOutcome,
    AgentRequest,
    StopReason,
    ToolAnswered,
    ToolCalled,
    TurnStarted,
    UsageSoFar,
)
from services.agent_runner.prices import ModelPrice
from services.agent_runner.sandbox_tool import CellReport, SandboxGone
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    HttpError,
    RecordedRequest,
    Reply,
    last_tool_result,
    text,
    tool_results,
    tool_use,
)
from tests.fakes.code_runner import FakeCodeRunner

PAGE = "<h1>Catalog</h1><table><tr><td>orders</td></tr></table>"
FORCE = {"type": "tool", "name": "submit_html"}


@pytest.fixture
async def llm(fake: FakeAnthropic) -> AsyncIterator[Llm]:
    client = Llm("test-key", fake.base_url, max_retries=0)
    yield client
    await client.close()


async def run_loop(
    llm: Llm,
    runner: FakeCodeRunner | None = None,
    budget: Budget | None = None,
    context: dict[str, Any] | None = None,
    redact: tuple[str, ...] = (),
    price: ModelPrice | None = None,
) -> tuple[AgentOutcome, list[AgentEvent]]:
    events: list[AgentEvent] = []

    async def emit(event: AgentEvent) -> None:
        events.append(event)

    request = AgentRequest(
        run_id="run-1",
        agent_name="catalog",
        system_prompt="You document databases.",
        context_json=json.dumps(context or {"tables": ["shop.orders"]}),
        model="claude-sonnet-4-6",
        budget=budget or Budget(),
        redact_values=redact,
        price=price,
    )
    loop = AgentLoop(
        request,
        llm,
        runner or FakeCodeRunner(),
        emit,
        max_html_bytes=100_000,
        cell_timeout_s=30,
    )
    return await loop.run(), events


def submit(html: str = PAGE) -> Reply:
    return Reply(tool_use("submit_html", {"content": html}))


def execute(code: str) -> Reply:
    return Reply(tool_use("execute_python", {"code": code}))


def forced(request: RecordedRequest) -> bool:
    return bool(request.tool_choice == FORCE and "Stop exploring" in json.dumps(request.messages))


async def test_the_model_explores_then_submits_a_sanitized_page(
    llm: Llm, fake: FakeAnthropic
) -> None:
    def after_the_cell(request: dict[str, Any]) -> Reply:
        assert last_tool_result(request) == ("ran: x = 1", False)
        return submit(PAGE + "<script>alert(1)</script>")

    fake.script(
        Reply(text("Let me look."), tool_use("execute_python", {"code": "x = 1"}), input_tokens=50),
        after_the_cell,
    )
    runner = FakeCodeRunner()
    outcome, events = await run_loop(llm, runner)
    assert (outcome.stop_reason, outcome.complete, outcome.turns) == (StopReason.SUBMITTED, True, 2)
    assert "<td>orders</td>" in outcome.body_html and "<script" not in outcome.body_html
    assert runner.codes == ["x = 1"] and 1 <= runner.calls[0][1] <= 30
    assert [e.turn for e in events if isinstance(e, TurnStarted)] == [1, 2]
    assert [e.tool_name for e in events if isinstance(e, ToolCalled)] == [
        "execute_python",
        "submit_html",
    ]
    assert [e.text for e in events if isinstance(e, ToolAnswered)] == ["ran: x = 1"]
    last_usage = [e for e in events if isinstance(e, UsageSoFar)][-1].usage
    assert last_usage == outcome.usage and outcome.usage.input_tokens >= 50


async def test_tokens_count_on_all_four_usage_fields(llm: Llm, fake: FakeAnthropic) -> None:
    fake.script(
        Reply(
            tool_use("submit_html", {"content": PAGE}),
            input_tokens=10,
            output_tokens=20,
            cache_creation_input_tokens=300,
            cache_read_input_tokens=4000,
        )
    )
    outcome, _ = await run_loop(llm)
    assert outcome.usage.total == 4330


async def test_tool_errors_go_back_to_the_model_and_the_loop_goes_on(
    llm: Llm, fake: FakeAnthropic
) -> None:
    fake.script(
        Reply(
            tool_use("drop_table", {"name": "orders"}),
            tool_use("execute_python", {"code": "  "}),
            tool_use("execute_python", {"code": "1 / 0"}),
        ),
        submit("<script>only a script</script>"),
        submit(),
    )
    runner = FakeCodeRunner(CellReport("ZeroDivisionError: division by zero", is_error=True))
    outcome, _ = await run_loop(llm, runner)
    assert (outcome.stop_reason, outcome.turns) == (StopReason.SUBMITTED, 3)
    assert runner.codes == ["1 / 0"]  # the blank cell never reached the sandbox
    answers = [(answer, is_error) for _, answer, is_error in tool_results(fake.requests[-1])]
    assert answers == [
        ("there is no tool named 'drop_table': use execute_python or submit_html", True),
        ("execute_python needs a non-empty string `code`", True),
        ("ZeroDivisionError: division by zero", True),
        (answers[3][0], True),
    ]
    assert answers[3][0].startswith("the page was not accepted")


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("refusal", StopReason.REFUSAL),
        ("model_context_window_exceeded", StopReason.CONTEXT_WINDOW_EXCEEDED),
        ("something_new", StopReason.ERROR),
    ],
)
async def test_a_stop_that_cannot_lead_to_a_page_ends_with_a_page_saying_why(
    llm: Llm, fake: FakeAnthropic, stop_reason: str, expected: StopReason
) -> None:
    fake.script(Reply(text("No."), stop_reason=stop_reason))
    outcome, _ = await run_loop(llm)
    assert (outcome.stop_reason, outcome.complete) == (expected, False)
    assert "No page was submitted" in outcome.body_html and outcome.stop_detail
    assert len(fake.requests) == 1  # no forced call after these


@pytest.mark.parametrize(
    ("stop_reason", "expected", "why"),
    [
        ("end_turn", StopReason.END_TURN, "ended its turn without submitting"),
        ("max_tokens", StopReason.MAX_TOKENS, "output token limit"),
        ("stop_sequence", StopReason.STOP_SEQUENCE, "stop sequence"),
    ],
)
async def test_a_stop_without_a_page_forces_one_last_submit(
    llm: Llm, fake: FakeAnthropic, stop_reason: str, expected: StopReason, why: str
) -> None:
    fake.script(Reply(text("I think I am done."), stop_reason=stop_reason), submit())
    outcome, _ = await run_loop(llm)
    assert (outcome.stop_reason, outcome.complete) == (expected, False)
    assert "<td>orders</td>" in outcome.body_html and why in outcome.stop_detail
    assert forced(fake.requests[-1]) and not forced(fake.requests[0])


async def test_a_tool_call_cut_off_by_max_tokens_is_answered_before_the_forced_submit(
    llm: Llm, fake: FakeAnthropic
) -> None:
    cut = tool_use("execute_python", {"code": "profile("})
    fake.script(Reply(cut, stop_reason="max_tokens"), submit())
    runner = FakeCodeRunner()
    outcome, _ = await run_loop(llm, runner)
    assert (outcome.stop_reason, outcome.complete) == (StopReason.MAX_TOKENS, False)
    assert "<td>orders</td>" in outcome.body_html and runner.codes == []
    (answer,) = tool_results(fake.requests[-1])
    assert answer[0] == cut["id"] and answer[2] and answer[1].startswith("not run:")


async def test_a_paused_turn_is_resumed(llm: Llm, fake: FakeAnthropic) -> None:
    fake.script(Reply(text("Working on it."), stop_reason="pause_turn"), submit())
    outcome, _ = await run_loop(llm)
    assert (outcome.stop_reason, outcome.turns) == (StopReason.SUBMITTED, 2)


async def test_the_token_budget_forces_an_incomplete_page(llm: Llm, fake: FakeAnthropic) -> None:
    fake.script(Reply(tool_use("execute_python", {"code": "big()"}), input_tokens=5000), submit())
    runner = FakeCodeRunner()
    outcome, _ = await run_loop(llm, runner, Budget(max_total_tokens=1000))
    assert (outcome.stop_reason, outcome.complete, outcome.turns) == (
        StopReason.TOKEN_BUDGET,
        False,
        1,
    )
    assert runner.codes == ["big()"] and "<td>orders</td>" in outcome.body_html
    assert forced(fake.requests[-1])  # the fake also checked every tool_use was answered


async def test_the_cost_budget_stops_the_run_as_the_token_budget_does(
    llm: Llm, fake: FakeAnthropic
) -> None:
    # $3 / $15 per million: 10,000 input and 1,000 output tokens cost $0.045.
    price = ModelPrice(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3)
    call = Reply(tool_use("execute_python", {"code": "a"}), input_tokens=10_000, output_tokens=1000)
    fake.script(call, submit())
    runner = FakeCodeRunner()
    budget = Budget(max_cost_usd=0.04)
    outcome, _ = await run_loop(llm, runner, budget, price=price)
    assert (outcome.stop_reason, outcome.complete, outcome.turns) == (
        StopReason.TOKEN_BUDGET,
        False,
        1,
    )
    assert "max_cost_usd" in outcome.stop_detail and forced(fake.requests[-1])
    assert "<td>orders</td>" in outcome.body_html
    assert runner.codes == ["a"] and len(fake.requests) == 2
    # Under the limit it goes on: the same script with a dollar to spend ends submitted.
    fake.script(call, submit())
    outcome, _ = await run_loop(llm, FakeCodeRunner(), Budget(max_cost_usd=1.0), price=price)
    assert outcome.stop_reason is StopReason.SUBMITTED


async def test_the_turn_budget_forces_a_page_after_the_last_turn(
    llm: Llm, fake: FakeAnthropic
) -> None:
    fake.script(execute("a"), execute("b"), execute("c"), submit())
    runner = FakeCodeRunner()
    outcome, _ = await run_loop(llm, runner, Budget(max_turns=2))
    assert (outcome.stop_reason, outcome.turns) == (StopReason.TURN_BUDGET, 2)
    assert runner.codes == ["a", "b"] and len(fake.requests) == 3 and forced(fake.requests[2])
    assert fake.remaining == 1


async def test_the_wall_clock_budget_forces_a_page(llm: Llm, fake: FakeAnthropic) -> None:
    fake.script(Reply(text("slow"), delay_s=2), submit())
    outcome, _ = await run_loop(llm, budget=Budget(wall_clock_s=0.3))
    assert (outcome.stop_reason, outcome.complete) == (StopReason.WALL_CLOCK_BUDGET, False)
    assert "<td>orders</td>" in outcome.body_html and forced(fake.requests[-1])


async def test_a_forced_call_that_submits_nothing_still_gives_a_page(
    llm: Llm, fake: FakeAnthropic
) -> None:
    fake.script(Reply(text("done"), stop_reason="end_turn"), Reply(text("no page, sorry")))
    outcome, _ = await run_loop(llm)
    assert outcome.stop_reason is StopReason.END_TURN and not outcome.complete
    assert "No page was submitted" in outcome.body_html
    assert "the model did not submit a page" in outcome.stop_detail


async def test_a_lost_sandbox_ends_the_run_with_an_error(llm: Llm, fake: FakeAnthropic) -> None:
    fake.script(execute("x = 1"))
    runner = FakeCodeRunner(SandboxGone("the lease was lost: its sandbox died"))
    outcome, _ = await run_loop(llm, runner)
    assert (outcome.stop_reason, outcome.complete) == (StopReason.ERROR, False)
    assert "its sandbox died" in outcome.body_html


async def test_an_api_error_ends_the_run_with_an_error(llm: Llm, fake: FakeAnthropic) -> None:
    fake.script(HttpError(400, "invalid_request_error", "messages: bad"))
    outcome, _ = await run_loop(llm)
    assert outcome.stop_reason is StopReason.ERROR and "400" in outcome.stop_detail


async def test_secrets_in_the_context_never_reach_the_model(llm: Llm, fake: FakeAnthropic) -> None:
    fake.script(submit())
    context = {"tables": ["shop.orders"], "dsn": "postgresql://u:hunter2-pw@db/shop"}
    await run_loop(llm, context=context, redact=("hunter2-pw",))
    sent = json.dumps(fake.requests[0].body)
    assert "shop.orders" in sent and "hunter2-pw" not in sent
