"""The sandbox manager's errors, each answering with the status its base class declares::

ServiceError
├── InvalidArgument
├── NotFound
│   └── LeaseNotFound          unknown, released, expired, or another manager's lease
│       SandboxNotFound
├── ResourceExhausted
│   └── PoolExhausted          no sandbox became free in time
├── FailedPrecondition
│   ├── LeaseBroken            the lease's container died; release it, acquire another
│   ├── KeyInUse               an idempotency key's live lease was acquired otherwise
│   └── DatabaseUnreachable    the relay to the lease's database could not be set up (reported
│                              as the session's connect_error, not as the call's status)
├── Aborted
│   └── LeaseBusy              another Execute or Reset is running on the lease
└── Unavailable
    └── BackendUnavailable     the backend cannot start sandboxes (engine down, no image)
"""

from __future__ import annotations

from services.common.errors import (
    Aborted,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
)


class LeaseNotFound(NotFound):
    pass


class SandboxNotFound(NotFound):
    pass


class PoolExhausted(ResourceExhausted):
    pass


class LeaseBroken(FailedPrecondition):
    pass


class DatabaseUnreachable(FailedPrecondition):
    pass


class KeyInUse(FailedPrecondition):
    pass


class LeaseBusy(Aborted):
    pass


class BackendUnavailable(Unavailable):
    pass
