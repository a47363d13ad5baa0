"""Database relay benchmark: what a sandbox pays for reaching PostgreSQL through the manager.

From this host process, against the PostgreSQL the tests use (CATALOG_TEST_POSTGRES, default
postgresql://postgres@127.0.0.1:5432/postgres), on one open connection each (as a cell holds
`con`), `SELECT 1` round trips, 50 warm-up then 500 timed:
- peer.direct_db_roundtrip_p50_ms: straight to the server over TCP;
- sandbox.db_relay_roundtrip_p50_ms: through the sandbox manager's relay as a lease sets it up
  (services/sandbox_manager/db_relay.py: a per-lease pgbouncer on a Unix socket in the relay
  folder, which dials the server), the path a sandbox's kernel takes;
- sandbox.db_relay_overhead_ms: the second median minus the first;
- sandbox.db_relay_connect_overhead_ms: the same for opening a connection and running its first
  `SELECT 1` (median of 30): pgbouncer adds its own login to the server's, but libpq skips
  its GSSAPI probe on a Unix socket, which it makes over TCP, so this may come out below 0.
Prints one JSON object a line: {"name", "value", "unit"}.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import psycopg
from benchlib import emit

from services.sandbox_manager.db_relay import DatabaseRelay, make_folders, remove_folders

POSTGRES_URL = os.environ.get(
    "CATALOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WARMUP, ROUNDS, CONNECTS = 50, 500, 30


def roundtrip_ms(connect: Callable[[], psycopg.Connection]) -> float:
    with connect() as conn:
        for _ in range(WARMUP):
            conn.execute("SELECT 1").fetchone()
        times = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def connect_ms(connect: Callable[[], psycopg.Connection]) -> float:
    times = []
    for _ in range(CONNECTS):
        started = time.perf_counter()
        with connect() as conn:  # pgbouncer may log in to the server only at the first query
            conn.execute("SELECT 1").fetchone()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def make_relay_folders() -> tuple[Path, Path, Path]:
    root = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    root.chmod(0o755)  # a root manager's pgbouncer runs as nobody and must get in
    return (root, *make_folders(root, f"bench-{uuid.uuid4().hex[:8]}.relay"))


def remove_relay_folders(root: Path, folder: Path, private: Path) -> None:
    remove_folders(folder, private)
    root.rmdir()


async def main() -> None:
    root, folder, private = make_relay_folders()
    relay = DatabaseRelay(folder, str(folder), "pgbouncer", private)
    try:
        dsn = await relay.open(POSTGRES_URL, 60)
        query = dict(parse_qsl(urlsplit(dsn).query))
        user = urlsplit(dsn).username or ""
        database = urlsplit(dsn).path.lstrip("/")

        def relayed() -> psycopg.Connection:
            return psycopg.connect(
                host=query["host"], port=query["port"], user=user, dbname=database
            )

        def direct() -> psycopg.Connection:
            return psycopg.connect(POSTGRES_URL)

        direct_rt = await asyncio.to_thread(roundtrip_ms, direct)
        relay_rt = await asyncio.to_thread(roundtrip_ms, relayed)
        direct_connect = await asyncio.to_thread(connect_ms, direct)
        relay_connect = await asyncio.to_thread(connect_ms, relayed)
    finally:
        await relay.close()
        remove_relay_folders(root, folder, private)
    emit("peer.direct_db_roundtrip_p50_ms", direct_rt, "ms")
    emit("sandbox.db_relay_roundtrip_p50_ms", relay_rt, "ms")
    emit("sandbox.db_relay_overhead_ms", relay_rt - direct_rt, "ms")
    emit("sandbox.db_relay_connect_overhead_ms", relay_connect - direct_connect, "ms")


if __name__ == "__main__":
    asyncio.run(main())
