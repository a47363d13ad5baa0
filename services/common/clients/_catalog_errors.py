"""What the catalog client raises, and the one place a gRPC status becomes it::

    CatalogClientError          anything else (INTERNAL, UNKNOWN, a closed client)
    ├── CatalogInvalidRequest   INVALID_ARGUMENT: `field_violations` name each bad field
    ├── CatalogNotFound         NOT_FOUND: no such run (or another tenant's)
    ├── CatalogConflict         FAILED_PRECONDITION: the run is over, or the idempotency key
    │                           was used with other inputs
    ├── CatalogPermissionDenied PERMISSION_DENIED: the key's tenant may not write there
    ├── CatalogUnauthenticated  UNAUTHENTICATED: no API key, or an unknown one
    ├── CatalogRateLimited      RESOURCE_EXHAUSTED: `retry_after_s` says when to call again
    ├── CatalogUnavailable      UNAVAILABLE after the retries
    ├── CatalogTimedOut         DEADLINE_EXCEEDED, or `wait` ran out of time
    └── CatalogRunFailed        the run ended FAILED or CANCELLED: `code` is the orchestrator's
                                failure code (DATABASE_AUTH_FAILED, ...), `run` the final state

Each carries `status` (the gRPC status, None when there was no call) and `code`: the
orchestrator's failure code for a failed run, else the status's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

if TYPE_CHECKING:
    from services.common.clients._catalog_models import CatalogRun


class CatalogClientError(Exception):
    """A call or a run went wrong; the message says what to do."""

    def __init__(
        self, message: str, *, status: grpc.StatusCode | None = None, code: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or (status.name if status is not None else "")


class CatalogInvalidRequest(CatalogClientError):
    def __init__(
        self, message: str, *, status: grpc.StatusCode | None = None, code: str = ""
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.field_violations: tuple[tuple[str, str], ...] = ()  # (field, what is wrong)


class CatalogNotFound(CatalogClientError):
    pass


class CatalogConflict(CatalogClientError):
    pass


class CatalogPermissionDenied(CatalogClientError):
    pass


class CatalogUnauthenticated(CatalogClientError):
    pass


class CatalogRateLimited(CatalogClientError):
    def __init__(
        self, message: str, *, status: grpc.StatusCode | None = None, code: str = ""
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after_s = 0.0  # from the server's retry-after trailer; 0 when it sent none


class CatalogUnavailable(CatalogClientError):
    pass


class CatalogTimedOut(CatalogClientError):
    pass


class CatalogRunFailed(CatalogClientError):
    """The run ended without succeeding; `code` is its CatalogError.code (or CANCELLED)."""

    def __init__(self, run: CatalogRun) -> None:
        error = run.error
        code = error.code if error is not None else run.status.value
        why = f"{error.message} (at {error.step.value})" if error is not None else "cancelled"
        super().__init__(f"catalog {run.catalog_id} {run.status.value}: {code}: {why}", code=code)
        self.run = run


_KINDS: dict[grpc.StatusCode, tuple[type[CatalogClientError], str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (CatalogInvalidRequest, "fix the request"),
    grpc.StatusCode.NOT_FOUND: (CatalogNotFound, "check the catalog id (and the API key)"),
    grpc.StatusCode.FAILED_PRECONDITION: (CatalogConflict, "see the message"),
    grpc.StatusCode.PERMISSION_DENIED: (CatalogPermissionDenied, "use an allowed s3_prefix"),
    grpc.StatusCode.UNAUTHENTICATED: (
        CatalogUnauthenticated,
        "send an API key the orchestrator knows (CATALOG_API_KEY, --api-key)",
    ),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (CatalogRateLimited, "call again later"),
    grpc.StatusCode.UNAVAILABLE: (
        CatalogUnavailable,
        "check that the orchestrator runs at that address (`make serve`), and TLS settings",
    ),
    grpc.StatusCode.DEADLINE_EXCEEDED: (CatalogTimedOut, "give the call a longer timeout"),
}


def call_error(exc: grpc.aio.AioRpcError, what: str, address: str) -> CatalogClientError:
    """The one place where the orchestrator's gRPC status becomes a client exception."""
    status, details = exc.code(), exc.details() or ""
    kind, hint = _KINDS.get(status, (CatalogClientError, "see the orchestrator's log"))
    error = kind(f"{what} at {address}: {status.name}: {details}; {hint}", status=status)
    if isinstance(error, CatalogInvalidRequest):
        error.field_violations = _violations(exc)
    if isinstance(error, CatalogRateLimited):
        error.retry_after_s = _retry_after(exc)
    return error


def _violations(exc: grpc.aio.AioRpcError) -> tuple[tuple[str, str], ...]:
    status = rpc_status.from_call(exc)
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found += [(v.field, v.description) for v in bad.field_violations]
    return tuple(found)


def _retry_after(exc: grpc.aio.AioRpcError) -> float:
    for key, value in exc.trailing_metadata() or ():
        if key == "retry-after":
            try:
                return float(value)
            except (TypeError, ValueError):
                return 0.0
    return 0.0
