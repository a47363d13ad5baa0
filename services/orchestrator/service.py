"""What both APIs do, in domain terms: validate and start a catalog, read, list, watch, cancel.

The gRPC servicer and the HTTP app only translate to and from this module. A catalog's id is
its DBOS workflow id: the caller's idempotency key when given (`{tenant}@{key}` for a named
tenant, so tenants never share keys), so a retried start finds the run it already started
instead of starting a second one; the same key with other inputs is FAILED_PRECONDITION.

Every call names the caller's tenant: a run belongs to the tenant that started it (kept in the
workflow's input, and as its DBOS authenticated user for listing), and another tenant's run is
NotFound with the very message an unknown id gets.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from dbos import (
    DBOS,
    DBOSContextSetAuth,
    PropagateOtelContext,
    Queue,
    SetWorkflowID,
    WorkflowStatus,
)

from services.common import paging
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.source_names import DEFAULT
from services.common.telemetry import tracing_enabled
from services.orchestrator.catalog_models import CatalogView, StartRequest, WebhookPolicy
from services.orchestrator.deliveries import delivery_records, start_deliveries
from services.orchestrator.object_names import OutputPrefix, parse_prefix
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.request_checks import (
    Problems,
    both_forms_problem,
    conn_problems,
    count_problem,
    source_problems,
    table_problems,
)
from services.orchestrator.run_state import (
    ProgressEvent,
    RunError,
    RunFinished,
    RunState,
    Step,
)
from services.orchestrator.sealing import Sealer
from services.orchestrator.sources import open_sources, run_tables, seal_sources
from services.orchestrator.steps.runtime import PROGRESS_STREAM
from services.orchestrator.tenants import DEFAULT_TENANT, Tenant
from services.orchestrator.webhook_spec import Webhook
from services.orchestrator.workflows import (
    STATE_EVENT,
    WORKFLOW_NAME,
    CatalogInput,
    catalog_workflow,
)

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_STATUS = {
    "ENQUEUED": "QUEUED",
    "DELAYED": "QUEUED",
    "PENDING": "RUNNING",
    "SUCCESS": "SUCCEEDED",
    "ERROR": "FAILED",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "FAILED",
    "CANCELLED": "CANCELLED",
}
_DBOS_STATUS = {
    "QUEUED": ["ENQUEUED", "DELAYED"],
    "RUNNING": ["PENDING"],
    "SUCCEEDED": ["SUCCESS"],
    "FAILED": ["ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"],
    "CANCELLED": ["CANCELLED"],
}


def default_file_roots() -> tuple[str, ...]:
    """Where file:// prefixes may point when CATALOG_FILE_ROOTS is unset: ./catalogs."""
    return (os.path.join(os.getcwd(), "catalogs"),)


class CatalogOperations:
    """`file_roots` bound file:// prefixes (default_file_roots() when empty); `tenanted` says
    whether named tenants exist, so `default` lists only its own runs."""

    def __init__(
        self,
        queue: Queue,
        sealer: Sealer,
        max_tables: int,
        file_roots: Sequence[str] = (),
        *,
        pipeline: Pipeline,
        tenanted: bool = False,
        webhooks: WebhookPolicy | None = None,
        max_sources: int = 8,
    ) -> None:
        self._webhooks = webhooks or WebhookPolicy()
        self._max_sources = max_sources
        self._queue = queue
        self._sealer = sealer
        self._pipeline = pipeline
        self._max_tables = max_tables
        # resolved (symlinks, ..) as the prefixes are, so a link cannot lead out of a root
        roots = file_roots or default_file_roots()
        self._file_roots = tuple(os.path.join(os.path.realpath(r), "") for r in roots)
        self._tenanted = tenanted

    def check(self, request: StartRequest, tenant: Tenant, field_prefix: str = "") -> str:
        """Validate a request as StartCatalog does (violations' fields prefixed, e.g. for a
        schedule's request); returns the normalised prefix."""
        try:
            prefix = self._validate(request)
        except InvalidArgument as exc:
            named = [(field_prefix + name, why) for name, why in exc.field_violations]
            raise InvalidArgument(exc.message, field_violations=named) from exc
        tenant.check_prefix(parse_prefix(prefix))
        return prefix

    def webhook_problems(self, webhooks: Sequence[Webhook], name: str) -> list[tuple[str, str]]:
        return self._webhooks.problems(webhooks, name)

    def seal_sources(self, request: StartRequest) -> str:
        """Every DSN of the request in one sealed token (sources.seal_sources)."""
        return seal_sources(self._sealer, request.run_sources())

    def stored_dsns(self, sealed: str) -> dict[str, str]:
        """name -> DSN of a token `seal_sources` made; {} for none."""
        return open_sources(self._sealer, sealed) if sealed else {}

    async def status_of(self, catalog_id: str) -> str:
        """A run's status as CatalogView shows it ("" when there is no such run)."""
        status = await DBOS.get_workflow_status_async(catalog_id)
        return _STATUS.get(status.status, "RUNNING") if status else ""

    async def start(self, request: StartRequest, tenant: Tenant) -> str:
        prefix = self.check(request, tenant)
        key = request.idempotency_key
        catalog_id = uuid.uuid4().hex if not key else _catalog_id(tenant.name, key)
        agents = self._pipeline.plan(request.agents)
        digest = self._digest(request, prefix, tenant, agents)
        sources = request.run_sources()
        workflow_input = CatalogInput(
            sealed_conn=seal_sources(self._sealer, sources),
            tables=run_tables(sources),
            s3_prefix=prefix,
            allow_writable=request.allow_writable,
            tenant=tenant.name,
            request_digest=digest,
            agents=agents,
            max_cost_usd=request.max_cost_usd,
            sources=tuple(s.name for s in sources),
            max_tables=self._max_tables,
        )
        with SetWorkflowID(catalog_id), DBOSContextSetAuth(tenant.name, None), _traced():
            handle = await self._queue.enqueue_async(catalog_workflow, workflow_input)
        if key:  # the key may have named an earlier run: it must have been this request
            existing = _input(await DBOS.get_workflow_status_async(handle.workflow_id))
            if existing is not None and existing.request_digest not in ("", digest):
                raise FailedPrecondition(
                    f"the idempotency key {key!r} was used for a catalog request with other "
                    "inputs; send the same inputs to find that run, or use a new key"
                )
        await start_deliveries(handle.workflow_id, tuple(request.webhooks))
        return handle.workflow_id

    def _digest(
        self, request: StartRequest, prefix: str, tenant: Tenant, agents: Sequence[str]
    ) -> str:
        """A keyed hash of what the run does: the DSN is never stored, even hashed plainly.
        The agents count when the request named them (a request without them hashes as it
        did before pipelines, so a key reused across the upgrade still finds its run); so do
        the sources, each with its name, DSN and tables (the one source "default" hashes as
        the shorthand did before sources)."""
        sources = request.run_sources()
        inputs: list[object]
        if [s.name for s in sources] == [DEFAULT]:
            inputs = [sources[0].dsn, list(sources[0].tables), prefix, request.allow_writable]
        else:
            named = [[s.name, s.dsn, list(s.tables)] for s in sources]
            inputs = [{"sources": named}, prefix, request.allow_writable]
        if request.agents:
            inputs.append(list(agents))
        if request.max_cost_usd:  # only when set, so digests of earlier runs still match
            inputs.append(request.max_cost_usd)
        return self._sealer.digest(json.dumps([tenant.name, *inputs]).encode())

    def _validate(self, request: StartRequest) -> str:
        """Every problem at once, each with its field; returns the normalised prefix."""
        problems = self._database_problems(request)
        unknown = self._pipeline.unknown(request.agents)
        if unknown:
            named = ", ".join(repr(name[:40]) for name in unknown)
            known = ", ".join(sorted(self._pipeline.prompts))
            problems.append(("agents", f"no such agent: {named}; the agents are {known}"))
        if request.idempotency_key and not _KEY.match(request.idempotency_key):
            problems.append(
                ("idempotency_key", "use 1-128 letters, digits and . _ : -, starting alphanumeric")
            )
        problems += self._webhooks.problems(request.webhooks, "webhooks")
        if not (math.isfinite(request.max_cost_usd) and request.max_cost_usd >= 0):
            problems.append(("max_cost_usd", "a number of US dollars, 0 (no limit) or more"))
        prefix = ""
        try:
            parsed = parse_prefix(request.s3_prefix)
            prefix = parsed.uri
            problems += self._root_problems(parsed)
        except InvalidArgument as exc:
            problems += list(exc.field_violations)
        if problems:
            named = "; ".join(f"{name}: {why}" for name, why in problems)
            raise InvalidArgument(
                f"the catalog request is invalid: {named}", field_violations=problems
            )
        return prefix

    def _root_problems(self, prefix: OutputPrefix) -> list[tuple[str, str]]:
        """A file:// prefix must lie under a root, once symlinks and `..` are resolved."""
        if prefix.scheme != "file":
            return []
        resolved = os.path.join(os.path.realpath(prefix.path), "")
        if any(resolved.startswith(root) for root in self._file_roots):
            return []
        roots = ", ".join(r.rstrip("/") for r in self._file_roots)
        return [("s3_prefix", f"file:// prefixes must lie under one of: {roots}")]

    def _database_problems(self, request: StartRequest) -> Problems:
        """`sources`, or the shorthand `db_conn_string` with `tables`: never both."""
        tables = request.tables
        if request.sources:
            both = both_forms_problem(request.db_conn_string, tables)
            sources = request.sources
            return both or source_problems(sources, self._max_sources, self._max_tables)
        many = count_problem(len(tables), self._max_tables, "tables")
        return conn_problems(request.db_conn_string) + (many or table_problems(tables))

    async def get(self, catalog_id: str, tenant: Tenant) -> CatalogView:
        status = await DBOS.get_workflow_status_async(catalog_id)
        if status is None or status.name != WORKFLOW_NAME or _owner(status) != tenant.name:
            raise NotFound(f"no catalog has the id {catalog_id!r}")
        return await _view(status)

    async def list(
        self,
        tenant: Tenant,
        page_size: int,
        page_token: str,
        status: str = "",
        schedule_id: str = "",
    ) -> tuple[list[CatalogView], str]:
        offset = paging.page_offset(page_token, f"{status}/{schedule_id}")
        size = paging.page_size(page_size, 50, 200)
        everyone = tenant.name == DEFAULT_TENANT and not self._tenanted  # runs from before too
        found = await DBOS.list_workflows_async(
            name=WORKFLOW_NAME,
            user=None if everyone else tenant.name,
            status=_DBOS_STATUS.get(status),
            limit=size + 1,
            offset=offset,
            sort_desc=True,
            load_output=False,
            workflow_id_prefix=f"{schedule_id}@" if schedule_id else None,
        )
        views = [await _view(s) for s in found[:size]]
        more = len(found) > size
        return views, (paging.page_token(offset + size, f"{status}/{schedule_id}") if more else "")

    async def watch(
        self, catalog_id: str, tenant: Tenant
    ) -> AsyncIterator[ProgressEvent | CatalogView]:
        """The run's progress events as they happen, then its final state."""
        await self.get(catalog_id, tenant)
        async for event in DBOS.read_stream_async(catalog_id, PROGRESS_STREAM):
            if not isinstance(event, RunFinished):
                yield event
        yield await self.get(catalog_id, tenant)

    async def cancel(self, catalog_id: str, tenant: Tenant) -> CatalogView:
        await self.get(catalog_id, tenant)
        await DBOS.cancel_workflow_async(catalog_id)
        return await self.get(catalog_id, tenant)


def _traced() -> contextlib.AbstractContextManager[object]:
    """With tracing on, the run joins the caller's trace (DBOS keeps the context with it, so
    a recovered run stays on it); off, nothing."""
    return PropagateOtelContext() if tracing_enabled() else contextlib.nullcontext()


def _catalog_id(tenant: str, key: str) -> str:
    # '@' is in neither a key nor a tenant name, so no two tenants' ids can meet
    return key if tenant == DEFAULT_TENANT else f"{tenant}@{key}"


def _owner(status: WorkflowStatus) -> str:
    requested = _input(status)
    return requested.tenant if requested is not None else DEFAULT_TENANT


async def _view(status: WorkflowStatus) -> CatalogView:
    published = await DBOS.get_event_async(status.workflow_id, STATE_EVENT, timeout_seconds=0)
    requested = _input(status)
    state = RunState.from_event(published) or RunState(
        list(requested.tables) if requested else [],
        requested.s3_prefix if requested else "",
        step=Step.UNSPECIFIED,
    )
    error = state.error
    if error is None and status.status in ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"):
        error = RunError("INTERNAL", "the run failed unexpectedly", Step.UNSPECIFIED)
    return CatalogView(
        catalog_id=status.workflow_id,
        status=_STATUS.get(status.status, "RUNNING"),
        current_step=state.step,
        tables=list(state.tables or (requested.tables if requested else [])),
        s3_prefix=state.s3_prefix or (requested.s3_prefix if requested else ""),
        timestamp=state.timestamp,
        outputs=list(state.outputs),
        agent_usage=list(state.usage),
        error=error,
        create_time=_time(status.created_at),
        update_time=_time(status.updated_at),
        agents=list(state.agents),
        current_agent=state.agent,
        cost_usd=state.cost_usd,
        schedule_id=requested.schedule_id if requested else "",
        tick_time=requested.tick_time if requested else "",
        deliveries=await delivery_records(status.workflow_id),
        sources=list(requested.sources or (DEFAULT,)) if requested else [],
    )


def _input(status: WorkflowStatus | None) -> CatalogInput | None:
    args = status.input["args"] if status is not None and status.input else ()
    first = args[0] if args else None
    return first if isinstance(first, CatalogInput) else None


def _time(epoch_ms: int | None) -> datetime:
    return datetime.fromtimestamp((epoch_ms or 0) / 1000, tz=UTC)
