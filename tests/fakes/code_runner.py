"""A fake of the agent loop's `CodeRunner` protocol: cells answered from memory, no sandbox.

Each cell gets the next scripted answer (a `CellReport`, an exception to raise such as
`SandboxGone`, or a callable of the code); with the script empty, a cell answers its code back.
Every call is recorded as (code, timeout_s).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from services.agent_runner.sandbox_tool import CellReport

Answer = CellReport | Exception | Callable[[str], CellReport]


class FakeCodeRunner:
    def __init__(self, *answers: Answer) -> None:
        self._answers: deque[Answer] = deque(answers)
        self.calls: list[tuple[str, float]] = []

    @property
    def codes(self) -> list[str]:
        return [code for code, _ in self.calls]

    async def run(self, code: str, timeout_s: float) -> CellReport:
        self.calls.append((code, timeout_s))
        if not self._answers:
            return CellReport(f"ran: {code}", is_error=False)
        answer = self._answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, CellReport):
            return answer
        return answer(code)
