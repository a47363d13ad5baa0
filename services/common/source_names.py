"""How a run names its databases and their tables, for every service and the client library.

A source name is a short identifier; the one-database shorthand is one source named "default".
A table of another source is named `source/table` (`billing/invoices`), a bare name is the
default source's. The sandbox's toolkit holds the same rules (sandbox/catalog_toolkit/
sources.py: it cannot import the services); tests/contracts checks the two agree.
"""

from __future__ import annotations

import re

DEFAULT = "default"
SEPARATOR = "/"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
NAME_RULE = "a lowercase letter, then up to 30 lowercase letters, digits or '_'"


def qualify(source: str, table: str) -> str:
    """The run's name of `table` of `source`: bare for the default source."""
    return table if source == DEFAULT else f"{source}{SEPARATOR}{table}"


def split(table: str) -> tuple[str, str]:
    """(source, table) of a run's table name; a bare name is the default source's."""
    source, sep, bare = table.partition(SEPARATOR)
    return (source, bare) if sep else (DEFAULT, table)
