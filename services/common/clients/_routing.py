"""Routing across sandbox managers: a channel to each, whose turn it is, who issued a lease.

A lease id reads `{manager_id}.{random}`: every call about a lease goes to the manager named
by the text before the first '.'. The router learns each manager's id from its AcquireSandbox
answers; for an id it has not seen it asks every address for its id (ListSandboxes) first.
Unary calls are retried on UNAVAILABLE with exponential backoff and jitter, within the
call's deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
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
        self._next = 0
        self._closed = False

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

    def round_robin(self) -> list[str]:
        """Every address, starting one further along at each call."""
        start = self._next % len(self.addresses)
        self._next += 1
        return [*self.addresses[start:], *self.addresses[:start]]

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
            self._routes[reply.pool.manager_id] = address
            max_exec = reply.pool.max_exec_timeout  # unset (0) on older managers
            self._max_exec_s[address] = max_exec.ToTimedelta().total_seconds() or MANAGER_MAX_EXEC_S

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
