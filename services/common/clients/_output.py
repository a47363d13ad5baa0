"""Output accumulation: an Execute stream's events folded into one `Execution`.

Callbacks (sync or async) fire as each event arrives, so one call serves both a caller that
streams and a caller that waits for the result.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

from catalog.v1 import sandbox_pb2 as pb

from services.common.clients._errors import SandboxClientError
from services.common.clients._models import Execution, ExecutionError, ExecutionStatus

_T = TypeVar("_T")

OutputCallback = Callable[[str], Awaitable[None] | None]
EventCallback = Callable[[pb.ExecuteResponse], Awaitable[None] | None]

_STATUSES = {
    pb.EXECUTION_STATUS_OK: ExecutionStatus.OK,
    pb.EXECUTION_STATUS_ERROR: ExecutionStatus.ERROR,
    pb.EXECUTION_STATUS_TIMEOUT: ExecutionStatus.TIMEOUT,
    pb.EXECUTION_STATUS_INTERRUPTED: ExecutionStatus.INTERRUPTED,
    pb.EXECUTION_STATUS_CRASHED: ExecutionStatus.CRASHED,
}


async def _fire(callback: Callable[[_T], Awaitable[None] | None] | None, value: _T) -> None:
    if callback is not None:
        outcome = callback(value)
        if inspect.isawaitable(outcome):
            await outcome


class OutputAccumulator:
    """Collects an Execute stream into one Execution, firing callbacks as events arrive."""

    def __init__(
        self,
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
        on_event: EventCallback | None,
    ) -> None:
        self._callbacks = (on_stdout, on_stderr, on_event)
        self.started = False  # an event arrived: the code ran, so it must not run again
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._result: pb.ResultValue | None = None
        self._error: ExecutionError | None = None
        self._finished: pb.ExecutionFinished | None = None

    async def add(self, event: pb.ExecuteResponse) -> None:
        self.started = True
        on_stdout, on_stderr, on_event = self._callbacks
        kind = event.WhichOneof("event")
        if kind == "stdout":
            self._stdout.append(event.stdout.text)
            await _fire(on_stdout, event.stdout.text)
        elif kind == "stderr":
            self._stderr.append(event.stderr.text)
            await _fire(on_stderr, event.stderr.text)
        elif kind == "result":
            self._result = event.result
        elif kind == "error":
            error = event.error
            self._error = ExecutionError(error.ename, error.evalue, error.traceback)
        elif kind == "finished":
            self._finished = event.finished
        await _fire(on_event, event)

    def execution(self, lease_id: str, address: str) -> Execution:
        done = self._finished
        if done is None or done.status not in _STATUSES:
            raise SandboxClientError(
                f"the Execute stream of lease {lease_id} from the manager at {address} ended "
                "without a valid finished event; the manager broke the protocol, see its log"
            )
        result = self._result
        html = result.text_html if result is not None and result.HasField("text_html") else None
        return Execution(
            stdout="".join(self._stdout),
            stderr="".join(self._stderr),
            result=result.text_plain if result is not None else None,
            result_html=html,
            error=self._error,
            status=_STATUSES[done.status],
            duration_s=done.duration.ToNanoseconds() / 1e9,
            state_lost=done.state_lost,
            stdout_bytes_omitted=done.stdout_bytes_omitted,
            stderr_bytes_omitted=done.stderr_bytes_omitted,
        )
