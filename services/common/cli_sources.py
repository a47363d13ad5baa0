"""The database flags `start` and `schedule create` share (docs/cli.md): one database as
`--db URL --tables a,b`, or several as a repeated `--source NAME=URL` whose tables `--tables`
names `NAME/table` (`--tables app/orders,billing/invoices`), as pages name them."""

from __future__ import annotations

import argparse

from services.common.clients import Source
from services.common.source_names import DEFAULT, NAME


class SourceFlagError(ValueError):
    """--tables names a table of no --source; the message says what to write."""


def add_database_flags(command: argparse.ArgumentParser) -> None:
    database = command.add_mutually_exclusive_group(required=True)
    database.add_argument(
        "--db", help="the database URL (postgresql://, mysql://, duckdb:///); never printed"
    )
    database.add_argument(
        "--source",
        action="append",
        type=_source,
        metavar="NAME=URL",
        help="one of several databases, repeatable; --tables then names its tables "
        "NAME/table. URLs are never printed",
    )
    command.add_argument(
        "--tables",
        default="",
        help="comma-separated: a,schema.b (with --source: app/a); omitted, or none for a "
        "source: every table of its default schema, up to the server's max_tables",
    )


def _source(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not NAME.match(name) or not url:
        # never echo the text: its URL may hold a password
        raise argparse.ArgumentTypeError(
            "give NAME=URL, NAME a lowercase letter then up to 30 lowercase letters, digits or _"
        )
    return name, url


def database_request(args: argparse.Namespace) -> tuple[str, list[str], list[Source]]:
    """(db_conn_string, tables, sources) for the client: --db and its tables, or each
    --source with the tables --tables names for it."""
    tables = [item.strip() for item in args.tables.split(",") if item.strip()]
    if not args.source:
        return args.db, tables, []
    names = [name for name, _ in args.source]
    grouped: dict[str, list[str]] = {name: [] for name in names}
    for table in tables:
        source, sep, bare = table.partition("/")
        source, bare = (source, bare) if sep else (DEFAULT, table)
        if source not in grouped:
            raise SourceFlagError(
                f"--tables: {table!r} belongs to no --source; write SOURCE/table with SOURCE "
                f"one of: {', '.join(names)}"
            )
        grouped[source].append(bare)
    return "", [], [Source(name, url, tuple(grouped[name])) for name, url in args.source]
