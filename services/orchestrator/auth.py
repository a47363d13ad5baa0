"""API keys and per-key rate limits for the orchestrator's gRPC and HTTP APIs.

One `ApiGuard` serves both: `grpc_interceptor()` for the grpc.aio server (pass it to
`build_server(..., interceptors=[...])`) and `http_dependency()` for FastAPI. A caller sends
`authorization: Bearer <key>` (gRPC metadata or HTTP header).

- Keys configured: a call without a configured key is UNAUTHENTICATED (HTTP 401). Each key has
  its own token bucket (`rate_per_s`, `burst`); a call over it is RESOURCE_EXHAUSTED with
  trailing metadata `retry-after` (HTTP 429 with `Retry-After`), in whole seconds, at least 1.
- No keys configured: authentication is off and every call is admitted as "anonymous", with no
  rate limit (limits apply per key, never per peer). `log_auth_mode` warns about it at start-up.
- Always open: gRPC health and server reflection (probes, `grpcurl list`), HTTP `GET /healthz`.
- Each key belongs to a tenant (tenants.py): `CATALOG_API_KEYS` to `default`, the keys of
  `CATALOG_TENANTS` to theirs. `caller()` tells a handler whose call it serves; with
  authentication off every caller is `default`.

Keys are compared in constant time and never logged or echoed; logs name a key by `key_id`.
Calls to unknown gRPC methods are UNIMPLEMENTED before any check: reflection lists them anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeAlias, TypeVar

import grpc
from fastapi import HTTPException, Request

from services.common.errors import ServiceError, Unauthenticated
from services.common.logging import log_fields
from services.orchestrator.errors import RateLimited
from services.orchestrator.tenants import DEFAULT_TENANT, Tenant, check_tenants

_log = logging.getLogger(__name__)

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

ANONYMOUS = "anonymous"
"""The key id `admit` returns when authentication is off."""
EXEMPT_GRPC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
HEALTH_PATH = "/healthz"
_HOW = "send `authorization: Bearer <key>` (gRPC metadata or HTTP header)"
MISSING_KEY = f"an API key is required: {_HOW}"
NOT_BEARER = f"the authorization is not a bearer key: {_HOW}"
WRONG_KEY = f"the API key is not valid: {_HOW} with a key this server is configured with"


@dataclass(frozen=True)
class AuthSettings:
    """Who may call the orchestrator and how often; read once at start-up."""

    # the accepted keys of the tenant `default`; with no tenants either, authentication is
    # off (development only). Hidden from repr.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    # calls per second each key may make on average; 0 means unlimited
    rate_per_s: float = 5.0
    # calls a key may make at once after being idle (the bucket's size)
    burst: int = 20
    # the named tenants, each with its own keys and prefixes
    tenants: tuple[Tenant, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.api_keys, str):
            raise TypeError("api_keys must be a tuple of keys, not one string")
        check_tenants(self.tenants, self.api_keys)
        for index, key in enumerate(self.all_keys()):
            if not key or not key.isascii() or not key.isprintable() or " " in key:
                raise ValueError(
                    f"api_keys[{index}] is empty or has characters a header cannot carry: "
                    "use printable ASCII without spaces"
                )
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s >= 0):
            raise ValueError(f"rate_per_s must be a finite number >= 0, got {self.rate_per_s}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")

    def all_keys(self) -> tuple[str, ...]:
        return self.api_keys + tuple(key for tenant in self.tenants for key in tenant.keys)


@dataclass(frozen=True)
class Caller:
    """Who made a call: the key's id (never the key) and the key's tenant."""

    key_id: str
    tenant: Tenant


def key_id(key: str) -> str:
    """A short name for `key` that logs may carry: it cannot be turned back into the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def log_auth_mode(settings: AuthSettings) -> None:
    """Log, once at start-up, whether calls need a key; a warning when authentication is off."""
    if not settings.all_keys():
        log_fields(
            _log,
            logging.WARNING,
            "no API keys configured: authentication and rate limits are off (development only)",
        )
        return
    log_fields(
        _log,
        logging.INFO,
        "API keys required",
        key_ids=[key_id(key) for key in settings.all_keys()],
        tenants=[DEFAULT_TENANT] * bool(settings.api_keys) + [t.name for t in settings.tenants],
        rate_per_s=settings.rate_per_s,
        burst=settings.burst,
    )


@dataclass
class _TokenBucket:
    rate_per_s: float
    tokens: float  # starts full (burst); one per call, refilled at rate_per_s up to burst
    capacity: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token: 0.0 if there was one, else the seconds until there is."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


def _bearer_token(authorization: str) -> str | None:
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class ApiGuard:
    """Admits calls by API key and rate; one instance serves the gRPC and the HTTP API.

    Buckets live in memory, one per configured key (created at its first call), so a
    process restart refills them. Not thread-safe: use it from one event loop.
    """

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        default = Tenant(DEFAULT_TENANT)
        owned = [(key, default) for key in settings.api_keys]
        owned += [(key, tenant) for tenant in settings.tenants for key in tenant.keys]
        self._keys = tuple((key_id(key), key.encode(), tenant) for key, tenant in owned)
        self._anonymous = Caller(ANONYMOUS, default)
        self._buckets: dict[str, _TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        """Whether calls need a key (False: no keys are configured)."""
        return bool(self._keys)

    def admit(self, authorization: str | None) -> str:
        """Check one call's `authorization` value; return its key id or raise.

        Raises `Unauthenticated` for a missing, malformed or unknown key and `RateLimited`
        when the key is over its rate. Returns "anonymous" when authentication is off.
        """
        caller = self.caller(authorization)
        if caller is not self._anonymous:
            self._take_token(caller.key_id)
        return caller.key_id

    def caller(self, authorization: str | None) -> Caller:
        """Who sends `authorization`, taking no token from its bucket; raises Unauthenticated
        as `admit` does. The handler of an admitted call uses it to learn the tenant."""
        if not self._keys:
            return self._anonymous
        if not authorization:
            raise Unauthenticated(MISSING_KEY)
        token = _bearer_token(authorization)
        if token is None:
            raise Unauthenticated(NOT_BEARER)
        caller = self._match(token)
        if caller is None:
            log_fields(_log, logging.INFO, "call rejected", reason="unknown API key")
            raise Unauthenticated(WRONG_KEY)
        return caller

    def _match(self, token: str) -> Caller | None:
        presented = token.encode()
        found = None
        for kid, secret, tenant in self._keys:  # every key is compared, whichever matches
            if hmac.compare_digest(presented, secret) and found is None:
                found = Caller(kid, tenant)
        return found

    def _take_token(self, caller: str) -> None:
        rate, burst = self._settings.rate_per_s, self._settings.burst
        if rate == 0:
            return
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _TokenBucket(rate, float(burst), float(burst), now)
        wait_s = bucket.take(now)
        if wait_s > 0:
            log_fields(_log, logging.INFO, "call rate-limited", key_id=caller, wait_s=wait_s)
            raise RateLimited(
                f"key {caller} is over its rate limit of {rate:g} calls/s (burst {burst}): "
                f"retry in {wait_s:.1f} s",
                retry_after_s=wait_s,
            )

    def grpc_caller(self, metadata: Any) -> Caller:
        """The caller of a gRPC call from its invocation metadata (see `caller`)."""
        return self.caller(_authorization(metadata))

    def grpc_interceptor(self) -> grpc.aio.ServerInterceptor:
        """An interceptor that rejects calls `admit` refuses; health and reflection pass."""
        return _GrpcGuard(self)

    def http_dependency(self) -> Callable[..., Awaitable[str]]:
        """A FastAPI dependency returning the caller's key id, or raising 401 / 429.

        Use it per route or app-wide (`FastAPI(dependencies=[Depends(...)])`); on the
        `GET /healthz` route it admits everyone.
        """

        async def require_api_key(request: Request) -> str:
            if _is_health_probe(request):
                return ANONYMOUS
            try:
                return self.admit(request.headers.get("authorization"))
            except RateLimited as exc:
                headers = {"Retry-After": exc.retry_after_header}
                raise HTTPException(429, exc.message, headers=headers) from exc
            except Unauthenticated as exc:
                headers = {"WWW-Authenticate": "Bearer"}
                raise HTTPException(401, exc.message, headers=headers) from exc

        return require_api_key

    def http_caller(self) -> Callable[..., Awaitable[Caller]]:
        """A FastAPI dependency returning the `Caller` (its tenant), after the checks of
        `http_dependency` (401 / 429). Use it per route; it admits each request once."""
        require_api_key = self.http_dependency()

        async def require_caller(request: Request) -> Caller:
            await require_api_key(request)
            return self.caller(request.headers.get("authorization"))

        return require_caller


def _is_health_probe(request: Request) -> bool:
    # the matched route's template, so a mount's root_path or a trailing query does not matter
    route = request.scope.get("route")
    return getattr(route, "path", None) == HEALTH_PATH and request.method in ("GET", "HEAD")


class _GrpcGuard(grpc.aio.ServerInterceptor):
    """Answers a refused call with its status (and `retry-after`) instead of its handler."""

    def __init__(self, guard: ApiGuard) -> None:
        self._guard = guard

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None or _is_exempt(handler_call_details.method):
            return handler
        try:
            self._guard.admit(_authorization(handler_call_details.invocation_metadata))
        except (Unauthenticated, RateLimited) as exc:
            return _rejecting(handler, exc)
        return handler


def _is_exempt(method: str) -> bool:
    parts = method.split("/")  # "/package.Service/Method"
    return len(parts) == 3 and parts[1] in EXEMPT_GRPC_SERVICES


def _authorization(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def _rejecting(
    handler: grpc.RpcMethodHandler[_Req, _Resp], error: ServiceError
) -> grpc.RpcMethodHandler[_Req, _Resp]:
    """A handler of `handler`'s kind that aborts with `error`, reading no request.

    No deserializer: an unauthenticated caller's payload is never parsed.
    """
    trailing: tuple[tuple[str, str], ...] = ()
    if isinstance(error, RateLimited):
        trailing = (("retry-after", error.retry_after_header),)

    async def reject(request: object, context: _Context) -> NoReturn:
        await context.abort(error.status, error.message, trailing)

    # a coroutine serves streaming responses too (it would write with context.write)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(reject)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(reject)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject)
    return grpc.unary_unary_rpc_method_handler(reject)
