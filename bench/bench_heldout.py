"""Held-out benchmark: the pii, relations and anomalies agents on sets their author never saw.

The sets (bench/heldout/, fixed seeds) were written from the issue, the docs and the public
signatures only, before reading the detectors' rules or the agents' own case generators:
- pii: 82 columns in seven tables (CRM contacts, payments, employees, patients, SaaS events,
  flight bookings, orders), 4 of them debatable and left out of the scoring, 29 holding
  personal data, 25 traps; built in DuckDB, PostgreSQL and MariaDB (`--duckdb-only` skips
  the servers), each dropped at the end. A column is tagged when find_pii gives it any type,
  right when one of the types is in its label. pii.heldout.precision, .recall,
  .trap_false_positives (trap columns tagged, over the backends together);
- relations: five schemas (shop, hr, saas, air, clinic) with 48 undeclared foreign keys and
  decoys, in DuckDB; relations.heldout.fk_f1 (with .precision, .recall) over the inferred
  edges, direction included;
- anomalies: 289 run histories (anomaly_set.py) judged by find_anomalies with its defaults.
  A finding on the injected table (and column, for a column's anomaly) of an accepted category
  (a volume finding going the injected way) is a true positive; other findings on that table
  are consequences, neither true nor false (listed on stderr); every other finding is false.
  anomalies.heldout.precision (findings), .recall (injected histories with a true positive),
  .false_alerts_constant_or_learning (findings there; goal 0).
Peers, scored the same way on the same sets: the ones bench_pii, bench_relations and
bench_anomalies define (peer.name_regex_pii, peer.name_match, peer.naive_zscore).
Misses go to stderr with their case. Prints one JSON object a line: {"name", "value", "unit"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import emit
from heldout import anomaly_set, build, pii_set, relations_set

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sandbox"))  # this checkout's toolkit, whatever is installed

Tags = dict[tuple[str, str], set[str]]
Edge = relations_set.Edge
Judged = list[tuple[anomaly_set.Case, list[dict[str, Any]]]]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- pii --------------------------------------------------------------------------------------


def pii_tags(dsn: str, schema: str, table_names: list[str]) -> Tags:
    from catalog_kernel.connections import open_read_only
    from catalog_toolkit import find_pii

    con, _ = open_read_only(dsn, statement_timeout_s=60)
    try:
        result = find_pii(con, [f"{schema}.{t}" for t in table_names])
    finally:
        con.disconnect()
    tags: Tags = {}
    for entry in result["tables"].values():
        table = entry["table"].rsplit(".", 1)[-1]
        for column in entry["columns"]:
            tags[(table, column["name"])] = {v["type"] for v in column["pii"]}
    return tags


def pii_score(
    columns: list[pii_set.Column], runs: list[tuple[str, Tags]], silent: bool = False
) -> dict[str, float]:
    """Precision, recall and trap false positives over every backend's tags together."""
    tagged = right = positives = found = traps = 0
    for backend, tags in runs:
        for c in columns:
            given = tags.get((c.table, c.name), set())
            if not silent:
                _pii_note(backend, c, given)
            if c.debatable:
                continue
            tagged += bool(given)
            right += bool(given & c.label)
            positives += bool(c.label)
            found += bool(given & c.label)
            traps += bool(c.trap and given)
    return {
        "precision": right / tagged if tagged else 1.0,
        "recall": found / positives if positives else 1.0,
        "trap_false_positives": float(traps),
    }


def _pii_note(backend: str, c: pii_set.Column, given: set[str]) -> None:
    where = f"pii {backend}: {c.table}.{c.name}"
    if c.debatable:
        say(f"{where} (debatable, unscored: {c.debatable}) -> {sorted(given) or 'untagged'}")
    elif given and not given & c.label:
        say(f"{where} {'TRAP ' if c.trap else ''}false positive -> {sorted(given)}")
    elif c.label and not given & c.label:
        say(f"{where} missed ({sorted(c.label)}) -> {sorted(given) or 'untagged'}")


def peer_pii(columns: list[pii_set.Column]) -> list[tuple[str, Tags]]:
    """bench_pii's peer (column-name substring rules, no values) on the same columns."""
    from bench_pii import peer_tags

    return [("peer", {(c.table, c.name): peer_tags(c.name) for c in columns})]


def run_pii(folder: Path, duckdb_only: bool) -> list[tuple[str, Tags]]:
    columns = pii_set.build()
    names = list(pii_set.tables(columns))
    runs = []
    with build.pii_duckdb(folder, columns) as (dsn, schema):
        runs.append(("duckdb", pii_tags(dsn, schema, names)))
    if not duckdb_only:
        with build.pii_postgres(columns) as (dsn, schema):
            runs.append(("postgres", pii_tags(dsn, schema, names)))
        with build.pii_mysql(columns) as (dsn, schema):
            runs.append(("mysql", pii_tags(dsn, schema, names)))
    return runs


# -- relations --------------------------------------------------------------------------------


def inferred_edges(schema: str, result: dict[str, Any]) -> set[Edge]:
    return {
        (
            schema,
            r["table"].rsplit(".", 1)[-1],
            r["column"],
            r["references"]["table"].rsplit(".", 1)[-1],
            r["references"]["column"],
        )
        for r in result["inferred"]
    }


def f1(truth: set[Edge], found: set[Edge]) -> tuple[float, float, float]:
    hits = len(truth & found)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, score


def run_relations(folder: Path) -> tuple[set[Edge], set[Edge], set[Edge]]:
    """The truth, what find_relations inferred, and what bench_relations' peer found."""
    from bench_relations import name_match
    from catalog_kernel.connections import open_read_only
    from catalog_toolkit import find_relations

    schemas = relations_set.schemas()
    truth: set[Edge] = set().union(*(s.truth for s in schemas))
    found: set[Edge] = set()
    peer: set[Edge] = set()
    with build.relations_duckdb(folder, schemas) as dsn:
        con, _ = open_read_only(dsn, statement_timeout_s=60)
        try:
            for s in schemas:
                result = find_relations(con, [f"{s.name}.{t.name}" for t in s.tables])
                found |= inferred_edges(s.name, result)
                keys = {t.name: t.primary_key for t in s.tables if t.primary_key}
                names = [t.name for t in s.tables]
                for child, column, parent, key in name_match(con, s.name, names, keys):
                    peer.add((s.name, child, column, parent, key))
        finally:
            con.disconnect()
    for edge in sorted(truth - found):
        say(f"relations: missed {edge[0]}.{edge[1]}.{edge[2]} -> {edge[3]}.{edge[4]}")
    for edge in sorted(found - truth):
        say(f"relations: false {edge[0]}.{edge[1]}.{edge[2]} -> {edge[3]}.{edge[4]}")
    return truth, found, peer


# -- anomalies --------------------------------------------------------------------------------


def store(case: anomaly_set.Case, folder: Path) -> Path:
    """The case's runs as the pipeline stages them: `{folder}/{timestamp}/catalog.json`."""
    for timestamp, catalog in case.runs:
        run = folder / timestamp
        run.mkdir(parents=True)
        (run / "catalog.json").write_text(json.dumps(catalog), encoding="utf-8")
    return folder


def judge(case: anomaly_set.Case, folder: Path) -> list[dict[str, Any]]:
    from catalog_toolkit import find_anomalies

    findings: list[dict[str, Any]] = find_anomalies(str(folder), case.runs[-1][0])["findings"]
    return findings


def classify(case: anomaly_set.Case, finding: dict[str, Any]) -> str:
    """true, consequence (the injected table, another figure) or false."""
    if case.table is None or finding["table"] != case.table:
        return "false"
    column_ok = not case.columns or finding["column"] in case.columns
    way = anomaly_set.DIRECTION.get(case.kind)
    if finding["category"] == "volume" and way and way not in finding["kind"]:
        return "false"  # the volume moved the other way from the injected anomaly
    return "true" if column_ok and finding["category"] in case.accept else "consequence"


def _line(finding: dict[str, Any]) -> str:
    where = finding["table"] + (f".{finding['column']}" if finding["column"] else "")
    return f"{where} {finding['category']}/{finding['kind']}: {finding['message']}"


def anomaly_score(judged: Judged, silent: bool = False) -> dict[str, float]:
    """Precision over findings, recall over injected histories (see the module notes)."""
    true = false = consequences = quiet_alerts = injected = detected = 0
    for case, findings in judged:
        kinds = [classify(case, f) for f in findings]
        if not case.scored:
            if not silent:
                say(f"anomalies: unscored {case.name} ({case.note}): {len(findings)} findings")
            continue
        true += kinds.count("true")
        false += kinds.count("false")
        consequences += kinds.count("consequence")
        if case.kind in ("constant", "learning"):
            quiet_alerts += len(findings)
        if case.table is not None:
            injected += 1
            detected += "true" in kinds
            if "true" not in kinds and not silent:
                say(f"anomalies: missed {case.name} {case.table} {case.columns} {case.note}")
        for finding, kind in zip(findings, kinds, strict=True):
            if kind != "true" and not silent:
                say(f"anomalies: {kind} finding in {case.name} ({case.note}): {_line(finding)}")
    return {
        "precision": true / (true + false) if true + false else 1.0,
        "recall": detected / injected if injected else 1.0,
        "false_alerts_constant_or_learning": float(quiet_alerts),
        "consequences": float(consequences),
    }


def run_anomalies(folder: Path) -> tuple[Judged, Judged]:
    """find_anomalies' findings per case, and the peer's: bench_anomalies' naive z-score
    swapped in for the series judge, as that bench measures it."""
    from unittest import mock

    from bench_anomalies import naive_series
    from catalog_toolkit import anomalies

    stored = [
        (case, store(case, folder / f"case{i:03d}")) for i, case in enumerate(anomaly_set.cases())
    ]
    judged = [(case, judge(case, path)) for case, path in stored]
    with mock.patch.object(anomalies, "judge_series", naive_series):
        peer = [(case, judge(case, path)) for case, path in stored]
    return judged, peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duckdb-only", action="store_true", help="pii on DuckDB only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_heldout_") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        columns = pii_set.build()
        emit_pii("pii.heldout", pii_score(columns, run_pii(folder, args.duckdb_only)))
        emit_pii("peer.name_regex_pii.heldout", pii_score(columns, peer_pii(columns), True))
        truth, found, peer = run_relations(folder)
        emit_relations("relations.heldout", truth, found)
        emit_relations("peer.name_match.heldout", truth, peer)
        emit("relations.heldout.true_fks", len(truth), "edges")
        judged, peer_judged = run_anomalies(folder / "histories")
        emit_anomalies("anomalies.heldout", anomaly_score(judged))
        emit_anomalies("peer.naive_zscore.heldout", anomaly_score(peer_judged, silent=True))
        emit("anomalies.heldout.histories", len(judged), "histories")
        emit("heldout.seconds", time.perf_counter() - started, "s")


def emit_pii(prefix: str, figures: dict[str, float]) -> None:
    emit(f"{prefix}.precision", figures["precision"], "ratio")
    emit(f"{prefix}.recall", figures["recall"], "ratio")
    emit(f"{prefix}.trap_false_positives", figures["trap_false_positives"], "columns")


def emit_relations(prefix: str, truth: set[Edge], found: set[Edge]) -> None:
    precision, recall, score = f1(truth, found)
    emit(f"{prefix}.fk_f1", score, "ratio")
    emit(f"{prefix}.precision", precision, "ratio")
    emit(f"{prefix}.recall", recall, "ratio")


def emit_anomalies(prefix: str, figures: dict[str, float]) -> None:
    emit(f"{prefix}.precision", figures["precision"], "ratio")
    emit(f"{prefix}.recall", figures["recall"], "ratio")
    emit(
        f"{prefix}.false_alerts_constant_or_learning",
        figures["false_alerts_constant_or_learning"],
        "findings",
    )


if __name__ == "__main__":
    main()
