"""What a catalog request and a catalog are, in domain terms, as both APIs and the UI hold them.

service.py validates and acts on them; the gRPC, HTTP and UI layers translate to and from these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.common.source_names import DEFAULT
from services.orchestrator.deliveries import DeliveryRecord
from services.orchestrator.run_state import AgentUsage, OutputRef, RunAgent, RunError, Step
from services.orchestrator.sources import Source
from services.orchestrator.webhook_spec import Webhook, webhook_problems


@dataclass(frozen=True)
class StartRequest:
    db_conn_string: str = field(repr=False)  # with `tables`: the one source "default"
    tables: Sequence[str]
    s3_prefix: str
    idempotency_key: str = ""
    allow_writable: bool = False
    agents: Sequence[str] = ()  # a subset of the agents; empty: the pipeline's default
    max_cost_usd: float = 0.0  # the most the run's model calls may cost; 0: no limit
    webhooks: Sequence[Webhook] = ()  # told of the run's end (deliveries.py)
    sources: Sequence[Source] = ()  # several databases, instead of db_conn_string and tables

    def run_sources(self) -> list[Source]:
        """The run's databases: `sources`, else the shorthand as the one source "default"."""
        if self.sources:
            return list(self.sources)
        return [Source(DEFAULT, self.db_conn_string, tuple(self.tables))]

    def with_kept_dsns(self, kept: dict[str, str]) -> StartRequest:
        """This request with each empty DSN taken from `kept` (name -> DSN), by source name:
        a schedule's update that gives no DSN keeps the stored one."""
        if not self.sources:
            return replace(self, db_conn_string=self.db_conn_string or kept.get(DEFAULT, ""))
        sources = [replace(s, dsn=s.dsn or kept.get(s.name, "")) for s in self.sources]
        return replace(self, sources=sources)


@dataclass(frozen=True)
class CatalogView:
    """A catalog as the APIs show it; names follow catalog.v1.Catalog."""

    catalog_id: str
    status: str  # QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED
    current_step: Step
    tables: list[str]
    s3_prefix: str
    timestamp: str
    outputs: list[OutputRef]
    agent_usage: list[AgentUsage]
    error: RunError | None
    create_time: datetime
    update_time: datetime
    agents: list[RunAgent]  # the run's agents in run order, each with its status
    current_agent: str  # the agent at work while current_step is RUNNING_AGENT
    cost_usd: float = 0.0  # what its agents cost so far (those the runner could price)
    schedule_id: str = ""  # the schedule that started it, if one did
    tick_time: str = ""  # the tick it is for
    deliveries: list[DeliveryRecord] = field(default_factory=list)  # its webhooks'
    sources: list[str] = field(default_factory=list)  # its databases' names, in request order


@dataclass(frozen=True)
class WebhookPolicy:
    """What webhooks a request may name: none without a signing secret; https only unless
    CATALOG_WEBHOOK_ALLOW_HTTP."""

    secret_set: bool = False
    allow_http: bool = False

    def problems(self, webhooks: Sequence[Webhook], name: str) -> list[tuple[str, str]]:
        if webhooks and not self.secret_set:
            return [(name, "webhooks need CATALOG_WEBHOOK_SECRET set on the orchestrator")]
        return webhook_problems(webhooks, name, allow_http=self.allow_http)
