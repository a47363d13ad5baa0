"""Profile many tables: their catalog declarations read together, the tables a few at a time.

`profile_tables(con, tables, concurrency=4)` takes one connection or `cons` (every source's,
sources.py); each source's tables are profiled beside the other sources'. Per source it reads
keys, comments and row estimates of all its tables in one catalog query per kind and schema
(metadata.read_many, cached on the connection), then profiles the tables on `concurrency`
threads, each with a connection of its own, since one connection runs one query at a time:
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

from catalog_toolkit import record, sources
from catalog_toolkit.database import Database, TableName
from catalog_toolkit.failures import failure_text
from catalog_toolkit.metadata import read_many
from catalog_toolkit.profile import DEFAULT_TIMEOUT_S, profile_on

DEFAULT_CONCURRENCY = 4
_CACHE = "_catalog_declared"  # metadata.read_many's cache on a connection


def profile_tables(
    con: Any, tables: list[str], *, concurrency: int = DEFAULT_CONCURRENCY, **options: Any
) -> list[dict[str, Any]]:
    """Profile each of `tables` as profile_table does (with its keyword `options`), up to
    `concurrency` at once per source, the sources side by side; the profiles in the order of
    `tables`, each recorded. A table that cannot be profiled at all (a bad name, no such table,
    a source the session has not open or whose connection died) gives `{"table", "error"}`."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more, not {concurrency}")
    groups, unavailable = sources.plan(con, tables)
    found = {r.given: {"table": r.run, "error": r.why} for r in unavailable}
    jobs = list(groups.values())
    with ThreadPoolExecutor(max(1, len(jobs))) as threads:
        for done in threads.map(lambda group: _one_source(group, concurrency, options), jobs):
            found.update(done)
    for failed in found.values():
        if "error" in failed:
            record.remember_failure(failed["table"], failed["error"])
    return [found[table] for table in tables]


def _one_source(
    group: list[sources.Resolved], concurrency: int, options: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The profiles of one source's tables, by the name given; its failure fails only them."""
    try:
        return _profile_source(group[0].con, group, concurrency, options)
    except Exception as exc:
        return {r.given: {"table": r.run, "error": _error(exc)} for r in group}


def _profile_source(
    con: Any, group: list[sources.Resolved], concurrency: int, options: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    db = Database(con, float(options.get("timeout_s", DEFAULT_TIMEOUT_S)))
    names = []
    for table in group:
        with contextlib.suppress(ValueError):  # profile_on reports a bad name itself
            names.append(TableName.parse(table.bare))
    with contextlib.suppress(Exception):  # each profile records its own catalog error
        read_many(db, names)
    workers = min(concurrency, len(group))
    if workers <= 1:
        return {t.given: _profile_or_error(con, t, options) for t in group}
    with _connections(con, workers) as pool, ThreadPoolExecutor(pool.qsize()) as threads:
        profiles = threads.map(lambda t: _profile_on(pool, t, options), group)
        return {t.given: p for t, p in zip(group, profiles, strict=True)}


def _profile_on(
    pool: queue.Queue[Any], table: sources.Resolved, options: dict[str, Any]
) -> dict[str, Any]:
    con = pool.get()
    try:
        return _profile_or_error(con, table, options)
    finally:
        pool.put(con)


def _profile_or_error(con: Any, table: sources.Resolved, options: dict[str, Any]) -> dict[str, Any]:
    """A table that cannot be profiled at all (a bad name, no such table) does not stop the
    others: it gives `{"table", "error"}`."""
    try:
        return profile_on(con, table.bare, table.run, **options)
    except Exception as exc:
        return {"table": table.run, "error": _error(exc)}


def _error(exc: Exception) -> str:
    return failure_text(exc, 500)


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
