"""Async client of catalog.v1.SandboxManagerService that routes across several managers.

    async with SandboxClient(["sm-a:50051", "sm-b:50051"]) as client:
        async with client.lease(SessionSettings(db_dsn=dsn)) as lease:
            run = await client.execute(lease.lease_id, "print(42)", on_stdout=print)

Routing (`_routing.py`): `acquire` tries the less loaded of two managers drawn at random
first, then the others, and moves on from one that is full (RESOURCE_EXHAUSTED) or down
(UNAVAILABLE); every later call about a lease goes to the
manager that issued it. Unary calls are retried on UNAVAILABLE within the call's deadline.
Execute is retried only until its first event: running code twice is not harmless.
Errors (`_errors.py`): a user's failing code is data in the `Execution`; a failing system
raises a `SandboxClientError` that says what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import grpc
from catalog.v1 import sandbox_pb2 as pb

from services.common.clients._errors import (
    LeaseLost,
    SandboxClientError,
    acquire_failed,
    all_unavailable,
    manager_error,
    translated,
)
from services.common.clients._models import (
    Execution,
    RetryPolicy,
    SandboxLease,
    SandboxSession,
    SessionSettings,
    duration,
    lease_of,
    session_of,
)
from services.common.clients._output import EventCallback, OutputAccumulator, OutputCallback
from services.common.clients._routing import ManagerRouter, deadline_in, fits, now
from services.common.control_plane import ControlPlane
from services.common.logging import log_fields

if TYPE_CHECKING:
    from catalog.v1.sandbox_pb2_grpc import SandboxManagerServiceAsyncStub as _Stub

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_Failures = dict[str, grpc.aio.AioRpcError]
_DEFAULT_RETRY = RetryPolicy()  # frozen, so one shared default is safe


class SandboxClient:
    """Leases sandboxes from one or more managers and runs code in them."""

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        retry: RetryPolicy = _DEFAULT_RETRY,
        call_timeout_s: float = 30,
        plane: ControlPlane | None = None,
    ) -> None:
        """`plane`: the service token to send and the CA to dial TLS with (none: plaintext,
        no token, which only a token-less manager on loopback answers)."""
        self._managers = ManagerRouter(
            addresses, retry=retry, call_timeout_s=call_timeout_s, plane=plane or ControlPlane()
        )
        self._retry = retry
        self._call_timeout_s = call_timeout_s
        self._releasing: set[asyncio.Task[bool]] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Let releases in flight finish, then close every channel."""
        await asyncio.gather(*self._releasing, return_exceptions=True)
        await self._managers.close()

    # --- leases ------------------------------------------------------------------------
    async def acquire(
        self,
        session: SessionSettings | None = None,
        *,
        lease_ttl_s: float | None = None,
        wait_timeout_s: float | None = None,
        labels: Mapping[str, str] | None = None,
        client_id: str = "",
        timeout_s: float | None = None,
        idempotency_key: str = "",
    ) -> SandboxLease:
        """Lease a sandbox from the first manager, the less loaded of two first, that has one.

        With several managers, a first round asks each for a sandbox free right now; then a
        second round waits at each in turn, up to `wait_timeout_s` (None: as long as
        `timeout_s`) in all; the call as a whole gets `wait_timeout_s + timeout_s`.
        With an `idempotency_key`, a repeat gets the key's lease again while it lives: the
        managers are then asked in an order fixed by the key, so the repeat reaches the
        manager that holds it first.
        """
        budget_s = self._call_timeout_s if timeout_s is None else timeout_s
        wait_s = budget_s if wait_timeout_s is None else wait_timeout_s
        request = pb.AcquireSandboxRequest(
            labels=dict(labels or {}), client_id=client_id, idempotency_key=idempotency_key
        )
        if session is not None:
            request.session.CopyFrom(session.to_proto())
        if lease_ttl_s is not None:
            request.lease_ttl.CopyFrom(duration(lease_ttl_s))
        deadline = deadline_in(wait_s + budget_s)
        # A repeated idempotent acquire asks the manager that remembers its key first.
        order = (
            self._managers.by_key(idempotency_key)
            if idempotency_key
            else await self._managers.acquire_order(deadline)
        )
        failures: _Failures = {}
        for attempt in range(1, self._retry.attempts + 1):
            reply = await self._acquire_pass(order, request, wait_s, budget_s, deadline, failures)
            if reply is not None:
                return reply
            pause = self._retry.backoff_s(attempt)
            if not all_unavailable(failures) or not fits(pause, deadline):
                break
            if attempt < self._retry.attempts:
                await asyncio.sleep(pause)
        raise acquire_failed(failures, self._retry.attempts, wait_s)

    async def _acquire_pass(
        self,
        order: Sequence[str],
        request: pb.AcquireSandboxRequest,
        wait_s: float,
        budget_s: float,
        deadline: float,
        failures: _Failures,
    ) -> SandboxLease | None:
        """With several managers, first look for a free sandbox anywhere, then wait for one."""
        if len(order) > 1 and wait_s > 0:
            lease = await self._acquire_round(order, request, 0.0, budget_s, deadline, failures)
            if lease is not None or all_unavailable(failures):
                return lease
        return await self._acquire_round(order, request, wait_s, budget_s, deadline, failures)

    async def _acquire_round(
        self,
        order: Sequence[str],
        request: pb.AcquireSandboxRequest,
        wait_s: float,
        budget_s: float,
        deadline: float,
        failures: _Failures,
    ) -> SandboxLease | None:
        """One try at each manager; None when every one was full or down."""
        failures.clear()
        for address in order:
            remaining = deadline - now()
            if remaining <= 0:
                break
            # a later manager gets what is left of the wait, so the call still ends in time
            request.wait_timeout.CopyFrom(duration(min(wait_s, max(0, remaining - budget_s))))
            in_flight = self._managers.in_flight
            in_flight[address] = in_flight.get(address, 0) + 1
            try:
                stub = self._managers.stub(address)
                reply = await stub.AcquireSandbox(request, timeout=remaining)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    grpc.StatusCode.UNAVAILABLE,
                ):
                    raise manager_error(exc, "AcquireSandbox", address) from exc
                failures[address] = exc
                continue
            finally:
                in_flight[address] -= 1
            self._managers.learn(reply.lease.manager_id, address)
            return lease_of(reply)
        return None

    @contextlib.asynccontextmanager
    async def lease(
        self,
        session: SessionSettings | None = None,
        *,
        lease_ttl_s: float | None = None,
        wait_timeout_s: float | None = None,
        labels: Mapping[str, str] | None = None,
        client_id: str = "",
        timeout_s: float | None = None,
    ) -> AsyncIterator[SandboxLease]:
        """Acquire a lease for the block; release it at the end, also on error or cancel."""
        lease = await self.acquire(
            session,
            lease_ttl_s=lease_ttl_s,
            wait_timeout_s=wait_timeout_s,
            labels=labels,
            client_id=client_id,
            timeout_s=timeout_s,
        )
        succeeded = False
        try:
            yield lease
            succeeded = True
        finally:
            # a release error must not hide the block's own exception (or its cancellation)
            await self._release_shielded(lease.lease_id, raise_errors=succeeded)

    async def _release_shielded(self, lease_id: str, *, raise_errors: bool) -> None:
        """Release in a task of its own, so that a cancelled caller still ends its lease."""
        task = asyncio.create_task(self.release(lease_id))
        self._releasing.add(task)
        task.add_done_callback(functools.partial(self._release_done, lease_id))
        try:
            await asyncio.shield(task)
        except SandboxClientError:
            if raise_errors:
                raise

    def _release_done(self, lease_id: str, task: asyncio.Task[bool]) -> None:
        self._releasing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_fields(
                _log,
                logging.WARNING,
                "lease not released; it ends when its time to live runs out",
                lease=lease_id,
                error=str(task.exception()),
            )

    def manager_address(self, lease: SandboxLease) -> str:
        """The address of the manager that holds `lease`, for callers that pass it on."""
        return self._managers.address_of(lease.manager_id)

    async def release(self, lease_id: str, *, timeout_s: float | None = None) -> bool:
        """End a lease. Idempotent: False when it had already ended."""
        request = pb.ReleaseSandboxRequest(lease_id=lease_id)
        try:
            reply = await self._lease_call(
                "ReleaseSandbox",
                lease_id,
                lambda stub, t: stub.ReleaseSandbox(request, timeout=t),
                timeout_s,
            )
        except LeaseLost:
            return False
        return reply.released

    async def renew(
        self, lease_id: str, ttl_s: float | None = None, *, timeout_s: float | None = None
    ) -> datetime:
        """Extend a lease (optionally with a new time to live); returns its new expiry (UTC)."""
        request = pb.RenewLeaseRequest(lease_id=lease_id)
        if ttl_s is not None:
            request.ttl.CopyFrom(duration(ttl_s))
        reply = await self._lease_call(
            "RenewLease", lease_id, lambda stub, t: stub.RenewLease(request, timeout=t), timeout_s
        )
        return reply.lease.expire_time.ToDatetime(tzinfo=UTC)

    async def reset(
        self,
        lease_id: str,
        session: SessionSettings | None = None,
        *,
        timeout_s: float | None = None,
    ) -> SandboxSession:
        """A fresh interpreter in the same sandbox; `session` None keeps the current settings."""
        request = pb.ResetSandboxRequest(lease_id=lease_id)
        if session is not None:
            request.session.CopyFrom(session.to_proto())
        reply = await self._lease_call(
            "ResetSandbox",
            lease_id,
            lambda stub, t: stub.ResetSandbox(request, timeout=t),
            timeout_s,
        )
        return session_of(reply.session)

    async def _lease_call(
        self,
        what: str,
        lease_id: str,
        call: Callable[[_Stub, float], Awaitable[_T]],
        timeout_s: float | None,
    ) -> _T:
        deadline = deadline_in(self._call_timeout_s if timeout_s is None else timeout_s)
        address = await self._managers.route(lease_id, deadline)
        with translated(what, address):
            return await self._managers.unary(address, call, deadline)

    # --- code ----------------------------------------------------------------------------
    async def execute(
        self,
        lease_id: str,
        code: str,
        *,
        timeout_s: float | None = None,
        max_output_bytes: int = 0,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        on_event: EventCallback | None = None,
    ) -> Execution:
        """Run a cell and return its outcome; callbacks (sync or async) fire as events arrive.

        `timeout_s` is the execution timeout (None: the manager's default); the call itself
        gets `call_timeout_s` on top. `on_stdout`/`on_stderr` get each chunk of text, then
        `on_event` gets every event, the raw `ExecuteResponse`. Cancelling interrupts the cell.
        """
        request = pb.ExecuteRequest(lease_id=lease_id, code=code, max_output_bytes=max_output_bytes)
        if timeout_s is not None:
            request.timeout.CopyFrom(duration(timeout_s))
        address = await self._managers.route(lease_id, deadline_in(self._call_timeout_s))
        exec_s = timeout_s
        if exec_s is None:  # the manager's own default: as long as it allows, as it says
            exec_s = await self._managers.max_exec_s(address, deadline_in(self._call_timeout_s))
        deadline = deadline_in(exec_s + self._call_timeout_s)
        events = OutputAccumulator(on_stdout, on_stderr, on_event)
        with translated("Execute", address):
            await self._stream(address, request, deadline, events)
        return events.execution(lease_id, address)

    async def _stream(
        self, address: str, request: pb.ExecuteRequest, deadline: float, events: OutputAccumulator
    ) -> None:
        attempt = 1
        while True:
            call = self._managers.stub(address).Execute(request, timeout=deadline - now())
            try:
                async for event in call:
                    await events.add(event)
                return
            except grpc.aio.AioRpcError as exc:
                pause = self._retry.backoff_s(attempt)
                # once an event arrived the code ran: running it again is not harmless
                if events.started or not self._managers.may_retry(exc, attempt, pause, deadline):
                    raise
            finally:
                call.cancel()  # a cancelled caller or a failing callback interrupts the cell
            attempt += 1
            await asyncio.sleep(pause)
