"""Several databases in one session: which connection a table name means.

The kernel opens each database of the session as `cons[name]` (a dict, in request order) and
binds `con` to the first. A table of a source other than "default" is named `source/table`
(`warehouse/orders`, `app/public.orders`); a bare name (`shop.orders`) is the first source's.
Every toolkit function that takes a connection takes either: one ibis connection (`con`), or
the mapping `cons`, and then resolves each table name to its source's connection here.

    connection_for(cons, "warehouse/orders")   -> (cons["warehouse"], "orders")
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SEPARATOR = "/"
DEFAULT = "default"  # the one source of a session opened with a single DSN
NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class UnknownSource(LookupError):
    """A table name's source is not one of the session's databases."""


def split(table: str) -> tuple[str, str]:
    """`("warehouse", "orders")` for `warehouse/orders`; `("", "shop.orders")` for a bare name.
    A name whose part before '/' cannot be a source name (`"a</b>"`, `Sales/EU`) is bare: a
    table's own name may hold a '/'."""
    source, sep, bare = table.partition(SEPARATOR)
    if not sep or not NAME.match(source):
        return "", table
    return source, bare


def qualify(source: str, table: str) -> str:
    """The name of `table` of `source` in pages and data: bare for the default source."""
    return table if source in ("", DEFAULT) else f"{source}{SEPARATOR}{table}"


def source_of(table: str, cons: Any = None) -> str:
    """The source a table name belongs to: its prefix, else the first of `cons` (or default)."""
    source, _ = split(table)
    if source:
        return source
    if isinstance(cons, Mapping) and cons:
        return str(next(iter(cons)))
    return DEFAULT


def is_many(con: Any) -> bool:
    """Whether `con` is the mapping of every source (`cons`) rather than one connection."""
    return isinstance(con, Mapping)


def first(con: Any) -> Any:
    """The first source's connection (`con`) of either form."""
    if is_many(con):
        if not con:
            raise UnknownSource("the session has no database")
        return next(iter(con.values()))
    return con


def connection_for(con: Any, table: str) -> tuple[Any, str]:
    """The connection that holds `table`, and the table's name in it (without the source)."""
    source, bare = split(table)
    if not is_many(con):
        if source and source != DEFAULT:
            raise UnknownSource(
                f"{table!r} names the source {source!r}: pass `cons` (every source's "
                "connection) rather than `con`"
            )
        return con, bare
    if not source:
        return first(con), bare
    try:
        return con[source], bare
    except KeyError:
        known = ", ".join(map(str, con)) or "none"
        raise UnknownSource(f"{table!r}: no source named {source!r} (sources: {known})") from None


def names(con: Any) -> list[str]:
    """The session's source names, in order (["default"] for one connection)."""
    return [str(n) for n in con] if is_many(con) else [DEFAULT]


def source_name(table: str) -> str:
    """The source of a run's table name (`billing/invoices` -> billing; a bare name -> default)."""
    return split(table)[0] or DEFAULT


def run_name(con: Any, table: str) -> str:
    """`table`'s name in the run's records and pages: qualified with its source, bare for the
    default one. With one connection a bare name stays bare (its source is not known)."""
    source, bare = split(table)
    if not is_many(con):
        return bare if source in ("", DEFAULT) else table
    return qualify(source or source_of(table, con), bare)


@dataclass(frozen=True)
class Resolved:
    """One table name of a call, resolved: its run name, its source and the name inside it,
    and its source's connection, or None with `why` when the session cannot read it."""

    given: str
    run: str
    source: str
    bare: str
    con: Any
    why: str = ""


def resolve(con: Any, table: str) -> Resolved:
    """`table` resolved against `con` (one connection or `cons`); never raises."""
    _, bare = split(table)
    run = run_name(con, table)
    name = source_name(run)
    try:
        connection, _ = connection_for(con, table)
    except UnknownSource as exc:
        why = f"the source {name!r} is not open in this session ({exc})"
        return Resolved(table, run, name, bare, None, why)
    return Resolved(table, run, name, bare, connection)


def plan(con: Any, tables: Iterable[str]) -> tuple[dict[str, list[Resolved]], list[Resolved]]:
    """The tables grouped by source (in first-seen order), and those no open source holds."""
    groups: dict[str, list[Resolved]] = {}
    unavailable: list[Resolved] = []
    for table in tables:
        found = resolve(con, table)
        if found.con is None:
            unavailable.append(found)
        else:
            groups.setdefault(found.source, []).append(found)
    return groups, unavailable
