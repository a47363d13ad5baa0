"""Second held-out benchmark: the pii, relations and anomalies agents on sets written blind.

The sets (bench/heldout2/, fixed seeds) were written from the issue, the docs and the public
signatures only, without reading the detectors, their own case generators or the first
held-out set, and committed before they were first run:
- pii: 114 columns in eight tables (logistics, education, banking, telecom, marketing,
  healthcare, service config, international support tickets): 34 with personal data, 54 traps,
  21 plain, 5 debatable (left out of the scoring, listed on stderr). Built in DuckDB and, when
  reachable (and without `--duckdb-only`), PostgreSQL and MariaDB, each dropped at the end.
  A column counts as tagged when find_pii gives it any type, rightly when one of its types is
  in the column's label. pii.heldout2.precision, .recall, .trap_false_positives (trap
  columns tagged, over the backends together);
- relations: five schemas (university, helpdesk, inventory, blog, a Chinook-like store) with 49
  undeclared foreign keys and decoys, in DuckDB; relations.heldout2.fk_f1, .precision, .recall
  over the inferred edges, direction included;
- anomalies: 183 run histories (anomaly_set.py: 88 injected, 61 clean, 12 constant, 16
  learning, 6 debatable) judged by find_anomalies with its defaults. A
  finding on the injected table, of an accepted category (and column, for a column's anomaly;
  direction, for volume) is true; other findings on that table are consequences (neither, on
  stderr); every other finding is false. anomalies.heldout2.precision (over findings), .recall
  (injected histories with a true finding), .false_alerts_constant_or_learning (goal 0).
Prints one JSON object a line: {"name", "value", "unit"}; misses go to stderr.
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
from heldout2 import anomaly_set, build, pii_set, relations_set
from heldout2.pii_base import Column
from heldout2.rel_base import Edge

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sandbox"))  # this checkout's toolkit, whatever is installed

Tags = dict[tuple[str, str], set[str]]  # (table, column) -> types find_pii gave
SERVERS = {"postgres": "127.0.0.1:5432", "mysql": "127.0.0.1:3306"}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def open_con(dsn: str) -> Any:
    from catalog_kernel.connections import open_read_only

    return open_read_only(dsn, 120.0)[0]


def pii_tags(dsn: str, qualifier: str, tables: list[str]) -> Tags:
    from catalog_toolkit import find_pii

    con = open_con(dsn)
    try:
        result = find_pii(con, [f"{qualifier}.{t}" for t in tables])
    finally:
        con.disconnect()
    tags: Tags = {}
    for f in result["findings"]:
        tags.setdefault((f["table"].rsplit(".", 1)[-1], f["column"]), set()).add(f["kind"])
    return tags


def pii_score(columns: list[Column], runs: list[tuple[str, Tags]]) -> dict[str, float]:
    tp = fp = fn = traps = 0
    for backend, tags in runs:
        for c in columns:
            given = tags.get((c.table, c.name), set())
            right = bool(given & c.kinds)
            if c.role == "debatable":
                say(f"pii {backend}: debatable {c.table}.{c.name} -> {sorted(given) or 'untagged'}")
                continue
            tp += c.role == "pii" and right
            fn += c.role == "pii" and not right
            fp += bool(given) and not right
            traps += c.role == "trap" and bool(given)
            if (c.role == "pii") != right or (given and not right):
                want = "/".join(sorted(c.kinds)) or c.role
                got = sorted(given) or "untagged"
                say(f"pii {backend} MISS: {c.table}.{c.name} ({want}) -> {got}")
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "trap_false_positives": float(traps),
    }


def backends(duckdb_only: bool) -> list[str]:
    if duckdb_only:
        return ["duckdb"]
    import socket

    reachable = ["duckdb"]
    for name, server in SERVERS.items():
        host, port = server.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            reachable.append(name)
        except OSError:
            say(f"pii: {name} at {server} unreachable, left out")
    return reachable


def run_pii(folder: Path, duckdb_only: bool) -> list[tuple[str, Tags]]:
    tables = pii_set.tables()
    names = [t.name for t in tables]
    runs: list[tuple[str, Tags]] = []
    for backend in backends(duckdb_only):
        started = time.perf_counter()
        if backend == "duckdb":
            built = build.duckdb(folder, tables)
        elif backend == "postgres":
            built = build.postgres(SERVERS["postgres"], tables)
        else:
            built = build.mysql(SERVERS["mysql"], tables)
        with built as (dsn, qualifier):
            runs.append((backend, pii_tags(dsn, qualifier, names)))
        say(f"pii {backend}: {time.perf_counter() - started:.1f} s")
    return runs


def run_relations(folder: Path) -> tuple[set[Edge], set[Edge]]:
    from catalog_toolkit import find_relations

    schemas = relations_set.schemas()
    truth = {e for s in schemas for e in s.truth}
    found: set[Edge] = set()
    with build.relations_duckdb(folder, schemas) as dsn:
        con = open_con(dsn)
        try:
            for s in schemas:
                result = find_relations(con, [f"{s.name}.{t}" for t in s.tables])
                for err in result["errors"]:
                    say(f"relations {s.name}: error {err}")
                for e in result["inferred"]:
                    ref = e["references"]
                    found.add((e["table"], e["column"], ref["table"], ref["column"]))
        finally:
            con.disconnect()
    for e in sorted(truth - found):
        say(f"relations MISS (not found): {e[0]}.{e[1]} -> {e[2]}.{e[3]}")
    for e in sorted(found - truth):
        say(f"relations MISS (false edge): {e[0]}.{e[1]} -> {e[2]}.{e[3]}")
    return truth, found


def classify(case: anomaly_set.Case, finding: dict[str, Any]) -> str:
    """true, consequence (another finding on the injected table) or false."""
    x = case.expect
    if x is None or finding.get("table") != x.table:
        return "false"
    if finding.get("category") not in x.categories:
        return "consequence"
    if x.columns and finding.get("column") not in x.columns:
        return "consequence"
    if finding.get("category") == "volume" and x.direction:
        value, baseline = finding.get("value"), finding.get("baseline")
        numbers = isinstance(value, int | float) and isinstance(baseline, int | float)
        if numbers and (value < baseline) != (x.direction == "down"):  # type: ignore[operator]
            return "consequence"
    return "true"


def _line(f: dict[str, Any]) -> str:
    return (
        f"{f.get('table')}.{f.get('column')} {f.get('category')}/{f.get('kind')} "
        f"value={f.get('value')} baseline={f.get('baseline')} score={f.get('score')}"
    )


def run_anomalies(folder: Path) -> dict[str, float]:
    from catalog_toolkit import find_anomalies

    true = false = hit = injected = quiet_alerts = 0
    for case in anomaly_set.cases():
        where = folder / case.name
        for ts, data in case.runs:
            (where / ts).mkdir(parents=True)
            (where / ts / "catalog.json").write_text(json.dumps(data))
        findings = find_anomalies(str(where), case.runs[-1][0])["findings"]
        kinds = [classify(case, f) for f in findings]
        if case.group == "debatable":
            say(f"anomalies: debatable {case.name} ({case.why}): {len(findings)} findings")
            continue
        true += kinds.count("true")
        false += kinds.count("false")
        if case.group in ("constant", "learning"):
            quiet_alerts += len(findings)
        if case.expect is not None:
            injected += 1
            hit += "true" in kinds
            if "true" not in kinds:
                seen = [_line(f) for f in findings] or "nothing"
                say(f"anomalies MISS (not found): {case.name} -> {seen}")
        for f, k in zip(findings, kinds, strict=True):
            if k != "true":
                label = "MISS (false alert)" if k == "false" else "consequence"
                say(f"anomalies {label}: {case.name}: {_line(f)}")
    return {
        "precision": true / (true + false) if true + false else 1.0,
        "recall": hit / injected if injected else 1.0,
        "false_alerts_constant_or_learning": float(quiet_alerts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duckdb-only", action="store_true", help="skip PostgreSQL and MariaDB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heldout2_") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        figures = pii_score(pii_set.columns(), run_pii(folder, args.duckdb_only))
        for name, unit in (
            ("precision", "ratio"),
            ("recall", "ratio"),
            ("trap_false_positives", "columns"),
        ):
            emit(f"pii.heldout2.{name}", figures[name], unit)
        truth, found = run_relations(folder)
        tp = len(truth & found)
        precision = tp / len(found) if found else 1.0
        recall = tp / len(truth) if truth else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        emit("relations.heldout2.fk_f1", f1, "ratio")
        emit("relations.heldout2.precision", precision, "ratio")
        emit("relations.heldout2.recall", recall, "ratio")
        (folder / "anomalies").mkdir()
        figures = run_anomalies(folder / "anomalies")
        emit("anomalies.heldout2.precision", figures["precision"], "ratio")
        emit("anomalies.heldout2.recall", figures["recall"], "ratio")
        emit(
            "anomalies.heldout2.false_alerts_constant_or_learning",
            figures["false_alerts_constant_or_learning"],
            "findings",
        )
        say(f"heldout2: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
