"""What an operator and a caller see of the runner: grpcurl, health, and clear bad-input errors."""

from __future__ import annotations

import json

import grpc
import pytest
from catalog.v1 import agent_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.agent_runner.conftest import StartRunner, collect
from tests.sandbox_manager.test_operations import grpcurl


async def test_grpcurl_lists_the_runner_and_its_health(start_runner: StartRunner) -> None:
    runner = await start_runner(offline=True)
    services = (await grpcurl(runner.address, "list")).split()
    assert "catalog.v1.AgentRunnerService" in services and "grpc.health.v1.Health" in services
    described = await grpcurl(runner.address, "describe", "catalog.v1.AgentRunnerService")
    assert "rpc RunAgent" in described and "rpc GetAgentRun" in described
    health = json.loads(await grpcurl(runner.address, "grpc.health.v1.Health/Check"))
    assert health == {"status": "SERVING"}


async def test_a_bad_request_names_every_field_to_fix(start_runner: StartRunner) -> None:
    runner = await start_runner(offline=True)
    bad = pb.RunAgentRequest(
        run_id="has spaces", context_json="[1, 2]", budget=pb.Budget(max_turns=-1)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(runner.stub.RunAgent(bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    details = error_details_pb2.BadRequest()
    status.details[0].Unpack(details)
    fields = {v.field for v in details.field_violations}
    assert fields == {
        "run_id",
        "agent_name",
        "system_prompt",
        "sandbox.lease_id",
        "context_json",
        "budget.max_turns",
    }


async def test_an_unknown_run_is_not_found(start_runner: StartRunner) -> None:
    runner = await start_runner(offline=True)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runner.stub.GetAgentRun(pb.GetAgentRunRequest(run_id="never-started"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
