"""Turns a session's connection settings into a ready, read-only ibis connection.

Runs inside a freshly forked worker, so every session gets its own database connections (one per
database of the session: ``cons[name]``). The DSNs and the credentials never reach the user's
namespace, stdout or an error message: errors are reported with every secret of the session
replaced (see ``secrets_of``).

Read-only is enforced by the database, not by trust in the code the agent writes:
- DuckDB opens the file with ``read_only=True`` (temporary tables still work);
- PostgreSQL sessions start with ``default_transaction_read_only=on`` and a statement timeout;
- MySQL and MariaDB sessions run ``SET SESSION TRANSACTION READ ONLY`` on connect and get a
  statement time limit (``max_statement_time`` on MariaDB, ``max_execution_time`` on MySQL).
A session may change its own settings: ``session_guard`` keeps them in place across cells, and
the user's rights, proven by the orchestrator's probe, are what no cell can change. PostgreSQL
sessions also ask the server to check for a vanished client while a query runs
(``client_connection_check_interval``, PostgreSQL 14+), so a killed worker's query stops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from catalog_kernel.session_guard import SessionGuard, install

REDACTED = "[redacted]"
# How often PostgreSQL checks, while a query runs, that the worker is still there.
CONNECTION_CHECK_MS = 1000


DEFAULT = "default"  # the name of the one database a `db_dsn` session opens


@dataclass(frozen=True)
class SessionDatabase:
    """One database of the session, opened as ``cons[name]``. Its DSN is a secret.

    ``error`` is why the sandbox manager could not make it reachable (then ``dsn`` is empty): the
    kernel reports it as that database's connect error and opens the others."""

    name: str
    dsn: str = field(repr=False)  # a traceback or log line that formats the settings shows none
    error: str = ""


@dataclass(frozen=True)
class SessionSettings:
    """What a session-start message carries. Every string here may be a secret."""

    databases: tuple[SessionDatabase, ...] = ()  # in order; the first is ``con``
    s3: dict[str, str] = field(default_factory=dict, repr=False)
    env: dict[str, str] = field(default_factory=dict)
    statement_timeout_s: float = 300.0

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> SessionSettings:
        return cls(
            databases=_databases_of(message),
            s3={k: str(v) for k, v in (message.get("s3") or {}).items() if v},
            env={k: str(v) for k, v in (message.get("env") or {}).items()},
            statement_timeout_s=float(message.get("statement_timeout_s") or 300.0),
        )


def _databases_of(message: dict[str, Any]) -> tuple[SessionDatabase, ...]:
    """``databases: [{name, dsn, connect_error?}]``, else ``db_dsn`` as one named "default"."""
    listed = message.get("databases") or []
    if listed:
        return tuple(
            SessionDatabase(
                str(entry.get("name") or ""),
                str(entry.get("dsn") or ""),
                str(entry.get("connect_error") or ""),
            )
            for entry in listed
            if isinstance(entry, dict)
        )
    dsn = str(message.get("db_dsn") or "")
    return (SessionDatabase(DEFAULT, dsn),) if dsn else ()


@dataclass(frozen=True)
class SessionInfo:
    """What the client learns about the session: never the settings themselves."""

    backend: str = ""
    read_only: bool = False
    connect_error: str = ""


def secrets_of(settings: SessionSettings) -> list[str]:
    """The values that must never appear in output: every DSN, its password, S3 keys."""
    values = [settings.s3.get("secret_access_key", ""), settings.s3.get("session_token", "")]
    for database in settings.databases:
        values += dsn_secrets(database.dsn)
    # Longest first, so a DSN is replaced whole before the password inside it.
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def dsn_secrets(dsn: str) -> list[str]:
    """A DSN and its password, as written and decoded."""
    if not dsn:
        return []
    values = [dsn]
    password = urlsplit(dsn).password
    if password:
        values += [password, unquote(password)]
    return values


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def apply_s3_environment(s3: dict[str, str]) -> None:
    """Expose the S3 settings the standard way, so a plain ``boto3.client("s3")`` works."""
    names = {
        "endpoint_url": "AWS_ENDPOINT_URL",
        "region": "AWS_DEFAULT_REGION",
        "access_key_id": "AWS_ACCESS_KEY_ID",
        "secret_access_key": "AWS_SECRET_ACCESS_KEY",
        "session_token": "AWS_SESSION_TOKEN",
    }
    for key, env_name in names.items():
        if s3.get(key):
            os.environ[env_name] = s3[key]


@dataclass(frozen=True)
class OpenSession:
    con: Any  # the ibis connection the cells get as ``con``
    info: SessionInfo
    guard: SessionGuard | None  # None for DuckDB, whose read-only mode no statement undoes


def open_read_only(dsn: str, statement_timeout_s: float) -> tuple[Any, SessionInfo]:
    """Connect through ibis with writes refused by the database; prove the setting took."""
    session = open_session(dsn, statement_timeout_s)
    return session.con, session.info


def open_session(dsn: str, statement_timeout_s: float) -> OpenSession:
    """Like ``open_read_only``, with the guard the worker uses to restore the session."""
    scheme = urlsplit(dsn).scheme.lower()
    if scheme == "duckdb":
        return OpenSession(_open_duckdb(dsn), SessionInfo("duckdb", read_only=True), None)
    if scheme in ("postgres", "postgresql"):
        return _open_postgres(dsn, statement_timeout_s)
    if scheme in ("mysql", "mariadb"):
        return _open_mysql(dsn, statement_timeout_s)
    raise ValueError(
        f"unsupported database scheme {scheme!r}: use duckdb:///path, postgresql://... "
        "or mysql://..."
    )


def _open_duckdb(dsn: str) -> Any:
    import ibis

    parts = urlsplit(dsn)
    path = unquote(parts.netloc + parts.path)
    if not path or path == ":memory:":
        raise ValueError("a DuckDB DSN needs a database file: duckdb:///absolute/path.duckdb")
    if not os.path.exists(path):
        raise ValueError(f"DuckDB database file {path} does not exist")
    return ibis.duckdb.connect(database=path, read_only=True)


def _server_params(dsn: str) -> dict[str, Any]:
    parts = urlsplit(dsn)
    params: dict[str, Any] = dict(parse_qsl(parts.query))
    # The sandbox manager names a Unix socket in the query string (PostgreSQL `host=/folder`,
    # MySQL `unix_socket=`), and then the DSN names no host.
    params.setdefault("host", parts.hostname or "localhost")
    params.update(
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")),
    )
    if parts.port:
        params["port"] = parts.port
    return params


def _open_postgres(dsn: str, statement_timeout_s: float) -> OpenSession:
    import ibis

    params = _server_params(dsn)
    settings = {
        "default_transaction_read_only": "on",
        "statement_timeout": str(int(statement_timeout_s * 1000)),
        "client_connection_check_interval": str(CONNECTION_CHECK_MS),
    }
    try:
        con = ibis.postgres.connect(**_with_options(params, settings))
    except Exception as exc:
        if "client_connection_check_interval" not in str(exc):
            raise
        del settings["client_connection_check_interval"]  # PostgreSQL 13 or older
        con = ibis.postgres.connect(**_with_options(params, settings))
    with con.raw_sql("SHOW default_transaction_read_only") as cursor:
        read_only = cursor.fetchone()[0] == "on"
    sql = tuple(f"SET {name} = {value}" for name, value in settings.items())
    limits = {"statement_timeout": float(settings["statement_timeout"])}
    guard = install(con, "postgres", sql, limits)
    return OpenSession(con, SessionInfo("postgres", read_only=read_only), guard)


def _with_options(params: dict[str, Any], settings: dict[str, str]) -> dict[str, Any]:
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    return {**params, "options": f"{params.get('options', '')} {options}".strip()}


def _open_mysql(dsn: str, statement_timeout_s: float) -> OpenSession:
    import ibis

    params = _server_params(dsn)
    if "unix_socket" in params:  # an empty host makes libmysqlclient take the socket (ibis
        params["host"] = ""  # turns "localhost", which would too, into 127.0.0.1: TCP)
    params["init_command"] = "SET SESSION TRANSACTION READ ONLY"
    con = ibis.mysql.connect(**params)
    cursor = con.raw_sql("SELECT VERSION()")
    try:
        if "mariadb" in str(cursor.fetchone()[0]).lower():
            name, value = "max_statement_time", float(statement_timeout_s)
            mode = "SELECT @@session.tx_read_only"
        else:
            name, value = "max_execution_time", float(int(statement_timeout_s * 1000))
            mode = "SELECT @@session.transaction_read_only"
        limit = f"SET SESSION {name} = {value:g}"
        cursor.execute(limit)
        cursor.execute(mode)
        read_only = int(cursor.fetchone()[0]) == 1
    finally:
        cursor.close()
    guard = install(con, "mysql", ("SET SESSION TRANSACTION READ ONLY", limit), {name: value})
    return OpenSession(con, SessionInfo("mysql", read_only=read_only), guard)
