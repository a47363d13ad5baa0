"""Scale benchmark: catalogs of many small tables, and one wide table, on PostgreSQL.

Builds, in a database of its own (`catalog_bench_scale`, or BENCH_SCALE_DATABASE so two runs on
one server do not drop each other's; 127.0.0.1:5432, user postgres, dropped at the end), one
schema per size of 10-column tables of 1,000 rows each (integers, a double, text of few and of
many values, a timestamp, a date, a boolean, NULLs; every table alike), and a table of 500
columns and 10,000 rows; ANALYZEd. Each measurement runs in a fresh child process
(its time measured inside, around the work only) through a read-only ibis connection, as the
sandbox's kernel opens one:
- catalog.tables_{N}_seconds: `profile_tables(con, tables)` (4 at a time, the offline agent's
  default) and `render_catalog` of the profiles, for N = 100 and N = 300; with BENCH_LARGE=1
  for N = 300 and N = 3,000 (about 6 minutes on 2 loaded cores: 26 s and 286 s at a load of
  5 to 6). Over 200 tables the page takes its compact form (compact_page.py);
- catalog.page_bytes_per_table: the rendered page's size over N, at the largest N (the page
  grows linearly when this stays flat);
- catalog.tables_scaling_exponent: the slope of log time over log tables between the smallest
  and the largest N. Goal: under 1.1;
- profile.wide_500_columns_seconds: `profile_table` of the 500-column table (its passes in
  batches of columns, under PostgreSQL's 1,664 select-list entries).
Every profile must come back without errors. Prints one JSON object a line: {"name", "value",
"unit"}; everything else goes to stderr, with the load average beside each figure.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from typing import Any

from benchlib import emit

DATABASE = os.environ.get("BENCH_SCALE_DATABASE", "catalog_bench_scale")  # one per concurrent run
DSN = "host=127.0.0.1 port=5432 user=postgres dbname={database} connect_timeout=10"
SIZES = (300, 3000) if os.environ.get("BENCH_LARGE") == "1" else (100, 300)
ROWS = 1000
WIDE_COLUMNS, WIDE_ROWS = 500, 10_000
CHILD_TIMEOUT_S = 1800.0
TABLE_SQL = """CREATE TABLE {schema}.t{n} AS SELECT g AS id, g % 97 AS k,
    CASE WHEN g % 10 = 0 THEN NULL ELSE g * 1.5 END AS amount,
    (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4] AS status,
    'item ' || g AS label, TIMESTAMP '2024-01-01' + g * INTERVAL '1 hour' AS created_at,
    DATE '2024-01-01' + g % 365 AS day, g % 7 = 0 AS flag, g % 13 AS bucket,
    CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || (g % 50) END AS note
    FROM generate_series(1, {rows}) g"""


def say(message: str) -> None:
    print(f"bench_scale: {message} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)


def admin(database: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(DSN.format(database=database), autocommit=True) as con:
        for sql in statements:
            con.execute(sql)


def build() -> None:
    admin(
        "postgres",
        f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)",
        f"CREATE DATABASE {DATABASE}",
    )
    for size in SIZES:
        schema = f"s{size}"
        tables = [TABLE_SQL.format(schema=schema, n=n, rows=ROWS) for n in range(size)]
        admin(DATABASE, f"CREATE SCHEMA {schema}", *tables, "ANALYZE")
        say(f"{size} tables built")
    kinds = ["g * {i}", "'v' || (g % {i})", "DATE '2024-01-01' + g % {i}", "(g % {i}) * 0.5"]
    columns = ", ".join(kinds[i % 4].format(i=i + 1) + f" AS c{i}" for i in range(WIDE_COLUMNS))
    admin(
        DATABASE,
        f"CREATE TABLE public.wide AS SELECT {columns} FROM generate_series(1, {WIDE_ROWS}) g",
        "ANALYZE public.wide",
    )


def child(kind: str, argument: str) -> dict[str, Any]:
    import ibis
    from catalog_toolkit import profile_table, profile_tables, render_catalog

    con = ibis.postgres.connect(
        host="127.0.0.1",
        user="postgres",
        database=DATABASE,
        options="-c default_transaction_read_only=on",
    )
    try:
        started = time.perf_counter()
        if kind == "catalog":
            tables = [f"s{argument}.t{n}" for n in range(int(argument))]
            profiles = profile_tables(con, tables)
            page = render_catalog(profiles)
            seconds = time.perf_counter() - started
            bad = [p for p in profiles if "error" in p or p["errors"]]
            if bad or len(profiles) != len(tables):
                raise RuntimeError(f"{len(bad)} profiles failed: {bad[:2]}")
            return {"seconds": seconds, "page_bytes": len(page.encode())}
        profile = profile_table(con, "public.wide")
        seconds = time.perf_counter() - started
        if profile["errors"] or len(profile["columns"]) != WIDE_COLUMNS:
            raise RuntimeError(f"the wide profile failed: {profile['errors'][:2]}")
        return {"seconds": seconds}
    finally:
        con.disconnect()


def measure(kind: str, argument: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, argument],
        stdout=subprocess.PIPE,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    lines = done.stdout.decode().strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the child {kind} {argument} exited with {done.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    say(f"{kind} {argument}: {result}")
    return result


def main() -> None:
    started = time.perf_counter()
    try:
        build()
        say(f"built in {time.perf_counter() - started:.0f} s")
        catalogs = {size: measure("catalog", str(size)) for size in SIZES}
        wide = measure("wide", "")
    finally:
        admin("postgres", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    for size, found in catalogs.items():
        emit(f"catalog.tables_{size}_seconds", found["seconds"], "s")
    low, high = min(SIZES), max(SIZES)
    emit("catalog.page_bytes_per_table", catalogs[high]["page_bytes"] / high, "count")
    slope = math.log(catalogs[high]["seconds"] / catalogs[low]["seconds"]) / math.log(high / low)
    emit("catalog.tables_scaling_exponent", slope, "x")
    emit("profile.wide_500_columns_seconds", wide["seconds"], "s")
    say(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], sys.argv[3])), flush=True)
    else:
        main()
