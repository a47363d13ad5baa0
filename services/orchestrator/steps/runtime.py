"""What every step needs: the process's Runtime, logging, progress, and clients built per call.

DBOS calls steps as module-level functions with only their recorded inputs, so the process's
settings, sealer and prompts reach them through one holder, installed once by app.run() before
DBOS launches; nothing else sets it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from dbos import DBOS

from services.common.clients import SandboxClient
from services.common.errors import ServiceError, Unavailable
from services.common.logging import log_fields
from services.orchestrator.config import Settings
from services.orchestrator.errors import CatalogFailure
from services.orchestrator.object_names import parse_prefix
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.prompts import AgentPrompt
from services.orchestrator.run_state import ProgressEvent, Step
from services.orchestrator.sealing import Sealer
from services.orchestrator.storage import Store, open_store

_log = logging.getLogger(__name__)
PROGRESS_STREAM = "progress"
_T = TypeVar("_T")


class RunClock:
    """Run timestamps in epoch milliseconds, never the same one twice in this process: two
    runs under one prefix must not share a timestamp (write-once would hand the second the
    first one's pages)."""

    def __init__(self) -> None:
        self._last_ms = 0

    def next_ms(self, taken: Callable[[int], bool]) -> int:
        """The first millisecond from now on that this process has not given out and that
        `taken` does not refuse."""
        candidate = max(int(time.time() * 1000), self._last_ms + 1)
        while taken(candidate):
            candidate += 1
        self._last_ms = candidate
        return candidate


@dataclass(frozen=True)
class Runtime:
    """What the steps need from the running process; installed once at start-up."""

    settings: Settings
    sealer: Sealer
    prompts: Mapping[str, AgentPrompt] = field(repr=False)
    pipeline: Pipeline = field(repr=False)  # the agents' order and dependencies
    clock: RunClock = field(default_factory=RunClock, repr=False)


class _Installed:
    runtime: ClassVar[Runtime | None] = None


def install_runtime(runtime: Runtime) -> None:
    _Installed.runtime = runtime


def runtime() -> Runtime:
    if _Installed.runtime is None:
        raise RuntimeError("the orchestrator's steps ran before install_runtime()")
    return _Installed.runtime


@asynccontextmanager
async def logged(step: str, **fields: Any) -> AsyncIterator[None]:
    workflow_id = DBOS.workflow_id
    started = time.monotonic()
    log_fields(_log, logging.INFO, "step started", workflow_id=workflow_id, step=step, **fields)
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        log_fields(
            _log,
            logging.INFO,
            "step ended",
            workflow_id=workflow_id,
            step=step,
            outcome=outcome,
            seconds=round(time.monotonic() - started, 3),
        )


def now() -> float:
    return time.time()


async def publish(event: ProgressEvent) -> None:
    """Add a progress event to the run's stream (read by WatchCatalog)."""
    await DBOS.write_stream_async(PROGRESS_STREAM, event)


def sandboxes(settings: Settings) -> SandboxClient:
    """A client of the configured managers, with the service token (and TLS) they expect."""
    return SandboxClient(settings.sandbox_managers, plane=settings.control_plane)


def store(settings: Settings, s3_prefix: str) -> Store:
    return open_store(parse_prefix(s3_prefix), endpoint_url=settings.s3_endpoint_url or None)


async def storage_call(call: Callable[[], Awaitable[_T]], what: str, code: str, step: Step) -> _T:
    """Retry an unreachable store with backoff for CATALOG_STORAGE_RETRY_S (a finished agent's
    page must survive a blip); then, or on any other refusal, fail the run."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Unavailable as exc:
            give_up_at = started + runtime().settings.storage_retry_s
            pause = min(0.5 * 2 ** (attempt - 1), 15.0)
            if time.monotonic() + pause > give_up_at:
                message = f"could not {what} after {attempt} tries: {exc.message}"
                raise CatalogFailure(code, message, step) from exc
            await asyncio.sleep(pause)
        except ServiceError as exc:
            raise CatalogFailure(code, f"could not {what}: {exc.message}", step) from exc
