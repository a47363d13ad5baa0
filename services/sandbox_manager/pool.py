"""The pool: warm sandboxes, the leases on them, and the upkeep that keeps both healthy.

A sandbox moves STARTING -> WARM -> LEASED -> RECYCLING, and is then destroyed: a sandbox that
served a lease never serves another, so nothing a tenant's code left behind (a process that
escaped its group, a planted file, a tampered standby worker) can reach the next tenant. The
pool keeps ``min_warm`` sandboxes warm, plus one for each caller waiting, never more than
``max_size`` in all, and refills in the background, so a warm acquire does not wait for a start.
A sandbox that crashed or failed a health probe is BROKEN and destroyed the same way. Leases
expire after their time to live without use and are then released.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from catalog_kernel.protocol import Message

from services.common.logging import log_fields
from services.sandbox_manager.backend import Backend, SandboxInstance
from services.sandbox_manager.config import Settings
from services.sandbox_manager.errors import (
    BackendUnavailable,
    DatabaseUnreachable,
    LeaseBroken,
    LeaseBusy,
    LeaseNotFound,
    PoolExhausted,
    SandboxNotFound,
)
from services.sandbox_manager.kernel_client import KernelError, KernelSession

_log = logging.getLogger(__name__)
_ENDED_LEASES_KEPT = 10_000  # how many ended lease ids still get a precise NOT_FOUND message
_MAX_BACKOFF_S = 30.0
_CANCEL_NOTICE_S = 1.0
_WIND_DOWN_WAIT_S = 15.0  # a cancelled cell stops within the kernel's interrupt grace


class SandboxState(enum.Enum):
    STARTING = "starting"
    WARM = "warm"
    LEASED = "leased"
    RECYCLING = "recycling"
    BROKEN = "broken"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PoolLease:
    lease_id: str
    sandbox_id: str
    client_id: str
    labels: dict[str, str]
    ttl_s: float
    expires_at: float = 0.0  # time.monotonic()
    expire_time: datetime = field(default_factory=_utcnow)
    broken: bool = False
    busy: bool = False
    winding_down: bool = False  # the caller cancelled; the cell is being interrupted
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def renew(self, ttl_s: float | None = None) -> None:
        if ttl_s is not None:
            self.ttl_s = ttl_s
        self.expires_at = time.monotonic() + self.ttl_s
        self.expire_time = _utcnow() + timedelta(seconds=self.ttl_s)


@dataclass
class PooledSandbox:
    sandbox_id: str
    state: SandboxState = SandboxState.STARTING
    instance: SandboxInstance | None = None
    lease: PoolLease | None = None
    leases_served: int = 0
    create_time: datetime = field(default_factory=_utcnow)
    last_used_time: datetime = field(default_factory=_utcnow)


@dataclass(frozen=True)
class AcquireRequest:
    session: dict[str, Any]
    ttl_s: float
    wait_s: float
    labels: dict[str, str]
    client_id: str


class Pool:
    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self._sandboxes: dict[str, PooledSandbox] = {}
        self._leases: dict[str, PoolLease] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()  # lease id -> "released"/"expired"
        self._changed = asyncio.Condition()
        self._waiters = 0
        self._backend_error = ""
        self._retry_after = 0.0
        self._backoff_s = 0.5
        self._tasks: set[asyncio.Task[None]] = set()
        self._upkeep: asyncio.Task[None] | None = None
        self._closing = False

    # --- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        removed = await self.backend.remove_orphans()
        if removed:
            log_fields(
                _log, logging.WARNING, "removed sandboxes an earlier run left behind", count=removed
            )
        self._upkeep = asyncio.create_task(self._upkeep_loop())
        self._refill()

    async def close(self) -> None:
        """Destroy every sandbox this manager owns (graceful shutdown)."""
        self._closing = True
        if self._upkeep is not None:
            self._upkeep.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        sandboxes = list(self._sandboxes.values())
        self._sandboxes.clear()
        await asyncio.gather(*(self._destroy_instance(s) for s in sandboxes))
        with contextlib.suppress(BackendUnavailable):
            await self.backend.remove_orphans()
        await self.backend.close()

    # --- leases -----------------------------------------------------------------------------
    async def acquire(self, request: AcquireRequest) -> tuple[PoolLease, KernelSession]:
        deadline = time.monotonic() + request.wait_s
        while True:
            sandbox = await self._take_warm(deadline, request.wait_s)
            lease = PoolLease(
                self._new_id(), sandbox.sandbox_id, request.client_id, request.labels, request.ttl_s
            )
            lease.renew()
            sandbox.lease, sandbox.last_used_time = lease, _utcnow()
            self._leases[lease.lease_id] = lease
            assert sandbox.instance is not None
            session_started = time.perf_counter()
            try:
                session, relay_error = await self._open_database(sandbox.instance, request.session)
                info = await sandbox.instance.kernel.start_session(session)
            except KernelError:  # it died between its last probe and now: take another
                self._leases.pop(lease.lease_id, None)
                self._break(sandbox, "its kernel died when a lease began")
                continue
            except BaseException:  # the caller gave up mid-way: the lease must not linger
                self.release(lease.lease_id)
                raise
            if relay_error:
                info = replace(info, connect_error=relay_error)
            log_fields(
                _log,
                logging.INFO,
                "lease acquired",
                lease=lease.lease_id,
                sandbox=sandbox.sandbox_id,
                client=request.client_id,
                labels=request.labels,
                session_ms=round((time.perf_counter() - session_started) * 1000, 2),
            )
            return lease, info

    async def _take_warm(self, deadline: float, wait_s: float) -> PooledSandbox:
        async with self._changed:
            self._waiters += 1
            try:
                while True:
                    self._refill()
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
            self._break(sandbox, "its kernel died while it was warm")
        return None

    def _raise_if_unavailable(self) -> None:
        """Waiting is pointless when nothing can start and nothing will come back."""
        if not self._backend_error:
            return
        coming = [
            s
            for s in self._sandboxes.values()
            if s.state in (SandboxState.STARTING, SandboxState.LEASED, SandboxState.RECYCLING)
        ]
        if not coming:
            raise BackendUnavailable(f"no sandbox can be started: {self._backend_error}")

    def lease(self, lease_id: str) -> tuple[PoolLease, PooledSandbox]:
        """The live lease and its sandbox, or the error that says why there is none."""
        owner = lease_id.split(".", 1)[0]
        if owner != self.settings.manager_id:
            raise LeaseNotFound(
                f"lease {lease_id} belongs to manager {owner!r}, not to "
                f"{self.settings.manager_id!r}: send the call to that manager"
            )
        lease = self._leases.get(lease_id)
        if lease is None:
            ended = self._ended.get(lease_id)
            if ended == "expired":
                raise LeaseNotFound(
                    f"lease {lease_id} expired after going unused for its time "
                    "to live; acquire a new one"
                )
            if ended == "released":
                raise LeaseNotFound(f"lease {lease_id} was released; acquire a new one")
            raise LeaseNotFound(
                f"lease {lease_id} is unknown to manager {self.settings.manager_id}"
            )
        if lease.broken:
            raise LeaseBroken(
                f"lease {lease_id} is broken: its sandbox died; release it and acquire another"
            )
        return lease, self._sandboxes[lease.sandbox_id]

    async def _claim(self, lease_id: str) -> tuple[PoolLease, PooledSandbox, SandboxInstance]:
        lease, sandbox = self.lease(lease_id)
        if lease.busy:
            # The caller may have just cancelled the running call, and the server may not have
            # seen that yet: give it a moment, then wait out the interrupt of a cancelled cell.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lease.idle.wait(), _CANCEL_NOTICE_S)
            if lease.busy and lease.winding_down:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lease.idle.wait(), _WIND_DOWN_WAIT_S)
            lease, sandbox = self.lease(lease_id)
        if lease.busy:
            raise LeaseBusy(f"lease {lease_id} is running another Execute or Reset; wait for it")
        assert sandbox.instance is not None
        lease.busy, lease.winding_down = True, False
        lease.idle.clear()
        lease.renew()
        sandbox.last_used_time = _utcnow()
        return lease, sandbox, sandbox.instance

    async def execute(
        self, lease_id: str, code: str, timeout_s: float, max_output_bytes: int
    ) -> AsyncIterator[Message]:
        """The kernel's events for one cell; a sandbox that dies yields an error and a crash."""
        lease, sandbox, instance = await self._claim(lease_id)
        started = time.monotonic()
        try:
            stream = instance.kernel.stream(code, timeout_s, max_output_bytes)
            async with contextlib.aclosing(stream) as events:
                async for event in events:
                    yield event
        except (asyncio.CancelledError, GeneratorExit):
            lease.winding_down = True
            raise
        except KernelError:
            lease.broken = True
            self._break(sandbox, "its container stopped while code ran")
            yield {
                "ev": "error",
                "ename": "SandboxLost",
                "traceback": "",
                "evalue": "the sandbox's container stopped while the code ran; release "
                "this lease and acquire another",
            }
            yield {
                "ev": "done",
                "status": "crashed",
                "state_lost": True,
                "duration_ms": (time.monotonic() - started) * 1000,
                "stdout_bytes_omitted": 0,
                "stderr_bytes_omitted": 0,
            }
        finally:
            lease.busy = False
            lease.idle.set()
            lease.renew()

    async def reset(self, lease_id: str, session: dict[str, Any] | None) -> KernelSession:
        lease, sandbox, instance = await self._claim(lease_id)
        try:
            relay_error = ""
            if session is not None:
                session, relay_error = await self._open_database(instance, session)
            info = await instance.kernel.reset(session)
            return replace(info, connect_error=relay_error) if relay_error else info
        except KernelError as exc:
            lease.broken = True
            self._break(sandbox, "its container stopped during a reset")
            raise LeaseBroken(
                f"lease {lease_id} broke: its sandbox stopped during the reset; "
                "release it and acquire another"
            ) from exc
        finally:
            lease.busy = False
            lease.idle.set()
            lease.renew()

    @staticmethod
    async def _open_database(
        instance: SandboxInstance, session: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        """The session with the DSN the kernel must use, and why the database is unreachable.

        The backend reaches the database for the sandbox (see db_relay); the kernel never sees
        the real host, and for PostgreSQL not the password either.
        """
        dsn = str(session.get("db_dsn") or "")
        timeout_s = float(session.get("statement_timeout_s") or 300.0)
        try:
            rewritten = await instance.open_database(dsn, timeout_s)
        except DatabaseUnreachable as exc:
            return {**session, "db_dsn": ""}, exc.message
        return {**session, "db_dsn": rewritten}, ""

    def renew(self, lease_id: str, ttl_s: float | None) -> PoolLease:
        lease, sandbox = self.lease(lease_id)
        lease.renew(ttl_s)
        sandbox.last_used_time = _utcnow()
        return lease

    def release(self, lease_id: str, how: str = "released") -> bool:
        """End a lease; its sandbox is cleaned in the background. Idempotent."""
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            return False
        self._ended[lease_id] = how
        while len(self._ended) > _ENDED_LEASES_KEPT:
            self._ended.popitem(last=False)
        sandbox = self._sandboxes.get(lease.sandbox_id)
        if sandbox is not None and sandbox.state is SandboxState.LEASED:
            sandbox.state, sandbox.lease = SandboxState.RECYCLING, None
            sandbox.leases_served += 1
            sandbox.last_used_time = _utcnow()
            # Destroyed, never cleaned for the next tenant: see the module's docstring.
            self._spawn(self._discard(sandbox))
        log_fields(_log, logging.INFO, f"lease {how}", lease=lease_id, sandbox=lease.sandbox_id)
        return True

    # --- operators --------------------------------------------------------------------------
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
        for sandbox in self._sandboxes.values():
            counts[sandbox.state] += 1
        return counts

    # --- upkeep -----------------------------------------------------------------------------
    def _new_id(self) -> str:
        return f"{self.settings.manager_id}.{secrets.token_urlsafe(12)}"

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        self._refill()

    def _refill(self) -> None:
        """Start sandboxes until min_warm (plus one per waiter) are warm or starting."""
        if self._closing or time.monotonic() < self._retry_after:
            return
        counts = self.counts()
        ready = counts[SandboxState.WARM] + counts[SandboxState.STARTING]
        room = self.settings.max_size - len(self._sandboxes)
        for _ in range(min(room, self.settings.min_warm + self._waiters - ready)):
            sandbox = PooledSandbox(self._new_id())
            self._sandboxes[sandbox.sandbox_id] = sandbox
            self._spawn(self._start(sandbox))

    async def _start(self, sandbox: PooledSandbox) -> None:
        try:
            sandbox.instance = await self.backend.start(sandbox.sandbox_id)
        except Exception as exc:  # any failure to start is the backend's: back off and retry
            self._sandboxes.pop(sandbox.sandbox_id, None)
            self._backend_error = exc.message if isinstance(exc, BackendUnavailable) else repr(exc)
            self._retry_after = time.monotonic() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, _MAX_BACKOFF_S)
            log_fields(_log, logging.ERROR, "sandbox start failed", error=self._backend_error)
        else:
            if self._closing:
                await sandbox.instance.destroy()
                return
            sandbox.state = SandboxState.WARM
            self._backend_error, self._backoff_s = "", 0.5
            log_fields(
                _log,
                logging.INFO,
                "sandbox warm",
                sandbox=sandbox.sandbox_id,
                container=sandbox.instance.container_id,
            )
        await self._notify()

    def _break(self, sandbox: PooledSandbox, why: str) -> None:
        """Take a sandbox out of service and destroy it; the pool starts a replacement."""
        if sandbox.state is SandboxState.BROKEN:
            return
        sandbox.state = SandboxState.BROKEN
        log_fields(
            _log, logging.WARNING, "sandbox recycled", sandbox=sandbox.sandbox_id, reason=why
        )
        self._spawn(self._discard(sandbox))

    async def _discard(self, sandbox: PooledSandbox) -> None:
        await self._destroy_instance(sandbox)
        self._sandboxes.pop(sandbox.sandbox_id, None)
        await self._notify()

    @staticmethod
    async def _destroy_instance(sandbox: PooledSandbox) -> None:
        if sandbox.instance is not None:
            await sandbox.instance.destroy()

    async def _upkeep_loop(self) -> None:
        next_probe = time.monotonic() + self.settings.health_interval_s
        while True:
            await asyncio.sleep(0.5)
            self._expire_leases()
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + self.settings.health_interval_s
                await self._probe_warm()
            self._refill()

    def _expire_leases(self) -> None:
        now = time.monotonic()
        for lease in list(self._leases.values()):
            if lease.expires_at < now and not lease.busy:
                self.release(lease.lease_id, how="expired")

    async def _probe_warm(self) -> None:
        for sandbox in self.sandboxes(SandboxState.WARM):
            assert sandbox.instance is not None
            try:
                await asyncio.wait_for(sandbox.instance.kernel.ping(), 5)
            except (KernelError, TimeoutError):
                if sandbox.state is SandboxState.WARM:
                    self._break(sandbox, "it failed its health probe")
