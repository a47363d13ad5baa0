"""The UI's read model: runs from DBOS, per-run figures from storage, kept in this process.

Why in-process and not a table: every input is immutable once written. A finished workflow's
state no longer changes, and run objects are write-once (storage.py), so a cache keyed by the
workflow id, or by `(prefix, timestamp)`, can never go stale and needs no invalidation,
migration or second database. After a restart it refills lazily, from the same sources, on
the first visit of each page: a prefix of 1,000 runs of 50 tables is read once (a few seconds
from S3), then every page reads memory. What stays volatile is re-read: unfinished runs from
DBOS at most once a second, and a prefix's listing of stored runs at most every 10 seconds.

Runs written before the UI (or by another system database, such as the demo's) are found in
storage: every prefix with runs under the file roots (CATALOG_FILE_ROOTS, else ./catalogs),
plus the prefixes listed in CATALOG_UI_PREFIXES (for S3).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from dbos import DBOS

from services.common.errors import NotFound, ServiceError
from services.orchestrator.catalog_models import CatalogView
from services.orchestrator.object_names import is_timestamp, parse_prefix
from services.orchestrator.page_data import summary_counts
from services.orchestrator.service import CatalogOperations
from services.orchestrator.storage import Store, open_store
from services.orchestrator.tenants import DEFAULT_TENANT, Tenant
from services.orchestrator.ui.figures import RunFigures, catalog_figures
from services.orchestrator.workflows import WORKFLOW_NAME

DONE = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
STORED = "STORED"  # a run found only in storage: its pages exist, its workflow is not known here
_RUNS_TTL_S = 1.0
_LISTING_TTL_S = 10.0
_MAX_RUNS = 5000
_READS = 16  # storage reads at once while indexing


@dataclass(frozen=True)
class RunRow:
    prefix: str
    timestamp: str  # "" while a run is queued
    catalog_id: str  # "" for a run found only in storage
    status: str
    view: CatalogView | None

    @property
    def duration_s(self) -> float | None:
        if self.view is None or self.status not in DONE:
            return None
        return (self.view.update_time - self.view.create_time).total_seconds()

    @property
    def tokens(self) -> int:
        if self.view is None:
            return 0
        return sum(u.usage.total for u in self.view.agent_usage)


class ReadModel:
    def __init__(
        self,
        operations: CatalogOperations,
        file_roots: Sequence[str],
        extra_prefixes: Sequence[str] = (),
        *,
        tenanted: bool = False,
    ) -> None:
        self.operations = operations
        self._roots = tuple(os.path.realpath(r) for r in file_roots)
        self._extra = tuple(parse_prefix(p).uri for p in extra_prefixes)
        self._tenanted = tenanted
        self._views: dict[str, CatalogView] = {}  # by workflow id: finished runs only
        self._runs: dict[str, tuple[float, list[CatalogView]]] = {}  # by tenant
        self._listings: dict[str, tuple[float, list[str]]] = {}  # by prefix
        self._figures: dict[tuple[str, str], RunFigures] = {}
        self._documents: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._lock = asyncio.Lock()

    # --- runs ---------------------------------------------------------------------------------
    async def runs(self, tenant: Tenant) -> list[CatalogView]:
        """The tenant's runs in DBOS, newest first (refreshed at most once a second)."""
        cached = self._runs.get(tenant.name)
        if cached and time.monotonic() - cached[0] < _RUNS_TTL_S:
            return cached[1]
        async with self._lock:
            everyone = tenant.name == DEFAULT_TENANT and not self._tenanted
            found = await DBOS.list_workflows_async(
                name=WORKFLOW_NAME,
                user=None if everyone else tenant.name,
                limit=_MAX_RUNS,
                sort_desc=True,
                load_input=False,
                load_output=False,
            )
            views = [await self._view(s.workflow_id, tenant) for s in found]
            fresh = [v for v in views if v is not None]
            self._runs[tenant.name] = (time.monotonic(), fresh)
            return fresh

    async def _view(self, catalog_id: str, tenant: Tenant) -> CatalogView | None:
        if catalog_id in self._views:
            return self._views[catalog_id]
        try:
            view = await self.operations.get(catalog_id, tenant)
        except NotFound:
            return None
        if view.status in DONE:
            self._views[catalog_id] = view
        return view

    async def run(self, catalog_id: str, tenant: Tenant) -> CatalogView:
        """One run, fresh unless finished; NotFound for another tenant's."""
        view = await self._view(catalog_id, tenant)
        if view is None:
            raise NotFound(f"no catalog has the id {catalog_id!r}")
        return view

    def forget(self, catalog_id: str) -> None:
        self._runs.clear()
        self._views.pop(catalog_id, None)

    # --- prefixes -----------------------------------------------------------------------------
    async def prefixes(self, tenant: Tenant) -> list[str]:
        """Every prefix the tenant may see: its runs' and the stored ones it may write."""
        found = {v.s3_prefix for v in await self.runs(tenant) if v.s3_prefix}
        stored = await asyncio.to_thread(self._stored_prefixes)
        found |= {p for p in stored if visible(tenant, p)}
        return sorted(found)

    def _stored_prefixes(self) -> list[str]:
        found = list(self._extra)
        for root in self._roots:
            for folder, children, _ in _walk(root, depth=4):
                if any(is_timestamp(c) for c in children):
                    found.append(f"file://{folder}")
        return found

    async def prefix_runs(self, tenant: Tenant, prefix: str) -> list[RunRow]:
        """The prefix's runs, newest first: DBOS's, and those only storage knows."""
        views = [v for v in await self.runs(tenant) if v.s3_prefix == prefix]
        rows = [RunRow(prefix, v.timestamp, v.catalog_id, v.status, v) for v in views]
        known = {v.timestamp for v in views}
        rows += [
            RunRow(prefix, ts, "", STORED, None)
            for ts in await self.listing(prefix)
            if ts not in known
        ]
        return sorted(rows, key=lambda r: (r.timestamp or "9", r.catalog_id), reverse=True)

    async def listing(self, prefix: str) -> list[str]:
        cached = self._listings.get(prefix)
        if cached and time.monotonic() - cached[0] < _LISTING_TTL_S:
            return cached[1]
        try:
            runs = await store(prefix).list_runs()
        except ServiceError:
            runs = []
        self._listings[prefix] = (time.monotonic(), runs)
        return runs

    # --- figures and documents ----------------------------------------------------------------
    async def figures(self, prefix: str, timestamps: Sequence[str]) -> dict[str, RunFigures]:
        """Each run's figures, indexed from storage the first time a run is asked for."""
        missing = [t for t in timestamps if t and (prefix, t) not in self._figures]
        if missing:
            limit = asyncio.Semaphore(_READS)

            async def index(timestamp: str) -> None:
                async with limit:
                    self._figures[prefix, timestamp] = await self._index(prefix, timestamp)

            await asyncio.gather(*(index(t) for t in missing))
        return {t: self._figures[prefix, t] for t in timestamps if (prefix, t) in self._figures}

    async def _index(self, prefix: str, timestamp: str) -> RunFigures:
        opened = store(prefix)
        tables, counts = {}, {}
        # no catalog data (a failed run, or one from before the JSON): no figures
        with contextlib.suppress(ServiceError):
            tables = catalog_figures(await opened.read(timestamp, "catalog.json"))
        with contextlib.suppress(ServiceError):
            counts = summary_counts(await opened.read(timestamp, "summary.json"))
        return RunFigures(tables, counts)

    async def document(self, prefix: str, timestamp: str, name: str) -> bytes:
        """A stored object (a few recent ones kept: the table and compare pages reread them)."""
        key = (prefix, timestamp, name)
        if key in self._documents:
            self._documents.move_to_end(key)
            return self._documents[key]
        body = await store(prefix).read(timestamp, name)
        self._documents[key] = body
        while len(self._documents) > 32:
            self._documents.popitem(last=False)
        return body


def store(prefix: str) -> Store:
    return open_store(parse_prefix(prefix))


def visible(tenant: Tenant, prefix: str) -> bool:
    try:
        tenant.check_prefix(parse_prefix(prefix))
    except ServiceError:
        return False
    return True


def _walk(root: str, depth: int) -> list[tuple[str, list[str], None]]:
    """Folders under `root` to `depth` levels, with their children; a prefix's run folders
    are not descended into."""
    found: list[tuple[str, list[str], None]] = []
    try:
        children = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
    except OSError:
        return found
    found.append((root, children, None))
    if depth > 0 and not any(is_timestamp(c) for c in children):
        for child in children:
            if not child.startswith("."):
                found += _walk(os.path.join(root, child), depth - 1)
    return found
