"""Staging history: the runs' pages and data copied into the sandbox for an agent that reads
history. The current run's folder is one of them, with the pages its agents wrote so far.

A copy is read only towards the store whatever the store allows, and needs no storage
credentials inside the sandbox. Each file goes in base64 chunks through the toolkit's
`stage_file`, newest run first, until CATALOG_HISTORY_MAX_BYTES is spent; each object's size
comes from the run's listing, and one over what is left of the budget is skipped unread.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from dbos import DBOS

from services.common.cells import call_cell, read_result
from services.common.clients import SandboxClient
from services.common.errors import Unavailable
from services.orchestrator.run_state import Step
from services.orchestrator.steps.runtime import logged, runtime, sandboxes, storage_call, store
from services.orchestrator.steps.sandbox import LeaseRef
from services.orchestrator.storage import Store

_T = TypeVar("_T")
_CHUNK_BYTES = 256 * 1024
_FOLDER = "history"


@dataclass(frozen=True)
class HistoryInput:
    lease: LeaseRef  # the sandbox the agent will run in, freshly reset
    s3_prefix: str  # whose earlier runs to copy


@DBOS.step(name="stage_history", preemptible=True)
async def stage_history(request: HistoryInput) -> str:
    """Copy the runs' pages into the sandbox, newest first (this run's among them); return
    the folder the agent reads."""
    rt = runtime()
    runs_store = store(rt.settings, request.s3_prefix)
    lease_id = request.lease.lease_id
    async with logged("stage_history"), sandboxes(rt.settings) as client:
        root = str(await _call(client, lease_id, call_cell("make_folder", name=_FOLDER), 30))
        runs = await _stored(runs_store.list_runs, "list earlier runs")
        # The last history_runs runs; with fewer stored, all of them (a negative start would
        # count from the end and keep only the newest few).
        newest = runs[max(0, len(runs) - rt.settings.history_runs) :][::-1]
        files = history_files(runs_store, newest, rt.settings.history_max_bytes)
        async for path, body in files:
            await _upload(client, lease_id, f"{root}/{path}", body)
        return root


async def history_files(
    runs_store: Store, runs: list[str], budget: int
) -> AsyncIterator[tuple[str, bytes]]:
    """The files to copy (`{timestamp}/{name}`, body), run by run in the order given, each
    run's data before its pages (the comparison needs it, the pages are for reading). An
    object is read only when its listed size fits what is left of the budget."""
    for timestamp in runs:
        listed = functools.partial(runs_store.run_object_sizes, timestamp)
        sizes = await _stored(listed, "list a run's pages")
        for name in sorted(sizes, key=lambda n: not n.endswith(".json")):
            if sizes[name] > budget:
                continue
            read = functools.partial(runs_store.read, timestamp, name)
            body = await _stored(read, f"read {name}")
            if len(body) > budget:  # grown since the listing (not ours: ours are write-once)
                continue
            budget -= len(body)
            yield f"{timestamp}/{name}", body


async def _stored(call: Callable[[], Awaitable[_T]], what: str) -> _T:
    return await storage_call(call, what, "STORAGE_UNAVAILABLE", Step.RESETTING_SANDBOX)


async def _upload(client: SandboxClient, lease_id: str, path: str, body: bytes) -> None:
    for start in range(0, max(len(body), 1), _CHUNK_BYTES):
        chunk = base64.b64encode(body[start : start + _CHUNK_BYTES]).decode()
        cell = call_cell("stage_file", path=path, chunk=chunk, append=start > 0)
        await _call(client, lease_id, cell, 60, f"could not copy {path} into the sandbox")


async def _call(
    client: SandboxClient,
    lease_id: str,
    cell: str,
    timeout_s: float,
    failed: str = "could not make a folder in the sandbox",
) -> object:
    execution = await client.execute(lease_id, cell, timeout_s=timeout_s)
    try:
        return read_result(execution.whole_stdout())
    except ValueError as exc:
        raise Unavailable(failed) from exc
