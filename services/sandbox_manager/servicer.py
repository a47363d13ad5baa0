"""catalog.v1.SandboxManagerService: each RPC translates, calls the pool, translates back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from catalog.v1 import sandbox_pb2, sandbox_pb2_grpc

from services.common.errors import InvalidArgument
from services.common.paging import page_offset, page_size, page_token
from services.sandbox_manager import translate
from services.sandbox_manager.fleet import SandboxState
from services.sandbox_manager.pool import Pool

_Context = grpc.aio.ServicerContext[Any, Any]
_STATE_OF = {proto: state for state, proto in translate.STATES.items()}


class SandboxManagerServicer(sandbox_pb2_grpc.SandboxManagerServiceServicer):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._settings = pool.settings

    async def AcquireSandbox(
        self, request: sandbox_pb2.AcquireSandboxRequest, context: _Context
    ) -> sandbox_pb2.AcquireSandboxResponse:
        acquire = translate.acquire_request(request, self._settings, context.time_remaining())
        lease, info = await self._pool.acquire(acquire)
        return sandbox_pb2.AcquireSandboxResponse(
            lease=translate.lease(lease, self._settings.manager_id),
            session=translate.session_info(info),
        )

    async def Execute(
        self, request: sandbox_pb2.ExecuteRequest, context: _Context
    ) -> AsyncIterator[sandbox_pb2.ExecuteResponse]:
        timeout_s, max_output = translate.execute_limits(request, self._settings)
        lease_id = translate.lease_id_of(request)
        async for event in self._pool.execute(lease_id, request.code, timeout_s, max_output):
            for piece in translate.split_output(event):
                message = translate.execute_event(piece)
                if message is not None:
                    yield message

    async def ResetSandbox(
        self, request: sandbox_pb2.ResetSandboxRequest, context: _Context
    ) -> sandbox_pb2.ResetSandboxResponse:
        lease_id = translate.lease_id_of(request)
        session = None
        if request.HasField("session"):
            limit = self._settings.max_databases
            session = translate.session_of(request.session, max_databases=limit)
        started = time.monotonic()
        info = await self._pool.reset(lease_id, session)
        return sandbox_pb2.ResetSandboxResponse(
            duration=translate.duration(time.monotonic() - started),
            session=translate.session_info(info),
        )

    async def ReleaseSandbox(
        self, request: sandbox_pb2.ReleaseSandboxRequest, context: _Context
    ) -> sandbox_pb2.ReleaseSandboxResponse:
        released = self._pool.release(translate.lease_id_of(request))
        return sandbox_pb2.ReleaseSandboxResponse(released=released)

    async def RenewLease(
        self, request: sandbox_pb2.RenewLeaseRequest, context: _Context
    ) -> sandbox_pb2.RenewLeaseResponse:
        ttl_s = None
        if request.HasField("ttl"):
            ttl_s = translate.seconds(request.ttl)
            if not 0 < ttl_s <= self._settings.max_lease_ttl_s:
                raise InvalidArgument(
                    f"ttl must be above 0 and at most {self._settings.max_lease_ttl_s:g} s",
                    field_violations=[("ttl", "out of range")],
                )
        lease = self._pool.renew(translate.lease_id_of(request), ttl_s)
        return sandbox_pb2.RenewLeaseResponse(
            lease=translate.lease(lease, self._settings.manager_id)
        )

    async def ListSandboxes(
        self, request: sandbox_pb2.ListSandboxesRequest, context: _Context
    ) -> sandbox_pb2.ListSandboxesResponse:
        state = _STATE_OF.get(request.state)
        offset = page_offset(request.page_token, request.state)
        size = page_size(request.page_size, 100, 1000)
        found = self._pool.sandboxes(state)
        page = found[offset : offset + size]
        next_token = page_token(offset + size, request.state) if offset + size < len(found) else ""
        return sandbox_pb2.ListSandboxesResponse(
            sandboxes=[self._sandbox(s) for s in page],
            next_page_token=next_token,
            pool=self._pool_stats(),
        )

    async def DescribeSandbox(
        self, request: sandbox_pb2.DescribeSandboxRequest, context: _Context
    ) -> sandbox_pb2.DescribeSandboxResponse:
        if not request.sandbox_id:
            raise InvalidArgument(
                "sandbox_id is empty", field_violations=[("sandbox_id", "required")]
            )
        sandbox = self._pool.describe(request.sandbox_id)
        return sandbox_pb2.DescribeSandboxResponse(sandbox=self._sandbox(sandbox))

    def _sandbox(self, value: Any) -> sandbox_pb2.Sandbox:
        backend = self._pool.backend
        return translate.sandbox(value, self._settings, backend.kind, backend.image)

    def _pool_stats(self) -> sandbox_pb2.PoolStats:
        counts = self._pool.counts()
        return sandbox_pb2.PoolStats(
            manager_id=self._settings.manager_id,
            backend=translate.backend(self._pool.backend.kind),
            min_warm=self._settings.min_warm,
            max_size=self._settings.max_size,
            warm=counts[SandboxState.WARM],
            leased=counts[SandboxState.LEASED],
            starting=counts[SandboxState.STARTING],
            broken=counts[SandboxState.BROKEN],
            recycling=counts[SandboxState.RECYCLING],
            max_exec_timeout=translate.duration(self._settings.max_exec_timeout_s),
        )
