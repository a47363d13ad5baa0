"""Page storage: the run's timestamp, and an agent's page and its data written to the store.

Pages are write-once (a repeated step finds its page in place and keeps it). The data goes
first: a page in place means its data is in place too, or never will be.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from dbos import DBOS

from services.common.clients import LeaseLost, SandboxClientError
from services.common.logging import log_fields
from services.common.redaction import Redactor
from services.orchestrator.object_names import make_timestamp, object_name
from services.orchestrator.page_data import read_page_data
from services.orchestrator.run_state import Step
from services.orchestrator.sources import open_sources, source_secrets
from services.orchestrator.steps.agent_runs import AgentInput, finished_page, runner_retries
from services.orchestrator.steps.runtime import logged, runtime, sandboxes, storage_call, store
from services.orchestrator.storage import Store


@dataclass(frozen=True)
class PageInput:
    run: AgentInput  # the finished agent run whose page this is
    s3_prefix: str  # where the run's pages go
    timestamp: str  # the run's timestamp (fix_timestamp)
    step: Step  # the run's step, named in a storage failure


@dataclass(frozen=True)
class StoredPage:
    uri: str  # the page; "" when the runner no longer had it
    data_uri: str  # the JSON beside it (saying why, when the sandbox could not export it)
    # The sandbox's lease had ended before the data was exported (an orchestrator down longer
    # than the lease's time to live): neither the data nor the page was stored.
    data_lost: bool = False


_log = logging.getLogger(__name__)


@DBOS.step(name="fix_timestamp")
async def fix_timestamp(s3_prefix: str) -> str:
    """The run's timestamp, recorded once, so keys stay the same across recovery; never one
    this process gave out already, nor one that names a run under the prefix."""
    rt = runtime()
    listed = store(rt.settings, s3_prefix).list_runs
    taken = set(
        await storage_call(
            listed, "list earlier runs", "STORAGE_UNAVAILABLE", Step.ACQUIRING_SANDBOX
        )
    )
    return _timestamp_at(rt.clock.next_ms(lambda ms: _timestamp_at(ms) in taken))


def _timestamp_at(epoch_ms: int) -> str:
    return make_timestamp(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


async def store_page(request: PageInput) -> StoredPage:
    """The step `store_page`, retried like the run: the page comes from the runner, which may
    be restarting."""
    return await DBOS.run_step_async(runner_retries("store_page"), _store_page, request)


async def _store_page(request: PageInput) -> StoredPage:
    """Write the agent's data, then its page; return where they are. Neither is written when
    the data is lost with the sandbox's lease: a page always comes with its data."""
    rt = runtime()
    agent_name = request.run.agent_name
    async with logged("store_page", agent=agent_name):
        html = await finished_page(rt, request.run)
        if not html:
            return StoredPage("", "")
        pages = store(rt.settings, request.s3_prefix)
        data_uri = await _store_data(pages, request)
        if data_uri is None:
            return StoredPage("", "", data_lost=True)
        name = object_name(agent_name, "html")
        uri = await _write(pages, request, name, html.encode(), "text/html; charset=utf-8")
    return StoredPage(uri, data_uri)


async def _store_data(pages: Store, request: PageInput) -> str | None:
    """Write the page's data; its URI, None when the sandbox's lease has ended and the data is
    not in the store already (from a try of this step cut off by a crash after writing it).
    When the sandbox could not export it (its database went away, say), the data written says
    so, so that a page never stands without its JSON."""
    name = object_name(request.run.agent_name, "json")
    try:
        data = await _page_data(request.run)
    except LeaseLost as exc:
        listed = functools.partial(pages.list_run_objects, request.timestamp)
        what = "list the run's pages"
        if name in await storage_call(listed, what, "STORAGE_UNAVAILABLE", request.step):
            return pages.uri(request.timestamp, name)
        _warn("page not stored: its data was lost with the sandbox's lease", request.run, exc)
        return None
    return await _write(pages, request, name, data, "application/json")


async def _page_data(run: AgentInput) -> bytes:
    """The page's data from the sandbox, or (logged) a record of why the sandbox could not
    give it; LeaseLost when the lease is gone (its export would need the session's records)."""
    rt = runtime()
    secrets = source_secrets(open_sources(rt.sealer, run.sealed_conn))
    context = json.loads(run.context_json)
    try:
        async with sandboxes(rt.settings) as client:
            return await read_page_data(
                client, run.lease.lease_id, run.agent_name, context, secrets
            )
    except LeaseLost:
        raise
    except (SandboxClientError, ValueError) as exc:
        _warn("page data not exported", run, exc)
        why = Redactor(secrets)(str(exc))[:2000]
        unexported = {"format": 1, "kind": run.agent_name, "export_error": why}
        return json.dumps(unexported).encode()


def _warn(event: str, run: AgentInput, exc: Exception) -> None:
    log_fields(
        _log,
        logging.WARNING,
        event,
        workflow_id=DBOS.workflow_id,
        agent=run.agent_name,
        error=str(exc)[:300],
    )


async def _write(
    pages: Store, request: PageInput, name: str, body: bytes, content_type: str
) -> str:
    async def write() -> str:
        written = await pages.write_once(request.timestamp, name, body, content_type)
        log_fields(
            _log,
            logging.INFO,
            "page written" if written.created else "page already written; kept",
            workflow_id=DBOS.workflow_id,
            key=written.key,
            size=written.size,
        )
        return written.uri

    return await storage_call(write, f"write {name}", "OUTPUT_WRITE_FAILED", request.step)
