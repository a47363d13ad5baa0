"""The fleet: the sandboxes one manager runs, from their start to their destruction.

It keeps enough sandboxes warm (see the pool's docstring for the life cycle), hands a warm one
to each acquire, destroys those that served a lease or broke, probes the warm ones, and backs off
when the backend cannot start any.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.logging import log_fields
from services.sandbox_manager.backend import Backend, SandboxInstance
from services.sandbox_manager.config import Settings
from services.sandbox_manager.errors import BackendUnavailable, PoolExhausted, SandboxNotFound
from services.sandbox_manager.kernel_client import KernelError
from services.sandbox_manager.leases import PoolLease, new_id, utcnow
from services.sandbox_manager.metrics import REPLACEMENTS

_log = logging.getLogger(__name__)
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 30.0
_PROBE_TIMEOUT_S = 5


class SandboxState(enum.Enum):
    STARTING = "starting"
    WARM = "warm"
    LEASED = "leased"
    RECYCLING = "recycling"
    BROKEN = "broken"


@dataclass
class PooledSandbox:
    sandbox_id: str
    state: SandboxState = SandboxState.STARTING
    instance: SandboxInstance | None = None
    lease: PoolLease | None = None
    leases_served: int = 0
    create_time: datetime = field(default_factory=utcnow)
    last_used_time: datetime = field(default_factory=utcnow)


@dataclass
class _StartBackoff:
    """After a failed start no other is tried for a while, twice as long after each failure."""

    error: str = ""  # why the last start failed; empty once one succeeds
    retry_after: float = 0.0  # time.monotonic()
    delay_s: float = _FIRST_BACKOFF_S

    def waiting(self) -> bool:
        return time.monotonic() < self.retry_after

    def failed(self, error: str) -> None:
        self.error = error
        self.retry_after = time.monotonic() + self.delay_s
        self.delay_s = min(self.delay_s * 2, _MAX_BACKOFF_S)

    def succeeded(self) -> None:
        self.error, self.delay_s = "", _FIRST_BACKOFF_S


class Fleet:
    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self._sandboxes: dict[str, PooledSandbox] = {}
        self._changed = asyncio.Condition()
        self._waiters = 0
        self._backoff = _StartBackoff()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    # --- life cycle -------------------------------------------------------------------------
    async def remove_orphans(self) -> None:
        removed = await self.backend.remove_orphans()
        if removed:
            log_fields(
                _log, logging.WARNING, "removed sandboxes an earlier run left behind", count=removed
            )

    async def close(self) -> None:
        """Destroy every sandbox this manager owns (graceful shutdown)."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        sandboxes = list(self._sandboxes.values())
        self._sandboxes.clear()
        await asyncio.gather(*(self._destroy_instance(s) for s in sandboxes))
        with contextlib.suppress(BackendUnavailable):
            await self.backend.remove_orphans()
        await self.backend.close()

    # --- handing out and taking back ---------------------------------------------------------
    async def take_warm(self, deadline: float, wait_s: float) -> PooledSandbox:
        """A warm sandbox, now LEASED, waiting until the deadline for one to become warm."""
        async with self._changed:
            self._waiters += 1
            try:
                while True:
                    self.refill()
                    sandbox = self._first_warm()
                    if sandbox is not None:
                        sandbox.state = SandboxState.LEASED
                        return sandbox
                    self._raise_if_unavailable()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolExhausted(
                            f"all {self.settings.max_size} sandboxes of manager "
                            f"{self.settings.manager_id} are busy and none became free within "
                            f"{wait_s:.1f} s; retry later, or run more managers"
                        )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), remaining)
            finally:
                self._waiters -= 1

    def _first_warm(self) -> PooledSandbox | None:
        for sandbox in self._sandboxes.values():
            if sandbox.state is not SandboxState.WARM:
                continue
            assert sandbox.instance is not None
            if sandbox.instance.kernel.alive:
                return sandbox
            self.break_(sandbox, "its kernel died while it was warm", "died_while_warm")
        return None

    def _raise_if_unavailable(self) -> None:
        """Waiting is pointless when nothing can start and nothing will come back."""
        if not self._backoff.error:
            return
        coming = [
            s
            for s in self._sandboxes.values()
            if s.state in (SandboxState.STARTING, SandboxState.LEASED, SandboxState.RECYCLING)
        ]
        if not coming:
            raise BackendUnavailable(f"no sandbox can be started: {self._backoff.error}")

    def recycle(self, sandbox_id: str) -> None:
        """The lease on this sandbox ended: destroy it in the background."""
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is not None and sandbox.state is SandboxState.LEASED:
            sandbox.state, sandbox.lease = SandboxState.RECYCLING, None
            sandbox.leases_served += 1
            sandbox.last_used_time = utcnow()
            REPLACEMENTS.labels("lease_ended").inc()
            # Destroyed, never cleaned for the next tenant: see the pool's docstring.
            self._spawn(self._discard(sandbox))

    def break_(self, sandbox: PooledSandbox, why: str, reason: str) -> None:
        """Take a sandbox out of service and destroy it; the pool starts a replacement.
        `why` is for the log, `reason` a metric label (one of a few words)."""
        if sandbox.state is SandboxState.BROKEN:
            return
        sandbox.state = SandboxState.BROKEN
        REPLACEMENTS.labels(reason).inc()
        log_fields(
            _log, logging.WARNING, "sandbox recycled", sandbox=sandbox.sandbox_id, reason=why
        )
        self._spawn(self._discard(sandbox))

    # --- operators --------------------------------------------------------------------------
    def sandbox(self, sandbox_id: str) -> PooledSandbox:
        """The sandbox of a live lease (which is never destroyed while the lease lives)."""
        return self._sandboxes[sandbox_id]

    def sandboxes(self, state: SandboxState | None = None) -> list[PooledSandbox]:
        found = [s for s in self._sandboxes.values() if state is None or s.state is state]
        return sorted(found, key=lambda s: (s.create_time, s.sandbox_id))

    def describe(self, sandbox_id: str) -> PooledSandbox:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise SandboxNotFound(
                f"sandbox {sandbox_id} is not on manager "
                f"{self.settings.manager_id}; it may have been destroyed"
            )
        return sandbox

    def counts(self) -> dict[SandboxState, int]:
        counts = dict.fromkeys(SandboxState, 0)
        # a copy: the metrics thread counts too, while the event loop changes the fleet
        for sandbox in list(self._sandboxes.values()):
            counts[sandbox.state] += 1
        return counts

    # --- upkeep -----------------------------------------------------------------------------
    def refill(self) -> None:
        """Start sandboxes until min_warm (plus one per waiter) are warm or starting."""
        if self._closing or self._backoff.waiting():
            return
        counts = self.counts()
        ready = counts[SandboxState.WARM] + counts[SandboxState.STARTING]
        room = self.settings.max_size - len(self._sandboxes)
        for _ in range(min(room, self.settings.min_warm + self._waiters - ready)):
            sandbox = PooledSandbox(new_id(self.settings.manager_id))
            self._sandboxes[sandbox.sandbox_id] = sandbox
            self._spawn(self._start(sandbox))

    async def probe_warm(self) -> None:
        for sandbox in self.sandboxes(SandboxState.WARM):
            assert sandbox.instance is not None
            try:
                await asyncio.wait_for(sandbox.instance.kernel.ping(), _PROBE_TIMEOUT_S)
            except (KernelError, TimeoutError):
                if sandbox.state is SandboxState.WARM:
                    self.break_(sandbox, "it failed its health probe", "failed_probe")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        self.refill()

    async def _start(self, sandbox: PooledSandbox) -> None:
        try:
            sandbox.instance = await self.backend.start(sandbox.sandbox_id)
        except Exception as exc:  # any failure to start is the backend's: back off and retry
            self._sandboxes.pop(sandbox.sandbox_id, None)
            self._backoff.failed(exc.message if isinstance(exc, BackendUnavailable) else repr(exc))
            log_fields(_log, logging.ERROR, "sandbox start failed", error=self._backoff.error)
        else:
            if self._closing:
                await sandbox.instance.destroy()
                return
            sandbox.state = SandboxState.WARM
            self._backoff.succeeded()
            log_fields(
                _log,
                logging.INFO,
                "sandbox warm",
                sandbox=sandbox.sandbox_id,
                container=sandbox.instance.container_id,
            )
        await self._notify()

    async def _discard(self, sandbox: PooledSandbox) -> None:
        await self._destroy_instance(sandbox)
        self._sandboxes.pop(sandbox.sandbox_id, None)
        await self._notify()

    @staticmethod
    async def _destroy_instance(sandbox: PooledSandbox) -> None:
        if sandbox.instance is not None:
            await sandbox.instance.destroy()
