"""The checks of a catalog request's databases: its connection strings, table names and sources.

Each check returns `(field, why)` pairs, every problem at once, the field named as the request
spells it (`tables[2]`, `sources[1].name`, `sources[0].tables[3]`); service.py raises them as
one InvalidArgument. No message echoes a connection string: it holds a password.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from services.common.redaction import shown_value
from services.common.source_names import DEFAULT, NAME, NAME_RULE
from services.orchestrator.sources import Source

Problems = list[tuple[str, str]]

# `table` or `schema.table`, as the database spells them (capitals, spaces and reserved words
# are fine: every query quotes them). Each part holds 1 to 63 characters, PostgreSQL's limit,
# with no quote, backtick, '/' (it parts a source from its table) or control character and no
# space at either end.
_NAME_PART = r"[^\s./\"`\x00-\x1f\x7f](?:[^./\"`\x00-\x1f\x7f]{0,61}[^\s./\"`\x00-\x1f\x7f])?"
_TABLE = re.compile(rf"^{_NAME_PART}(\.{_NAME_PART})?$")
_SCHEMES = ("postgres", "postgresql", "mysql", "mariadb", "duckdb")


def conn_problems(conn_string: str, name: str = "db_conn_string") -> Problems:
    if not conn_string:
        return [(name, "required, e.g. postgresql://reader@host:5432/db")]
    try:
        scheme = urlsplit(conn_string).scheme.lower()
    except ValueError:
        return [(name, "not a valid URL")]
    # SQLAlchemy's driver suffix (postgresql+psycopg) means nothing to the sandbox's kernel or
    # the manager's relay: refused here, not found later as an unreachable database
    if "+" in scheme:
        plain = scheme.split("+")[0]
        return [(name, f"write {plain}://, without the driver suffix '+…'")]
    if scheme not in _SCHEMES:
        return [(name, f"the scheme must be one of {', '.join(_SCHEMES)}")]
    return []


def table_problems(tables: Sequence[str], name: str = "tables") -> Problems:
    """Each name well formed, none twice. None at all is fine: the run lists the tables of
    the database's default schema and catalogs the first max_tables in name order."""
    problems = [
        (
            f"{name}[{i}]",
            f"{shown_value(table, 80)} is not a table name: write `table` or `schema.table`, "
            "each part 1 to 63 characters with no quote, backtick, '/', control character or "
            "edge space",
        )
        for i, table in enumerate(tables)
        if not _TABLE.fullmatch(table)
    ]
    if len(set(tables)) != len(tables):
        problems.append((name, "each table may be named only once"))
    return problems


def count_problem(count: int, max_tables: int, name: str) -> Problems:
    if count > max_tables:
        return [(name, f"at most {max_tables} tables per run, not {count}")]
    return []


def source_problems(sources: Sequence[Source], max_sources: int, max_tables: int) -> Problems:
    """The `sources` form: 1 to max_sources sources, each named once and well, with a valid
    DSN and its own tables (none: its default schema's, listed); at most max_tables in all."""
    if len(sources) > max_sources:
        return [("sources", f"at most {max_sources} sources per run, not {len(sources)}")]
    problems: Problems = []
    names = [s.name for s in sources]
    for i, source in enumerate(sources):
        field = f"sources[{i}]"
        problems += _name_problems(source.name, i, source.name in names[:i], f"{field}.name")
        problems += conn_problems(source.dsn, f"{field}.db_conn_string")
        problems += table_problems(source.tables, f"{field}.tables")
    total = sum(len(s.tables) for s in sources)
    return problems + count_problem(total, max_tables, "sources")


def _name_problems(name: str, index: int, taken: bool, field: str) -> Problems:
    if not NAME.match(name):
        return [(field, f"{shown_value(name)} is not a source name: {NAME_RULE}")]
    if taken:
        return [(field, f"an earlier source is named {name!r} already: each name once")]
    if name == DEFAULT and index > 0:
        # a bare table name is the first source's, in the sandbox as in pages
        return [(field, f"{DEFAULT!r} may name only the first source")]
    return []


def both_forms_problem(db_conn_string: str, tables: Sequence[str]) -> Problems:
    """A request that gives sources and the one-database fields too."""
    if db_conn_string or tables:
        return [
            (
                "sources",
                "give either sources or db_conn_string with tables (one source named "
                f"{DEFAULT!r}), not both",
            )
        ]
    return []
