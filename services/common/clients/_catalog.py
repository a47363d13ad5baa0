"""Async client of catalog.v1.CatalogService, for backend services and the `catalog-agents` CLI.

    async with CatalogClient("localhost:50053", api_key=key) as catalogs:
        catalog_id = await catalogs.start(dsn, ["shop.orders"], "s3://bucket/shop")
        several = await catalogs.start(s3_prefix="s3://bucket/estate", sources=[
            Source("app", app_dsn, ("public.orders",)),
            Source("billing", billing_dsn, ("invoices",)),
        ])  # pages name their tables app/public.orders, billing/invoices
        run = await catalogs.wait(catalog_id, timeout_s=900)  # raises CatalogRunFailed
        print(run.page("catalog"))

Unary calls are retried on UNAVAILABLE with backoff, within the call's deadline (`timeout_s`,
else the client's). `start` sends an idempotency key (the caller's, or one it makes), so its
own retries never start a second run. `watch` reconnects when the orchestrator goes away
(a restart, a deploy) and skips the events it has already yielded: the server replays a run's
stream from its beginning. It needs neither DBOS nor docker: only grpc and catalog.v1.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import grpc
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import catalog_pb2_grpc

from services.common.clients._catalog_errors import (
    CatalogClientError,
    CatalogRunFailed,
    CatalogTimedOut,
    call_error,
)
from services.common.clients._catalog_models import (
    CatalogEvent,
    CatalogList,
    CatalogRun,
    CatalogStatus,
    Finished,
    Source,
    event_from_proto,
    run_from_proto,
)
from services.common.clients._catalog_schedules import ScheduleCalls
from services.common.clients._models import RetryPolicy
from services.common.clients._schedule_models import Webhook
from services.common.control_plane import bearer_interceptors

if TYPE_CHECKING:
    from catalog.v1.catalog_pb2_grpc import CatalogServiceAsyncStub as _Stub

_T = TypeVar("_T")
DEFAULT_ADDRESS = "localhost:50053"
OnEvent = Callable[[CatalogEvent], Awaitable[None]]


class CatalogClient(ScheduleCalls):
    """Calls one orchestrator. The channel opens on first use; `close` (or the end of the
    `async with` block) closes it. The schedule calls are _catalog_schedules.py's."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        api_key: str = "",
        tls: bool = False,
        ca_file: str = "",
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        """`api_key` goes as `authorization: Bearer <key>`; `ca_file` (PEM) implies TLS and
        verifies the server against it, `tls` alone uses the system's roots. `timeout_s` is
        each unary call's deadline unless the call gives its own."""
        self.address = address
        self._api_key = api_key
        self._tls = tls or bool(ca_file)
        self._ca_file = ca_file
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy(attempts=6, initial_backoff_s=0.25, max_backoff_s=4.0)
        self._channel: grpc.aio.Channel | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> CatalogClient:
        """CATALOG_ADDRESS, CATALOG_API_KEY, CATALOG_TLS (1) and CATALOG_TLS_CA_FILE."""
        env = os.environ if env is None else env
        settings: dict[str, object] = {
            "address": env.get("CATALOG_ADDRESS", DEFAULT_ADDRESS),
            "api_key": env.get("CATALOG_API_KEY", ""),
            "tls": env.get("CATALOG_TLS", "") in ("1", "true", "yes"),
            "ca_file": env.get("CATALOG_TLS_CA_FILE", ""),
        }
        settings.update({k: v for k, v in overrides.items() if v not in (None, "")})
        return cls(**settings)  # type: ignore[arg-type]

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
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    def _stub(self) -> _Stub:
        if self._channel is None:
            self._channel = self._open_channel()
        return catalog_pb2_grpc.CatalogServiceStub(self._channel)

    def _open_channel(self) -> grpc.aio.Channel:
        interceptors = bearer_interceptors(self._api_key) if self._api_key else None
        if not self._tls:
            return grpc.aio.insecure_channel(self.address, interceptors=interceptors)
        roots = Path(self._ca_file).read_bytes() if self._ca_file else None
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        return grpc.aio.secure_channel(self.address, credentials, interceptors=interceptors)

    # --- the calls ----------------------------------------------------------------------------
    async def start(
        self,
        db_conn_string: str = "",
        tables: Sequence[str] = (),
        s3_prefix: str = "",
        *,
        sources: Sequence[Source] = (),
        idempotency_key: str = "",
        allow_writable: bool = False,
        agents: Sequence[str] = (),
        max_cost_usd: float = 0.0,
        webhooks: Sequence[Webhook] = (),
        timeout_s: float | None = None,
    ) -> str:
        """Start a run; returns its id at once. One database is `db_conn_string` with its
        `tables`; several are `sources` instead (not both; at most the orchestrator's
        CATALOG_MAX_SOURCES). With no `idempotency_key` one is made, so a retried call finds
        the run the first one started. `agents`: which to run, e.g. ["pii"] (their needs are
        added; empty: the pipeline's default). `max_cost_usd`: the most its model calls may
        cost (0: no limit); an agent that reaches it stops as at its token budget.
        `webhooks`: where to POST the outcome when the run ends (signed)."""
        request = pb.StartCatalogRequest(
            db_conn_string=db_conn_string,
            tables=list(tables),
            s3_prefix=s3_prefix,
            idempotency_key=idempotency_key or uuid.uuid4().hex,
            allow_writable=allow_writable,
            agents=list(agents),
            max_cost_usd=max_cost_usd,
            webhooks=[w.to_proto() for w in webhooks],
            sources=[s.to_proto() for s in sources],
        )
        reply = await self._unary(
            "StartCatalog", lambda stub, t: stub.StartCatalog(request, timeout=t), timeout_s
        )
        return reply.catalog_id

    async def get(self, catalog_id: str, *, timeout_s: float | None = None) -> CatalogRun:
        request = pb.GetCatalogRequest(catalog_id=catalog_id)
        reply = await self._unary(
            "GetCatalog", lambda stub, t: stub.GetCatalog(request, timeout=t), timeout_s
        )
        return run_from_proto(reply.catalog)

    async def list(
        self,
        *,
        status: CatalogStatus | None = None,
        schedule_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout_s: float | None = None,
    ) -> CatalogList:
        """One page of runs, newest first; pass `next_page_token` back for the next.
        `schedule_id`: only the runs that schedule started."""
        request = pb.ListCatalogsRequest(
            schedule_id=schedule_id,
            page_size=page_size,
            page_token=page_token,
            status=status.to_proto() if status is not None else pb.CATALOG_STATUS_UNSPECIFIED,
        )
        reply = await self._unary(
            "ListCatalogs", lambda stub, t: stub.ListCatalogs(request, timeout=t), timeout_s
        )
        return CatalogList(tuple(run_from_proto(c) for c in reply.catalogs), reply.next_page_token)

    async def cancel(self, catalog_id: str, *, timeout_s: float | None = None) -> CatalogRun:
        """Cancel a queued or running run; its status may read RUNNING a moment longer."""
        request = pb.CancelCatalogRequest(catalog_id=catalog_id)
        reply = await self._unary(
            "CancelCatalog", lambda stub, t: stub.CancelCatalog(request, timeout=t), timeout_s
        )
        return run_from_proto(reply.catalog)

    async def watch(
        self, catalog_id: str, *, timeout_s: float | None = None, reconnect_s: float = 120.0
    ) -> AsyncIterator[CatalogEvent]:
        """The run's events until `Finished`, its last. A lost connection is reopened for up to
        `reconnect_s` (an orchestrator restart), without repeating an event; `timeout_s`
        bounds the whole watch (None: until the run ends)."""
        deadline = None if timeout_s is None else _now() + timeout_s
        seen: set[CatalogEvent] = set()
        outage_since: float | None = None
        while True:
            try:
                async for event in self._stream(catalog_id, deadline):
                    outage_since = None
                    if event not in seen:
                        seen.add(event)
                        yield event
                    if isinstance(event, Finished):
                        return
                problem: grpc.aio.AioRpcError | None = None  # the stream ended with no final
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise call_error(exc, "WatchCatalog", self.address) from exc
                problem = exc
            outage_since = outage_since or _now()
            if _now() - outage_since > reconnect_s or (deadline and _now() >= deadline):
                raise _gone(problem, self.address, reconnect_s)
            await asyncio.sleep(self._retry.backoff_s(3))

    async def _stream(self, catalog_id: str, deadline: float | None) -> AsyncIterator[CatalogEvent]:
        request = pb.WatchCatalogRequest(catalog_id=catalog_id)
        timeout = None if deadline is None else max(0.0, deadline - _now())
        async for message in self._stub().WatchCatalog(request, timeout=timeout):
            event = event_from_proto(message)
            if event is not None:
                yield event

    async def wait(
        self, catalog_id: str, timeout_s: float | None, *, on_event: OnEvent | None = None
    ) -> CatalogRun:
        """Follow the run until it ends and return it if it SUCCEEDED; otherwise raise
        CatalogRunFailed (its `code` is the run's failure code), or CatalogTimedOut after
        `timeout_s` (None: no limit). `on_event` sees each event as it comes."""
        try:
            async with asyncio.timeout(timeout_s):
                async for event in self.watch(catalog_id):
                    if on_event is not None:
                        await on_event(event)
                    if isinstance(event, Finished):
                        return _succeeded(event.catalog)
        except TimeoutError as exc:
            raise CatalogTimedOut(
                f"catalog {catalog_id} did not finish within {timeout_s} s; it goes on: "
                "wait again, or cancel it",
                status=grpc.StatusCode.DEADLINE_EXCEEDED,
            ) from exc
        raise CatalogClientError(f"the watch of {catalog_id} ended without its final state")

    async def _unary(
        self, what: str, call: Callable[[_Stub, float], Awaitable[_T]], timeout_s: float | None
    ) -> _T:
        """One call, retried on UNAVAILABLE while attempts and its deadline allow."""
        deadline = _now() + (self._timeout_s if timeout_s is None else timeout_s)
        attempt = 1
        while True:
            try:
                return await call(self._stub(), max(0.0, deadline - _now()))
            except grpc.aio.AioRpcError as exc:
                pause = self._retry.backoff_s(attempt)
                retry = exc.code() == grpc.StatusCode.UNAVAILABLE
                if not (retry and attempt < self._retry.attempts and _now() + pause < deadline):
                    raise call_error(exc, what, self.address) from exc
            attempt += 1
            await asyncio.sleep(pause)


def _now() -> float:
    return asyncio.get_running_loop().time()


def _succeeded(run: CatalogRun) -> CatalogRun:
    if run.status != CatalogStatus.SUCCEEDED:
        raise CatalogRunFailed(run)
    return run


def _gone(problem: grpc.aio.AioRpcError | None, address: str, waited_s: float) -> Exception:
    said = f"{problem.code().name}: {problem.details()}" if problem else "the stream ended early"
    return CatalogClientError(
        f"lost the orchestrator at {address} for over {waited_s:g} s ({said}); check that it "
        "runs, then watch again: the run goes on meanwhile",
        status=grpc.StatusCode.UNAVAILABLE,
    )
