"""Stops, on the database servers, the queries of a worker the kernel killed mid-cell.

A SIGKILLed worker closes its socket, but a server busy with a query does not read it: MariaDB
runs the query to its end, and PostgreSQL notices only if ``client_connection_check_interval``
is set (and a cell may have turned it off). So the kernel opens a short connection with each
database's own settings and ends the dead worker's server session there: PostgreSQL
``pg_terminate_backend`` (matched on pid and start time, so a reused pid is never hit), MariaDB
and MySQL ``KILL``. Both are allowed on one's own sessions without extra rights.
"""

from __future__ import annotations

from typing import Any

from catalog_kernel.connections import SessionSettings, _server_params

# Bounds how long the kernel's loop may wait on a server that does not answer (per database).
TIMEOUT_S = 5


def cancel_server_queries(session: dict[str, Any], server_sessions: dict[str, Any]) -> None:
    """Stop the dead worker's query on each database's server, one after the other.

    Best effort: the kernel must stay up whatever a server does, and say nothing secret."""
    for database in SessionSettings.from_message(session).databases:
        server_session = server_sessions.get(database.name)
        if database.dsn and isinstance(server_session, dict) and server_session:
            _cancel(database.dsn, server_session)


def _cancel(dsn: str, server_session: dict[str, Any]) -> None:
    try:
        if "pid" in server_session:
            _terminate_postgres(
                dsn, int(server_session["pid"]), str(server_session["backend_start"])
            )
        elif "thread_id" in server_session:
            _kill_mysql(dsn, int(server_session["thread_id"]))
    except Exception:  # the session ends anyway once the server notices the closed socket
        pass


def _terminate_postgres(dsn: str, pid: int, backend_start: str) -> None:
    import psycopg

    params = _server_params(dsn)
    params["dbname"] = params.pop("database")
    limit = f"-c statement_timeout={TIMEOUT_S * 1000}"
    params["options"] = f"{params.get('options', '')} {limit}".strip()
    with psycopg.connect(**params, autocommit=True, connect_timeout=TIMEOUT_S) as con:
        con.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid = %s AND backend_start::text = %s",
            (pid, backend_start),
        )


def _kill_mysql(dsn: str, thread_id: int) -> None:
    import MySQLdb

    params = _server_params(dsn)
    params.pop("init_command", None)
    con = MySQLdb.connect(**params, connect_timeout=TIMEOUT_S, read_timeout=TIMEOUT_S)
    try:
        cursor = con.cursor()
        cursor.execute(f"KILL {thread_id}")
        cursor.close()
    finally:
        con.close()
