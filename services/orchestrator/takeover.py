"""Replicas on one PostgreSQL take over a dead replica's runs, through DBOS's own recovery.

DBOS recovers a replica's PENDING workflows when that replica starts again with its executor
id; a replica that never comes back would leave its runs PENDING forever. Each replica here
holds a PostgreSQL session advisory lock named after its executor id for as long as it lives:
the server drops it the moment the process dies (its socket closes), kill -9 included. Every
few seconds a replica looks at the executors that own PENDING runs of this application
version; one whose lock it can take is not running. Once that has held for `after_s`
(CATALOG_RECOVERY_AFTER_S), it calls `DBOS._recover_pending_workflows([that id])`, which puts
each run back on its queue for whichever replica dequeues it first. That is the only recovery
path: the lock tells who is dead, DBOS does the rest, idempotently (a second replica's
recovery of the same id matches no row once a survivor has dequeued the run).

With SQLite (one replica) there is no one to take over, and nothing here runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import psycopg
from dbos import DBOS

from services.common.logging import log_fields

_log = logging.getLogger(__name__)
_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"
# How long a starting replica waits for its own id's lock: a predecessor killed a moment ago
# may still hold it until the server notices its socket closed.
_CLAIM_S = 15.0


class ExecutorIdInUse(RuntimeError):
    """Another live replica runs under this executor id."""


def _lock_name(executor_id: str) -> str:
    return f"catalog-agents/executor/{executor_id}"


def libpq_url(system_database_url: str) -> str:
    """DBOS's URL (`postgresql+psycopg://...` or `postgresql://...`) as libpq takes it."""
    scheme, sep, rest = system_database_url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def uses_postgres(system_database_url: str) -> bool:
    return system_database_url.startswith(("postgresql", "postgres:"))


class Takeover:
    """This replica's liveness lock, and the watch for replicas that lost theirs."""

    def __init__(
        self, url: str, executor_id: str, app_version: str, after_s: float, every_s: float
    ) -> None:
        self._url = libpq_url(url)
        self._executor_id = executor_id
        self._app_version = app_version
        self._after_s = after_s
        self._every_s = every_s
        self._own: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._dead_since: dict[str, float] = {}

    async def claim(self) -> None:
        """Hold this replica's lock; refuse an id a live replica holds."""
        deadline = time.monotonic() + _CLAIM_S
        while not await self._hold_own():
            if time.monotonic() > deadline:
                raise ExecutorIdInUse(
                    f"executor id {self._executor_id!r} is held by a running orchestrator on "
                    "this system database; give each replica its own CATALOG_EXECUTOR_ID"
                )
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._own is not None:
            await self._own.close()

    async def watch(self) -> None:
        """Until cancelled: keep the own lock, and recover executors dead for `after_s`."""
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self._hold_own()
                await self.sweep()
            except (psycopg.Error, OSError) as exc:  # the database restarting: next round
                log_fields(_log, logging.WARNING, "takeover check failed", error=str(exc))

    async def _hold_own(self) -> bool:
        if self._own is not None:
            try:
                await self._own.execute("SELECT 1")  # a terminated session shows only when used
                return True
            except psycopg.Error:
                await self._own.close()
                self._own = None
        conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        row = await (await conn.execute(_LOCK, (_lock_name(self._executor_id),))).fetchone()
        if row and row[0]:
            self._own = conn
            return True
        await conn.close()
        return False

    async def sweep(self) -> list[str]:
        """Recover the executors dead for long enough; returns their ids."""
        owners = await self._pending_owners()
        now = time.monotonic()
        for gone in set(self._dead_since) - owners:
            del self._dead_since[gone]
        recovered = []
        for executor_id in sorted(owners):
            if not await self._is_dead(executor_id):
                self._dead_since.pop(executor_id, None)
                continue
            since = self._dead_since.setdefault(executor_id, now)
            if now - since >= self._after_s:
                await self._recover(executor_id, now - since)
                recovered.append(executor_id)
        return recovered

    async def _pending_owners(self) -> set[str]:
        pending = await DBOS.list_workflows_async(
            status="PENDING", app_version=self._app_version, load_input=False, load_output=False
        )
        owners = {w.executor_id for w in pending if w.executor_id}
        owners.discard(self._executor_id)
        return owners

    async def _is_dead(self, executor_id: str) -> bool:
        """Whether no live process holds the executor's lock (taken and let go at once)."""
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
            name = _lock_name(executor_id)
            row = await (await conn.execute(_LOCK, (name,))).fetchone()
            if not (row and row[0]):
                return False
            with contextlib.suppress(psycopg.Error):
                await conn.execute(_UNLOCK, (name,))
            return True

    async def _recover(self, executor_id: str, dead_s: float) -> None:
        handles = await asyncio.to_thread(DBOS._recover_pending_workflows, [executor_id])
        self._dead_since.pop(executor_id, None)
        log_fields(
            _log,
            logging.WARNING,
            "took over a dead replica's runs",
            dead_executor_id=executor_id,
            dead_for_s=round(dead_s, 1),
            runs=[h.get_workflow_id() for h in handles],
        )
