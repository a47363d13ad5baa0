"""Who may call the sandbox manager and the agent runner, and TLS on every listener.

The manager runs any code its caller sends, and the runner spends the operator's model budget
on any request: both answer only the other Catalog Agents services. They share one service
token (`CATALOG_SERVICE_TOKEN`), sent as gRPC metadata `authorization: Bearer <token>` and
checked in constant time by `ServiceTokenGuard`. Health and reflection stay open, so probes and
`grpcurl ... list` need no token. A service without a token refuses to listen anywhere but
loopback (`check_listener`).

TLS: a listener with `CATALOG_TLS_CERT_FILE` and `CATALOG_TLS_KEY_FILE` serves TLS only; a client
with `CATALOG_TLS_CA_FILE` dials TLS and verifies the server against that CA. One `ControlPlane`
per service holds the four settings; grpc's credential calls are made here only.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeAlias, TypeVar

import grpc

from services.common.env import SettingsError
from services.common.logging import log_fields
from services.common.telemetry import client_interceptors

_log = logging.getLogger(__name__)
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

TOKEN_VAR = "CATALOG_SERVICE_TOKEN"  # noqa: S105 (the variable's name, not its value)
CERT_VAR, KEY_VAR, CA_VAR = "CATALOG_TLS_CERT_FILE", "CATALOG_TLS_KEY_FILE", "CATALOG_TLS_CA_FILE"
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
_HOW = f"set {TOKEN_VAR} on the caller to the same value as on this service"
MISSING_TOKEN = (
    "this service answers only the other Catalog Agents services: send "
    f"`authorization: Bearer <service token>` ({_HOW})"
)
WRONG_TOKEN = f"the service token is not this service's: {_HOW}"
_LOOPBACK_NAMES = ("localhost", "ip6-localhost")


@dataclass(frozen=True)
class ControlPlane:
    """The service token and TLS files of one service; read once by its `Settings.from_env`."""

    # the shared token; "" means none (allowed on a loopback listener only). Hidden from repr.
    service_token: str = field(default="", repr=False)
    # this service's certificate chain and key (PEM): with both, its listeners serve TLS only
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # the CA (PEM) that clients verify the other services against: set, clients dial TLS
    tls_ca_file: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ControlPlane:
        plane = cls(
            service_token=env.get("CATALOG_SERVICE_TOKEN", ""),
            tls_cert_file=env.get("CATALOG_TLS_CERT_FILE", ""),
            tls_key_file=env.get("CATALOG_TLS_KEY_FILE", ""),
            tls_ca_file=env.get("CATALOG_TLS_CA_FILE", ""),
        )
        plane.validate()
        return plane

    def validate(self) -> None:
        token = self.service_token
        if token and (not token.isascii() or not token.isprintable() or " " in token):
            raise SettingsError(f"{TOKEN_VAR} must be printable ASCII without spaces")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise SettingsError(f"set both {CERT_VAR} and {KEY_VAR}, or neither")
        for name, path in ((CERT_VAR, self.tls_cert_file), (KEY_VAR, self.tls_key_file)):
            if path and not Path(path).is_file():
                raise SettingsError(f"{name} names no readable file: {path!r}")
        if self.tls_ca_file and not Path(self.tls_ca_file).is_file():
            raise SettingsError(f"{CA_VAR} names no readable file: {self.tls_ca_file!r}")

    @property
    def serves_tls(self) -> bool:
        return bool(self.tls_cert_file)

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """TLS credentials for a listener, or None for plaintext."""
        if not self.serves_tls:
            return None
        pair = (Path(self.tls_key_file).read_bytes(), Path(self.tls_cert_file).read_bytes())
        return grpc.ssl_server_credentials([pair])

    def server_interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """The token check for a service only the others may call (none without a token)."""
        return [ServiceTokenGuard(self.service_token)] if self.service_token else []

    def check_listener(self, host: str, host_var: str, service: str) -> None:
        """Refuse a token-less listener off loopback; warn loudly about one on loopback."""
        if self.service_token:
            return
        if not is_loopback(host):
            raise SettingsError(
                f"{TOKEN_VAR} is not set, so {service} would run code for anyone who reaches "
                f"{host}: set {TOKEN_VAR} (the same on every service), or listen on 127.0.0.1 "
                f"({host_var})"
            )
        log_fields(
            _log,
            logging.WARNING,
            f"NO {TOKEN_VAR}: every local process may call this service (development only)",
            service=service,
            host=host,
        )

    def channel(self, address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        """A channel to another service: TLS when a CA is set, the token and the trace context
        on every call."""
        token = self.service_token
        # the trace goes on to the callee when tracing is on (services/common/telemetry.py)
        interceptors: list[grpc.aio.ClientInterceptor] | None = [
            *client_interceptors(),
            *(bearer_interceptors(token) if token else []),
        ] or None
        if self.tls_ca_file:
            credentials = grpc.ssl_channel_credentials(Path(self.tls_ca_file).read_bytes())
            return grpc.aio.secure_channel(
                address, credentials, options=options, interceptors=interceptors
            )
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)

    def uvicorn_ssl(self) -> dict[str, str]:
        """Keyword arguments for `uvicorn.Config`: HTTPS when this service has a certificate."""
        if not self.serves_tls:
            return {}
        return {"ssl_certfile": self.tls_cert_file, "ssl_keyfile": self.tls_key_file}


def bearer_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors that send `authorization: Bearer <token>` on every unary and
    server-streaming call: the service token here, an API key in the catalog client."""
    return [_UnaryToken(token), _StreamToken(token)]


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ServiceTokenGuard(grpc.aio.ServerInterceptor):
    """Answers a call without the service token UNAUTHENTICATED; health and reflection pass.

    The rejecting handler has no deserializer: a stranger's payload is never parsed.
    """

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("ServiceTokenGuard needs a token")
        self._token = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None or _service_of(handler_call_details.method) in OPEN_SERVICES:
            return handler
        problem = self._problem(handler_call_details.invocation_metadata)
        if problem:
            log_fields(
                _log,
                logging.WARNING,
                "call refused",
                method=handler_call_details.method,
                reason="no service token" if problem == MISSING_TOKEN else "wrong service token",
            )
            return _rejecting(handler, problem)
        return handler

    def _problem(self, metadata: Any) -> str:
        """ "" when the call carries this service's token, else the message to answer with."""
        values = [v for k, v in metadata or () if k == "authorization" and isinstance(v, str)]
        if not values:
            return MISSING_TOKEN
        scheme, _, presented = values[0].strip().partition(" ")
        if scheme.lower() != "bearer":
            return MISSING_TOKEN
        if not hmac.compare_digest(presented.strip().encode(), self._token):
            return WRONG_TOKEN
        return ""


def _service_of(method: str) -> str:
    parts = method.split("/")  # "/package.Service/Method"
    return parts[1] if len(parts) == 3 else ""


def _rejecting(
    handler: grpc.RpcMethodHandler[_Req, _Resp], message: str
) -> grpc.RpcMethodHandler[_Req, _Resp]:
    async def reject(request: object, context: _Context) -> NoReturn:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    # a coroutine serves streaming responses too (it would write with context.write)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(reject)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(reject)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject)
    return grpc.unary_unary_rpc_method_handler(reject)


def _with_token(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), ("authorization", f"Bearer {token}"))
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


# Two classes, not one with both bases: grpc.aio files an interceptor under its first kind only.
class _UnaryToken(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer <token>` to every unary call."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_token(client_call_details, self._token), request)


class _StreamToken(grpc.aio.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every server-streaming call."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_token(client_call_details, self._token), request)
