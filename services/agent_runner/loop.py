"""The agent loop: the model explores through `execute_python` and ends with `submit_html`.

Before every turn the budget is checked (tokens on all four usage fields, turns, wall clock).
When one is used up, or the model stops without submitting, one last call forces
`submit_html`, so the user gets a page marked incomplete rather than nothing. Every `tool_use`
gets its `tool_result` (the API rejects a history without them); a tool error goes back to the
model as an error result and the loop goes on. Each stop reason ends with a labelled outcome.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.agent_runner.budget import Budget, Spending
from services.agent_runner.errors import InvalidHtml, LlmError, SandboxGone
from services.agent_runner.html import escape_text, sanitize
from services.agent_runner.llm import Llm
from services.agent_runner.metrics import count_call
from services.agent_runner.prices import ModelPrice
from services.agent_runner.sandbox_tool import CellReport
from services.agent_runner.tools import EXECUTE_PYTHON, SUBMIT_HTML
from services.common.logging import log_fields
from services.common.redaction import Redactor
from services.common.usage import TokenUsage

_log = logging.getLogger(__name__)
FINAL_CALL_TIMEOUT_S = 180.0  # the forced submit may run past the wall clock by this much


class StopReason(enum.StrEnum):
    SUBMITTED = "submitted"
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    REFUSAL = "refusal"
    STOP_SEQUENCE = "stop_sequence"
    CONTEXT_WINDOW_EXCEEDED = "context_window_exceeded"
    TOKEN_BUDGET = "token_budget"  # noqa: S105 (a stop reason, not a password)
    TURN_BUDGET = "turn_budget"
    WALL_CLOCK_BUDGET = "wall_clock_budget"
    ERROR = "error"


_BUDGETS = {
    "tokens": (StopReason.TOKEN_BUDGET, "the token budget is used up"),
    "cost": (StopReason.TOKEN_BUDGET, "the cost budget (max_cost_usd) is used up"),
    "turns": (StopReason.TURN_BUDGET, "the turn budget is used up"),
    "wall_clock": (StopReason.WALL_CLOCK_BUDGET, "the time budget is used up"),
}
# Stop reasons after which one forced call to submit_html still makes sense.
_FORCE_AFTER = {
    "end_turn": (StopReason.END_TURN, "the model ended its turn without submitting a page"),
    "max_tokens": (StopReason.MAX_TOKENS, "a response hit the output token limit"),
    "stop_sequence": (StopReason.STOP_SEQUENCE, "a response hit a stop sequence"),
}


@dataclass(frozen=True)
class AgentRequest:
    run_id: str
    agent_name: str
    system_prompt: str
    context_json: str
    model: str
    budget: Budget
    redact_values: tuple[str, ...] = field(default=(), repr=False)
    max_page_bytes: int = 2 * 1024 * 1024  # the largest page it may submit (HTML bytes)
    price: ModelPrice | None = None  # the model's price (prices.py); None: its cost is unknown


@dataclass(frozen=True)
class TurnStarted:
    turn: int


@dataclass(frozen=True)
class ToolCalled:
    turn: int
    tool_use_id: str
    tool_name: str
    code: str
    content_bytes: int


@dataclass(frozen=True)
class ToolAnswered:
    turn: int
    tool_use_id: str
    text: str
    is_error: bool


@dataclass(frozen=True)
class UsageSoFar:
    usage: TokenUsage


AgentEvent = TurnStarted | ToolCalled | ToolAnswered | UsageSoFar
Emit = Callable[[AgentEvent], Awaitable[None]]


@dataclass(frozen=True)
class AgentOutcome:
    """How a run ended. `body_html` is sanitized; the page wrapper adds the metadata."""

    body_html: str
    usage: TokenUsage
    stop_reason: StopReason
    complete: bool
    turns: int
    stop_detail: str = ""


class CodeRunner(Protocol):
    async def run(self, code: str, timeout_s: float) -> CellReport: ...


@dataclass
class _Turn:
    results: list[dict[str, Any]] = field(default_factory=list)
    submitted: str | None = None


class AgentLoop:
    def __init__(
        self,
        request: AgentRequest,
        llm: Llm,
        runner: CodeRunner,
        emit: Emit,
        *,
        max_html_bytes: int,
        cell_timeout_s: float,
    ) -> None:
        self._request = request
        self._llm = llm
        self._runner = runner
        self._emit = emit
        self._max_html_bytes = max_html_bytes
        self._cell_timeout_s = cell_timeout_s
        self._redact = Redactor(request.redact_values)
        self._spending = Spending(request.budget, request.price)
        self._messages: list[dict[str, Any]] = [
            {"role": "user", "content": self._redact(first_message(request.context_json))}
        ]

    async def run(self) -> AgentOutcome:
        try:
            return await self._explore()
        except SandboxGone as exc:
            return self._without_page(StopReason.ERROR, str(exc))
        finally:
            usage = self._spending.usage
            log_fields(
                _log,
                logging.INFO,
                "agent finished",
                run=self._request.run_id,
                agent=self._request.agent_name,
                turns=self._spending.turns,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_creation_input_tokens=usage.cache_creation_input_tokens,
                cache_read_input_tokens=usage.cache_read_input_tokens,
                cost_usd=self._spending.cost_usd,
            )

    async def _explore(self) -> AgentOutcome:
        while True:
            exhausted = self._spending.exhausted()
            if exhausted:
                return await self._force_submit(*_BUDGETS[exhausted])
            self._spending.turns += 1
            turn = self._spending.turns
            await self._emit(TurnStarted(turn))
            try:
                reply = await asyncio.wait_for(self._call(), self._spending.seconds_left())
            except TimeoutError:
                return await self._force_submit(*_BUDGETS["wall_clock"])
            except LlmError as exc:
                return self._without_page(StopReason.ERROR, str(exc))
            self._messages.append({"role": "assistant", "content": reply.content})
            if reply.stop_reason == "tool_use":
                done = await self._run_tools(turn, reply.content)
                if done.submitted is not None:
                    return self._outcome(done.submitted, StopReason.SUBMITTED, complete=True)
                self._messages.append({"role": "user", "content": done.results})
            elif reply.stop_reason == "pause_turn":
                continue  # the API paused a long turn: sending the history back resumes it
            elif reply.stop_reason in _FORCE_AFTER:
                return await self._force_submit(*_FORCE_AFTER[reply.stop_reason])
            elif reply.stop_reason == "refusal":
                return self._without_page(StopReason.REFUSAL, "the model declined to go on")
            elif reply.stop_reason == "model_context_window_exceeded":
                return self._without_page(
                    StopReason.CONTEXT_WINDOW_EXCEEDED,
                    "the conversation outgrew the model's context window",
                )
            else:
                return self._without_page(
                    StopReason.ERROR, f"unexpected stop reason {reply.stop_reason!r}"
                )

    async def _call(self, tool_choice: dict[str, Any] | None = None) -> Any:
        reply = await self._llm.respond(
            model=self._request.model,
            system=self._redact(self._request.system_prompt),
            messages=self._messages,
            max_tokens=self._request.budget.max_output_tokens,
            tool_choice=tool_choice,
        )
        self._spending.usage += reply.usage
        price = self._request.price
        cost = None if price is None else price.cost(reply.usage)
        count_call(self._request.model, reply.usage, reply.stop_reason, cost)
        await self._emit(UsageSoFar(self._spending.usage))
        tools = [b["name"] for b in reply.content if b.get("type") == "tool_use"]
        log_fields(
            _log,
            logging.INFO,
            "agent turn",
            run=self._request.run_id,
            agent=self._request.agent_name,
            turn=self._spending.turns,
            stop_reason=reply.stop_reason,
            tools=tools,
            **vars(reply.usage),
        )
        return reply

    async def _run_tools(self, turn: int, content: list[dict[str, Any]]) -> _Turn:
        done = _Turn()
        for block in content:
            if block.get("type") != "tool_use":
                continue
            text, is_error = await self._run_tool(turn, block, done)
            if done.submitted is not None:
                return done
            await self._emit(ToolAnswered(turn, block["id"], text, is_error))
            done.results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": block["id"],
                    "content": text,
                    "is_error": is_error,
                }
            )
        return done

    async def _run_tool(self, turn: int, block: dict[str, Any], done: _Turn) -> tuple[str, bool]:
        name, arguments = block["name"], block.get("input") or {}
        if name == EXECUTE_PYTHON:
            code = arguments.get("code")
            await self._emit(ToolCalled(turn, block["id"], name, str(code or ""), 0))
            if not isinstance(code, str) or not code.strip():
                return "execute_python needs a non-empty string `code`", True
            timeout_s = max(1.0, min(self._cell_timeout_s, self._spending.seconds_left()))
            report = await self._runner.run(code, timeout_s)
            return report.text, report.is_error
        if name == SUBMIT_HTML:
            content = arguments.get("content")
            size = len(content.encode("utf-8")) if isinstance(content, str) else 0
            await self._emit(ToolCalled(turn, block["id"], name, "", size))
            try:
                done.submitted = sanitize(str(content or ""), max_bytes=self._max_html_bytes)
            except InvalidHtml as exc:
                return f"the page was not accepted: {exc}", True
            return "accepted", False
        return f"there is no tool named {name!r}: use execute_python or submit_html", True

    async def _force_submit(self, reason: StopReason, why: str) -> AgentOutcome:
        """One last call that can only submit the page."""
        self._answer_open_tool_uses(why)
        instruction = (
            f"Stop exploring: {why}. Call submit_html now with the best page you can "
            "make from what you found, and say on it what is missing."
        )
        last = self._messages[-1]
        if last["role"] == "user" and isinstance(last["content"], list):
            last["content"].append({"type": "text", "text": instruction})
        else:
            self._messages.append({"role": "user", "content": instruction})
        try:
            reply = await asyncio.wait_for(
                self._call({"type": "tool", "name": SUBMIT_HTML}), FINAL_CALL_TIMEOUT_S
            )
        except (LlmError, TimeoutError) as exc:
            return self._without_page(reason, f"{why}; the final call failed: {exc}")
        for block in reply.content:
            if block.get("type") == "tool_use" and block["name"] == SUBMIT_HTML:
                try:
                    body = sanitize(
                        str(block["input"].get("content") or ""), max_bytes=self._max_html_bytes
                    )
                except InvalidHtml as exc:
                    return self._without_page(reason, f"{why}; the forced page was bad: {exc}")
                return self._outcome(body, reason, complete=False, detail=why)
        return self._without_page(reason, f"{why}; the model did not submit a page")

    def _answer_open_tool_uses(self, why: str) -> None:
        """The API needs a result for every tool_use, even ones the run will not execute."""
        last = self._messages[-1]
        if last["role"] != "assistant" or not isinstance(last["content"], list):
            return
        results = [
            {
                "type": "tool_result",
                "tool_use_id": b["id"],
                "is_error": True,
                "content": f"not run: {why}",
            }
            for b in last["content"]
            if b.get("type") == "tool_use"
        ]
        if results:
            self._messages.append({"role": "user", "content": results})

    def _outcome(
        self, body: str, reason: StopReason, *, complete: bool, detail: str = ""
    ) -> AgentOutcome:
        return AgentOutcome(
            body, self._spending.usage, reason, complete, self._spending.turns, detail
        )

    def _without_page(self, reason: StopReason, why: str) -> AgentOutcome:
        """The user still gets a page: it says that no page was made, and why."""
        body = sanitize(
            f"<h1>No page was submitted</h1><p>{escape_text(why)}</p>"
            f"<p>The agent ran {self._spending.turns} turn(s).</p>",
            max_bytes=self._max_html_bytes,
        )
        return self._outcome(body, reason, complete=False, detail=why)


def first_message(context_json: str) -> str:
    context = json.loads(context_json) if context_json else {}
    return "The context of this run:\n```json\n" + json.dumps(context, indent=2) + "\n```\nBegin."
