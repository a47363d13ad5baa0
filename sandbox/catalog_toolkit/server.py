"""What a source's database server is: its backend and version, for catalog.json and the proof.

The version is read once per connection and kept on it, so a source whose connection dies
later in the run (its tables then fail) is still described by what it was.
"""

from __future__ import annotations

import contextlib
from typing import Any

_CACHE = "_catalog_server_version"
_TIMEOUT_S = 10.0
_QUERIES = {
    "duckdb": "SELECT version() AS v",
    "postgres": "SELECT version() AS v",  # "PostgreSQL 15.19 on x86_64-pc-linux-gnu, ..."
    "mysql": "SELECT VERSION() AS v",
}


def backend(con: Any) -> str:
    """`duckdb`, `postgres` or `mysql` (ibis' name of the backend), or "" when unknown."""
    return str(getattr(con, "name", "") or "")


def server_version(con: Any) -> str:
    """The server's version text, with its product name; "" when it cannot be read."""
    cached = getattr(con, "__dict__", {}).get(_CACHE)
    if cached is not None:
        return str(cached)
    from catalog_toolkit.database import Database

    kind = backend(con)
    try:
        text = str(Database(con, _TIMEOUT_S).query(_QUERIES[kind])[0]["v"])
    except Exception:
        return ""
    if kind == "duckdb":
        text = f"DuckDB {text}"
    elif kind == "mysql":
        text = f"{'MariaDB' if 'mariadb' in text.lower() else 'MySQL'} {text}"
    with contextlib.suppress(Exception):
        con.__dict__[_CACHE] = text
    return text
