"""The cell that proves, inside the sandbox, that the agent's database connection is read only.

The proof itself is the toolkit's `probe_read_only` (sandbox/catalog_toolkit/read_only.py says
what counts as writable); this module builds its call and reads back its report. A source the
request names no tables of is listed by the same call (`list_sources`, up to `limit` tables in
all: catalog_toolkit/table_choice.py), and the report says what it chose (`chosen`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.common.cells import NoResult, call_cell, read_result


def probe_code(tables: list[str], listed: list[str] | None = None, limit: int = 0) -> str:
    if not listed:  # the call as before listing, for a sandbox image from before it
        return call_cell("probe_read_only", with_con=True, tables=list(tables))
    return call_cell(
        "probe_read_only", with_con=True, tables=list(tables), list_sources=listed, limit=limit
    )


@dataclass(frozen=True)
class ChosenSource:
    """The tables listed on a source the request named none of."""

    name: str
    tables: tuple[str, ...] = ()  # the first `limit` in name order, as the run names them
    found: int = 0  # tables of its default schema
    left_out: int = 0  # over the run's limit
    unnamed: int = 0  # names no request could spell ('.', '/', quotes): left out too
    error: str = ""  # why it could not be listed

    @classmethod
    def of(cls, name: str, data: dict[str, Any]) -> ChosenSource:
        return cls(
            name=name,
            tables=tuple(str(t) for t in data.get("tables", [])),
            found=int(data.get("found", 0)),
            left_out=int(data.get("left_out", 0)),
            unnamed=int(data.get("unnamed", 0)),
            error=str(data.get("error", "")),
        )

    def context(self) -> dict[str, Any]:
        """What the agents are told of it (their context's `chosen`), for the page to say."""
        return {
            "source": self.name,
            "found": self.found,
            "catalogued": len(self.tables),
            "left_out": self.left_out + self.unnamed,
        }


@dataclass(frozen=True)
class SourceProbe:
    """What the probe found on one source of the run."""

    writable: bool
    why: str
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # as the run names them

    @classmethod
    def of(cls, data: dict[str, Any]) -> SourceProbe:
        return cls(
            writable=bool(data.get("writable", False)),
            why=str(data.get("why", "")),
            warnings=[str(w) for w in data.get("warnings", [])],
            missing=[str(t) for t in data.get("missing", [])],
        )


@dataclass(frozen=True)
class ProbeReport:
    writable: bool
    why: str  # the first reason found, e.g. "may change the rows of view shop.v"
    warnings: list[str] = field(default_factory=list)  # risks that do not make it writable
    missing: list[str] = field(default_factory=list)  # requested tables that cannot be read
    # Each source's own findings, in request order; {} from a toolkit before sources.
    by_source: dict[str, SourceProbe] = field(default_factory=dict)
    chosen: list[ChosenSource] = field(default_factory=list)  # the sources listed, in order

    @classmethod
    def from_stdout(cls, stdout: str) -> ProbeReport | None:
        """The report the cell printed; None when it printed none."""
        try:
            data: dict[str, Any] = read_result(stdout)
        except NoResult:
            return None
        return cls(
            writable=bool(data["writable"]),
            why=str(data["why"]),
            warnings=[str(w) for w in data.get("warnings", [])],
            missing=[str(t) for t in data["missing"]],
            by_source={
                str(name): SourceProbe.of(found)
                for name, found in (data.get("by_source") or {}).items()
            },
            chosen=[
                ChosenSource.of(str(name), found)
                for name, found in (data.get("chosen") or {}).items()
            ],
        )
