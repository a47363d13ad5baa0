"""Undeclared foreign keys and candidate keys, checked in the database.

    r = find_relations(con, ["shop.orders", "shop.customers"], history_dir=hd, current_timestamp=ts)

1. Facts per table (relation_facts.py): from this run's `catalog.json` when there is one, else
   from the catalog's declarations and one aggregate per table.
2. Candidate pairs (relation_pairs.py): kinds, names and counts; no query. At most `max_pairs`
   are checked, strongest names first; the rest are counted in `over_cap`.
3. Per pair, at most MAX_QUERIES_PER_PAIR queries, all in the database through ibis:
   - the bounded anti-join: up to `sample_values` distinct non-null child values, and how many
     of them have no parent value (`NOT EXISTS` / `ANTI JOIN`);
   - when the parent's distinct count is approximate (DuckDB's HyperLogLog, a sample, the
     planner's estimate), one exact count of its distinct values, once per parent column.
4. A pair whose coverage reaches `min_coverage` and whose confidence reaches `min_confidence`
   is inferred; each child column keeps its most confident parent.
Declared foreign keys are reported as declared, never re-inferred. The result is recorded
(record.remember("relations", ...)) for the page and the run's `relations.json`.
"""

from __future__ import annotations

import time
from typing import Any

from catalog_toolkit import record, sources
from catalog_toolkit.database import Database, QueryTimeout, TableName
from catalog_toolkit.relation_facts import (
    TableFacts,
    candidate_keys,
    from_database,
    from_profile,
    load_catalog,
)
from catalog_toolkit.relation_pairs import Pair, candidate_pairs, choose, confidence
from catalog_toolkit.relation_report import findings_of, headline

FORMAT = 1
MAX_QUERIES_PER_PAIR = 3
DEFAULT_MAX_PAIRS = 200
DEFAULT_SAMPLE_VALUES = 50_000
DEFAULT_MIN_COVERAGE = 0.9
DEFAULT_MIN_CONFIDENCE = 0.6
DEFAULT_TIMEOUT_S = 120.0
MAX_REJECTED_SHOWN = 50


class _Checker:
    """Runs and counts the queries of the inclusion checks, each in its tables' source."""

    def __init__(self, con: Any, timeout_s: float, sample_values: int) -> None:
        self.con = con
        self.timeout_s = timeout_s
        self.sample_values = sample_values
        self.queries = 0
        self.db = Database(sources.first(con), timeout_s)
        self._unique: dict[tuple[str, str], tuple[int, int]] = {}

    def _table(self, table: str) -> Any:
        """`table` (a run name) in its source, whose database the next fetch then asks."""
        connection, bare = sources.connection_for(self.con, table)
        if connection is not self.db.con:
            self.db = Database(connection, self.timeout_s)
        return self.db.table(TableName.parse(bare))

    def _fetch(self, expr: Any) -> dict[str, Any]:
        self.queries += 1
        return self.db.fetch(expr)[0]

    def coverage(self, pair: Pair) -> tuple[int, int]:
        """(checked, missing): distinct child values sampled, and those with no parent (the
        two tables are of one source: candidate pairs never cross sources)."""
        child = self._table(pair.child.table)
        parent = self._table(pair.parent.table)
        values = child.select(v=child[pair.child.name]).filter(lambda t: t.v.notnull())
        sample = values.distinct().limit(self.sample_values)
        keys = parent.select(k=parent[pair.parent.name])
        missing = sample.anti_join(keys, sample.v == keys.k)
        row = self._fetch(
            sample.aggregate(checked=sample.count(), missing=missing.count().as_scalar())
        )
        return int(row["checked"]), int(row["missing"])

    def exact_unique(self, pair: Pair) -> tuple[int, int]:
        """(non-null, distinct) of the parent column, counted once per column."""
        key = (pair.parent.table, pair.parent.name)
        if key not in self._unique:
            t = self._table(pair.parent.table)
            c = t[pair.parent.name]
            row = self._fetch(t.aggregate(n=c.count(), d=c.nunique()))
            self._unique[key] = (int(row["n"]), int(row["d"]))
        return self._unique[key]


def find_relations(
    con: Any,
    tables: list[str] | None = None,
    *,
    history_dir: str = "",
    current_timestamp: str = "",
    max_pairs: int = DEFAULT_MAX_PAIRS,
    sample_values: int = DEFAULT_SAMPLE_VALUES,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Declared and inferred foreign keys among `tables` (every table of this run's catalog,
    or of the connection's default schema, when empty), and undeclared candidate keys. With
    `cons`, keys are inferred within each source, its tables named `billing/invoices`."""
    started = time.perf_counter()
    db = Database(sources.first(con), timeout_s)
    result: dict[str, Any] = {"format": FORMAT, "kind": "relations", "backend": db.backend}
    result["errors"] = []
    facts = _gather(con, timeout_s, result, list(tables or []), history_dir, current_timestamp)
    result["tables"] = [f.name for f in facts]
    result["facts_from"] = sorted({f.source for f in facts})
    result["declared"] = [
        {"table": f.name, "columns": fk["columns"], "references": fk["references"]}
        for f in facts
        for fk in f.foreign_keys
    ]
    pairs, ruled_out = _pairs_per_source(facts, min_coverage)
    checker = _Checker(con, timeout_s, sample_values)
    accepted, rejected, per_pair = _check_all(
        checker, result, pairs[:max_pairs], min_coverage, min_confidence
    )
    result["inferred"] = choose(accepted)
    result["rejected"] = sorted(rejected, key=lambda r: -r["name_score"])[:MAX_REJECTED_SHOWN]
    result["candidate_keys"] = [k for f in facts for k in candidate_keys(f)]
    result["limits"] = {
        "max_pairs": max_pairs,
        "sample_values": sample_values,
        "min_coverage": min_coverage,
        "min_confidence": min_confidence,
        "max_queries_per_pair": MAX_QUERIES_PER_PAIR,
    }
    result["counts"] = {
        "tables": len(facts),
        "declared": len(result["declared"]),
        "candidates": len(pairs),
        "checked": min(len(pairs), max_pairs),
        "over_cap": max(len(pairs) - max_pairs, 0),
        "ruled_out_without_query": sum(ruled_out.values()),
        "inferred": len(result["inferred"]),
        "candidate_keys": len(result["candidate_keys"]),
        "queries": checker.queries,
        "max_queries_per_pair": max(per_pair, default=0),
    }
    result["findings"] = findings_of(result)
    result["headline"] = headline(result)
    result["seconds"] = round(time.perf_counter() - started, 3)
    record.remember("relations", result)
    return result


def _gather(
    con: Any,
    timeout_s: float,
    result: dict[str, Any],
    tables: list[str],
    history_dir: str,
    current: str,
) -> list[TableFacts]:
    """Facts for each table: from the catalog's profile when it has one, else queried in its
    source; a table of a source the session has not open is an error, the others go on."""
    catalog = load_catalog(history_dir, current)
    if not tables:
        tables = list(catalog) or sorted(sources.first(con).list_tables())
    facts = []
    for table in tables:
        found = sources.resolve(con, table)
        profile = catalog.get(found.run)
        try:
            if profile:
                facts.append(from_profile(profile))
            elif found.con is None:
                raise sources.UnknownSource(found.why)
            else:
                queried = from_database(Database(found.con, timeout_s), found.bare)
                facts.append(_renamed(queried, found.run))
        except Exception as exc:
            result["errors"].append({"table": found.run, "error": _error_text(exc)})
    return facts


def _renamed(facts: TableFacts, run: str) -> TableFacts:
    """Facts read in a source, named as the run names its tables (`billing/invoices`)."""
    source = sources.source_name(run)
    facts.name = run
    for column in facts.columns:
        column.table = run
    facts.foreign_keys = [
        {
            **fk,
            "references": {
                **fk["references"],
                "table": sources.qualify(source, fk["references"]["table"]),
            },
        }
        for fk in facts.foreign_keys
    ]
    return facts


def _pairs_per_source(
    facts: list[TableFacts], min_coverage: float
) -> tuple[list[Pair], dict[str, int]]:
    """candidate_pairs within each source (a key into another source is cross_source.py's
    business), strongest first over all of them."""
    groups: dict[str, list[TableFacts]] = {}
    for f in facts:
        groups.setdefault(sources.source_name(f.name), []).append(f)
    pairs: list[Pair] = []
    ruled_out = {"counts": 0, "ranges": 0, "empty": 0}
    for group in groups.values():
        found, out = candidate_pairs(group, min_coverage=min_coverage)
        pairs += found
        for reason, n in out.items():
            ruled_out[reason] = ruled_out.get(reason, 0) + n
    pairs.sort(key=lambda p: (-p.name, -(p.child.distinct or 0), p.key))
    return pairs, ruled_out


def _check_all(
    checker: _Checker,
    result: dict[str, Any],
    pairs: list[Pair],
    min_coverage: float,
    min_confidence: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    accepted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    per_pair: list[int] = []
    for pair in pairs:
        before = checker.queries
        try:
            item = _check(checker, pair)
        except Exception as exc:
            result["errors"].append({"pair": _pair_text(pair), "error": _error_text(exc)})
            item = None
        per_pair.append(checker.queries - before)
        if item is None:
            continue
        item["queries"] = per_pair[-1]
        if item["reason"] is None and item["coverage"] < min_coverage:
            item["reason"] = f"coverage under {min_coverage:.0%}"
        if item["reason"] is None and item["confidence"] < min_confidence:
            item["reason"] = f"confidence under {min_confidence:g}"
        (rejected if item["reason"] else accepted).append(item)
    return accepted, rejected, per_pair


def _check(checker: _Checker, pair: Pair) -> dict[str, Any] | None:
    """The inclusion check of one pair: its figures, and `reason` when it is not a relation."""
    checked, missing = checker.coverage(pair)
    if checked == 0:
        return None
    reason = None
    parent = pair.parent
    if not parent.declared_key and not parent.distinct_exact:
        non_null, distinct = checker.exact_unique(pair)
        parent.non_null, parent.distinct, parent.distinct_exact = non_null, distinct, True
        if not parent.key_like():
            reason = "the referenced column is not unique"
    found = checked - missing
    coverage = found / checked
    child_distinct = pair.child.distinct if pair.child.distinct_exact else None
    return {
        "table": pair.child.table,
        "column": pair.child.name,
        "references": {"table": parent.table, "column": parent.name},
        "confidence": confidence(pair, coverage, found),
        "name_score": pair.name,
        "coverage": round(coverage, 4),
        "checked": checked,
        "missing": missing,
        "sampled": checked >= checker.sample_values,
        "child_distinct": child_distinct,
        "parent_distinct": parent.distinct,
        "parent_uniqueness": round(parent.uniqueness or 0.0, 4),
        "parent_declared_key": parent.declared_key,
        "reason": reason,
    }


def _pair_text(pair: Pair) -> str:
    return f"{pair.child.table}.{pair.child.name} -> {pair.parent.table}.{pair.parent.name}"


def _error_text(exc: Exception) -> str:
    if isinstance(exc, QueryTimeout):
        return str(exc)
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"
