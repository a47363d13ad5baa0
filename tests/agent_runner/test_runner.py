"""The agent runner end to end: real gRPC, the real anthropic SDK against our fake Messages API,
and a real sandbox (Docker) for every execute_python."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from catalog.v1 import agent_pb2 as pb

from services.common.clients import SandboxClient, SessionSettings
from tests.agent_runner.conftest import StartRunner, collect, run_request
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    Overloaded,
    Reply,
    StreamError,
    last_tool_result,
    text,
    tool_use,
)
from tests.sandbox_manager.conftest import RunningManager

PAGE = "<h1>Catalog</h1><table><tr><td>events</td></tr></table>"


def result_of(events: list[pb.RunAgentResponse]) -> pb.AgentResult:
    assert events[-1].HasField("result"), events[-1]
    return events[-1].result


def expect_tool_result(fragment: str, *, is_error: bool, then: Reply):
    def reply(request: dict) -> Reply:
        found = last_tool_result(request)
        assert found is not None, "the model got no tool result"
        assert fragment in found[0], found[0]
        assert found[1] is is_error, found
        return then

    return reply


async def test_the_agent_iterates_keeps_state_and_ends_on_submit(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(
        Reply(text("Let me look."), tool_use("execute_python", {"code": "x = 21"})),
        Reply(tool_use("execute_python", {"code": "print(x * 2)"})),
        expect_tool_result(
            "42", is_error=False, then=Reply(tool_use("submit_html", {"content": PAGE}))
        ),
    )
    stub = (await start_runner()).stub
    events = await collect(stub.RunAgent(run_request(lease)))
    result = result_of(events)
    assert result.stop_reason == pb.STOP_REASON_SUBMITTED and result.complete
    assert result.turns == 3 and not result.offline and result.model == "claude-sonnet-4-6"
    assert "<table>" in result.html and "events" in result.html
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds.count("turn_started") == 3 and kinds.count("tool_call") == 3
    codes = [e.tool_call.code for e in events if e.HasField("tool_call")]
    assert codes[:2] == ["x = 21", "print(x * 2)"]
    usage = result.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    # Prompt caching covers the system prompt and the tools.
    first = fake.requests[0]
    assert first.system[-1]["cache_control"] == {"type": "ephemeral"}
    assert first.tools[-1]["cache_control"] == {"type": "ephemeral"}
    assert [t["name"] for t in first.tools] == ["execute_python", "submit_html"]


async def test_a_tool_error_goes_back_and_the_loop_continues(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(
        Reply(tool_use("execute_python", {"code": "1 / 0"})),
        expect_tool_result(
            "ZeroDivisionError",
            is_error=True,
            then=Reply(tool_use("execute_python", {"code": "'recovered'"})),
        ),
        expect_tool_result(
            "recovered", is_error=False, then=Reply(tool_use("submit_html", {"content": PAGE}))
        ),
    )
    stub = (await start_runner()).stub
    result = result_of(await collect(stub.RunAgent(run_request(lease))))
    assert result.stop_reason == pb.STOP_REASON_SUBMITTED


async def test_an_exhausted_token_budget_forces_an_incomplete_page(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(
        # Cache reads count: this turn alone spends the budget.
        Reply(
            tool_use("execute_python", {"code": "1"}),
            input_tokens=10,
            cache_read_input_tokens=5_000,
        ),
        Reply(tool_use("submit_html", {"content": PAGE})),
    )
    stub = (await start_runner()).stub
    request = run_request(lease, budget=pb.Budget(max_total_tokens=1_000))
    result = result_of(await collect(stub.RunAgent(request)))
    assert result.stop_reason == pb.STOP_REASON_TOKEN_BUDGET and not result.complete
    assert "Incomplete" in result.html and "events" in result.html
    forced = fake.requests[-1]
    assert forced.tool_choice == {"type": "tool", "name": "submit_html"}
    assert result.usage.cache_read_input_tokens >= 5_000


async def test_the_turn_budget_forces_a_page(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(
        Reply(tool_use("execute_python", {"code": "1"})),
        Reply(tool_use("submit_html", {"content": PAGE})),
    )
    stub = (await start_runner()).stub
    result = result_of(
        await collect(stub.RunAgent(run_request(lease, budget=pb.Budget(max_turns=1))))
    )
    assert result.stop_reason == pb.STOP_REASON_TURN_BUDGET and not result.complete


async def test_the_wall_clock_budget_forces_a_page(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(
        Reply(tool_use("execute_python", {"code": "1"}), delay_s=3),
        Reply(tool_use("submit_html", {"content": PAGE})),
    )
    stub = (await start_runner()).stub
    budget = pb.Budget()
    budget.wall_clock.FromSeconds(1)
    result = result_of(await collect(stub.RunAgent(run_request(lease, budget=budget))))
    assert result.stop_reason == pb.STOP_REASON_WALL_CLOCK_BUDGET and not result.complete
    assert "events" in result.html


async def test_max_tokens_forces_a_page(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(
        Reply(text("The tables are"), stop_reason="max_tokens"),
        Reply(tool_use("submit_html", {"content": PAGE})),
    )
    stub = (await start_runner()).stub
    result = result_of(await collect(stub.RunAgent(run_request(lease))))
    assert result.stop_reason == pb.STOP_REASON_MAX_TOKENS and not result.complete
    assert "events" in result.html


async def test_a_refusal_ends_with_a_page_that_says_so(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(Reply(text("I can't help with that."), stop_reason="refusal"))
    stub = (await start_runner()).stub
    result = result_of(await collect(stub.RunAgent(run_request(lease))))
    assert result.stop_reason == pb.STOP_REASON_REFUSAL and not result.complete
    assert "No page was submitted" in result.html and "declined" in result.html


async def test_overload_and_an_early_stream_error_are_retried(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(
        Overloaded(retry_after_ms=10),  # the SDK retries it
        StreamError(after_events=0),  # the loop retries it: no content had arrived
        Reply(tool_use("submit_html", {"content": PAGE})),
    )
    stub = (await start_runner()).stub
    result = result_of(await collect(stub.RunAgent(run_request(lease))))
    assert result.stop_reason == pb.STOP_REASON_SUBMITTED
    assert [r.status for r in fake.requests] == [529, 200, 200]


async def test_no_secret_reaches_the_model_and_every_tool_use_is_answered(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    secret = "pw-Sup3r-S3cret"
    fake.script(
        # Two tool uses in one turn: both must be answered in the next request.
        Reply(
            tool_use("execute_python", {"code": "print('pw-Sup3r' + '-S3cret')"}),
            tool_use("execute_python", {"code": "'ok'"}),
        ),
        Reply(tool_use("submit_html", {"content": PAGE})),
    )
    stub = (await start_runner()).stub
    request = run_request(
        lease,
        redact_values=[secret],
        context_json=json.dumps({"tables": ["events"], "note": f"dsn has {secret}"}),
    )
    result = result_of(await collect(stub.RunAgent(request)))
    assert result.stop_reason == pb.STOP_REASON_SUBMITTED
    for recorded in fake.requests:
        assert secret not in json.dumps(recorded.body)
    assert "[redacted]" in json.dumps(fake.requests[1].body)
    for before, after in zip(fake.requests, fake.requests[1:], strict=False):
        asked = [
            b["id"]
            for m in before.messages[-1:]
            for b in m["content"]
            if isinstance(m["content"], list) and b.get("type") == "tool_use"
        ]
        answered = {
            b["tool_use_id"]
            for b in after.messages[-1]["content"]
            if isinstance(b, dict) and b.get("type") == "tool_result"
        }
        assert set(asked) <= answered


async def test_a_duplicate_run_id_attaches_instead_of_starting_again(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    fake.script(
        Reply(tool_use("execute_python", {"code": "1"}), delay_s=1),
        Reply(tool_use("submit_html", {"content": PAGE})),
    )
    stub = (await start_runner()).stub
    first = asyncio.ensure_future(collect(stub.RunAgent(run_request(lease, run_id="same"))))
    await asyncio.sleep(0.3)
    second = await collect(stub.RunAgent(run_request(lease, run_id="same")))
    assert result_of(second).html == result_of(await first).html
    assert len(fake.requests) == 2  # one agent, not two
    stored = await stub.GetAgentRun(pb.GetAgentRunRequest(run_id="same"))
    assert stored.state == pb.AGENT_RUN_STATE_FINISHED
    again = await collect(stub.RunAgent(run_request(lease, run_id="same")))
    assert len(again) == 1 and result_of(again).html == stored.result.html


async def test_a_submitted_script_never_reaches_the_stored_html(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    hostile = (
        PAGE + '<script>alert(1)</script><img src=x onerror="alert(2)">'
        '<a href="javascript:alert(3)">x</a>'
    )
    fake.script(Reply(tool_use("submit_html", {"content": hostile})))
    stub = (await start_runner()).stub
    html = result_of(await collect(stub.RunAgent(run_request(lease)))).html.lower()
    assert "<script>alert" not in html and "onerror" not in html and "javascript:" not in html
    assert "<table>" in html


async def test_the_offline_agent_profiles_tables_through_the_sandbox(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    stub = (await start_runner(offline=True)).stub
    events = await collect(stub.RunAgent(run_request(lease, context_json='{"tables": []}')))
    result = result_of(events)
    assert result.offline and result.model == "offline" and fake.requests == []
    assert "without a language model" in result.html
    assert result.stop_reason == pb.STOP_REASON_SUBMITTED


async def test_the_offline_agent_catalogs_a_postgres_table(
    start_runner: StartRunner, manager: RunningManager, postgres_table: tuple[str, str]
) -> None:
    server, schema = postgres_table
    stub = (await start_runner(offline=True)).stub
    session = SessionSettings(db_dsn=server)
    async with SandboxClient([manager.address]) as client, client.lease(session) as held:
        assert held.session.read_only
        context = json.dumps({"tables": [f"{schema}.orders"]})
        events = await collect(stub.RunAgent(run_request(held.lease_id, context_json=context)))
    result = result_of(events)
    assert result.complete and result.turns == 2  # one cell per table, then the submit
    assert f"{schema}.orders" in result.html and "1,000</strong> rows (exact)" in result.html
    # amount is 1.5 * id for id 1..1000: its min and max show on the page.
    assert "<td>1.5</td>" in result.html and "<td>1500</td>" in result.html


async def test_the_page_is_held_to_the_prompts_limit(
    start_runner: StartRunner, fake: FakeAnthropic, lease: str
) -> None:
    """A page over the request's max_page_bytes goes back to the model as an error."""
    big = "<h1>catalog</h1>" + "<p>row</p>" * 200  # about 2 kB
    fake.script(
        Reply(tool_use("submit_html", {"content": big})),
        expect_tool_result(
            "over the limit of 1000 bytes",
            is_error=True,
            then=Reply(tool_use("submit_html", {"content": PAGE})),
        ),
    )
    stub = (await start_runner()).stub
    result = result_of(await collect(stub.RunAgent(run_request(lease, max_page_bytes=1000))))
    assert result.stop_reason == pb.STOP_REASON_SUBMITTED
    assert "<p>row</p>" not in result.html and "events" in result.html  # the short page won


async def test_a_page_limit_above_the_runners_is_refused(
    start_runner: StartRunner, lease: str
) -> None:
    stub = (await start_runner()).stub
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await collect(stub.RunAgent(run_request(lease, max_page_bytes=10 * 2**30)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "CATALOG_AGENT_MAX_HTML_BYTES" in (refused.value.details() or "")
