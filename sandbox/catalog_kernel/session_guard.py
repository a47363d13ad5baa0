"""Keeps a PostgreSQL or MySQL session read only, and under its time limit, across cells.

Both settings are session settings, and any session may change its own: one
``SET default_transaction_read_only = off`` or ``SET SESSION TRANSACTION READ WRITE`` would
give a writing user a writing session. No server lets an administrator lock them for one
login short of a read-only replica, so what holds is, in order of strength:

1. the user's rights, proven before the agents run (the orchestrator's read-only probe): the
   real guarantee, which nothing in a cell can undo;
2. ``restore`` before every cell: whatever the previous cell did to the session (a bypass of the
   guard below included), the next cell starts read only, with the time limit, outside any
   transaction; a session that cannot be restored is closed;
3. a guard on the cursors ibis and the cell get from the driver: it refuses statements that
   change those settings (``SET ... statement_timeout``, ``READ WRITE``, ``set_config``, ``DO``
   blocks, MySQL ``PREPARE``, the ``MAX_EXECUTION_TIME`` hint) and, on PostgreSQL, notices a
   read-only mode the server reports as turned off (``ParameterStatus``, PostgreSQL 14+) before
   and after every statement, restores it and fails the statement. A cell holds the driver
   object, so it can bypass all this (``con.con.pgconn.exec_``, ``con.con.query``); that lasts
   until the cell ends.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass
from typing import Any

_PROTECTED = (
    r"(default_transaction_read_only|transaction_read_only|tx_read_only|statement_timeout"
    r"|client_connection_check_interval|max_statement_time|max_execution_time)"
)
_GAP = r"(?:\s|/\*.*?\*/|--[^\n]*\n|#[^\n]*\n)"  # whitespace or a comment between words
_COMMON = [
    re.compile(r"\bset\b.*?\b" + _PROTECTED, re.I | re.S),  # after _LIMIT let some through
    re.compile(r"\bread\b" + _GAP + r"+write\b", re.I | re.S),
]
_REFUSED = {
    "postgres": [
        *_COMMON,
        re.compile(r"\bset_config\b", re.I),
        re.compile(r"(?:^|;)" + _GAP + r"*do\b", re.I | re.S),
        # Large objects are written even in a read-only transaction (and any role may make one).
        re.compile(
            r"\blo_(?:from_bytea|create|creat|put|import|truncate|truncate64|unlink)\b", re.I
        ),
        re.compile(r"\blowrite\b", re.I),
    ],
    "mysql": [
        *_COMMON,
        re.compile(r"\bprepare\b.*?\bfrom\b", re.I | re.S),
        re.compile(r"\bexecute" + _GAP + r"+immediate\b", re.I | re.S),
        re.compile(r"/\*\+.*?max_execution_time", re.I | re.S),
    ],
}


# A cell may lower its time limit (the toolkit does, per query): a plain SET of the limit to a
# number is let through, capped at the session's limit; 0 (no limit) becomes the limit.
_LIMIT = re.compile(
    r"\s*set\s+(?:session\s+)?(statement_timeout|max_statement_time|max_execution_time)"
    r"\s*(?:=|to)\s*([0-9]+(?:\.[0-9]*)?)\s*;?\s*",
    re.I,
)


class SessionSettingRefused(PermissionError):
    """A statement would have changed the session's read-only mode or time limit."""


@dataclass(frozen=True)
class SessionGuard:
    """What the worker needs to put the session back before each cell."""

    backend: str  # "postgres" or "mysql"
    raw: Any  # the driver's connection (psycopg or MySQLdb), shared with ibis
    settings_sql: tuple[str, ...]  # the statements that make the session what it must be

    def restore(self) -> None:
        """Leave any transaction and re-apply the settings; close the session if that fails."""
        try:
            if self.backend == "postgres":
                _restore_postgres(self)
            else:
                _restore_mysql(self)
        except Exception as exc:  # a broken session must not live on writable or unlimited
            print(
                "the database session could not be made read only again "
                f"({type(exc).__name__}); it was closed",
                file=sys.stderr,
            )
            with contextlib.suppress(Exception):  # already broken: closing is all that is left
                self.raw.close()

    def server_session(self) -> dict[str, Any]:
        """Who the session is on the server, so the kernel can stop its query after a kill."""
        if self.backend == "postgres":
            cursor = _plain_cursor(self)
            try:
                cursor.execute(
                    "SELECT pg_backend_pid(), backend_start::text FROM pg_stat_activity "
                    "WHERE pid = pg_backend_pid()"
                )
                pid, started = cursor.fetchone()
            finally:
                cursor.close()
            return {"pid": int(pid), "backend_start": str(started)}
        return {"thread_id": int(self.raw.thread_id())}


def install(
    con: Any, backend: str, settings_sql: tuple[str, ...], limits: dict[str, float]
) -> SessionGuard:
    """Make every cursor the driver hands out (to ibis and to cells) a guarded one.

    ``limits`` maps the time-limit setting to the session's value, in the setting's own unit.
    """
    raw = con.con
    if backend == "postgres":
        raw.cursor_factory = _guarded_postgres_cursor(limits)
    else:
        raw.cursorclass = _guarded_mysql_cursor(limits)
    return SessionGuard(backend, raw, settings_sql)


def check_statement(backend: str, query: Any, limits: dict[str, float]) -> Any:
    """The query to run instead (the same one, or a time limit capped); refuse the others."""
    text = query if isinstance(query, str) else _query_text(query)
    capped = _LIMIT.fullmatch(text)
    if capped and capped.group(1).lower() in limits:
        name, value = capped.group(1).lower(), float(capped.group(2))
        limit = limits[name]
        value = limit if value <= 0 or value > limit else value
        number = f"{value:g}" if name == "max_statement_time" else str(int(value))
        return f"SET SESSION {name} = {number}" if backend == "mysql" else f"SET {name} = {number}"
    for pattern in _REFUSED[backend]:
        if pattern.search(text):
            raise SessionSettingRefused(
                "this session is read only and has a time limit, and both stay as they are: "
                "statements that change them (SET of a read-only or timeout setting, READ "
                "WRITE, set_config, DO blocks, PREPARE) and large-object writes are refused; a "
                "lower time limit is "
                "set with a plain SET of the number"
            )
    return query


def _query_text(query: Any) -> str:
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)  # psycopg.sql.Composable
    if as_string is not None:
        try:
            return str(as_string(None))
        except Exception:  # it needs a connection: fall back to its repr
            return repr(query)
    return str(query)


def _plain_cursor(guard: SessionGuard) -> Any:
    if guard.backend == "postgres":
        import psycopg

        return psycopg.Cursor(guard.raw)
    import MySQLdb.cursors

    return MySQLdb.cursors.Cursor(guard.raw)


def _restore_postgres(guard: SessionGuard) -> None:
    import psycopg

    if guard.raw.closed:
        return
    cursor = psycopg.Cursor(guard.raw)
    try:
        if guard.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            cursor.execute("ROLLBACK")
        if not guard.raw.autocommit:
            guard.raw.autocommit = True
        cursor.execute("; ".join(guard.settings_sql))
    finally:
        cursor.close()


def _restore_mysql(guard: SessionGuard) -> None:
    import MySQLdb.cursors

    if not guard.raw.open:
        return
    guard.raw.autocommit(True)
    cursor = MySQLdb.cursors.Cursor(guard.raw)
    try:
        cursor.execute("ROLLBACK")  # a transaction in progress blocks SET SESSION TRANSACTION
        for statement in guard.settings_sql:
            cursor.execute(statement)
    finally:
        cursor.close()


def _guarded_postgres_cursor(limits: dict[str, float]) -> type[Any]:
    import psycopg

    class GuardedCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            query = check_statement("postgres", query, limits)
            _refuse_read_write_default(self.connection)  # turned off past the guard
            try:
                return super().execute(query, params, **kwargs)
            finally:
                _refuse_read_write_default(self.connection)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            query = check_statement("postgres", query, limits)
            _refuse_read_write_default(self.connection)
            try:
                super().executemany(query, params_seq, **kwargs)
            finally:
                _refuse_read_write_default(self.connection)

        def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
            statement = check_statement("postgres", statement, limits)
            _refuse_read_write_default(self.connection)
            return super().copy(statement, params, **kwargs)

        def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            query = check_statement("postgres", query, limits)
            _refuse_read_write_default(self.connection)
            return super().stream(query, params, **kwargs)

    return GuardedCursor


def _refuse_read_write_default(raw: Any) -> None:
    """The server reports a changed default_transaction_read_only (PostgreSQL 14+): undo it.

    Free: the value arrives with every answer, so this costs no round trip."""
    if raw.closed or raw.pgconn.parameter_status(b"default_transaction_read_only") != b"off":
        return
    import psycopg

    try:
        with psycopg.Cursor(raw) as cursor:
            cursor.execute("SET default_transaction_read_only = on")
    except Exception:
        raw.close()  # it cannot be put back: no statement may run on it any more
    raise SessionSettingRefused(
        "the statement turned the session's read-only mode off; it was turned back on"
    )


def _guarded_mysql_cursor(limits: dict[str, float]) -> type[Any]:
    import MySQLdb.cursors

    class GuardedCursor(MySQLdb.cursors.Cursor):  # type: ignore[misc]
        def execute(self, query: Any, args: Any = None) -> Any:
            return super().execute(check_statement("mysql", query, limits), args)

        def executemany(self, query: Any, args: Any) -> Any:
            return super().executemany(check_statement("mysql", query, limits), args)

    return GuardedCursor
