"""Several databases in one session: which connection a table name means.

The kernel opens each database of the session as `cons[name]` (a dict, in request order) and
binds `con` to the first. A table of a source other than "default" is named `source/table`
(`warehouse/orders`, `app/public.orders`); a bare name (`shop.orders`) is the first source's.
Every toolkit function that takes a connection takes either: one ibis connection (`con`), or
the mapping `cons`, and then resolves each table name to its source's connection here.

    connection_for(cons, "warehouse/orders")   -> (cons["warehouse"], "orders")
    by_source(cons, ["app/orders", "warehouse/orders"])
        -> {"app": (cons["app"], ["app/orders"]), "warehouse": (..., ["warehouse/orders"])}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

SEPARATOR = "/"
DEFAULT = "default"  # the one source of a session opened with a single DSN
NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class UnknownSource(LookupError):
    """A table name's source is not one of the session's databases."""


def split(table: str) -> tuple[str, str]:
    """`("warehouse", "orders")` for `warehouse/orders`; `("", "shop.orders")` for a bare name."""
    source, sep, bare = table.partition(SEPARATOR)
    if not sep:
        return "", table
    if not NAME.match(source):
        raise ValueError(
            f"{table!r}: the part before '/' must be a source name (a lowercase letter, then "
            "lowercase letters, digits or '_')"
        )
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


def by_source(con: Any, tables: Iterable[str]) -> dict[str, tuple[Any, list[str]]]:
    """The tables grouped by source, in first-seen order: name -> (connection, tables as
    given). Raises UnknownSource for a source the session does not have."""
    groups: dict[str, tuple[Any, list[str]]] = {}
    for table in tables:
        connection, _ = connection_for(con, table)
        name = source_of(table, con)
        groups.setdefault(name, (connection, []))[1].append(table)
    return groups


def names(con: Any) -> list[str]:
    """The session's source names, in order (["default"] for one connection)."""
    return [str(n) for n in con] if is_many(con) else [DEFAULT]
