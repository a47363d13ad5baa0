"""The relay a lease's database is reached through, on the host, with real PostgreSQL (through a
real pgbouncer) and MariaDB; the kernel's own connection code opens the DSNs it hands out."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from catalog_kernel.connections import open_read_only

from services.sandbox_manager.db_relay import (
    DatabaseRelay,
    make_folders,
    private_root,
    remove_folders,
    remove_leftovers,
)


@pytest.fixture
def relay_root() -> Iterator[Path]:
    """A parent for relay folders that a root manager's pgbouncer (run as nobody) can get
    through, which pytest's own tmp_path (mode 0700) is not."""
    root = Path(tempfile.mkdtemp(prefix="relay-test-"))
    root.chmod(0o755)
    yield root / "relay"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def relay(relay_root: Path) -> AsyncIterator[DatabaseRelay]:
    """A relay whose folder is seen at its own path (as if the test were the sandbox)."""
    folder, private = make_folders(relay_root, f"relaytest-{uuid.uuid4().hex[:8]}.s")
    relay = DatabaseRelay(folder, str(folder), "pgbouncer", private)
    yield relay
    await relay.close()
    remove_folders(folder, private)


async def test_postgres_goes_through_pgbouncer_and_the_dsn_has_no_password(
    relay: DatabaseRelay, postgres_table: tuple[str, str]
) -> None:
    server, schema = postgres_table
    with_password = server.replace("postgres@", "postgres:not-needed-here@", 1)
    dsn = await relay.open(with_password, 7)
    parts = urlsplit(dsn)
    assert parts.password is None and "not-needed-here" not in dsn and not parts.hostname
    assert sorted(os.listdir(relay.folder)) == [".s.PGSQL.5432"]
    con, info = await asyncio.to_thread(open_read_only, dsn, 7)
    assert (info.backend, info.read_only) == ("postgres", True)
    assert con.table("orders", database=schema).count().execute() == 1000
    with con.raw_sql("SHOW statement_timeout") as cursor:  # set by pgbouncer, not the kernel
        assert cursor.fetchone()[0] == "7s"
    con.disconnect()


async def test_mysql_goes_through_the_socket(
    relay: DatabaseRelay, mysql_table: tuple[str, str]
) -> None:
    server, database = mysql_table
    dsn = await relay.open(f"{server}/{database}", 30)
    assert not urlsplit(dsn).hostname and "unix_socket=" in dsn
    con, info = await asyncio.to_thread(open_read_only, dsn, 30)
    assert (info.backend, info.read_only) == ("mysql", True)

    def count() -> int:  # off the loop: the relay runs on it
        return int(con.table("orders").count().execute())

    assert await asyncio.to_thread(count) == 1000
    # The lease ends: the socket goes, and the open connection with it.
    await relay.close()
    assert os.listdir(relay.folder) == []
    with pytest.raises(Exception, match=r"(?i)lost connection|gone away"):
        await asyncio.to_thread(count)


async def test_duckdb_and_no_database_get_no_socket(relay: DatabaseRelay) -> None:
    assert await relay.open("duckdb:///data/x.duckdb", 30) == "duckdb:///data/x.duckdb"
    assert await relay.open("", 30) == ""
    assert os.listdir(relay.folder) == []


async def test_a_killed_manager_s_folders_and_pgbouncer_are_removed_at_the_next_start(
    relay_root: Path, postgres_table: tuple[str, str]
) -> None:
    manager_id = f"relaytest-{uuid.uuid4().hex[:8]}"
    root = relay_root
    folder, private = make_folders(root, f"{manager_id}.gone")
    relay = DatabaseRelay(folder, str(folder), "pgbouncer", private)
    await relay.open(postgres_table[0], 30)
    pid = int((private / "lease" / "pgbouncer.pid").read_text())
    # The manager dies here without closing anything; its next start finds the leftovers.
    removed = await asyncio.to_thread(remove_leftovers, root, manager_id, set())
    assert removed == 1 and not folder.exists() and not private.exists()
    for _ in range(100):
        if _state(pid) == "Z":  # gone, or a zombie only our own test process could reap
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the leftover pgbouncer still runs")
    assert not list(private_root().glob(f"catalog-dbrelay-{manager_id}.*"))


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except OSError:
        return "Z"
