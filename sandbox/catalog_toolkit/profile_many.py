"""Profile many tables: their catalog declarations read together, the tables a few at a time.

`profile_tables(con, tables, concurrency=4)` reads keys, comments and row estimates of all the
tables in one catalog query per kind and schema (metadata.read_many, cached on the connection),
then profiles the tables on `concurrency` threads, each with a connection of its own, since one
connection runs one query at a time:
- DuckDB: cursors of the session's connection (the same database, opened read only);
- PostgreSQL and MySQL: new connections with the session's own arguments (ibis keeps them to
  reconnect), each checked to be read only before it is used, and closed at the end.
A connection that cannot be opened or is not read only leaves fewer workers (at least the
session's own connection), never an unguarded one. Threads help because a profile mostly waits
for the database, which works on other cores (or other tables' rows) meanwhile.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from catalog_toolkit.database import Database, TableName
from catalog_toolkit.metadata import read_many
from catalog_toolkit.profile import DEFAULT_TIMEOUT_S, profile_table

DEFAULT_CONCURRENCY = 4
_CACHE = "_catalog_declared"  # metadata.read_many's cache on a connection


def profile_tables(
    con: Any, tables: list[str], *, concurrency: int = DEFAULT_CONCURRENCY, **options: Any
) -> list[dict[str, Any]]:
    """Profile each of `tables` as profile_table does (with its keyword `options`), up to
    `concurrency` at once; the profiles in the order of `tables`, each recorded. A table that
    cannot be profiled at all gives `{"table": ..., "error": ...}` in its place."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more, not {concurrency}")
    db = Database(con, float(options.get("timeout_s", DEFAULT_TIMEOUT_S)))
    names = []
    for table in tables:
        with contextlib.suppress(ValueError):  # profile_table reports a bad name itself
            names.append(TableName.parse(table))
    with contextlib.suppress(Exception):  # each profile records its own catalog error
        read_many(db, names)
    workers = min(concurrency, len(tables))
    if workers <= 1:
        return [_profile_or_error(con, table, options) for table in tables]
    with _connections(con, workers) as pool, ThreadPoolExecutor(pool.qsize()) as threads:
        return list(threads.map(lambda t: _profile_on(pool, t, options), tables))


def _profile_on(pool: queue.Queue[Any], table: str, options: dict[str, Any]) -> dict[str, Any]:
    con = pool.get()
    try:
        return _profile_or_error(con, table, options)
    finally:
        pool.put(con)


def _profile_or_error(con: Any, table: str, options: dict[str, Any]) -> dict[str, Any]:
    """A table that cannot be profiled at all (a bad name, no such table) does not stop the
    others: it gives `{"table", "error"}`."""
    try:
        return profile_table(con, table, **options)
    except Exception as exc:
        return {"table": table, "error": f"{type(exc).__name__}: {str(exc).strip()[:500]}"}


@contextlib.contextmanager
def _connections(con: Any, wanted: int) -> Iterator[queue.Queue[Any]]:
    """The session's connection and up to `wanted - 1` read-only siblings, closed at the end."""
    siblings: list[Any] = []
    try:
        for _ in range(wanted - 1):
            sibling = _sibling(con)
            if sibling is None:
                break
            siblings.append(sibling)
            # The declarations read above, shared (a dict's single operations are atomic).
            sibling.__dict__[_CACHE] = con.__dict__.setdefault(_CACHE, {})
        pool: queue.Queue[Any] = queue.Queue()
        for each in (con, *siblings):
            pool.put(each)
        yield pool
    finally:
        for sibling in siblings:
            with contextlib.suppress(Exception):
                sibling.disconnect()


def _sibling(con: Any) -> Any | None:
    """Another connection to the same database, read only, or None."""
    try:
        if con.name == "duckdb":
            import ibis

            return ibis.duckdb.from_connection(con.con.cursor())
        if con.name not in ("postgres", "mysql") or not getattr(con, "_can_reconnect", False):
            return None
        sibling = type(con)(*con._con_args, **con._con_kwargs)
        sibling.reconnect()
    except Exception:
        return None
    if _read_only(sibling):
        return sibling
    with contextlib.suppress(Exception):
        sibling.disconnect()
    return None


def _read_only(con: Any) -> bool:
    db = Database(con, DEFAULT_TIMEOUT_S)
    try:
        if con.name == "postgres":
            return str(db.query("SHOW default_transaction_read_only")[0].popitem()[1]) == "on"
        try:  # MariaDB's name; MySQL 8 knows only the newer one
            found = db.query("SELECT @@session.tx_read_only AS r")
        except Exception:
            found = db.query("SELECT @@session.transaction_read_only AS r")
        return int(found[0]["r"]) == 1
    except Exception:
        return False
