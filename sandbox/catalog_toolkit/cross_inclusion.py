"""Columns that look like keys into another source's table, checked on a bounded sample.

Candidates (no query): a column of source A whose name says it refers to a key of a table of
source B (relation_names.name_score: `customer_id` -> `customers.id`, the singular or plural
of the table; or the same, not generic, name as B's key: `sku` -> `products.sku`), of the
same key kind (integer, text, uuid). B's keys are its declared single-column keys, else an
integer column named `id`. Strongest names first, at most `max_checks` of them.

The check, with no row pulled beyond its sample: up to `sample_limit` distinct non-null values
of A's column (`SELECT DISTINCT ... LIMIT`, in A's database: in a random order on tables of at
most RANDOM_ROWS rows, else the first ones read, which costs no full pass but may miss what
was added last; `sample` says which), looked up in B's column: all of
B's distinct values when B holds at most SMALL_PARENT rows (one query, kept for the next
check), else `WHERE key IN (...)` in batches of BATCH values. The share found is a sample's
share, and every result says so. A source lost on the way makes its remaining checks say so.
"""

from __future__ import annotations

import decimal
import uuid
from dataclasses import dataclass
from typing import Any

import ibis

from catalog_toolkit.cross_facts import Facts
from catalog_toolkit.database import Database, TableName
from catalog_toolkit.failures import connection_lost as lost
from catalog_toolkit.failures import failure_text
from catalog_toolkit.relation_names import name_score

MIN_NAME_SCORE = 0.85  # the table's singular and key, a role before it, or the same name
SMALL_PARENT = 50_000
BATCH = 1_000
MIN_SHARE = 0.5  # under it, the column is probably no reference to that table
RANDOM_ROWS = 10_000_000  # up to it, the distinct values are sampled in a random order


@dataclass(frozen=True)
class Candidate:
    child: Facts
    column: str
    parent: Facts
    key: str
    score: float


def candidates(facts: list[Facts]) -> list[Candidate]:
    """Every cross-source candidate, strongest name first (see the module notes)."""
    found = []
    for parent in facts:
        for key in _keys(parent):
            for child in facts:
                if child.source == parent.source:
                    continue
                for column in child.columns:
                    if child.kind(column) != parent.kind(key) or child.kind(column) == "other":
                        continue
                    score = name_score(child.bare, column, parent.bare, key)
                    if score >= MIN_NAME_SCORE:
                        found.append(Candidate(child, column, parent, key, score))
    return sorted(found, key=lambda c: -c.score)


def _keys(facts: Facts) -> list[str]:
    if facts.keys:
        return [k for k in facts.keys if k in facts.columns]
    return [c for c in facts.columns if c.lower() == "id" and facts.kind(c) == "integer"]


class Checker:
    """Runs the checks, one database per source; remembers parents' values and lost sources."""

    def __init__(self, dbs: dict[str, Database], dead: dict[str, str], sample_limit: int) -> None:
        self.dbs = dbs
        self.dead = dead
        self.sample_limit = sample_limit
        self._parents: dict[tuple[str, str], set[Any]] = {}

    def check(self, candidate: Candidate) -> dict[str, Any]:
        item = _item(candidate, self.sample_limit)
        for source in (candidate.child.source, candidate.parent.source):
            if source in self.dead:
                return _failed(item, source, self.dead[source])
        source = candidate.child.source
        try:
            values, item["sample"] = self._sample(candidate)
            source = candidate.parent.source
            found, how = self._lookup(candidate, values)
        except Exception as exc:
            if lost(exc):
                self.dead[source] = failure_text(exc)
            return _failed(item, source, failure_text(exc))
        item.update(sampled=len(values), found=found, lookup=how)
        item["share"] = round(found / len(values), 4) if values else None
        item["complete"] = len(values) < self.sample_limit
        return item

    def _sample(self, c: Candidate) -> tuple[list[Any], str]:
        """Up to sample_limit distinct values of the child column, and how they were taken."""
        db = self.dbs[c.child.source]
        t = db.table(TableName.parse(c.child.bare))
        values = t.select(v=t[c.column]).filter(lambda r: r.v.notnull()).distinct()
        rows = c.child.rows
        how = "random" if rows is not None and rows <= RANDOM_ROWS else "first read"
        if how == "random":
            values = values.order_by(ibis.random())
        fetched = db.fetch(values.limit(self.sample_limit))
        return list(dict.fromkeys(_plain(row["v"]) for row in fetched)), how

    def _lookup(self, c: Candidate, values: list[Any]) -> tuple[int, str]:
        """How many of `values` B's key holds, and how it was looked up."""
        db = self.dbs[c.parent.source]
        t = db.table(TableName.parse(c.parent.bare))
        place = (c.parent.table, c.key)
        small = c.parent.rows is not None and c.parent.rows <= SMALL_PARENT
        if place in self._parents or small:
            if place not in self._parents:
                keys = t.select(v=t[c.key]).filter(lambda r: r.v.notnull()).distinct()
                rows = db.fetch(keys.limit(SMALL_PARENT + 1))
                self._parents[place] = {_plain(row["v"]) for row in rows}
            return sum(v in self._parents[place] for v in values), "the key's distinct values"
        found: set[Any] = set()
        for start in range(0, len(values), BATCH):
            batch = values[start : start + BATCH]
            hits = t.filter(t[c.key].isin(batch)).select(v=t[c.key]).distinct()
            found.update(_plain(row["v"]) for row in db.fetch(hits))
        return sum(v in found for v in values), f"batches of {BATCH:,} values"


def _plain(value: Any) -> Any:
    """One form for a value whichever driver returned it: whole numbers as int, UUIDs as text."""
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _item(c: Candidate, sample_limit: int) -> dict[str, Any]:
    return {
        "table": c.child.table,
        "column": c.column,
        "references": {"table": c.parent.table, "column": c.key},
        "name_score": c.score,
        "sample_limit": sample_limit,
    }


def _failed(item: dict[str, Any], source: str, error: str) -> dict[str, Any]:
    return {**item, "error": f"the source `{source}` failed: {error}", "failed_source": source}


def finding(item: dict[str, Any]) -> dict[str, Any]:
    """The check as a finding: good when every sampled value was found, bad with orphans,
    neutral when too few were found for the column to be a reference (or the check failed)."""
    ref = item["references"]
    tables = [item["table"], ref["table"]]
    where = f"{item['table']}.{item['column']}"
    into = f"{ref['table']}.{ref['column']}"
    if "error" in item:
        text = f"could not check {where} against {into}: {item['error']}"
        return {"severity": "neutral", "kind": "key_check_failed", "tables": tables, "text": text}
    return {
        "severity": _severity(item),
        "kind": "key_inclusion",
        "tables": tables,
        "text": sentence(item),
    }


def _severity(item: dict[str, Any]) -> str:
    share = item["share"]
    if share is None or share < MIN_SHARE:
        return "neutral"
    return "good" if item["found"] == item["sampled"] else "bad"


def sentence(item: dict[str, Any]) -> str:
    """`sampled: 10,000 distinct values of app/orders.customer_id, 9,874 found in
    billing/customers.id (98.7%)`."""
    ref = item["references"]
    where = f"{item['table']}.{item['column']}"
    if not item["sampled"]:
        return f"sampled: {where} holds no value to look up in {ref['table']}.{ref['column']}"
    limit = f"{item['sample_limit']:,}"
    if item["complete"]:
        taken = "all it holds"
    elif item.get("sample") == "random":
        taken = f"a random {limit} of them"
    else:
        taken = f"the first {limit} read, not a random sample"
    text = (
        f"sampled: {item['sampled']:,} distinct values of {where} ({taken}), "
        f"{item['found']:,} found in {ref['table']}.{ref['column']} ({item['share']:.1%})"
    )
    if item["share"] < MIN_SHARE:
        text += ": probably not a reference to that table"
    return text
