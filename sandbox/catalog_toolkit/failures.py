"""A failure's words as pages and data may show them: no address, host or user in them, and a
lost connection said in words (a driver's `(2006, '')` alone does not tell a user anything).

The kernel and the services redact passwords and DSNs; this is for what a driver adds about
where the database is, which catalog.json and the pages must not hold either.
"""

from __future__ import annotations

import re

from catalog_toolkit.database import QueryTimeout

# A lost connection, by the driver's error class or words (psycopg, MySQLdb, DuckDB); not the
# class alone: MySQLdb raises OperationalError for an unknown column too.
_LOST = ("interfaceerror", "connectionexception")
_LOST_TEXT = (
    *("closed", "gone away", "lost connection", "terminat", "broken pipe", "connection refused"),
    *("can't connect", "could not connect", "connection failed", "connection reset"),
    *("(2002,", "(2003,", "(2006,", "(2013,", "(2055,"),  # MySQL's client errors, text or not
)


def connection_lost(exc: BaseException) -> bool:
    """Whether an error says the connection is gone (rather than a query's own failure)."""
    if isinstance(exc, QueryTimeout):
        return False
    kind, text = type(exc).__name__.lower(), str(exc).lower()
    return any(k in kind for k in _LOST) or any(t in text for t in _LOST_TEXT)


# What a driver's error may say about where a database is and who logs in (psycopg's `server
# at "host" (addr), port N`, MySQL's `on 'host'`, `'user'@'addr'`, `Unknown server host 'h'`).
_WHERE = re.compile(
    r"\b[a-z][a-z0-9+.-]*://\S+|\b(?:password|user|host|hostaddr|port)\s*=\s*\S+"
    r"|(?:server at|host|to) \"[^\"]*\"(?:\s*\([^)]*\))?(?:,\s*port\s*\d+)?"
    r"|\buser \"[^\"]*\"|'[^']*'@'[^']*'|\b(?:on|host) '[^']*'(?:\s*\(\d+\))?",
    re.IGNORECASE,
)


def without_addresses(text: str, limit: int = 500) -> str:
    return _WHERE.sub("[redacted]", text.strip())[:limit]


def failure_text(exc: BaseException, limit: int = 300) -> str:
    """`Type: first line`, addresses left out; a lost connection says so first."""
    lines = str(exc).strip().splitlines()
    text = without_addresses(f"{type(exc).__name__}: {lines[0] if lines else ''}", limit)
    if connection_lost(exc):
        return f"the connection to the database was lost ({text})"
    return text
