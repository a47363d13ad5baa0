"""Leases: who holds which sandbox, until when, and why a lease id no longer answers.

A lease id reads ``{manager_id}.{random}``, so a call sent to the wrong manager is told where
to go. A lease that ended is remembered for a while (the last ``_ENDED_LEASES_KEPT``), so a late
call learns whether it was released or expired rather than that the id is unknown.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from services.sandbox_manager.errors import LeaseBroken, LeaseNotFound

_ENDED_LEASES_KEPT = 10_000  # how many ended lease ids still get a precise NOT_FOUND message

Ending = Literal["released", "expired"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(manager_id: str) -> str:
    """A lease or sandbox id that names the manager which owns it."""
    return f"{manager_id}.{secrets.token_urlsafe(12)}"


@dataclass
class PoolLease:
    lease_id: str
    sandbox_id: str
    client_id: str
    labels: dict[str, str]
    ttl_s: float
    expires_at: float = 0.0  # time.monotonic()
    expire_time: datetime = field(default_factory=utcnow)
    broken: bool = False
    busy: bool = False
    winding_down: bool = False  # the caller cancelled; the cell is being interrupted
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # An acquire's idempotency key, what it asked for (a digest) and what it was answered.
    idempotency_key: str = ""
    request_digest: str = ""
    answer: Any = field(default=None, repr=False)

    def renew(self, ttl_s: float | None = None) -> None:
        if ttl_s is not None:
            self.ttl_s = ttl_s
        self.expires_at = time.monotonic() + self.ttl_s
        self.expire_time = utcnow() + timedelta(seconds=self.ttl_s)


class LeaseRegistry:
    """The live leases of one manager, and the ends of recent ones."""

    def __init__(self, manager_id: str) -> None:
        self._manager_id = manager_id
        self._live: dict[str, PoolLease] = {}
        self._ended: OrderedDict[str, Ending] = OrderedDict()
        self._keyed: dict[str, str] = {}  # idempotency key -> its live lease's id

    def add(self, lease: PoolLease) -> None:
        self._live[lease.lease_id] = lease

    def forget(self, lease_id: str) -> None:
        """Drop a lease that never began, leaving no trace of it."""
        self._unkey(self._live.pop(lease_id, None))

    def bind_key(self, lease: PoolLease, key: str, digest: str, answer: Any) -> None:
        """Remember the live lease an idempotent acquire got, for as long as it lives."""
        lease.idempotency_key, lease.request_digest, lease.answer = key, digest, answer
        self._keyed[key] = lease.lease_id

    def keyed(self, key: str) -> PoolLease | None:
        """The live lease acquired with this idempotency key, if any (broken or not)."""
        lease_id = self._keyed.get(key)
        return None if lease_id is None else self._live.get(lease_id)

    def _unkey(self, lease: PoolLease | None) -> None:
        if lease is not None and self._keyed.get(lease.idempotency_key) == lease.lease_id:
            del self._keyed[lease.idempotency_key]

    def end(self, lease_id: str, how: Ending) -> PoolLease | None:
        """Take a live lease out and remember how it ended; None when it is not live."""
        lease = self._live.pop(lease_id, None)
        if lease is None:
            return None
        self._unkey(lease)
        self._ended[lease_id] = how
        while len(self._ended) > _ENDED_LEASES_KEPT:
            self._ended.popitem(last=False)
        return lease

    def overdue(self) -> list[PoolLease]:
        """Leases past their time to live that no call is using."""
        now = time.monotonic()
        return [lease for lease in self._live.values() if lease.expires_at < now and not lease.busy]

    def get(self, lease_id: str) -> PoolLease:
        """The live, unbroken lease, or the error that says why there is none."""
        owner = lease_id.split(".", 1)[0]
        if owner != self._manager_id:
            raise LeaseNotFound(
                f"lease {lease_id} belongs to manager {owner!r}, not to "
                f"{self._manager_id!r}: send the call to that manager"
            )
        lease = self._live.get(lease_id)
        if lease is None:
            raise LeaseNotFound(self._why_gone(lease_id))
        if lease.broken:
            raise LeaseBroken(
                f"lease {lease_id} is broken: its sandbox died; release it and acquire another"
            )
        return lease

    def _why_gone(self, lease_id: str) -> str:
        ended = self._ended.get(lease_id)
        if ended == "expired":
            return (
                f"lease {lease_id} expired after going unused for its time to live; "
                "acquire a new one"
            )
        if ended == "released":
            return f"lease {lease_id} was released; acquire a new one"
        return f"lease {lease_id} is unknown to manager {self._manager_id}"
