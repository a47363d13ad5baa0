"""`execute_python` as the model sees it: a cell run in the lease's sandbox, reported as text.

The report is capped (head and tail, with how much was cut, so the model knows rather than
re-running the cell) and scrubbed of every secret the runner knows before the model sees it.
Each call is an `execute_tool` span holding the manager's Execute call, with the kernel's own
time and how the cell ended; never the code or its output.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.agent_runner.errors import SandboxGone
from services.common.cells import read_result
from services.common.clients import (
    Execution,
    ExecutionStatus,
    LeaseLost,
    SandboxClient,
    SandboxClientError,
)
from services.common.redaction import Redactor
from services.common.telemetry import span

_TOOL_SPAN = {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "execute_python",
    "gen_ai.tool.type": "function",
}


@dataclass(frozen=True)
class CellReport:
    text: str
    is_error: bool


def cap(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    half = max_bytes // 2
    cut = len(data) - 2 * half
    head = data[:half].decode("utf-8", "ignore")
    tail = data[-half:].decode("utf-8", "ignore")
    return f"{head}\n[truncated {cut} bytes]\n{tail}"


def report(execution: Execution, timeout_s: float) -> str:
    parts = []
    if execution.stdout:
        parts.append(execution.stdout.rstrip("\n"))
    if execution.stderr:
        parts.append(f"[stderr]\n{execution.stderr.rstrip()}")
    for stream, omitted in (
        ("stdout", execution.stdout_bytes_omitted),
        ("stderr", execution.stderr_bytes_omitted),
    ):
        if omitted:
            parts.append(f"[{stream}: {omitted} bytes cut from the middle]")
    if execution.result is not None:
        parts.append(f"[value]\n{execution.result}")
    if execution.error is not None:
        parts.append(
            execution.error.traceback.rstrip()
            or f"{execution.error.ename}: {execution.error.evalue}"
        )
    if execution.status is ExecutionStatus.TIMEOUT:
        parts.append(f"[the cell ran over its {timeout_s:g} s limit and was stopped]")
    if execution.state_lost:
        parts.append("[the interpreter was restarted: every variable is gone, `con` is back]")
    return "\n".join(parts) or "[no output]"


class SandboxCodeRunner:
    def __init__(
        self, client: SandboxClient, lease_id: str, redact: Redactor, max_bytes: int
    ) -> None:
        self._client = client
        self._lease_id = lease_id
        self._redact = redact
        self._max_bytes = max_bytes

    async def run(self, code: str, timeout_s: float) -> CellReport:
        with span("execute_tool execute_python", _TOOL_SPAN) as tool:
            try:
                execution = await self._client.execute(self._lease_id, code, timeout_s=timeout_s)
            except LeaseLost as exc:
                raise SandboxGone(f"the sandbox lease is gone: {exc}") from exc
            except SandboxClientError as exc:
                raise SandboxGone(f"the sandbox could not run code: {exc}") from exc
            tool.set_attributes(
                {
                    "catalog.kernel.duration_s": execution.duration_s,
                    "catalog.cell.status": execution.status.value,
                }
            )
        text = cap(self._redact(report(execution, timeout_s)), self._max_bytes)
        return CellReport(text, is_error=not execution.ok)

    async def read_text(self, code: str, timeout_s: float, max_bytes: int) -> str:
        """The text a toolkit call cell (services/common/cells.py) the runner itself runs
        returns, uncut and scrubbed; ValueError if the cell failed, printed more than
        `max_bytes` or returned something else than text."""
        try:
            execution = await self._client.execute(
                self._lease_id, code, timeout_s=timeout_s, max_output_bytes=max_bytes
            )
        except SandboxClientError as exc:
            raise SandboxGone(f"the sandbox could not run code: {exc}") from exc
        try:
            result = read_result(execution.whole_stdout())
        except ValueError as exc:
            raise ValueError(self._redact(str(exc))) from None
        if not isinstance(result, str):
            raise ValueError(f"the cell returned {type(result).__name__}, not text")
        # scrubbed once decoded: a secret JSON escapes would pass unseen in the encoded form
        return self._redact(result)
