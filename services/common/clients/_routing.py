"""Routing across sandbox managers: a channel to each, whose turn it is, who issued a lease.

A lease id reads `{manager_id}.{random}`: every call about a lease goes to the manager named
by the text before the first '.'. The router learns each manager's id from its AcquireSandbox
answers; for an id it has not seen it asks every address for its id (ListSandboxes) first.
Unary calls are retried on UNAVAILABLE with exponential backoff and jitter, within the
call's deadline.

Acquires spread by the power of two choices: two managers drawn at random report their pool
counters (ListSandboxes, one page of one sandbox: cheap and read-only), and the less loaded
goes first, counting this client's acquires still in flight there (which its counters do not
show yet), so a burst from one client does not pile onto one manager.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import grpc
from catalog.v1 import sandbox_pb2 as pb
from catalog.v1 import sandbox_pb2_grpc

from services.common.clients._errors import (
    InvalidRequest,
    ManagerUnavailable,
    SandboxClientError,
    UnknownManager,
)
from services.common.clients._models import RetryPolicy
from services.common.control_plane import ControlPlane

if TYPE_CHECKING:
    from catalog.v1.sandbox_pb2_grpc import SandboxManagerServiceAsyncStub as Stub

_T = TypeVar("_T")
# With no execution timeout the manager applies its own, at most the maximum it reports in
# ListSandboxes; this when it reports none (a manager older than that field).
MANAGER_MAX_EXEC_S = 900.0
# How long the load probe before an acquire may take: a manager slower than this goes last.
LOAD_PROBE_S = 2.0
_UNKNOWN_LOAD = (2, 0.0)  # a manager that did not report its load: tried after the others


def now() -> float:
    return asyncio.get_running_loop().time()


def deadline_in(seconds: float) -> float:
    return now() + seconds


def fits(pause: float, deadline: float) -> bool:
    """Whether a pause still leaves time before the deadline."""
    return now() + pause < deadline


class ManagerRouter:
    """The managers a client was given, and the way to each; channels open on first use."""

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        retry: RetryPolicy,
        call_timeout_s: float,
        plane: ControlPlane,
    ) -> None:
        if isinstance(addresses, str) or not addresses:
            raise ValueError("SandboxClient needs a list of at least one manager address")
        self.addresses = tuple(addresses)
        self.retry = retry
        self._call_timeout_s = call_timeout_s
        self._plane = plane
        self._channels: dict[str, grpc.aio.Channel] = {}  # created on first use, in the loop
        self._routes: dict[str, str] = {}  # manager id -> address
        self._max_exec_s: dict[str, float] = {}  # address -> its largest exec timeout
        self._closed = False
        self.in_flight: dict[str, int] = {}  # address -> this client's acquires not yet answered

    async def close(self) -> None:
        self._closed = True
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(channel.close() for channel in channels))

    def stub(self, address: str) -> Stub:
        if self._closed:
            raise SandboxClientError("the SandboxClient is closed; make a new one")
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = self._plane.channel(address)
        return sandbox_pb2_grpc.SandboxManagerServiceStub(channel)

    async def acquire_order(self, deadline: float) -> list[str]:
        """Every address, the less loaded of two drawn at random first (power of two choices)."""
        if len(self.addresses) == 1:
            return list(self.addresses)
        drawn = random.sample(self.addresses, 2)
        rest = [a for a in self.addresses if a not in drawn]
        random.shuffle(rest)
        probe_by = min(deadline, deadline_in(LOAD_PROBE_S))
        loads = await asyncio.gather(*(self._load(address, probe_by) for address in drawn))
        ranked = sorted(zip(loads, drawn, strict=True), key=lambda pair: pair[0])
        return [address for _, address in ranked] + rest

    async def _load(self, address: str, deadline: float) -> tuple[int, float]:
        """(0 if it has a warm sandbox this client is not already after, else 1; the share of
        its pool under lease or being acquired); a manager that did not answer goes last."""
        request = pb.ListSandboxesRequest(page_size=1)
        try:
            reply = await self.stub(address).ListSandboxes(request, timeout=deadline - now())
        except grpc.aio.AioRpcError:
            return _UNKNOWN_LOAD
        pool = reply.pool
        self._remember(address, pool)
        pending = self.in_flight.get(address, 0)
        busy = (pool.leased + pending) / max(pool.max_size, 1)
        return (0 if pool.warm > pending else 1, busy)

    def _remember(self, address: str, pool: pb.PoolStats) -> None:
        self._routes[pool.manager_id] = address
        max_exec = pool.max_exec_timeout  # unset (0) on older managers
        self._max_exec_s[address] = max_exec.ToTimedelta().total_seconds() or MANAGER_MAX_EXEC_S

    def by_key(self, key: str) -> list[str]:
        """Every address, starting at one chosen by the key: a repeated idempotent acquire
        asks the manager that remembers the key first."""
        start = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % len(self.addresses)
        return [*self.addresses[start:], *self.addresses[:start]]

    async def max_exec_s(self, address: str, deadline: float) -> float:
        """The largest execution timeout the manager at `address` allows, as it says it."""
        if address not in self._max_exec_s:
            await self._discover(deadline)
        return self._max_exec_s.get(address, MANAGER_MAX_EXEC_S)

    def learn(self, manager_id: str, address: str) -> None:
        self._routes[manager_id] = address

    def address_of(self, manager_id: str) -> str:
        """The address of a manager seen so far; "" for one not seen."""
        return self._routes.get(manager_id, "")

    async def route(self, lease_id: str, deadline: float) -> str:
        """The address of the manager that issued `lease_id`, asking around if unknown."""
        prefix, dot, _ = lease_id.partition(".")
        if not prefix or not dot:
            raise InvalidRequest(
                f"{lease_id!r} is not a lease id: it has the form '{{manager_id}}.{{random}}'"
            )
        silent: dict[str, str] = {}
        if prefix not in self._routes:
            silent = await self._discover(min(deadline, deadline_in(self._call_timeout_s)))
        address = self._routes.get(prefix)
        if address is not None:
            return address
        if silent:  # the owner may be one of those that did not answer
            said = "; ".join(f"{a}: {why}" for a, why in silent.items())
            raise ManagerUnavailable(
                f"cannot tell which manager has id {prefix!r}, which issued lease {lease_id}: "
                f"some did not answer ({said}); check that the managers run",
                code=grpc.StatusCode.UNAVAILABLE,
                details=said,
            )
        known = ", ".join(f"{a} is {self._manager_at(a)!r}" for a in self.addresses)
        raise UnknownManager(
            f"no configured manager has id {prefix!r}, which issued lease {lease_id} ({known}); "
            "give the client that manager's address"
        )

    async def _discover(self, deadline: float) -> dict[str, str]:
        """Ask every address for its manager id; returns why those that did not answer."""
        request = pb.ListSandboxesRequest(page_size=1)  # cheap and read-only
        silent: dict[str, str] = {}

        async def probe(address: str) -> None:
            try:
                reply = await self.unary(
                    address, lambda stub, t: stub.ListSandboxes(request, timeout=t), deadline
                )
            except grpc.aio.AioRpcError as exc:
                silent[address] = f"{exc.code().name}: {exc.details()}"
                return
            self._remember(address, reply.pool)

        await asyncio.gather(*(probe(address) for address in self.addresses))
        return silent

    def _manager_at(self, address: str) -> str | None:
        return next((m for m, a in self._routes.items() if a == address), None)

    async def unary(
        self, address: str, call: Callable[[Stub, float], Awaitable[_T]], deadline: float
    ) -> _T:
        """One unary call, retried on UNAVAILABLE while attempts and the deadline allow."""
        attempt = 1
        while True:
            try:
                return await call(self.stub(address), deadline - now())
            except grpc.aio.AioRpcError as exc:
                pause = self.retry.backoff_s(attempt)
                if not self.may_retry(exc, attempt, pause, deadline):
                    raise
            attempt += 1
            await asyncio.sleep(pause)

    def may_retry(
        self, exc: grpc.aio.AioRpcError, attempt: int, pause: float, deadline: float
    ) -> bool:
        return (
            exc.code() == grpc.StatusCode.UNAVAILABLE
            and attempt < self.retry.attempts
            and fits(pause, deadline)
        )
