"""The catalog's `sources` block (format 2): each source's server, tables and failed tables.

catalog_export (session.py) profiles what the agent left out through `profile_missing`, where
one source's failure (a dead connection) fails only that source's tables, and describes each
source with `sources_block`: its backend and server version, never its DSN or host; a failure's
text has any address in it redacted.
"""

from __future__ import annotations

import re
from typing import Any

from catalog_toolkit import record, server, sources
from catalog_toolkit.profile_many import profile_tables

# What a driver's error may say about where a database is: left out of catalog.json.
_WHERE = re.compile(
    r"\b[a-z][a-z0-9+.-]*://\S+|\b(?:password|user|host|hostaddr|port)\s*=\s*\S+"
    r"|(?:server at|host|to) \"[^\"]*\"(?:\s*\([^)]*\))?(?:,\s*port\s*\d+)?",
    re.IGNORECASE,
)


def profile_missing(con: Any, missing: list[str]) -> dict[str, str]:
    """Profile (and record) what the agent left out; what still fails, by table: why."""
    if not missing:
        return {}
    if con is None:  # what profile_tables recorded, else there is nothing to say why
        why = "not profiled: the export had no database connection"
        return {t: scrub(record.failures.get(t, why)) for t in missing}
    try:  # each source's failure fails only its tables (profile_many.py)
        found = profile_tables(con, missing)
    except Exception as exc:
        found = [{"table": t, "error": f"{type(exc).__name__}: {exc}"} for t in missing]
    return {p["table"]: scrub(str(p["error"])) for p in found if "error" in p}


def scrub(text: str) -> str:
    """A driver's error with any address in it redacted, cut at 500 characters."""
    return _WHERE.sub("[redacted]", text.strip())[:500]


def sources_block(
    con: Any, wanted: list[str], profiled: dict[str, Any], failed: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Each source: its backend and server version (never where it is), its tables, and the
    ones that failed. The session's sources in order, then any other the tables name."""
    names = sources.names(con) if con is not None else []
    names += [n for n in dict.fromkeys(map(sources.source_name, wanted)) if n not in names]
    out = {}
    for name in names:
        own = [t for t in wanted if sources.source_name(t) == name]
        out[name] = {
            **_server(_connection(con, name), name, [profiled[t] for t in own if t in profiled]),
            "tables": own,
            "failed": {t: failed[t] for t in own if t in failed},
        }
    return out


def _server(connection: Any, name: str, profiles: list[dict[str, Any]]) -> dict[str, str]:
    """A source's backend and version: asked now, else as the proof found them (record)."""
    known = dict(record.servers.get(name, {}))
    if connection is not None:
        known["backend"] = server.backend(connection)
        known["version"] = server.server_version(connection) or known.get("version", "")
        record.servers[name] = dict(known)
    kinds = [str(p.get("backend", "")) for p in profiles]
    return {
        "backend": known.get("backend") or next(filter(None, kinds), ""),
        "version": known.get("version", ""),
    }


def _connection(con: Any, name: str) -> Any:
    if con is None:
        return None
    if sources.is_many(con):
        return con.get(name)
    return con if name == sources.DEFAULT else None
