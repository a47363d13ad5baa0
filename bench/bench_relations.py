"""Relations benchmark: how well `find_relations` finds undeclared foreign keys, and a peer.

The cases, all with known keys and no declared foreign key:
- SEEDS generated schemas (bench/relations_data.py: fixed seeds, references named in several
  styles with orphans and NULLs, and decoys: references to another system, half-matching
  columns, small integer codes, a shared non-key name);
- the demo shop (demo/sample_db.py), copied table by table with `CREATE TABLE AS`, so no key
  or reference is declared; its truth is the original's declared foreign keys plus
  `events.customer_id -> customers.id`, which the demo leaves undeclared.
Each case is loaded into DuckDB (one file, a schema per case) and, unless `--duckdb-only`,
into PostgreSQL (a database of our own, `catalog_bench_relations`, dropped at the end), and
`find_relations` runs with no catalog.json (it counts what it needs itself).

Figures (one JSON object a line): `relations.fk_f1`, `relations.precision`, `relations.recall`
on DuckDB, the same as `relations.postgres.*`, `relations.queries_per_pair` (the most any pair
took, either backend; the cap is 3), `relations.true_fks`, `relations.seconds`; and the peer
`peer.name_match.fk_f1` (with `.precision`, `.recall`): the same name rules, the column types
and any declared primary key, but no data: the parent column must be the declared key, or else
be named like one (`id`, `{table}_id`, `{table}_code`), and each column's best-named key at
0.7 or above is taken.
Goal: relations.fk_f1 >= 0.95. Mismatches go to stderr. A known miss: a weakly named reference
(`customer_ref`) to a dense integer key that it uses little of: the name says little, and any
small integers sit in 1..N, so the data cannot tell it from a code (relation_pairs.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib import emit
from relations_data import Schema, schema

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sandbox"))  # this checkout's toolkit, not an installed one
sys.path.insert(0, str(ROOT / "demo"))
sample_db: Any = importlib.import_module("sample_db")  # demo/sample_db.py builds the demo shop

SEEDS = range(1, 11)
PEER_THRESHOLD = 0.7
PG_DATABASE = "catalog_bench_relations"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname={database} connect_timeout=10"
DEMO_UNDECLARED = {("events", "customer_id", "customers", "id")}
Edge = tuple[str, ...]  # (child table, column, parent table, column), the case name first


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ddl(case: Schema, quote: str = '"') -> list[str]:
    out = [f"CREATE SCHEMA {case.name}"]
    for table in case.tables:
        columns = ", ".join(f"{c.name} {c.sql}" for c in table.columns)
        key = f", PRIMARY KEY ({table.key})" if table.declare_key else ""
        out.append(f"CREATE TABLE {case.name}.{table.name} ({columns}{key})")
    return out


def load_duckdb(db: Any, case: Schema) -> None:
    import pyarrow as pa

    for statement in ddl(case):
        db.execute(statement)
    for table in case.tables:
        rows = pa.table({c.name: c.values for c in table.columns})  # noqa: F841 (read by DuckDB)
        db.execute(f"INSERT INTO {case.name}.{table.name} SELECT * FROM rows")


def load_postgres(con: Any, case: Schema) -> None:
    for statement in ddl(case):
        con.execute(statement)
    for table in case.tables:
        names = ", ".join(c.name for c in table.columns)
        with con.cursor().copy(f"COPY {case.name}.{table.name} ({names}) FROM STDIN") as copy:
            for row in zip(*(c.values for c in table.columns), strict=True):
                copy.write_row(row)
    con.execute("ANALYZE")


def demo_case(folder: Path) -> tuple[Path, set[Edge]]:
    """The demo database and its truth: declared foreign keys plus the undeclared one."""
    import duckdb

    path = folder / "demo.duckdb"
    sample_db.build(path)
    with duckdb.connect(str(path), read_only=True) as db:
        found = db.execute(
            "SELECT table_name, constraint_column_names, referenced_table,"
            " referenced_column_names FROM duckdb_constraints()"
            " WHERE constraint_type = 'FOREIGN KEY'"
        ).fetchall()
    truth = {(t, c[0], r, rc[0]) for t, c, r, rc in found if len(c) == 1}
    return path, truth | DEMO_UNDECLARED


def copy_demo(db: Any, path: Path, tables: list[str]) -> None:
    """The demo's tables in schema `demo`, without any declared key."""
    db.execute(f"ATTACH '{path}' AS shop (READ_ONLY)")
    db.execute("CREATE SCHEMA demo")
    for table in tables:
        db.execute(f"CREATE TABLE demo.{table} AS SELECT * FROM shop.main.{table}")
    db.execute("DETACH shop")


def short(name: str) -> str:
    return name.rpartition(".")[2]


def predicted(result: dict[str, Any]) -> set[Edge]:
    return {
        (short(i["table"]), i["column"], short(i["references"]["table"]), i["references"]["column"])
        for i in result["inferred"]
    }


def name_match(con: Any, schema_name: str, tables: list[str], keys: dict[str, str]) -> set[Edge]:
    """The peer: the best-named type-compatible key of each column, names and schema only."""
    from catalog_toolkit.relation_facts import kind_of
    from catalog_toolkit.relation_names import name_score

    kinds = {
        t: {c: kind_of(str(d)) for c, d in con.table(t, database=schema_name).schema().items()}
        for t in tables
    }
    found: set[Edge] = set()
    for child in tables:
        for column, kind in kinds[child].items():
            best = max(
                (
                    (name_score(child, column, parent, key), parent, key)
                    for parent in tables
                    for key, key_kind in kinds[parent].items()
                    if key_kind == kind != "other"
                    and (parent, key) != (child, column)
                    and keys.get(parent, key) == key
                    and _key_by_name(parent, key)
                ),
                default=(0.0, "", ""),
            )
            if best[0] >= PEER_THRESHOLD:
                found.add((child, column, best[1], best[2]))
    return found


def _key_by_name(table: str, column: str) -> bool:
    """`id`, or the table's own name and a key word (`customer_id`, `customer_code`)."""
    from catalog_toolkit.relation_names import KEY_WORDS, table_words, tokens

    words = tokens(column)
    return words == ["id"] or (words[:-1] == table_words(table) and words[-1] in KEY_WORDS)


def scores(truth: set[Edge], found: set[Edge]) -> tuple[float, float, float]:
    hits = len(truth & found)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def emit_scores(prefix: str, truth: set[Edge], found: set[Edge]) -> None:
    precision, recall, f1 = scores(truth, found)
    emit(f"{prefix}.fk_f1", f1, "ratio")
    emit(f"{prefix}.precision", precision, "ratio")
    emit(f"{prefix}.recall", recall, "ratio")


def report_misses(label: str, truth: set[Edge], found: set[Edge]) -> None:
    for edge in sorted(truth - found):
        say(f"{label}: missed {edge}")
    for edge in sorted(found - truth):
        say(f"{label}: wrong {edge}")


def run_cases(
    con: Any, cases: list[tuple[str, list[str], set[Edge]]], label: str
) -> dict[str, Any]:
    """find_relations over each case's schema; the pooled truth, findings and figures."""
    from catalog_toolkit import find_relations

    truth: set[Edge] = set()
    found: set[Edge] = set()
    most = 0
    for name, tables, known in cases:
        result = find_relations(con, [f"{name}.{t}" for t in tables])
        if result["errors"]:
            say(f"{label} {name}: errors {result['errors'][:3]}")
        got = predicted(result)
        report_misses(f"{label} {name}", known, got)
        truth |= {(name, *e) for e in known}
        found |= {(name, *e) for e in got}
        most = max(most, result["counts"]["max_queries_per_pair"])
    return {"truth": truth, "found": found, "most": most}


def generated() -> list[Schema]:
    return [schema(seed) for seed in SEEDS]


def cases_of(
    generated_cases: list[Schema], demo_truth: set[Edge]
) -> list[tuple[str, list[str], set[Edge]]]:
    cases: list[tuple[str, list[str], set[Edge]]] = [
        (c.name, [t.name for t in c.tables], set(c.truth)) for c in generated_cases
    ]
    return [*cases, ("demo", list(sample_db.TABLES), demo_truth)]


@contextmanager
def postgres_database() -> Iterator[None]:
    import psycopg

    with psycopg.connect(PG_DSN.format(database="postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_DATABASE}")
        try:
            yield
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


def duckdb_run(folder: Path, schemas: list[Schema]) -> tuple[dict[str, Any], set[Edge], Path]:
    import duckdb
    import ibis

    demo_path, demo_truth = demo_case(folder)
    path = folder / "relations.duckdb"
    with duckdb.connect(str(path)) as db:
        for case in schemas:
            load_duckdb(db, case)
        copy_demo(db, demo_path, list(sample_db.TABLES))
    con = ibis.duckdb.connect(str(path), read_only=True)
    cases = cases_of(schemas, demo_truth)
    started = time.perf_counter()
    outcome = run_cases(con, cases, "duckdb")
    outcome["seconds"] = time.perf_counter() - started
    peer: set[Edge] = set()
    for case_name, tables, _ in cases:
        declared = {
            t.name: t.key for c in schemas if c.name == case_name for t in c.tables if t.declare_key
        }
        peer |= {(case_name, *e) for e in name_match(con, case_name, tables, declared)}
    report_misses("peer", outcome["truth"], peer)
    con.disconnect()
    return outcome, peer, path


def postgres_run(duckdb_path: Path, schemas: list[Schema], demo_truth: set[Edge]) -> dict[str, Any]:
    import duckdb
    import ibis
    import psycopg

    with postgres_database():
        with psycopg.connect(PG_DSN.format(database=PG_DATABASE), autocommit=True) as pg:
            for case in schemas:
                load_postgres(pg, case)
            pg.execute("CREATE SCHEMA demo")
            with duckdb.connect(str(duckdb_path), read_only=True) as db:
                for table in sample_db.TABLES:
                    frame = db.execute(f"SELECT * FROM demo.{table}").to_arrow_table()
                    _copy_arrow(pg, table, frame)
            pg.execute("ANALYZE")
        con = ibis.postgres.connect(host="127.0.0.1", user="postgres", database=PG_DATABASE)
        try:
            return run_cases(con, cases_of(schemas, demo_truth), "postgres")
        finally:
            con.disconnect()


def _pg_type(arrow_type: Any) -> str:
    text = str(arrow_type)
    named = {"int32": "INTEGER", "int64": "BIGINT", "double": "DOUBLE PRECISION"}
    if text in named:
        return named[text]
    if text.startswith("timestamp"):
        return "TIMESTAMPTZ" if "tz=" in text else "TIMESTAMP"
    if text.startswith("decimal"):
        return "NUMERIC"
    return "BOOLEAN" if text == "bool" else "TEXT"


def _copy_arrow(pg: Any, table: str, frame: Any) -> None:
    columns = ", ".join(f"{f.name} {_pg_type(f.type)}" for f in frame.schema)
    pg.execute(f"CREATE TABLE demo.{table} ({columns})")
    values = [frame.column(i).to_pylist() for i in range(frame.num_columns)]
    with pg.cursor().copy(f"COPY demo.{table} FROM STDIN") as copy:
        for row in zip(*values, strict=True):
            copy.write_row(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duckdb-only", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    schemas = generated()
    with tempfile.TemporaryDirectory(prefix="bench-relations-") as folder:
        outcome, peer, path = duckdb_run(Path(folder), schemas)
        emit_scores("relations", outcome["truth"], outcome["found"])
        emit("relations.true_fks", len(outcome["truth"]), "count")
        emit("relations.seconds", outcome["seconds"], "s")
        emit_scores("peer.name_match", outcome["truth"], peer)
        most = outcome["most"]
        if not args.duckdb_only:
            demo_truth = {e[1:] for e in outcome["truth"] if e[0] == "demo"}
            pg = postgres_run(path, schemas, demo_truth)
            emit_scores("relations.postgres", pg["truth"], pg["found"])
            most = max(most, pg["most"])
        emit("relations.queries_per_pair", most, "queries")


if __name__ == "__main__":
    main()
