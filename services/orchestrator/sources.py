"""A run's databases: their names, sealed connection strings and table names.

A request gives either `sources: [{name, db_conn_string, tables}]` or the one-database
shorthand `db_conn_string` with `tables`, which is one source named "default". The workflow
holds every DSN in one sealed token (sealing.py), the JSON `{"sources": [{"name", "dsn"}]}`;
a token of a run from before sources holds the bare DSN, which `open_sources` reads as the
source "default". Table names carry their source as the sandbox's toolkit reads them
(sandbox/catalog_toolkit/sources.py): `billing/invoices`, bare for "default".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.common.source_names import DEFAULT, qualify
from services.orchestrator.sealing import secret_values

if TYPE_CHECKING:
    from services.orchestrator.sealing import Sealer


@dataclass(frozen=True)
class Source:
    """One database of a run. The DSN is secret: it is left out of the repr."""

    name: str
    dsn: str = field(repr=False)
    tables: tuple[str, ...] = ()


def run_tables(sources: list[Source]) -> list[str]:
    """Every source's tables, named as the run names them, in request order."""
    return [qualify(s.name, t) for s in sources for t in s.tables]


def seal_sources(sealer: Sealer, sources: list[Source]) -> str:
    """One token for every DSN of the run; a one-database shorthand run seals its bare DSN,
    as runs did before sources (so its token opens in an older orchestrator too)."""
    if len(sources) == 1 and sources[0].name == DEFAULT:
        return sealer.seal(sources[0].dsn)
    payload = {"sources": [{"name": s.name, "dsn": s.dsn} for s in sources]}
    return sealer.seal(json.dumps(payload))


def open_sources(sealer: Sealer, sealed: str) -> dict[str, str]:
    """name -> DSN, in order, from a token `seal_sources` made (or a bare sealed DSN)."""
    opened = sealer.open(sealed)
    if not opened.startswith("{"):  # a DSN never starts with '{'
        return {DEFAULT: opened}
    return {str(s["name"]): str(s["dsn"]) for s in json.loads(opened)["sources"]}


def source_secrets(dsns: dict[str, str]) -> tuple[str, ...]:
    """Every DSN and password of the run, for redaction."""
    return tuple(dict.fromkeys(v for dsn in dsns.values() for v in secret_values(dsn)))
