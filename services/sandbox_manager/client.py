"""Async client of catalog.v1.SandboxManagerService that routes across several managers.

    async with SandboxClient(["sm-a:50051", "sm-b:50051"]) as client:
        async with client.lease(SessionSettings(db_dsn=dsn)) as lease:
            run = await client.execute(lease.lease_id, "print(42)", on_stdout=print)

Routing: `acquire` tries the managers round-robin and moves on from one that is full
(RESOURCE_EXHAUSTED) or down (UNAVAILABLE). Every later call about a lease goes to the manager
named by the lease id's prefix (the text before the first '.'). The client learns each
manager's id from its AcquireSandbox answers; for an id it has not seen it asks every address
for its id (ListSandboxes) first.

Unary calls are retried on UNAVAILABLE with exponential backoff and jitter, within the call's
deadline. Execute is retried only until its first event: running code twice is not harmless.

A user's failing code is not an error: it comes back in `Execution.status` and
`Execution.error`. A failing system raises one of these, with the manager's message in it::

    SandboxClientError          anything else: INTERNAL, a closed client, a broken stream
    ├── InvalidRequest          INVALID_ARGUMENT, or a malformed lease id: fix the call
    ├── LeaseLost               NOT_FOUND / FAILED_PRECONDITION: acquire a new lease
    ├── LeaseBusy               ABORTED: another Execute or reset runs on the lease
    ├── PoolBusy                RESOURCE_EXHAUSTED: no sandbox became free in time
    ├── ManagerUnavailable      UNAVAILABLE after the retries
    ├── UnknownManager          a lease id names no configured manager
    └── CallTimedOut            DEADLINE_EXCEEDED: the call's deadline passed
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import grpc
from catalog.v1 import sandbox_pb2 as pb
from catalog.v1 import sandbox_pb2_grpc
from google.protobuf import duration_pb2

from services.common.control_plane import ControlPlane
from services.common.logging import log_fields

if TYPE_CHECKING:
    from catalog.v1.sandbox_pb2_grpc import SandboxManagerServiceAsyncStub as _Stub

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
# With no execution timeout the manager applies its own, at most the maximum it reports in
# ListSandboxes; this when it reports none (a manager older than that field).
_MANAGER_MAX_EXEC_S = 900.0

OutputCallback = Callable[[str], Awaitable[None] | None]
EventCallback = Callable[[pb.ExecuteResponse], Awaitable[None] | None]


# --- errors --------------------------------------------------------------------------------
class SandboxClientError(Exception):
    """A call failed for a reason other than the user's code; the message says what to do."""

    def __init__(
        self, message: str, *, code: grpc.StatusCode | None = None, details: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class InvalidRequest(SandboxClientError):
    pass


class LeaseLost(SandboxClientError):
    pass


class LeaseBusy(SandboxClientError):
    pass


class PoolBusy(SandboxClientError):
    pass


class ManagerUnavailable(SandboxClientError):
    pass


class UnknownManager(SandboxClientError):
    pass


class CallTimedOut(SandboxClientError):
    pass


_ERRORS: dict[grpc.StatusCode, tuple[type[SandboxClientError], str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (InvalidRequest, "fix the request"),
    grpc.StatusCode.NOT_FOUND: (LeaseLost, "acquire a new lease"),
    grpc.StatusCode.FAILED_PRECONDITION: (LeaseLost, "release it and acquire a new lease"),
    grpc.StatusCode.ABORTED: (LeaseBusy, "wait for the running call on this lease to end"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (PoolBusy, "retry later, or run more managers"),
    grpc.StatusCode.UNAVAILABLE: (
        ManagerUnavailable,
        "check that the manager runs and that its address is right",
    ),
    grpc.StatusCode.DEADLINE_EXCEEDED: (CallTimedOut, "give the call a longer timeout"),
    grpc.StatusCode.UNAUTHENTICATED: (
        SandboxClientError,
        "set CATALOG_SERVICE_TOKEN on this service to the manager's token",
    ),
}


def _translate(exc: grpc.aio.AioRpcError, what: str, address: str) -> SandboxClientError:
    """The one place where a gRPC status becomes a client exception."""
    code, details = exc.code(), exc.details() or ""
    kind, hint = _ERRORS.get(code, (SandboxClientError, "see the manager's log"))
    return kind(
        f"{what} failed at the manager at {address} ({code.name}): {details}; {hint}",
        code=code,
        details=details,
    )


@contextlib.contextmanager
def _translated(what: str, address: str) -> Iterator[None]:
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise _translate(exc, what, address) from exc


# --- values --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """Retries of UNAVAILABLE: `attempts` tries in all, pauses growing from the initial one."""

    attempts: int = 4
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("RetryPolicy needs attempts >= 1 and non-negative backoffs")

    def backoff_s(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (1-based)."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return random.uniform(cap / 2, cap)  # jitter, so many clients do not retry in step


@dataclass(frozen=True)
class SessionSettings:
    """Connection settings for the kernel. The repr leaves the secrets out."""

    db_dsn: str = field(default="", repr=False)
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = field(default="", repr=False)
    s3_secret_access_key: str = field(default="", repr=False)
    s3_session_token: str = field(default="", repr=False)
    env: Mapping[str, str] = field(default_factory=dict)
    statement_timeout_s: float | None = None

    def to_proto(self) -> pb.SessionConfig:
        config = pb.SessionConfig(db_dsn=self.db_dsn, env=dict(self.env))
        s3 = pb.S3Settings(
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            access_key_id=self.s3_access_key_id,
            secret_access_key=self.s3_secret_access_key,
            session_token=self.s3_session_token,
        )
        if s3.ByteSize():
            config.s3.CopyFrom(s3)
        if self.statement_timeout_s is not None:
            config.statement_timeout.CopyFrom(_duration(self.statement_timeout_s))
        return config


@dataclass(frozen=True)
class SessionInfo:
    """What the kernel made of the session: its database backend, or why it has none."""

    backend: str
    read_only: bool
    connect_error: str | None


@dataclass(frozen=True)
class Lease:
    lease_id: str
    sandbox_id: str
    manager_id: str
    expire_time: datetime
    ttl_s: float
    session: SessionInfo


@dataclass(frozen=True)
class ExecutionError:
    """An exception the user's code raised."""

    ename: str
    evalue: str
    traceback: str


class ExecutionStatus(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"


_STATUSES = {
    pb.EXECUTION_STATUS_OK: ExecutionStatus.OK,
    pb.EXECUTION_STATUS_ERROR: ExecutionStatus.ERROR,
    pb.EXECUTION_STATUS_TIMEOUT: ExecutionStatus.TIMEOUT,
    pb.EXECUTION_STATUS_INTERRUPTED: ExecutionStatus.INTERRUPTED,
    pb.EXECUTION_STATUS_CRASHED: ExecutionStatus.CRASHED,
}


@dataclass(frozen=True)
class Execution:
    """One cell's outcome: its output, its value or exception, and how it ended."""

    stdout: str
    stderr: str
    result: str | None  # plain-text value of the last expression
    result_html: str | None
    error: ExecutionError | None
    status: ExecutionStatus
    duration_s: float
    state_lost: bool  # the interpreter was replaced: earlier names are gone
    stdout_bytes_omitted: int
    stderr_bytes_omitted: int

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.OK

    def whole_stdout(self) -> str:
        """What the cell printed, for a caller that needs all of it (data, not a report to
        read); ValueError, saying why, when the cell failed or its output was cut."""
        if not self.ok:
            why = f"{self.error.ename}: {self.error.evalue}" if self.error else "no error"
            raise ValueError(f"the cell ended {self.status.value} ({why})")
        if self.stdout_bytes_omitted:
            raise ValueError(f"the cell's output was cut by {self.stdout_bytes_omitted} bytes")
        return self.stdout


def _duration(value_s: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromNanoseconds(round(value_s * 1e9))
    return message


def _session_info(message: pb.SessionInfo) -> SessionInfo:
    error = message.connect_error if message.HasField("connect_error") else None
    return SessionInfo(message.backend, message.read_only, error)


async def _fire(callback: Callable[[_T], Awaitable[None] | None] | None, value: _T) -> None:
    if callback is not None:
        outcome = callback(value)
        if inspect.isawaitable(outcome):
            await outcome


class _Accumulator:
    """Collects an Execute stream into one Execution, firing callbacks as events arrive."""

    def __init__(
        self,
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
        on_event: EventCallback | None,
    ) -> None:
        self._callbacks = (on_stdout, on_stderr, on_event)
        self.started = False
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._result: pb.ResultValue | None = None
        self._error: ExecutionError | None = None
        self._finished: pb.ExecutionFinished | None = None

    async def add(self, event: pb.ExecuteResponse) -> None:
        self.started = True
        on_stdout, on_stderr, on_event = self._callbacks
        kind = event.WhichOneof("event")
        if kind == "stdout":
            self._stdout.append(event.stdout.text)
            await _fire(on_stdout, event.stdout.text)
        elif kind == "stderr":
            self._stderr.append(event.stderr.text)
            await _fire(on_stderr, event.stderr.text)
        elif kind == "result":
            self._result = event.result
        elif kind == "error":
            error = event.error
            self._error = ExecutionError(error.ename, error.evalue, error.traceback)
        elif kind == "finished":
            self._finished = event.finished
        await _fire(on_event, event)

    def execution(self, lease_id: str, address: str) -> Execution:
        done = self._finished
        if done is None or done.status not in _STATUSES:
            raise SandboxClientError(
                f"the Execute stream of lease {lease_id} from the manager at {address} ended "
                "without a valid finished event; the manager broke the protocol, see its log"
            )
        result = self._result
        html = result.text_html if result is not None and result.HasField("text_html") else None
        return Execution(
            stdout="".join(self._stdout),
            stderr="".join(self._stderr),
            result=result.text_plain if result is not None else None,
            result_html=html,
            error=self._error,
            status=_STATUSES[done.status],
            duration_s=done.duration.ToNanoseconds() / 1e9,
            state_lost=done.state_lost,
            stdout_bytes_omitted=done.stdout_bytes_omitted,
            stderr_bytes_omitted=done.stderr_bytes_omitted,
        )


# --- the client ----------------------------------------------------------------------------
class SandboxClient:
    """Leases sandboxes from one or more managers and runs code in them."""

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        retry: RetryPolicy = RetryPolicy(),  # frozen, so one shared default is safe
        call_timeout_s: float = 30,
        plane: ControlPlane | None = None,
    ) -> None:
        """`plane`: the service token to send and the CA to dial TLS with (none: plaintext,
        no token, which only a token-less manager on loopback answers)."""
        if isinstance(addresses, str) or not addresses:
            raise ValueError("SandboxClient needs a list of at least one manager address")
        self._addresses = tuple(addresses)
        self._retry = retry
        self._call_timeout_s = call_timeout_s
        self._plane = plane or ControlPlane()
        self._channels: dict[str, grpc.aio.Channel] = {}  # created on first use, in the loop
        self._routes: dict[str, str] = {}  # manager id -> address
        self._max_exec_s: dict[str, float] = {}  # address -> its manager's largest exec timeout
        self._next = 0
        self._releasing: set[asyncio.Task[bool]] = set()
        self._closed = False

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
        self._closed = True
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(channel.close() for channel in channels))

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
    ) -> Lease:
        """Lease a sandbox from the first manager, in round-robin order, that has one.

        With several managers, a first round asks each for a sandbox free right now; then a
        second round waits at each in turn, up to `wait_timeout_s` (None: as long as
        `timeout_s`) in all; the call as a whole gets `wait_timeout_s + timeout_s`.
        """
        budget_s = self._call_timeout_s if timeout_s is None else timeout_s
        wait_s = budget_s if wait_timeout_s is None else wait_timeout_s
        request = pb.AcquireSandboxRequest(labels=dict(labels or {}), client_id=client_id)
        if session is not None:
            request.session.CopyFrom(session.to_proto())
        if lease_ttl_s is not None:
            request.lease_ttl.CopyFrom(_duration(lease_ttl_s))
        deadline = self._deadline(wait_s + budget_s)
        order = self._round_robin()
        failures: dict[str, grpc.aio.AioRpcError] = {}
        for attempt in range(1, self._retry.attempts + 1):
            reply = await self._acquire_pass(order, request, wait_s, budget_s, deadline, failures)
            if reply is not None:
                return reply
            pause = self._retry.backoff_s(attempt)
            if not self._all_unavailable(failures) or not self._fits(pause, deadline):
                break
            if attempt < self._retry.attempts:
                await asyncio.sleep(pause)
        raise self._acquire_failed(failures, wait_s)

    async def _acquire_pass(
        self,
        order: Sequence[str],
        request: pb.AcquireSandboxRequest,
        wait_s: float,
        budget_s: float,
        deadline: float,
        failures: dict[str, grpc.aio.AioRpcError],
    ) -> Lease | None:
        """With several managers, first look for a free sandbox anywhere, then wait for one."""
        if len(order) > 1 and wait_s > 0:
            lease = await self._acquire_round(order, request, 0.0, budget_s, deadline, failures)
            if lease is not None or self._all_unavailable(failures):
                return lease
        return await self._acquire_round(order, request, wait_s, budget_s, deadline, failures)

    async def _acquire_round(
        self,
        order: Sequence[str],
        request: pb.AcquireSandboxRequest,
        wait_s: float,
        budget_s: float,
        deadline: float,
        failures: dict[str, grpc.aio.AioRpcError],
    ) -> Lease | None:
        """One try at each manager; None when every one was full or down."""
        failures.clear()
        for address in order:
            remaining = deadline - self._now()
            if remaining <= 0:
                break
            # a later manager gets what is left of the wait, so the call still ends in time
            request.wait_timeout.CopyFrom(_duration(min(wait_s, max(0, remaining - budget_s))))
            try:
                reply = await self._stub(address).AcquireSandbox(request, timeout=remaining)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    grpc.StatusCode.UNAVAILABLE,
                ):
                    raise _translate(exc, "AcquireSandbox", address) from exc
                failures[address] = exc
                continue
            self._routes[reply.lease.manager_id] = address
            return _lease_of(reply)
        return None

    def _acquire_failed(
        self, failures: Mapping[str, grpc.aio.AioRpcError], wait_s: float
    ) -> SandboxClientError:
        said = "; ".join(f"{a}: {e.code().name}: {e.details()}" for a, e in failures.items())
        if not failures:
            return CallTimedOut("AcquireSandbox ran out of time before a manager answered")
        if self._all_unavailable(failures):
            return ManagerUnavailable(
                f"no sandbox manager could be reached after {self._retry.attempts} attempts "
                f"({said}); check that the managers run and that their addresses are right",
                code=grpc.StatusCode.UNAVAILABLE,
                details=said,
            )
        return PoolBusy(
            f"no sandbox became free within {wait_s:g} s on any manager ({said}); retry later, "
            "wait longer, or run more managers",
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
            details=said,
        )

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
    ) -> AsyncIterator[Lease]:
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

    def manager_address(self, lease: Lease) -> str:
        """The address of the manager that holds `lease`, for callers that pass it on."""
        return self._routes.get(lease.manager_id, "")

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
            request.ttl.CopyFrom(_duration(ttl_s))
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
    ) -> SessionInfo:
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
        return _session_info(reply.session)

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
            request.timeout.CopyFrom(_duration(timeout_s))
        address = await self._route(lease_id, self._deadline(self._call_timeout_s))
        if timeout_s is None and address not in self._max_exec_s:
            await self._discover(self._deadline(self._call_timeout_s))  # it says its maximum
        exec_s = (
            self._max_exec_s.get(address, _MANAGER_MAX_EXEC_S) if timeout_s is None else timeout_s
        )
        deadline = self._deadline(exec_s + self._call_timeout_s)
        events = _Accumulator(on_stdout, on_stderr, on_event)
        with _translated("Execute", address):
            await self._stream(address, request, deadline, events)
        return events.execution(lease_id, address)

    async def _stream(
        self, address: str, request: pb.ExecuteRequest, deadline: float, events: _Accumulator
    ) -> None:
        attempt = 1
        while True:
            call = self._stub(address).Execute(request, timeout=deadline - self._now())
            try:
                async for event in call:
                    await events.add(event)
                return
            except grpc.aio.AioRpcError as exc:
                pause = self._retry.backoff_s(attempt)
                # once an event arrived the code ran: running it again is not harmless
                if events.started or not self._may_retry(exc, attempt, pause, deadline):
                    raise
            finally:
                call.cancel()  # a cancelled caller or a failing callback interrupts the cell
            attempt += 1
            await asyncio.sleep(pause)

    # --- plumbing ------------------------------------------------------------------------
    async def _lease_call(
        self,
        what: str,
        lease_id: str,
        call: Callable[[_Stub, float], Awaitable[_T]],
        timeout_s: float | None,
    ) -> _T:
        deadline = self._deadline(self._call_timeout_s if timeout_s is None else timeout_s)
        address = await self._route(lease_id, deadline)
        with _translated(what, address):
            return await self._unary(address, call, deadline)

    async def _unary(
        self, address: str, call: Callable[[_Stub, float], Awaitable[_T]], deadline: float
    ) -> _T:
        """One unary call, retried on UNAVAILABLE while attempts and the deadline allow."""
        attempt = 1
        while True:
            try:
                return await call(self._stub(address), deadline - self._now())
            except grpc.aio.AioRpcError as exc:
                pause = self._retry.backoff_s(attempt)
                if not self._may_retry(exc, attempt, pause, deadline):
                    raise
            attempt += 1
            await asyncio.sleep(pause)

    def _may_retry(
        self, exc: grpc.aio.AioRpcError, attempt: int, pause: float, deadline: float
    ) -> bool:
        return (
            exc.code() == grpc.StatusCode.UNAVAILABLE
            and attempt < self._retry.attempts
            and self._fits(pause, deadline)
        )

    async def _route(self, lease_id: str, deadline: float) -> str:
        """The address of the manager that issued `lease_id`, asking around if unknown."""
        prefix, dot, _ = lease_id.partition(".")
        if not prefix or not dot:
            raise InvalidRequest(
                f"{lease_id!r} is not a lease id: it has the form '{{manager_id}}.{{random}}'"
            )
        silent: dict[str, str] = {}
        if prefix not in self._routes:
            silent = await self._discover(min(deadline, self._deadline(self._call_timeout_s)))
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
        known = ", ".join(f"{a} is {self._manager_at(a)!r}" for a in self._addresses)
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
                reply = await self._unary(
                    address, lambda stub, t: stub.ListSandboxes(request, timeout=t), deadline
                )
            except grpc.aio.AioRpcError as exc:
                silent[address] = f"{exc.code().name}: {exc.details()}"
                return
            self._routes[reply.pool.manager_id] = address
            max_exec = reply.pool.max_exec_timeout  # unset (0) on older managers
            self._max_exec_s[address] = (
                max_exec.ToTimedelta().total_seconds() or _MANAGER_MAX_EXEC_S
            )

        await asyncio.gather(*(probe(address) for address in self._addresses))
        return silent

    def _manager_at(self, address: str) -> str | None:
        return next((m for m, a in self._routes.items() if a == address), None)

    def _stub(self, address: str) -> _Stub:
        if self._closed:
            raise SandboxClientError("the SandboxClient is closed; make a new one")
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = self._plane.channel(address)
        return sandbox_pb2_grpc.SandboxManagerServiceStub(channel)

    def _round_robin(self) -> list[str]:
        start = self._next % len(self._addresses)
        self._next += 1
        return [*self._addresses[start:], *self._addresses[:start]]

    @staticmethod
    def _all_unavailable(failures: Mapping[str, grpc.aio.AioRpcError]) -> bool:
        return bool(failures) and all(
            e.code() == grpc.StatusCode.UNAVAILABLE for e in failures.values()
        )

    def _fits(self, pause: float, deadline: float) -> bool:
        return self._now() + pause < deadline

    def _deadline(self, seconds: float) -> float:
        return self._now() + seconds

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()


def _lease_of(reply: pb.AcquireSandboxResponse) -> Lease:
    lease = reply.lease
    return Lease(
        lease_id=lease.lease_id,
        sandbox_id=lease.sandbox_id,
        manager_id=lease.manager_id,
        expire_time=lease.expire_time.ToDatetime(tzinfo=UTC),
        ttl_s=lease.ttl.ToNanoseconds() / 1e9,
        session=_session_info(reply.session),
    )
