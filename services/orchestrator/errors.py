"""The orchestrator's errors. A call answers with the status its class declares (the shared
`grpc_server.ErrorInterceptor` maps them; `http_api` turns the same classes into HTTP codes)::

    Exception
    ├── ServiceError                (services/common/errors.py)
    │   ├── InvalidArgument         INVALID_ARGUMENT    a bad request, prefix or page token
    │   ├── NotFound                NOT_FOUND           no such run, or another tenant's
    │   ├── PermissionDenied        PERMISSION_DENIED   the tenant may not write there
    │   ├── FailedPrecondition      FAILED_PRECONDITION an idempotency key sent with other inputs
    │   ├── Unauthenticated         UNAUTHENTICATED     no API key, or an unknown one
    │   └── ResourceExhausted
    │       ├── RateLimited         RESOURCE_EXHAUSTED  a key over its rate; retry_after_s says when
    │       └── TooManyWatches      RESOURCE_EXHAUSTED  a key holds its most WatchCatalog streams
    ├── CatalogFailure              no call's status: a run that cannot go on, kept as the run's
    │                               CatalogError (code, message, step) that GetCatalog shows
    └── ValueError
        └── SettingsError           (services/common/env.py) the process stops with the message
            ├── PromptError         a prompt file or variable cannot be used
            └── SealingError        the secret key is unusable, or sealed a token with another key
"""

from __future__ import annotations

import math

from services.common.env import SettingsError
from services.common.errors import ResourceExhausted
from services.orchestrator.run_state import Step


class RateLimited(ResourceExhausted):
    """A key made more calls than its rate allows; it may call again in `retry_after_s`."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        """The wait in whole seconds, rounded up, at least 1 (for `retry-after`)."""
        return str(max(1, math.ceil(round(self.retry_after_s, 6))))


class TooManyWatches(ResourceExhausted):
    """A key already holds CATALOG_MAX_WATCHES_PER_KEY open WatchCatalog streams."""


class CatalogFailure(Exception):
    """A run that cannot go on; `code` is CatalogError.code, `step` where it stopped."""

    def __init__(self, code: str, message: str, step: Step) -> None:
        super().__init__(code, message, step)  # all three, so DBOS can pickle it
        self.code, self.message, self.step = code, message, Step(step)

    def __str__(self) -> str:
        return f"{self.code} at {self.step}: {self.message}"


class PromptError(SettingsError):
    """A prompt cannot be used; the message names the file or variable and the key at fault."""


class SealingError(SettingsError):
    """The key is unusable, or a token was sealed with another key."""
