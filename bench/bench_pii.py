"""PII benchmark: the pii agent's tags against a labelled set, on all three backends.

Builds pii_cases' six tables (70 columns, 33 holding personal data, 9 traps; fixed seed) in
PostgreSQL (127.0.0.1:5432, a schema of its own), MariaDB (127.0.0.1:3306, a database of its
own) and a DuckDB file, each dropped at the end, and runs `find_pii(con, tables)` with its
defaults through a read-only session (catalog_kernel's, as in a sandbox). A column counts as
tagged when find_pii gives it any type; it is a true positive when one of the types is its
label. Over the three backends together:
- pii.precision, pii.recall: tagged columns whose type is right / tagged columns, and labelled
  columns tagged with their type / labelled columns. Goal: both at least 0.95;
- pii.trap_false_positives: trap columns tagged (scenario_code, ACADEMIC_YEAR_CODE,
  email_verified, acid_level, 3- and 4-digit codes, ...). Goal: 0;
- pii.columns: columns judged (3 x 70); pii.seconds: find_pii's time over the three;
- peer.name_regex_pii.precision, .recall, .trap_false_positives: a tagger that reads column
  names only, with case-insensitive substring rules in the style of OpenMetadata's column-name
  scanner (`name`, `mail`, `phone`, `address|city|country|zip|...`, `card`, `ssn|social`,
  `bank|acc`, `dob|birth`), scored on the same columns.
Prints one JSON object a line: {"name", "value", "unit"}; everything else goes to stderr.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sandbox"))  # this checkout's toolkit, whatever is installed

from benchlib import emit  # noqa: E402
from pii_build import built  # noqa: E402
from pii_cases import Case, cases, tables  # noqa: E402

BACKENDS = ("postgres", "mysql", "duckdb")
# Name-only rules, substring matches as OpenMetadata's ColumnNameScanner makes them.
PEER_RULES = {
    "person_name": re.compile(r"name", re.IGNORECASE),
    "email": re.compile(r"mail", re.IGNORECASE),
    "date_of_birth": re.compile(r"dob|birth", re.IGNORECASE),
    "postal_address": re.compile(
        r"address|city|state|county|country|zip|postal|zone|borough", re.IGNORECASE
    ),
    "phone": re.compile(r"phone", re.IGNORECASE),
    "ssn": re.compile(r"ssn|social", re.IGNORECASE),
    "payment_card": re.compile(r"card", re.IGNORECASE),
    "iban": re.compile(r"bank|acc", re.IGNORECASE),
}


def peer_tags(column: str) -> set[str]:
    return {pii_type for pii_type, rule in PEER_RULES.items() if rule.search(column)}


Tags = dict[tuple[str, str], set[str]]  # (table, column) -> the PII types given


def run_backend(backend: str, all_cases: list[Case], folder: Path) -> tuple[Tags, float]:
    """find_pii's tags per (table, column) on `backend`, and the seconds it took."""
    from catalog_kernel.connections import open_read_only
    from catalog_toolkit import find_pii

    with built(backend, all_cases, folder) as (dsn, schema):
        con, _ = open_read_only(dsn, statement_timeout_s=60)
        try:
            names = [f"{schema}.{t}" for t in tables(all_cases)]
            started = time.perf_counter()
            result = find_pii(con, names)
            seconds = time.perf_counter() - started
        finally:
            con.disconnect()
    tags: Tags = {}
    for entry in result["tables"].values():
        table = entry["table"].rsplit(".", 1)[-1]
        for column in entry["columns"]:
            tags[(table, column["name"])] = {v["type"] for v in column["pii"]}
    return tags, seconds


def score(all_cases: list[Case], tagged: list[Tags]) -> dict[str, float]:
    tp = fp = fn = traps = 0
    for tags in tagged:
        for case in all_cases:
            found = tags.get((case.table, case.column), set())
            right = case.label in found
            tp += right
            fp += bool(found) and not right
            fn += case.label is not None and not right
            traps += case.trap and bool(found)
            if bool(found) != (case.label is not None) or (found and not right):
                print(f"  miss: {case.table}.{case.column} label={case.label} got={sorted(found)}",
                      file=sys.stderr)  # fmt: skip
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "trap_false_positives": traps,
    }


def main() -> None:
    all_cases = cases()
    labelled = sum(c.label is not None for c in all_cases)
    print(f"{len(all_cases)} columns, {labelled} labelled, on {BACKENDS}", file=sys.stderr)
    ours: list[Tags] = []
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="pii-bench-") as folder:
        for backend in BACKENDS:
            print(f"{backend}:", file=sys.stderr)
            tags, took = run_backend(backend, all_cases, Path(folder))
            ours.append(tags)
            seconds += took
            print(f"  find_pii took {took:.2f} s", file=sys.stderr)
    mine = score(all_cases, ours)
    print("peer (name regex):", file=sys.stderr)
    # Names are the same on every backend: the peer's score on one is its score on three.
    peer = score(all_cases, [{(c.table, c.column): peer_tags(c.column) for c in all_cases}])
    emit("pii.precision", mine["precision"], "ratio")
    emit("pii.recall", mine["recall"], "ratio")
    emit("pii.trap_false_positives", mine["trap_false_positives"], "columns")
    emit("pii.columns", len(all_cases) * len(BACKENDS), "columns")
    emit("pii.seconds", seconds, "s")
    emit("peer.name_regex_pii.precision", peer["precision"], "ratio")
    emit("peer.name_regex_pii.recall", peer["recall"], "ratio")
    emit("peer.name_regex_pii.trap_false_positives", peer["trap_false_positives"], "columns")


if __name__ == "__main__":
    main()
