"""The runner's store of finished runs is bounded: by count and by age, on disk and in memory."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

from catalog.v1 import agent_pb2 as pb

from services.agent_runner.run_store import RunStore
from services.agent_runner.runs import RunRegistry


def final(html: str) -> pb.RunAgentResponse:
    return pb.RunAgentResponse(result=pb.AgentResult(html=html))


async def test_the_oldest_runs_beyond_the_count_are_forgotten(tmp_path: Path) -> None:
    store = RunStore(tmp_path, retention_s=3600, max_runs=3)
    for n in range(5):
        await store.save(f"run-{n}", final(f"page {n}"))
    assert [await store.load(f"run-{n}") is None for n in range(5)] == [True, True] + [False] * 3
    assert (await store.load("run-4")) == final("page 4")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600  # pages are the runner's user's only


async def test_a_run_past_its_retention_is_not_answered_and_is_deleted(tmp_path: Path) -> None:
    store = RunStore(tmp_path, retention_s=60, max_runs=100)
    await store.save("old", final("old page"))
    with sqlite3.connect(store.path) as db:  # as if it had finished two minutes ago
        db.execute("UPDATE runs SET finished_at = ?", (time.time() - 120,))
    assert await store.load("old") is None
    await store.save("new", final("new page"))
    with sqlite3.connect(store.path) as db:
        assert [row[0] for row in db.execute("SELECT run_id FROM runs")] == ["new"]


async def test_the_registry_answers_a_stored_run_without_starting_it(tmp_path: Path) -> None:
    store = RunStore(tmp_path, retention_s=3600, max_runs=10)
    await store.save("done", final("stored page"))
    registry: RunRegistry[pb.RunAgentResponse] = RunRegistry(3600, 10, store)

    async def start(publish: object) -> pb.RunAgentResponse:
        raise AssertionError("a stored run must not start again")

    events = [event async for event in registry.attach("done", start)]
    assert events == [final("stored page")]
