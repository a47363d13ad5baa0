"""Agent runs by run id, so a repeated RunAgent never starts a second agent.

The orchestrator's steps run at least once (a crashed workflow re-runs its step), so the run id
is an idempotency key: a call with a known id attaches to the live run (it gets the events so
far, then the rest as they come) or, once the run has finished, its stored result. A run goes on
when its caller disconnects, so a recovered caller can pick it up. Finished runs are kept for a
bounded time and number (CATALOG_AGENT_RUN_RETENTION_S, CATALOG_AGENT_MAX_RETAINED_RUNS), in
memory and, given a store, on disk (run_store.py), so a restarted runner still knows them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from services.common.logging import log_fields

_E = TypeVar("_E")
_log = logging.getLogger(__name__)
_MAX_EVENTS_KEPT = 10_000  # per run; a very long run replays only its latest events


@dataclass
class Run(Generic[_E]):
    run_id: str
    events: list[_E] = field(default_factory=list)
    final: _E | None = None
    finished_at: float = 0.0
    listeners: list[asyncio.Queue[_E | None]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    @property
    def finished(self) -> bool:
        return self.final is not None


class FinishedRuns(Protocol[_E]):
    """Where finished runs outlive the process (run_store.RunStore)."""

    async def load(self, run_id: str) -> _E | None: ...

    async def save(self, run_id: str, final: _E) -> None: ...


class RunRegistry(Generic[_E]):
    def __init__(
        self, retention_s: float, max_runs: int, store: FinishedRuns[_E] | None = None
    ) -> None:
        self._runs: OrderedDict[str, Run[_E]] = OrderedDict()
        self._retention_s = retention_s
        self._max_runs = max_runs
        self._store = store

    async def get(self, run_id: str) -> Run[_E] | None:
        self._forget_old()
        run = self._runs.get(run_id)
        if run is None and self._store is not None:
            final = await self._store.load(run_id)
            run = self._runs.get(run_id)  # it may have started while the store answered
            if run is None and final is not None:
                run = self._remember(run_id, final)
        return run

    async def attach(
        self, run_id: str, start: Callable[[Callable[[_E], None]], Awaitable[_E]]
    ) -> AsyncIterator[_E]:
        """The run's events ending with its final one; starts it unless it is known."""
        run = await self.get(run_id)
        if run is None:  # no await since get(): no other attach can have started it
            run = Run(run_id)
            self._runs[run_id] = run
            run.task = asyncio.create_task(self._drive(run, start))
        async for event in self._follow(run):
            yield event

    def _remember(self, run_id: str, final: _E) -> Run[_E]:
        """A run finished by an earlier process, known again from the store."""
        run = Run(run_id, final=final, finished_at=time.monotonic())
        self._runs[run_id] = run
        return run

    async def cancel(self, run_id: str) -> bool:
        """Stop a live run; it leaves no result and is forgotten. False when none was live."""
        run = self._runs.get(run_id)
        if run is None or run.task is None or run.task.done():
            return False
        run.task.cancel()
        await asyncio.gather(run.task, return_exceptions=True)
        return True

    async def _drive(
        self, run: Run[_E], start: Callable[[Callable[[_E], None]], Awaitable[_E]]
    ) -> None:
        def publish(event: _E) -> None:
            run.events.append(event)
            del run.events[:-_MAX_EVENTS_KEPT]
            for queue in run.listeners:
                queue.put_nowait(event)

        try:
            final = await start(publish)
            await self._keep(run.run_id, final)
            run.final = final
        finally:
            run.finished_at = time.monotonic()
            if run.final is None:  # it failed without a result: forget it, a retry starts anew
                self._runs.pop(run.run_id, None)
            for queue in run.listeners:
                if run.final is not None:
                    queue.put_nowait(run.final)
                queue.put_nowait(None)

    async def _keep(self, run_id: str, final: _E) -> None:
        """On disk before any caller sees it: a caller that recorded it can count on it."""
        if self._store is None:
            return
        try:
            await self._store.save(run_id, final)
        except Exception as exc:  # the caller still gets its result; only a restart loses it
            log_fields(
                _log, logging.ERROR, "could not store a finished run", run=run_id, error=repr(exc)
            )

    async def _follow(self, run: Run[_E]) -> AsyncIterator[_E]:
        if run.finished:
            assert run.final is not None
            yield run.final
            return
        queue: asyncio.Queue[_E | None] = asyncio.Queue()
        backlog = list(run.events)
        run.listeners.append(queue)
        try:
            for event in backlog:
                yield event
            while (item := await queue.get()) is not None:
                yield item
        finally:
            run.listeners.remove(queue)

    def _forget_old(self) -> None:
        now = time.monotonic()
        for run_id, run in list(self._runs.items()):
            expired = run.finished and now - run.finished_at > self._retention_s
            if expired or (run.finished and len(self._runs) > self._max_runs):
                del self._runs[run_id]

    async def close(self) -> None:
        tasks = [run.task for run in self._runs.values() if run.task and not run.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
