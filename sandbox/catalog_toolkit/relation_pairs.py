"""Candidate foreign keys before any query, and their confidence once checked: no I/O here.

A pair (child column -> parent column) is a candidate when the kinds match (integer, text or
uuid), the parent column is unique or nearly so, the names relate (relation_names.py) and the
counts do not rule it out: a child with more distinct values than the parent has, or integer
ranges that do not meet, cannot be contained, and costs no query.

When the names say nothing (`flights.origin` -> `airports.faa`), the data may still: a text or
uuid column whose values repeat (many rows to one parent, as a reference's do), with at least
DATA_MIN_VALUES distinct values, is a candidate for every exactly unique text or uuid column of
another table whose range holds the child's. Such pairs come after the named ones, so the pair
cap drops them first, and their confidence is the evidence alone. Integers never pair on data
alone: small integer codes (a rating, a priority) sit in any dense id range. A column that is
its own table's primary key refers elsewhere only as a one-to-one extension, named after its
parent (`profiles.user_id` -> `users.id`), never to another table's surrogate `id`.

Confidence, once a bounded anti-join has said how many sampled child values have no parent:

    confidence = coverage * (name + (1 - name) * evidence)

`evidence` is how unlikely the containment is by chance. Integer keys packed densely in their
range (1..N) contain any small integers, so containment proves little and the name carries the
pair, unless the child uses a large share of the parent's keys; sparse integers, text and
uuids rarely match by accident, so each value found counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog_toolkit.relation_facts import ColumnFacts, TableFacts
from catalog_toolkit.relation_names import MENTION, SAME_NAME, name_score

TEXT_CHANCE = 0.5  # the chance, at worst, that one text value matches a parent key by accident
DATA_MIN_VALUES = 3  # distinct values a column needs to pair on its data alone


@dataclass(frozen=True)
class Pair:
    child: ColumnFacts
    parent: ColumnFacts
    name: float  # the name score

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.child.table, self.child.name, self.parent.table, self.parent.name)


def declared_columns(tables: list[TableFacts]) -> set[tuple[str, str]]:
    """(table, column) of every column in a declared single-column foreign key."""
    return {
        (t.name, fk["columns"][0])
        for t in tables
        for fk in t.foreign_keys
        if len(fk["columns"]) == 1
    }


def candidate_pairs(
    tables: list[TableFacts], *, min_coverage: float, min_name: float = MENTION
) -> tuple[list[Pair], dict[str, int]]:
    """Pairs worth a query, strongest names first, and how many were ruled out by counts."""
    skip = declared_columns(tables)
    parents = [c for t in tables for c in t.columns if c.key_like()]
    pairs: list[Pair] = []
    ruled_out = {"counts": 0, "ranges": 0, "empty": 0}
    for table in tables:
        own_key = table.primary_key[0] if len(table.primary_key) == 1 else None
        for child in table.columns:
            if child.kind == "other" or (table.name, child.name) in skip:
                continue
            for parent in parents:
                if parent.kind != child.kind or (parent.table, parent.name) == (
                    table.name,
                    child.name,
                ):
                    continue
                score = name_score(table.name, child.name, parent.table, parent.name)
                if child.name == own_key and score < SAME_NAME:
                    continue  # a primary key is no reference, but to the row it extends
                if score < min_name and not (score == 0 and data_only(child, parent)):
                    continue
                reason = _impossible(child, parent, min_coverage)
                if reason:
                    ruled_out[reason] += 1
                else:
                    pairs.append(Pair(child, parent, score))
    pairs.sort(key=lambda p: (-p.name, -(p.child.distinct or 0), p.key))
    return pairs, ruled_out


def data_only(child: ColumnFacts, parent: ColumnFacts) -> bool:
    """Whether the pair is worth a check on its data alone (see the module notes)."""
    if child.kind not in ("text", "uuid") or child.table == parent.table:
        return False
    repeats = (
        child.distinct_exact
        and child.distinct is not None
        and child.non_null is not None
        and DATA_MIN_VALUES <= child.distinct < child.non_null
    )
    exact = parent.distinct_exact and parent.distinct == parent.non_null
    return bool(repeats and (parent.declared_key or exact) and _within(child, parent))


def _within(child: ColumnFacts, parent: ColumnFacts) -> bool:
    """The child's values lie within the parent's range (compared as a case-insensitive
    collation does); unknown ranges are no evidence, so no."""
    ends = (child.low, child.high, parent.low, parent.high)
    if not all(isinstance(v, str) for v in ends):
        return False
    c_low, c_high, p_low, p_high = (str(v).casefold() for v in ends)
    return p_low <= c_low and c_high <= p_high


def _impossible(child: ColumnFacts, parent: ColumnFacts, min_coverage: float) -> str | None:
    """Why the counts alone say `child` cannot be contained in `parent`, if they do."""
    if child.non_null == 0:
        return "empty"
    exact = child.distinct_exact and (parent.distinct_exact or parent.declared_key)
    if exact and child.distinct and parent.non_null is not None:
        parent_values = parent.distinct if parent.distinct is not None else parent.non_null
        if parent_values < min_coverage * child.distinct:
            return "counts"
    numbers = child.kind == "integer" and _numbers(child.low, child.high, parent.low, parent.high)
    if numbers and (child.low > parent.high or child.high < parent.low):
        return "ranges"
    return None


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def evidence(pair: Pair, found: int) -> float:
    """How unlikely it is that `found` child values are parent keys by chance (0 to 1)."""
    parent = pair.parent
    if found <= 0:
        return 0.0
    # A child that uses a large share of the parent's keys ranges over exactly its key set,
    # as a reference does, whatever the kind.
    reach = min(found / parent.distinct, 1.0) if parent.distinct else 0.0
    if pair.child.kind == "integer" and _numbers(parent.low, parent.high) and parent.distinct:
        span = float(parent.high) - float(parent.low) + 1
        density = min(parent.distinct / span, 1.0) if span > 0 else 1.0
        return max(1.0 - density**found, reach)
    return max(1.0 - TEXT_CHANCE**found, reach)


def confidence(pair: Pair, coverage: float, found: int) -> float:
    return round(coverage * (pair.name + (1 - pair.name) * evidence(pair, found)), 3)


def choose(accepted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One parent per child column (the most confident), and one direction per pair of
    columns that contain each other (towards the declared key, else the bigger side)."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for item in sorted(accepted, key=_rank):
        best.setdefault((item["table"], item["column"]), item)
    chosen = list(best.values())
    edges = {
        (i["table"], i["column"], i["references"]["table"], i["references"]["column"])
        for i in chosen
    }
    kept = []
    for item in chosen:
        reverse = (
            item["references"]["table"],
            item["references"]["column"],
            item["table"],
            item["column"],
        )
        if reverse in edges and _rank(item) > _rank(_find(chosen, reverse)):
            continue
        kept.append(item)
    return sorted(kept, key=lambda i: (i["table"], i["column"]))


def _rank(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        -item["confidence"],
        not item["parent_declared_key"],
        -(item["parent_distinct"] or 0),
        item["references"]["table"],
        item["references"]["column"],
    )


def _find(items: list[dict[str, Any]], key: tuple[str, str, str, str]) -> dict[str, Any]:
    return next(
        i
        for i in items
        if (i["table"], i["column"], i["references"]["table"], i["references"]["column"]) == key
    )
