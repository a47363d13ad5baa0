"""catalog.v1 messages to and from the orchestrator's domain types (run_state, service).

The servicer calls only these; the HTTP API serves the same domain types as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime

from catalog.v1 import agent_pb2
from catalog.v1 import catalog_pb2 as pb
from google.protobuf import timestamp_pb2

from services.common.errors import InvalidArgument
from services.common.usage import TokenUsage
from services.orchestrator.catalog_models import CatalogView, StartRequest
from services.orchestrator.deliveries import DeliveryRecord
from services.orchestrator.run_state import (
    AgentProgress,
    AgentSkipped,
    AgentUsage,
    OutputRef,
    OutputWritten,
    ProgressEvent,
    RunAgent,
    RunError,
    Step,
    StepChanged,
)
from services.orchestrator.sources import Source
from services.orchestrator.webhook_spec import Webhook


def start_request(request: pb.StartCatalogRequest) -> StartRequest:
    return StartRequest(
        db_conn_string=request.db_conn_string,
        tables=list(request.tables),
        s3_prefix=request.s3_prefix,
        idempotency_key=request.idempotency_key,
        allow_writable=request.allow_writable,
        agents=list(request.agents),
        max_cost_usd=request.max_cost_usd,
        webhooks=webhooks(request.webhooks),
        sources=sources(request.sources),
    )


def sources(values: Iterable[pb.DatabaseSource]) -> tuple[Source, ...]:
    return tuple(Source(s.name, s.db_conn_string, tuple(s.tables)) for s in values)


def webhooks(values: Iterable[pb.Webhook]) -> tuple[Webhook, ...]:
    return tuple(Webhook(w.url, tuple(w.events)) for w in values)


def delivery(value: DeliveryRecord) -> pb.WebhookDelivery:
    message = pb.WebhookDelivery(
        url=value.url,
        event=value.event,
        webhook_id=value.webhook_id,
        attempts=value.attempts,
        last_status_code=value.last_status,
        last_error=value.last_error,
        state=pb.DeliveryState.Value(f"DELIVERY_STATE_{value.state}"),
    )
    if value.last_attempt:
        message.last_attempt_time.CopyFrom(_timestamp(value.last_attempt))
    return message


def tick_timestamp(stamp: str) -> timestamp_pb2.Timestamp:
    return _timestamp(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def catalog_id(
    request: pb.GetCatalogRequest | pb.WatchCatalogRequest | pb.CancelCatalogRequest,
) -> str:
    if not request.catalog_id:
        raise InvalidArgument(
            "catalog_id is required", field_violations=[("catalog_id", "the id StartCatalog gave")]
        )
    return request.catalog_id


def status_filter(status: int) -> str:
    """A ListCatalogs status filter as CatalogOperations takes it ("" for any)."""
    if status not in pb.CatalogStatus.values():
        raise InvalidArgument(
            f"status {status} is not a CatalogStatus",
            field_violations=[("status", "use a CatalogStatus value, or leave it unset")],
        )
    name = pb.CatalogStatus.Name(status).removeprefix("CATALOG_STATUS_")  # type: ignore[arg-type]
    return "" if name == "UNSPECIFIED" else name


def watch_event(event: ProgressEvent | CatalogView) -> pb.WatchCatalogResponse | None:
    """A progress event as WatchCatalog sends it; None for one it does not send."""
    if isinstance(event, CatalogView):
        return pb.WatchCatalogResponse(final=catalog(event))
    if isinstance(event, StepChanged):
        changed = pb.StepChanged(
            step=step(event.step), time=_timestamp(event.time), agent_name=event.agent
        )
        return pb.WatchCatalogResponse(step_changed=changed)
    if isinstance(event, AgentSkipped):
        skipped = pb.AgentSkipped(
            agent_name=event.agent_name, dependency=event.dependency, reason=event.reason
        )
        return pb.WatchCatalogResponse(agent_skipped=skipped)
    if isinstance(event, AgentProgress):
        progress = pb.AgentProgress(
            agent_name=event.agent_name,
            turn=event.turn,
            tool_name=event.tool_name,
            usage=usage(event.usage),
        )
        return pb.WatchCatalogResponse(agent_progress=progress)
    if isinstance(event, OutputWritten):
        return pb.WatchCatalogResponse(output_written=pb.OutputWritten(output=output(event.output)))
    return None


def step(value: Step) -> pb.CatalogStep.ValueType:
    return pb.CatalogStep.Value(f"CATALOG_STEP_{value.value}")


def usage(value: TokenUsage) -> agent_pb2.Usage:
    return agent_pb2.Usage(**asdict(value))


def output(value: OutputRef) -> pb.OutputObject:
    return pb.OutputObject(
        agent_name=value.agent_name, uri=value.uri, complete=value.complete, data_uri=value.data_uri
    )


def agent_usage(value: AgentUsage) -> pb.AgentUsage:
    return pb.AgentUsage(
        agent_name=value.agent_name,
        usage=usage(value.usage),
        stop_reason=agent_pb2.StopReason.Value(f"STOP_REASON_{value.stop_reason}"),
        turns=value.turns,
        cost_usd=value.cost_usd,
    )


def run_agent(value: RunAgent) -> pb.RunAgent:
    return pb.RunAgent(
        agent_name=value.name,
        status=pb.AgentStatus.Value(f"AGENT_STATUS_{value.status.value}"),
        skipped_because=value.skipped_because,
        detail=value.detail,
    )


def error(value: RunError) -> pb.CatalogError:
    return pb.CatalogError(code=value.code, message=value.message, step=step(value.step))


def catalog(view: CatalogView) -> pb.Catalog:
    message = pb.Catalog(
        catalog_id=view.catalog_id,
        status=pb.CatalogStatus.Value(f"CATALOG_STATUS_{view.status}"),
        current_step=step(view.current_step),
        tables=view.tables,
        s3_prefix=view.s3_prefix,
        timestamp=view.timestamp,
        outputs=[output(o) for o in view.outputs],
        agent_usage=[agent_usage(u) for u in view.agent_usage],
        agents=[run_agent(a) for a in view.agents],
        current_agent=view.current_agent,
        create_time=_timestamp(view.create_time.timestamp()),
        update_time=_timestamp(view.update_time.timestamp()),
        cost_usd=view.cost_usd,
        schedule_id=view.schedule_id,
        deliveries=[delivery(d) for d in view.deliveries],
        sources=view.sources,
    )
    if view.tick_time:
        message.tick_time.CopyFrom(tick_timestamp(view.tick_time))
    if view.error:
        message.error.CopyFrom(error(view.error))
    return message


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp
