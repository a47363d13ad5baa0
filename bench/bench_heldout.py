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
  is a true positive; other findings on that table are consequences, counted apart; every other
  finding is a false one. anomalies.heldout.precision (findings), .recall (injected histories
  with a true positive), .false_alerts_constant_or_learning (findings there; goal 0).
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


def pii_score(columns: list[pii_set.Column], runs: list[tuple[str, Tags]]) -> dict[str, float]:
    tagged = right = positives = found = traps = 0
    for backend, tags in runs:
        for c in columns:
            given = tags.get((c.table, c.name), set())
            if c.debatable:
                say(f"pii {backend}: debatable {c.table}.{c.name} -> {sorted(given) or 'untagged'}")
                continue
            tagged += bool(given)
            right += bool(given & c.label)
            positives += bool(c.label)
            found += bool(given & c.label)
            traps += bool(c.trap and given)
            if given and not given & c.label:
                what = "TRAP " if c.trap else ""
                say(f"pii {backend}: {what}false positive {c.table}.{c.name} -> {sorted(given)}")
            elif c.label and not given & c.label:
                say(
                    f"pii {backend}: missed {c.table}.{c.name} ({sorted(c.label)}) -> "
                    f"{sorted(given) or 'untagged'}"
                )
    return {
        "precision": right / tagged if tagged else 1.0,
        "recall": found / positives if positives else 1.0,
        "trap_false_positives": float(traps),
    }


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


def run_relations(folder: Path) -> tuple[set[Edge], set[Edge]]:
    from catalog_kernel.connections import open_read_only
    from catalog_toolkit import find_relations

    schemas = relations_set.schemas()
    truth: set[Edge] = set().union(*(s.truth for s in schemas))
    found: set[Edge] = set()
    with build.relations_duckdb(folder, schemas) as dsn:
        con, _ = open_read_only(dsn, statement_timeout_s=60)
        try:
            for s in schemas:
                result = find_relations(con, [f"{s.name}.{t.name}" for t in s.tables])
                found |= inferred_edges(s.name, result)
        finally:
            con.disconnect()
    for edge in sorted(truth - found):
        say(f"relations: missed {edge[0]}.{edge[1]}.{edge[2]} -> {edge[3]}.{edge[4]}")
    for edge in sorted(found - truth):
        say(f"relations: false {edge[0]}.{edge[1]}.{edge[2]} -> {edge[3]}.{edge[4]}")
    return truth, found


# -- anomalies --------------------------------------------------------------------------------


def judge(case: anomaly_set.Case, folder: Path) -> list[dict[str, Any]]:
    from catalog_toolkit import find_anomalies

    for timestamp, catalog in case.runs:
        run = folder / timestamp
        run.mkdir(parents=True)
        (run / "catalog.json").write_text(json.dumps(catalog), encoding="utf-8")
    findings: list[dict[str, Any]] = find_anomalies(str(folder), case.runs[-1][0])["findings"]
    return findings


def classify(case: anomaly_set.Case, finding: dict[str, Any]) -> str:
    """true, consequence (the injected table, another figure) or false."""
    if case.table is None or finding["table"] != case.table:
        return "false"
    column_ok = not case.columns or finding["column"] in case.columns
    return "true" if column_ok and finding["category"] in case.accept else "consequence"


def _line(finding: dict[str, Any]) -> str:
    where = finding["table"] + (f".{finding['column']}" if finding["column"] else "")
    return f"{where} {finding['category']}/{finding['kind']}: {finding['message']}"


def anomaly_score(judged: list[tuple[anomaly_set.Case, list[dict[str, Any]]]]) -> dict[str, float]:
    true = false = consequences = quiet_alerts = injected = detected = 0
    for case, findings in judged:
        kinds = [classify(case, f) for f in findings]
        if not case.scored:
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
            if "true" not in kinds:
                say(f"anomalies: missed {case.name} {case.table} {case.columns} {case.note}")
        for finding, kind in zip(findings, kinds, strict=True):
            if kind == "false":
                say(f"anomalies: false alert in {case.name} ({case.note}): {_line(finding)}")
    return {
        "precision": true / (true + false) if true + false else 1.0,
        "recall": detected / injected if injected else 1.0,
        "false_alerts_constant_or_learning": float(quiet_alerts),
        "consequences": float(consequences),
    }


def run_anomalies(folder: Path) -> list[tuple[anomaly_set.Case, list[dict[str, Any]]]]:
    judged = []
    for i, case in enumerate(anomaly_set.cases()):
        judged.append((case, judge(case, folder / f"case{i:03d}")))
    return judged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duckdb-only", action="store_true", help="pii on DuckDB only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_heldout_") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        pii = pii_score(pii_set.build(), run_pii(folder, args.duckdb_only))
        for name in ("precision", "recall"):
            emit(f"pii.heldout.{name}", pii[name], "ratio")
        emit("pii.heldout.trap_false_positives", pii["trap_false_positives"], "columns")
        truth, found = run_relations(folder)
        precision, recall, score = f1(truth, found)
        emit("relations.heldout.fk_f1", score, "ratio")
        emit("relations.heldout.precision", precision, "ratio")
        emit("relations.heldout.recall", recall, "ratio")
        emit("relations.heldout.true_fks", len(truth), "edges")
        anomalies = anomaly_score(run_anomalies(folder / "histories"))
        emit("anomalies.heldout.precision", anomalies["precision"], "ratio")
        emit("anomalies.heldout.recall", anomalies["recall"], "ratio")
        emit(
            "anomalies.heldout.false_alerts_constant_or_learning",
            anomalies["false_alerts_constant_or_learning"],
            "findings",
        )
        emit("heldout.seconds", time.perf_counter() - started, "s")


if __name__ == "__main__":
    main()
