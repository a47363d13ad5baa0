"""The pool: warm sandboxes, the leases on them, and the upkeep that keeps both healthy.

A sandbox moves STARTING -> WARM -> LEASED -> RECYCLING, and is then destroyed: a sandbox that
served a lease never serves another, so nothing a tenant's code left behind (a process that
escaped its group, a planted file, a tampered standby worker) can reach the next tenant. The
pool keeps ``min_warm`` sandboxes warm, plus one for each caller waiting, never more than
``max_size`` in all, and refills in the background, so a warm acquire does not wait for a start.
A sandbox that crashed or failed a health probe is BROKEN and destroyed the same way. Leases
expire after their time to live without use and are then released.

The lease records live in leases.py, the sandboxes and their upkeep (start, backoff, health
probes, destruction) in fleet.py; this module joins the two and talks to the kernels.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from catalog_kernel.connections import DEFAULT, dsn_secrets, scrub
from catalog_kernel.protocol import Message

from services.common.logging import log_fields
from services.sandbox_manager.backend import Backend, SandboxInstance
from services.sandbox_manager.config import Settings
from services.sandbox_manager.errors import (
    BackendUnavailable,
    DatabaseUnreachable,
    KeyInUse,
    LeaseBroken,
    LeaseBusy,
    PoolExhausted,
)
from services.sandbox_manager.fleet import Fleet, PooledSandbox, SandboxState
from services.sandbox_manager.kernel_client import DatabaseState, KernelError, KernelSession
from services.sandbox_manager.leases import Ending, LeaseRegistry, PoolLease, new_id, utcnow
from services.sandbox_manager.metrics import ACQUIRE_FAILURES, ACQUIRE_WAIT, EXECUTE_DURATION

_log = logging.getLogger(__name__)
_CANCEL_NOTICE_S = 1.0
_WIND_DOWN_WAIT_S = 15.0  # a cancelled cell stops within the kernel's interrupt grace
_UPKEEP_TICK_S = 0.5


@dataclass(frozen=True)
class AcquireRequest:
    session: dict[str, Any]
    ttl_s: float
    wait_s: float
    labels: dict[str, str]
    client_id: str
    idempotency_key: str = ""  # "" : none; else a repeat gets the key's live lease again

    def digest(self) -> str:
        """What a repeat must ask for again (the session and the caller), as a hash: the
        session holds a secret, which is compared but not kept."""
        asked = json.dumps([self.session, self.client_id], sort_keys=True, default=str)
        return hashlib.sha256(asked.encode()).hexdigest()


class Pool:
    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self._fleet = Fleet(settings, backend)
        self._leases = LeaseRegistry(settings.manager_id)
        self._upkeep: asyncio.Task[None] | None = None
        self._key_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    # --- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self._fleet.remove_orphans()
        self._upkeep = asyncio.create_task(self._upkeep_loop())
        self._fleet.refill()

    async def close(self) -> None:
        """Destroy every sandbox this manager owns (graceful shutdown)."""
        if self._upkeep is not None:
            self._upkeep.cancel()
        await self._fleet.close()

    # --- leases -----------------------------------------------------------------------------
    async def acquire(self, request: AcquireRequest) -> tuple[PoolLease, KernelSession]:
        """A new lease; or, for a key whose lease is live, that lease again, renewed."""
        key = request.idempotency_key
        if not key:
            return await self._timed_acquire(request)
        async with self._one_at_a_time(key):
            again = self._acquired_again(request)
            if again is not None:
                return again
            lease, info = await self._timed_acquire(request)
            self._leases.bind_key(lease, key, request.digest(), info)
            return lease, info

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, key: str) -> AsyncIterator[None]:
        """Acquires with the same key one after the other (a repeat waits for the first)."""
        lock, users = self._key_locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._key_locks[key]

    def _acquired_again(self, request: AcquireRequest) -> tuple[PoolLease, KernelSession] | None:
        lease = self._leases.keyed(request.idempotency_key)
        if lease is None:
            return None
        if lease.broken:  # its sandbox died: the repeat gets a new one
            self.release(lease.lease_id)
            return None
        if lease.request_digest != request.digest():
            raise KeyInUse(
                f"idempotency_key {request.idempotency_key!r} belongs to lease "
                f"{lease.lease_id}, acquired with another session or client_id: use a new key"
            )
        lease.renew(request.ttl_s)
        log_fields(
            _log,
            logging.INFO,
            "lease acquired again",
            lease=lease.lease_id,
            sandbox=lease.sandbox_id,
            client=request.client_id,
        )
        answer: KernelSession = lease.answer
        return lease, answer

    async def _timed_acquire(self, request: AcquireRequest) -> tuple[PoolLease, KernelSession]:
        started = time.monotonic()
        try:
            acquired = await self._acquire(request, started + request.wait_s)
        except PoolExhausted:
            ACQUIRE_FAILURES.labels("pool_exhausted").inc()
            raise
        except BackendUnavailable:
            ACQUIRE_FAILURES.labels("backend_unavailable").inc()
            raise
        ACQUIRE_WAIT.observe(time.monotonic() - started)
        return acquired

    async def _acquire(
        self, request: AcquireRequest, deadline: float
    ) -> tuple[PoolLease, KernelSession]:
        while True:
            sandbox = await self._fleet.take_warm(deadline, request.wait_s)
            lease = PoolLease(
                new_id(self.settings.manager_id),
                sandbox.sandbox_id,
                request.client_id,
                request.labels,
                request.ttl_s,
            )
            lease.renew()
            sandbox.lease, sandbox.last_used_time = lease, utcnow()
            self._leases.add(lease)
            assert sandbox.instance is not None
            session_started = time.perf_counter()
            try:
                session, relay_error = await self._open_database(sandbox.instance, request.session)
                info = await sandbox.instance.kernel.start_session(session)
            except KernelError:  # it died between its last probe and now: take another
                self._leases.forget(lease.lease_id)
                self._fleet.break_(sandbox, "its kernel died when a lease began", "died_at_lease")
                continue
            except BaseException:  # the caller gave up mid-way: the lease must not linger
                self.release(lease.lease_id)
                raise
            if relay_error:
                info = _with_relay_error(info, relay_error)
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

    def lease(self, lease_id: str) -> tuple[PoolLease, PooledSandbox]:
        """The live lease and its sandbox, or the error that says why there is none."""
        lease = self._leases.get(lease_id)
        return lease, self._fleet.sandbox(lease.sandbox_id)

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
        sandbox.last_used_time = utcnow()
        return lease, sandbox, sandbox.instance

    async def execute(
        self, lease_id: str, code: str, timeout_s: float, max_output_bytes: int
    ) -> AsyncIterator[Message]:
        """The kernel's events for one cell; a sandbox that dies yields an error and a crash."""
        lease, sandbox, instance = await self._claim(lease_id)
        started = time.monotonic()
        status = "cancelled"  # until the kernel says how the cell ended
        try:
            stream = instance.kernel.stream(code, timeout_s, max_output_bytes)
            async with contextlib.aclosing(stream) as events:
                async for event in events:
                    if event.get("ev") == "done":
                        status = str(event.get("status") or "ok")
                    yield event
        except (asyncio.CancelledError, GeneratorExit):
            lease.winding_down = True
            raise
        except KernelError:
            lease.broken = True
            status = "crashed"
            self._fleet.break_(sandbox, "its container stopped while code ran", "crashed")
            for event in _sandbox_lost(started):
                yield event
        finally:
            EXECUTE_DURATION.labels(status).observe(time.monotonic() - started)
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
            return _with_relay_error(info, relay_error) if relay_error else info
        except KernelError as exc:
            lease.broken = True
            self._fleet.break_(sandbox, "its container stopped during a reset", "crashed")
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
        """The session with the DSNs the kernel must use, and why its one `db_dsn` database is
        unreachable. A database of several that is unreachable goes to the kernel with no DSN
        and that reason, so the others open and the first stays `con`.

        The backend reaches each database for the sandbox (see db_relay); the kernel never sees
        the real host, and for PostgreSQL not the password either.
        """
        timeout_s = float(session.get("statement_timeout_s") or 300.0)
        if session.get("databases"):
            await instance.close_database()
            opened = await asyncio.gather(
                *(
                    _open_one(instance, str(d["name"]), str(d["dsn"]), timeout_s)
                    for d in session["databases"]
                )
            )
            return {**session, "databases": list(opened)}, ""
        dsn = str(session.get("db_dsn") or "")
        try:
            rewritten = await instance.open_database(dsn, timeout_s)
        except DatabaseUnreachable as exc:
            return {**session, "db_dsn": ""}, scrub(exc.message, _secrets(dsn))
        return {**session, "db_dsn": rewritten}, ""

    def renew(self, lease_id: str, ttl_s: float | None) -> PoolLease:
        lease, sandbox = self.lease(lease_id)
        lease.renew(ttl_s)
        sandbox.last_used_time = utcnow()
        return lease

    def release(self, lease_id: str, how: Ending = "released") -> bool:
        """End a lease; its sandbox is destroyed in the background. Idempotent."""
        lease = self._leases.end(lease_id, how)
        if lease is None:
            return False
        self._fleet.recycle(lease.sandbox_id)
        log_fields(_log, logging.INFO, f"lease {how}", lease=lease_id, sandbox=lease.sandbox_id)
        return True

    # --- operators --------------------------------------------------------------------------
    def sandboxes(self, state: SandboxState | None = None) -> list[PooledSandbox]:
        return self._fleet.sandboxes(state)

    def describe(self, sandbox_id: str) -> PooledSandbox:
        return self._fleet.describe(sandbox_id)

    def counts(self) -> dict[SandboxState, int]:
        return self._fleet.counts()

    # --- upkeep -----------------------------------------------------------------------------
    async def _upkeep_loop(self) -> None:
        """Expire unused leases, probe the warm sandboxes now and then, and refill."""
        next_probe = time.monotonic() + self.settings.health_interval_s
        while True:
            await asyncio.sleep(_UPKEEP_TICK_S)
            for lease in self._leases.overdue():
                self.release(lease.lease_id, how="expired")
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + self.settings.health_interval_s
                await self._fleet.probe_warm()
            self._fleet.refill()


async def _open_one(
    instance: SandboxInstance, name: str, dsn: str, timeout_s: float
) -> dict[str, str]:
    """One database of several for the kernel: its DSN, or why it is unreachable (scrubbed of
    its DSN, password and host, which a page may show)."""
    try:
        return {"name": name, "dsn": await instance.open_database(dsn, timeout_s, name)}
    except DatabaseUnreachable as exc:
        hidden = _secrets(dsn, urlsplit(dsn).hostname or "")
        return {"name": name, "dsn": "", "connect_error": scrub(exc.message, hidden)}
    except OSError as exc:  # the relay's own folder or socket: this database only, not its peers
        hidden = _secrets(dsn, urlsplit(dsn).hostname or "")
        said = f"the manager could not open this database's relay: {exc.strerror or exc}"
        return {"name": name, "dsn": "", "connect_error": scrub(said, hidden)}


def _secrets(dsn: str, *more: str) -> list[str]:
    return sorted({v for v in (*dsn_secrets(dsn), *more) if len(v) >= 4}, key=len, reverse=True)


def _with_relay_error(info: KernelSession, error: str) -> KernelSession:
    """A `db_dsn` session whose database the backend could not reach: the kernel opened none."""
    return replace(info, connect_error=error, databases=(DatabaseState(DEFAULT, "", False, error),))


def _sandbox_lost(started: float) -> Iterator[Message]:
    """What a cell whose sandbox died reports: an error, then a crash that lost the state."""
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
