"""What the clients raise, and the one place each turns a gRPC status into it.

The sandbox client: a user's failing code is not an error, it comes back in
`Execution.status` and `Execution.error`. A failing system raises one of these, with the
manager's message in it::

    SandboxClientError          anything else: INTERNAL, a closed client, a broken stream
    ├── InvalidRequest          INVALID_ARGUMENT, or a malformed lease id: fix the call
    ├── LeaseLost               NOT_FOUND / FAILED_PRECONDITION: acquire a new lease
    ├── LeaseInUse              ABORTED: another Execute or reset runs on the lease
    ├── PoolBusy                RESOURCE_EXHAUSTED: no sandbox became free in time
    ├── ManagerUnavailable      UNAVAILABLE after the retries
    ├── UnknownManager          a lease id names no configured manager
    └── CallTimedOut            DEADLINE_EXCEEDED: the call's deadline passed

The agent-runner client raises the shared `ServiceError`s (`services.common.errors`), so that
a service calling the runner answers its own caller with the matching status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import grpc

from services.common.errors import DeadlineExceeded, InvalidArgument, ServiceError, Unavailable


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


class LeaseInUse(SandboxClientError):
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
    grpc.StatusCode.ABORTED: (LeaseInUse, "wait for the running call on this lease to end"),
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


def manager_error(exc: grpc.aio.AioRpcError, what: str, address: str) -> SandboxClientError:
    """The one place where a manager's gRPC status becomes a sandbox client exception."""
    code, details = exc.code(), exc.details() or ""
    kind, hint = _ERRORS.get(code, (SandboxClientError, "see the manager's log"))
    return kind(
        f"{what} failed at the manager at {address} ({code.name}): {details}; {hint}",
        code=code,
        details=details,
    )


@contextlib.contextmanager
def translated(what: str, address: str) -> Iterator[None]:
    """Raise a failing call's gRPC error as the sandbox client exception it stands for."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise manager_error(exc, what, address) from exc


def all_unavailable(failures: Mapping[str, grpc.aio.AioRpcError]) -> bool:
    return bool(failures) and all(
        e.code() == grpc.StatusCode.UNAVAILABLE for e in failures.values()
    )


def acquire_failed(
    failures: Mapping[str, grpc.aio.AioRpcError], attempts: int, wait_s: float
) -> SandboxClientError:
    """Why no manager gave a sandbox: all down, or all full (with what each one said)."""
    said = "; ".join(f"{a}: {e.code().name}: {e.details()}" for a, e in failures.items())
    if not failures:
        return CallTimedOut("AcquireSandbox ran out of time before a manager answered")
    if all_unavailable(failures):
        return ManagerUnavailable(
            f"no sandbox manager could be reached after {attempts} attempts "
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


def runner_error(exc: grpc.aio.AioRpcError, address: str) -> ServiceError:
    """The one place where the agent runner's gRPC status becomes a service error."""
    code, detail = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(f"the agent runner refused the run: {detail}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the agent run took longer than allowed: {detail}")
    return Unavailable(f"the agent runner at {address} failed ({code.name}): {detail}")
