"""What the kernel is doing for its client: opening a session, or running a cell; and the
events each sends back when it ends, with secrets scrubbed and texts capped."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from catalog_kernel.capping import CappedStream, cap_text
from catalog_kernel.connections import scrub
from catalog_kernel.protocol import Message


def ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


@dataclass
class SessionOp:
    """A start_session or reset waiting for the new worker to report ready."""

    request_id: object
    started: float
    deadline: float

    def session_event(self, ready: Message, secrets: list[str]) -> Message:
        """The client's answer, from the new worker's ready message: the first database at the
        top, and each database in ``databases``."""
        return {
            "ev": "session",
            "id": self.request_id,
            **_database_report(ready, secrets),
            "databases": [
                {"name": str(each.get("name", "")), **_database_report(each, secrets)}
                for each in ready.get("databases") or []
                if isinstance(each, dict)
            ],
            "duration_ms": ms_since(self.started),
        }


def _database_report(ready: Message, secrets: list[str]) -> Message:
    return {
        "backend": str(ready.get("backend", "")),
        "read_only": bool(ready.get("read_only")),
        "connect_error": scrub(str(ready.get("connect_error", "")), secrets),
    }


@dataclass
class CellOp:
    """An execute request in flight."""

    request_id: object
    started: float
    deadline: float
    timeout_s: float
    streams: dict[str, CappedStream]
    interrupt_reason: str = ""  # "timeout" or "interrupted" once SIGINT was sent
    kill_deadline: float = 0.0
    max_bytes: int = 0  # the cell's output cap, for its result and error texts too
    answered: set[str] = field(default_factory=set)  # result, error, done: each at most once

    def interrupted_error(self, state_lost: bool) -> Message:
        """The error a cell that was stopped reports, saying why and what was lost."""
        if self.interrupt_reason == "timeout":
            what = f"the cell did not finish within its timeout of {self.timeout_s:g} s"
        else:
            what = "the cell was interrupted by the client"
        if state_lost:
            what += (
                "; it ignored the interrupt, so its Python process was replaced and every "
                "variable was lost"
            )
        ename = "TimeoutError" if self.interrupt_reason == "timeout" else "KeyboardInterrupt"
        return {"ename": ename, "evalue": what, "traceback": ""}

    def error_event(self, error: Message, secrets: list[str]) -> Message:
        """An error of the cell's, its texts capped like output and scrubbed."""

        def text(key: str) -> str:
            return scrub(cap_text(str(error.get(key, "")), self.max_bytes), secrets)

        return {
            "ev": "error",
            "id": self.request_id,
            "ename": str(error.get("ename", "")),
            "evalue": text("evalue"),
            "traceback": text("traceback"),
        }

    def closing_events(self, status: str, state_lost: bool, secrets: list[str]) -> list[Message]:
        """What ends the cell: what was cut from each stream, the kept tails, then "done"."""
        events: list[Message] = []
        for kind, stream in self.streams.items():
            if stream.bytes_omitted:
                events.append(
                    {
                        "ev": "truncated",
                        "id": self.request_id,
                        "stream": kind,
                        "bytes_omitted": stream.bytes_omitted,
                    }
                )
            tail = stream.finish()
            if tail:
                events.append({"ev": kind, "id": self.request_id, "text": scrub(tail, secrets)})
        events.append(
            {
                "ev": "done",
                "id": self.request_id,
                "status": self.interrupt_reason or status,
                "duration_ms": ms_since(self.started),
                "state_lost": state_lost,
                "stdout_bytes_omitted": self.streams["stdout"].bytes_omitted,
                "stderr_bytes_omitted": self.streams["stderr"].bytes_omitted,
            }
        )
        return events
