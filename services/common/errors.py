"""The errors a service raises to answer a call with a gRPC status.

A handler raises one of these; `grpc_server.ErrorInterceptor` turns it into the call's
status. Services subclass them for their domain errors, so the status follows the kind::

    Exception
    └── ServiceError                INTERNAL
        ├── InvalidArgument         INVALID_ARGUMENT
        ├── NotFound                NOT_FOUND
        ├── PermissionDenied        PERMISSION_DENIED
        ├── ResourceExhausted       RESOURCE_EXHAUSTED
        ├── FailedPrecondition      FAILED_PRECONDITION
        ├── Aborted                 ABORTED
        ├── Unavailable             UNAVAILABLE
        ├── DeadlineExceeded        DEADLINE_EXCEEDED
        └── Unauthenticated         UNAUTHENTICATED

The message goes to the client as is: it must say what was wrong without leaking secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import grpc


class ServiceError(Exception):
    """An error the client may see: its status, its message and the fields at fault.

    `field_violations` are (field path, description) pairs; the client gets them as a
    `google.rpc.BadRequest` detail, so they belong mostly to `InvalidArgument`.
    """

    status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, field_violations: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field_violations = tuple(field_violations)


class InvalidArgument(ServiceError):
    """The request is malformed, whatever the state of the system."""

    status = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    """A named resource does not exist (or belongs to another manager)."""

    status = grpc.StatusCode.NOT_FOUND


class PermissionDenied(ServiceError):
    """The caller is known but may not do this (e.g. write under that prefix)."""

    status = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ServiceError):
    """A quota or capacity is used up; retrying later may succeed."""

    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(ServiceError):
    """The system is not in the state the call needs; retrying as is will not help."""

    status = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(ServiceError):
    """The call lost a race (a concurrent change); retrying the sequence may succeed."""

    status = grpc.StatusCode.ABORTED


class Unavailable(ServiceError):
    """The service cannot answer now (starting, stopping, a dependency down)."""

    status = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ServiceError):
    """An operation ran out of its time budget."""

    status = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(ServiceError):
    """The call carries no valid credentials; the message says what to send (never the secret)."""

    status = grpc.StatusCode.UNAUTHENTICATED
