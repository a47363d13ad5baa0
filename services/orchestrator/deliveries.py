"""Webhook deliveries: a DBOS workflow per run with webhooks, started beside the run.

    wait for the run to end -> its outcome as JSON (a step) -> for each webhook that wants the
    event: POST it, signed, as a DBOS step that DBOS retries with exponential backoff

The catalog workflow knows nothing of webhooks: this workflow, `{catalog_id}.webhooks`, awaits
it. Being a workflow, it is recovered after a crash, and a step cut off runs again; the
`webhook-id` is derived from the run and the webhook, so every attempt, before and after a
restart, carries the same one. Each attempt rewrites the delivery's record (a DBOS event of
this workflow) that GetCatalog shows. Retries stop CATALOG_WEBHOOK_RETRY_S after the run
ended (a deadline recorded once, so a restart does not extend it). A receiver's answer is
only recorded: the run's status is the catalog workflow's, which this one never touches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS, SetWorkflowID
from standardwebhooks import Webhook as Signer

from services.orchestrator import webhook_http
from services.orchestrator.page_data import summary_counts
from services.orchestrator.run_state import RunState
from services.orchestrator.steps.runtime import runtime, store
from services.orchestrator.webhook_spec import EVENT_OF_STATUS, Webhook, shown_url

DELIVERY_WORKFLOW = "webhook_deliveries"
_RUN_STATUS = {"SUCCESS": "SUCCEEDED", "CANCELLED": "CANCELLED"}  # anything else: FAILED
_DBOS_MAX_WAIT_S = 3600  # DBOS caps one wait between step attempts at an hour


@dataclass(frozen=True)
class DeliveryJob:
    """The workflow's input: which run, and its webhooks (schedule's and request's)."""

    catalog_id: str
    webhooks: tuple[Webhook, ...]


@dataclass(frozen=True)
class DeliveryRecord:
    """One webhook's delivery, as GetCatalog shows it (a DBOS event `delivery.{i}`)."""

    url: str  # shown_url: no query string
    event: str
    webhook_id: str
    attempts: int = 0
    last_status: int = 0
    last_error: str = ""
    state: str = "PENDING"  # PENDING, DELIVERED, FAILED
    last_attempt: float = 0.0  # epoch seconds


@dataclass(frozen=True)
class _Attempt:
    index: int
    url: str
    webhook_id: str
    body: str
    deadline: float  # epoch seconds; no attempt after it
    record: DeliveryRecord


def workflow_id(catalog_id: str) -> str:
    return f"{catalog_id}.webhooks"


async def start_deliveries(catalog_id: str, webhooks: tuple[Webhook, ...]) -> None:
    """Start (once: the id is the run's) the deliveries of a run's outcome."""
    if webhooks:
        with SetWorkflowID(workflow_id(catalog_id)):
            await DBOS.start_workflow_async(deliver_webhooks, DeliveryJob(catalog_id, webhooks))


async def delivery_records(catalog_id: str) -> list[DeliveryRecord]:
    """The run's deliveries so far (none before it ended, or without webhooks)."""
    events = await DBOS.get_all_events_async(workflow_id(catalog_id))
    found = [(k, v) for k, v in events.items() if k.startswith("delivery.")]
    found.sort(key=lambda kv: int(kv[0].split(".")[1]))
    return [v for _, v in found if isinstance(v, DeliveryRecord)]


@DBOS.workflow(name=DELIVERY_WORKFLOW)
async def deliver_webhooks(job: DeliveryJob) -> None:
    status = await _run_ended(job.catalog_id)
    event = EVENT_OF_STATUS[status]
    body = await _outcome(job.catalog_id, status, event)
    deadline = await _deadline()
    for index, hook in enumerate(job.webhooks):
        if hook.wants(event):
            webhook_id = _webhook_id(job.catalog_id, index, event)
            record = DeliveryRecord(shown_url(hook.url), event, webhook_id)
            attempt = _Attempt(index, hook.url, webhook_id, body, deadline, record)
            await _deliver_with_retries(attempt)


async def _run_ended(catalog_id: str) -> str:
    handle: Any = await DBOS.retrieve_workflow_async(catalog_id)
    with contextlib.suppress(Exception):  # a failed or cancelled run is an outcome too
        await handle.get_result()
    status = await DBOS.get_workflow_status_async(catalog_id)
    return _RUN_STATUS.get(status.status if status else "", "FAILED")


def _webhook_id(catalog_id: str, index: int, event: str) -> str:
    digest = hashlib.sha256(f"{catalog_id}\0{index}\0{event}".encode()).hexdigest()[:32]
    return f"msg_{digest}"


@DBOS.step(name="webhook_deadline")
async def _deadline() -> float:
    return time.time() + runtime().settings.webhook_retry_s


@DBOS.step(name="webhook_outcome")
async def _outcome(catalog_id: str, status: str, event: str) -> str:
    """The JSON sent: the run's outcome, never a secret or a page's content."""
    state = RunState.from_event(await DBOS.get_event_async(catalog_id, "state", 0))
    state = state or RunState([], "")
    payload: dict[str, Any] = {
        "type": event,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "data": {
            "catalog_id": catalog_id,
            "status": status,
            "run_timestamp": state.timestamp,
            "outputs": [
                {"agent": o.agent_name, "uri": o.uri, "data_uri": o.data_uri} for o in state.outputs
            ],
            "agents": [_agent(u) for u in state.usage],
            "error": {"code": state.error.code, "message": state.error.message}
            if state.error
            else None,
            "findings_by_verdict": await _verdicts(state),
        },
    }
    return json.dumps(payload, sort_keys=True)


def _agent(usage: Any) -> dict[str, Any]:
    return {
        "agent": usage.agent_name,
        "stop_reason": usage.stop_reason,
        "turns": usage.turns,
        "usage": vars(usage.usage),
        "cost_usd": usage.cost_usd,
    }


async def _verdicts(state: RunState) -> dict[str, int]:
    """Counts of the summary's findings by verdict, those with any, from its data beside the
    page."""
    if not any(o.agent_name == "summary" and o.data_uri for o in state.outputs):
        return {}
    try:
        stored = store(runtime().settings, state.s3_prefix)
        body = await stored.read(state.timestamp, "summary.json")
    except Exception:
        return {}
    return {verdict: n for verdict, n in summary_counts(body).items() if n}


async def _deliver_with_retries(attempt: _Attempt) -> None:
    settings = runtime().settings
    options: Any = {
        "name": "deliver_webhook",
        "retries_allowed": True,
        "interval_seconds": settings.webhook_backoff_s,
        "backoff_rate": 2.0,
        "max_attempts": attempts_for(settings.webhook_retry_s, settings.webhook_backoff_s),
    }
    try:
        await DBOS.run_step_async(options, _post_once, attempt)
    except Exception as exc:
        last = await DBOS.get_event_async(DBOS.workflow_id or "", _key(attempt), 0)
        record = last if isinstance(last, DeliveryRecord) else attempt.record
        error = record.last_error or str(exc)[:200]
        await DBOS.set_event_async(_key(attempt), replace(record, state="FAILED", last_error=error))


def attempts_for(retry_s: float, backoff_s: float) -> int:
    """Attempts whose waits (doubling from backoff_s, at most an hour each) span retry_s."""
    waited, attempts, wait = 0.0, 1, backoff_s
    while waited < retry_s and attempts < 1000:
        waited += min(wait, _DBOS_MAX_WAIT_S)
        wait *= 2
        attempts += 1
    return attempts


def _key(attempt: _Attempt) -> str:
    return f"delivery.{attempt.index}"


async def _post_once(attempt: _Attempt) -> None:
    """One attempt; raises DeliveryError for DBOS to retry it."""
    settings = runtime().settings
    last = await DBOS.get_event_async(DBOS.workflow_id or "", _key(attempt), 0)
    record = last if isinstance(last, DeliveryRecord) else attempt.record
    if record.state != "PENDING":
        return  # decided before a restart
    if time.time() > attempt.deadline:
        record = replace(record, state="FAILED", last_error=record.last_error or "out of time")
        await DBOS.set_event_async(_key(attempt), record)
        return
    record = replace(record, attempts=record.attempts + 1, last_attempt=time.time())
    try:
        answer = await webhook_http.post(
            attempt.url,
            attempt.body.encode(),
            _headers(attempt, settings.webhook_secret),
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.webhook_allow_private,
        )
    except webhook_http.RefusedTarget as exc:
        await DBOS.set_event_async(
            _key(attempt), replace(record, state="FAILED", last_error=str(exc))
        )
        return
    except webhook_http.DeliveryError as exc:
        await DBOS.set_event_async(
            _key(attempt), replace(record, last_status=0, last_error=str(exc))
        )
        raise
    ok = 200 <= answer.status < 300
    error = "" if ok else f"answered {answer.status}"
    record = replace(record, last_status=answer.status, last_error=error)
    await DBOS.set_event_async(_key(attempt), replace(record, state="DELIVERED") if ok else record)
    if not ok:
        raise webhook_http.DeliveryError(error)


def _headers(attempt: _Attempt, secret: str) -> dict[str, str]:
    """Standard Webhooks headers, signed over this attempt's timestamp."""
    now = datetime.now(UTC)
    signature = Signer(secret).sign(msg_id=attempt.webhook_id, timestamp=now, data=attempt.body)
    return {
        "content-type": "application/json",
        "user-agent": "catalog-agents-webhooks",
        "webhook-id": attempt.webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
