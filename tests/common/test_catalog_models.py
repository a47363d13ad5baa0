"""The catalog client's models read a newer orchestrator's messages without raising: a step,
status or stop reason this client's catalog.v1 does not know yet reads as UNSPECIFIED, and the
rest of the run is still there."""

from __future__ import annotations

from catalog.v1 import catalog_pb2 as pb

from services.common.clients import (
    AgentSkipped,
    AgentStatus,
    AgentStop,
    CatalogStatus,
    CatalogStep,
    RunAgent,
    StepChanged,
)
from services.common.clients._catalog_models import event_from_proto, run_from_proto

LATER = 97  # a number no catalog.v1 enum has (yet)


def test_values_a_newer_orchestrator_adds_read_as_unspecified() -> None:
    message = pb.Catalog(
        catalog_id="c1",
        status=LATER,  # type: ignore[arg-type]
        current_step=LATER,  # type: ignore[arg-type]
        agents=[pb.RunAgent(agent_name="pii", status=LATER)],  # type: ignore[arg-type]
        agent_usage=[pb.AgentUsage(agent_name="pii", stop_reason=LATER, turns=2)],  # type: ignore[arg-type]
        current_agent="pii",
        cost_usd=0.25,
    )
    assert message.status == LATER  # the number survived the proto, as on the wire
    run = run_from_proto(message)
    assert (run.status, run.current_step) == (CatalogStatus.UNSPECIFIED, CatalogStep.UNSPECIFIED)
    assert not run.finished
    assert run.agents == (RunAgent("pii", AgentStatus.UNSPECIFIED, "", ""),)
    assert run.agent_usage[0].stop_reason == AgentStop.UNSPECIFIED
    assert (run.current_agent, run.cost_usd, run.agent_usage[0].turns) == ("pii", 0.25, 2)
    changed = pb.StepChanged(step=LATER, agent_name="pii")  # type: ignore[arg-type]
    event = event_from_proto(pb.WatchCatalogResponse(step_changed=changed))
    assert event == StepChanged(CatalogStep.UNSPECIFIED, None, "pii")


def test_a_pipeline_run_reads_whole() -> None:
    skipped = pb.RunAgent(
        agent_name="echo",
        status=pb.AGENT_STATUS_SKIPPED,
        skipped_because="probe",
        detail="echo needs probe, which failed (run_when: succeeded)",
    )
    message = pb.Catalog(
        status=pb.CATALOG_STATUS_RUNNING,
        current_step=pb.CATALOG_STEP_RUNNING_AGENT,
        current_agent="summary",
        agents=[skipped],
        agent_usage=[
            pb.AgentUsage(agent_name="catalog", cost_usd=0.0),  # priced, and free
            pb.AgentUsage(agent_name="probe"),  # no price for its model
        ],
    )
    run = run_from_proto(message)
    assert run.current_step == CatalogStep.RUNNING_AGENT and run.current_agent == "summary"
    assert run.agents[0].status == AgentStatus.SKIPPED
    assert run.agents[0].skipped_because == "probe" and "which failed" in run.agents[0].detail
    assert [u.cost_usd for u in run.agent_usage] == [0.0, None]
    event = pb.WatchCatalogResponse(
        agent_skipped=pb.AgentSkipped(agent_name="echo", dependency="probe", reason="why")
    )
    assert event_from_proto(event) == AgentSkipped("echo", "probe", "why")
