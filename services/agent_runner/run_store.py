"""Finished agent runs on disk, so a restarted runner answers a known run id with the result it
stored instead of running (and paying for) the agent again.

The orchestrator's step may run again after a crash of both services; without this the runner
would have forgotten the run, and the second agent's page could differ from the first's. One
SQLite file (``runs.sqlite`` under CATALOG_AGENT_STATE_DIR) holds one row per finished run: its
id, when it finished (wall-clock time, so its age survives a restart), and the final
RunAgentResponse as protobuf bytes. Only that final result is kept, never the run's events
(code, tool output): its page and stop detail are redacted before the result is made
(service.py), as they are before they reach the orchestrator's tables. The file is the
runner's user's only (0600). Rows older than the retention, or beyond the count, are deleted
at each write, like the registry's runs in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from catalog.v1 import agent_pb2 as pb

FILE_NAME = "runs.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs ("
    " run_id TEXT PRIMARY KEY, finished_at REAL NOT NULL, response BLOB NOT NULL)"
)


class RunStore:
    """The finished runs of a runner (runners on one host may share the file: SQLite locks it)."""

    def __init__(self, folder: Path, retention_s: float, max_runs: int) -> None:
        self.path = folder / FILE_NAME
        self._retention_s = retention_s
        self._max_runs = max_runs
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.touch(mode=0o600, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    async def load(self, run_id: str) -> pb.RunAgentResponse | None:
        """The stored final response of `run_id`, unless unknown or past its retention."""
        found = await asyncio.to_thread(self._load, run_id)
        return None if found is None else pb.RunAgentResponse.FromString(found)

    async def save(self, run_id: str, final: pb.RunAgentResponse) -> None:
        await asyncio.to_thread(self._save, run_id, final.SerializeToString())

    def _load(self, run_id: str) -> bytes | None:
        oldest = time.time() - self._retention_s
        with self._connect() as db:
            row = db.execute(
                "SELECT response FROM runs WHERE run_id = ? AND finished_at >= ?",
                (run_id, oldest),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def _save(self, run_id: str, payload: bytes) -> None:
        now = time.time()
        with self._connect() as db, db:  # the second `db`: one transaction, committed
            db.execute(
                "INSERT OR REPLACE INTO runs (run_id, finished_at, response) VALUES (?, ?, ?)",
                (run_id, now, payload),
            )
            db.execute("DELETE FROM runs WHERE finished_at < ?", (now - self._retention_s,))
            db.execute(
                "DELETE FROM runs WHERE run_id NOT IN"
                " (SELECT run_id FROM runs ORDER BY finished_at DESC, rowid DESC LIMIT ?)",
                (self._max_runs,),
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per call: calls come from worker threads, and opening one is cheap.
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA synchronous=FULL")  # a stored result survives a power cut too
            yield db
        finally:
            db.close()
