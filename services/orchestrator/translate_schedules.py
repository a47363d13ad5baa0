"""catalog.v1 schedule messages to and from schedule_ops's domain types."""

from __future__ import annotations

from catalog.v1 import catalog_pb2 as pb

from services.common.errors import InvalidArgument
from services.orchestrator import translate
from services.orchestrator.schedule_ops import ScheduleRequest, ScheduleView
from services.orchestrator.webhook_spec import Webhook


def schedule_request(message: pb.Schedule) -> ScheduleRequest:
    overlap = pb.ScheduleOverlap.Name(message.overlap).removeprefix("SCHEDULE_OVERLAP_")
    catch_up = pb.ScheduleCatchUp.Name(message.catch_up).removeprefix("SCHEDULE_CATCH_UP_")
    return ScheduleRequest(
        cron=message.cron,
        time_zone=message.time_zone,
        request=translate.start_request(message.request),
        webhooks=translate.webhooks(message.webhooks),
        overlap="SKIP" if overlap == "UNSPECIFIED" else overlap,
        catch_up="LATEST" if catch_up == "UNSPECIFIED" else catch_up,
    )


def schedule_id(
    request: pb.GetScheduleRequest
    | pb.PauseScheduleRequest
    | pb.ResumeScheduleRequest
    | pb.DeleteScheduleRequest
    | pb.TriggerScheduleRequest,
) -> str:
    if not request.schedule_id:
        raise InvalidArgument(
            "schedule_id is required",
            field_violations=[("schedule_id", "the id CreateSchedule gave")],
        )
    return request.schedule_id


def schedule(view: ScheduleView) -> pb.Schedule:
    spec = view.spec
    sources = [pb.DatabaseSource(name=n, tables=t) for n, t in spec.request_sources()]
    request = pb.StartCatalogRequest(
        tables=[] if sources else spec.tables,
        sources=sources,
        s3_prefix=spec.s3_prefix,
        allow_writable=spec.allow_writable,
        agents=spec.agents,
        max_cost_usd=spec.max_cost_usd,
        webhooks=[_webhook(w) for w in spec.request_webhooks],
    )  # no db_conn_string, nor any source's: sealed, and never shown
    message = pb.Schedule(
        schedule_id=spec.schedule_id,
        cron=spec.cron,
        time_zone=spec.time_zone,
        request=request,
        webhooks=[_webhook(w) for w in spec.webhooks],
        overlap=pb.ScheduleOverlap.Value(f"SCHEDULE_OVERLAP_{spec.overlap}"),
        catch_up=pb.ScheduleCatchUp.Value(f"SCHEDULE_CATCH_UP_{spec.catch_up}"),
        paused=view.paused,
    )
    for tick in view.next_fire_times:
        message.next_fire_times.add().FromDatetime(tick)
    for run in view.recent_runs:
        status = f"CATALOG_STATUS_{run.status or 'UNSPECIFIED'}"
        message.recent_runs.add(
            catalog_id=run.catalog_id,
            tick_time=translate.tick_timestamp(run.tick),
            status=pb.CatalogStatus.Value(status),
        )
    for skipped in view.skipped_ticks:
        message.skipped_ticks.add(
            tick_time=translate.tick_timestamp(skipped.tick), reason=skipped.skipped
        )
    return message


def _webhook(value: Webhook) -> pb.Webhook:
    return pb.Webhook(url=value.url, events=value.events)
