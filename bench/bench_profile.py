"""Profile benchmark: the catalog toolkit's `profile_table` on 5M rows, against ydata-profiling.

Builds one table, `orders`, of 5,000,000 rows and 12 columns (integers, a double, a decimal,
low- and high-cardinality text, two timestamps, a date, a boolean; four columns hold NULLs) from a
hash of the row number, so every run builds the same rows: first in a DuckDB file in a temporary
folder, then the same rows in PostgreSQL (127.0.0.1:5432, user postgres, a database of its own,
`catalog_bench`, dropped at the end), loaded by COPY from a CSV that DuckDB exports, then
ANALYZEd. Each measurement runs in a fresh child process that does only that one thing; its time
is measured inside the child around the work (not the interpreter's start, imports or connecting),
and its peak memory is the child's peak resident set, imports included, as the child reads it
from /proc/self/status (VmHWM) at its end; ru_maxrss is no use here, since a child forked from
this big process starts with its size. Figures of 3 rounds (7 on DuckDB) are medians;
ydata-profiling runs once (it takes minutes; it runs single-process, on threads, so VmHWM holds
all its work).
- profile.seconds, profile.peak_mb: `profile_table(con, "main.orders")` on
  `ibis.duckdb.connect(path, read_only=True)`, default row budget and time limit;
- profile.postgres.seconds, profile.postgres.peak_mb: the same on `ibis.postgres.connect`; the
  memory is the client process's only (the server's work is not in it);
- peer.ydata_load_seconds: `SELECT *` of the DuckDB file into a pandas frame (DuckDB's `.df()`);
- peer.ydata_minimal_seconds, peer.ydata_minimal_peak_mb: `ProfileReport(df, minimal=True)
  .get_description()`, the whole computation (`.to_json()` on top took 413 s and 13.7 GB in all,
  once, on 2 cores); the peak includes the frame. It runs in its own
  venv, `.venv-peer`, built from bench/peer-requirements.txt when missing or out of date
  (ydata-profiling wants pandas < 3 and numpy < 2.4, the project has pandas 3 and numpy 2.4);
- peer.one_pass_seconds, peer.one_pass_peak_mb: the floor, one ibis aggregate over the DuckDB
  table, as issue 19 defines it: per column the non-null count, min and max (the count alone for
  booleans), executed and fetched; peer.postgres.one_pass_seconds and peer.mysql.one_pass_seconds
  the same there (until 990df9f the floor also held approximate distinct counts and means,
  which made it 3x slower on DuckDB: the 1.64x of earlier notes was against that floor);
- profile.speedup_x (ydata s / ours), profile.memory_ratio_x (ydata peak / ours),
  profile.vs_one_pass_x (ours / the one pass), profile.postgres.vs_one_pass_x and
  profile.mysql.vs_one_pass_x. Goals (issue 19): ≥ 50, ≥ 10, ≤ 1.3 on DuckDB, ≤ 2 on the
  servers.
Prints one JSON object a line: {"name", "value", "unit"}; everything else goes to stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import emit

ROWS = 5_000_000
ROUNDS = 3  # each figure of ours and of the one pass is the median of this many children
# DuckDB's pair takes about a second: more rounds cost little and steady a ratio that the
# other work on 2 shared cores moved from 0.8 to 1.8 between pairs of one run.
DUCKDB_ROUNDS = 7
TABLE = "orders"
PG_DATABASE = "catalog_bench"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname={database} connect_timeout=10"
CHILD_TIMEOUT_S = 600.0
YDATA_TIMEOUT_S = 1800.0
PEER_INSTALL_TIMEOUT_S = 900.0
ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".venv-peer"
PEER_REQUIREMENTS = ROOT / "bench" / "peer-requirements.txt"

# (column, DuckDB type, PostgreSQL type, value); `i` runs over range(ROWS) and h(i, salt) is a
# signed hash, so every run builds the same rows.
COLUMNS: list[tuple[str, str, str, str]] = [
    ("order_id", "BIGINT PRIMARY KEY", "bigint", "i + 1"),  # PostgreSQL's key comes after COPY
    (
        "customer_id",
        "INTEGER",
        "integer",
        "CASE WHEN h(i, 'cn') % 50 = 0 THEN NULL ELSE 1 + h(i, 'c') % 300000 END",
    ),
    ("quantity", "SMALLINT NOT NULL", "smallint NOT NULL", "(1 + h(i, 'q') % 12)::SMALLINT"),
    (
        "amount",
        "DOUBLE",
        "double precision",
        "CASE WHEN h(i, 'an') % 10 = 0 THEN NULL ELSE exp((h(i, 'a') % 1000000) / 100000.0) END",
    ),
    (
        "unit_price",
        "DECIMAL(10, 2) NOT NULL",
        "numeric(10, 2) NOT NULL",
        "((h(i, 'p') % 100000) / 100.0 + 0.99)::DECIMAL(10, 2)",
    ),
    (
        "status",
        "VARCHAR NOT NULL",
        "text NOT NULL",
        "['placed', 'paid', 'shipped', 'delivered', 'cancelled', 'returned'][1 + h(i, 's') % 6]",
    ),
    (
        "country",
        "VARCHAR",
        "text",
        "['DE', 'FR', 'US', 'JP', 'BR', 'IN', 'GB', 'ES', NULL][1 + h(i, 'k') % 9]",
    ),
    (
        "email",
        "VARCHAR NOT NULL",
        "text NOT NULL",
        "'customer' || (h(i, 'e') % 4000000) || '@example.com'",
    ),
    (
        "created_at",
        "TIMESTAMP NOT NULL",
        "timestamp NOT NULL",
        "TIMESTAMP '2018-01-01' + to_seconds((h(i, 't') % 250000000)::BIGINT)",
    ),
    (
        "shipped_at",
        "TIMESTAMP",
        "timestamp",
        """CASE WHEN h(i, 'x') % 6 = 0 THEN NULL ELSE TIMESTAMP '2018-01-01'
        + to_seconds((h(i, 't') % 250000000 + 3600 + h(i, 'sd') % 900000)::BIGINT) END""",
    ),
    (
        "ordered_on",
        "DATE NOT NULL",
        "date NOT NULL",
        "DATE '2018-01-01' + ((h(i, 't') % 250000000) // 86400)::INTEGER",
    ),
    (
        "is_gift",
        "BOOLEAN",
        "boolean",
        "CASE WHEN h(i, 'g') % 30 = 0 THEN NULL ELSE h(i, 'gv') % 10 = 0 END",
    ),
]


# The same columns in MariaDB; NULL arrives from DuckDB's CSV as an empty field.
MYSQL_TYPES = {
    "order_id": "BIGINT PRIMARY KEY",
    "customer_id": "INT",
    "quantity": "SMALLINT NOT NULL",
    "amount": "DOUBLE",
    "unit_price": "DECIMAL(10, 2) NOT NULL",
    "status": "VARCHAR(20) NOT NULL",
    "country": "VARCHAR(2)",
    "email": "VARCHAR(40) NOT NULL",
    "created_at": "DATETIME NOT NULL",
    "shipped_at": "DATETIME",
    "ordered_on": "DATE NOT NULL",
    "is_gift": "BOOLEAN",
}
MY_DATABASE = "catalog_bench"


def say(message: str) -> None:
    print(f"bench_profile: {message}", file=sys.stderr, flush=True)


# --- the data -------------------------------------------------------------------------------
def build_duckdb(path: str, csv_path: str) -> None:
    """The table in a DuckDB file, and the same rows as a CSV for PostgreSQL's COPY."""
    import duckdb

    columns = ", ".join(f"{name} {kind}" for name, kind, _, _ in COLUMNS)
    values = ",\n".join(value for _, _, _, value in COLUMNS)
    con = duckdb.connect(path)
    try:
        con.execute("CREATE TEMP MACRO h(i, salt) AS (hash(i, salt) >> 1)::BIGINT")
        con.execute(f"CREATE TABLE {TABLE} ({columns})")
        con.execute(f"INSERT INTO {TABLE} SELECT {values} FROM range({ROWS}) AS r(i)")
        con.execute(f"CHECKPOINT; COPY {TABLE} TO '{csv_path}' (FORMAT csv, HEADER false)")
        count = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    finally:
        con.close()
    if count != (ROWS,):
        raise RuntimeError(f"the DuckDB table holds {count} rows, not {ROWS}")


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN.format(database="postgres"), autocommit=True) as con:
        con.execute(sql)


def load_postgres(csv_path: str) -> None:
    """A fresh database of our own, the table, its rows by COPY, its key, then ANALYZE."""
    import psycopg

    pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    pg_admin(f"CREATE DATABASE {PG_DATABASE}")
    columns = ", ".join(f"{name} {kind}" for name, _, kind, _ in COLUMNS)
    with psycopg.connect(PG_DSN.format(database=PG_DATABASE), autocommit=True) as con:
        con.execute(f"CREATE TABLE public.{TABLE} ({columns})")
        with (
            con.cursor() as cursor,
            cursor.copy(f"COPY public.{TABLE} FROM STDIN (FORMAT csv)") as copy,
            open(csv_path, "rb") as source,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
        con.execute(f"ALTER TABLE public.{TABLE} ADD PRIMARY KEY ({COLUMNS[0][0]})")
        con.execute(f"ANALYZE public.{TABLE}")
        row = con.execute(f"SELECT count(*) FROM public.{TABLE}").fetchone()
    if row != (ROWS,):
        raise RuntimeError(f"the PostgreSQL table holds {row} rows, not {ROWS}")


def load_mysql(csv_path: str) -> None:
    """The same rows in MariaDB (127.0.0.1:3306, root), in a database of our own, by LOAD DATA
    LOCAL; DuckDB writes booleans as true/false and NULL as an empty field."""
    import MySQLdb

    con = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="", local_infile=1)
    try:
        cursor = con.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS {MY_DATABASE}")
        cursor.execute(f"CREATE DATABASE {MY_DATABASE}")
        columns = ", ".join(f"{name} {kind}" for name, kind in MYSQL_TYPES.items())
        cursor.execute(f"CREATE TABLE {MY_DATABASE}.{TABLE} ({columns})")
        names = list(MYSQL_TYPES)
        read = ", ".join(f"@{name}" for name in names)
        assign = ", ".join(
            f"{name} = IF(@{name} = '', NULL, @{name} = 'true')"
            if name == "is_gift"
            else f"{name} = NULLIF(@{name}, '')"
            for name in names
        )
        cursor.execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {MY_DATABASE}.{TABLE}"
            f" FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ({read}) SET {assign}",
            (csv_path,),
        )
        con.commit()
        cursor.execute(f"ANALYZE TABLE {MY_DATABASE}.{TABLE}")
        cursor.fetchall()
        cursor.execute(f"SELECT count(*) FROM {MY_DATABASE}.{TABLE}")
        count = cursor.fetchone()
    finally:
        con.close()
    if count != (ROWS,):
        raise RuntimeError(f"the MariaDB table holds {count} rows, not {ROWS}")


def my_admin(sql: str) -> None:
    import MySQLdb

    con = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        con.cursor().execute(sql)
    finally:
        con.close()


# --- the peer's venv ------------------------------------------------------------------------
def peer_python() -> str:
    """The peer venv's interpreter; (re)built when missing or its requirements changed."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".installed"
    wanted = hashlib.sha256(PEER_REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return str(python)
    say(f"building {PEER_VENV.name} from {PEER_REQUIREMENTS.name} (a minute or two, once)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(PEER_REQUIREMENTS)],
        check=True,
        stdout=sys.stderr,
        timeout=PEER_INSTALL_TIMEOUT_S,
    )
    stamp.write_text(wanted + "\n")
    return str(python)


# --- measuring a child ----------------------------------------------------------------------
def measure(python: str, args: list[str], timeout_s: float) -> dict[str, Any]:
    """Run `python bench_profile.py --child ARGS` and return what it reports (its last stdout
    line, JSON); the other lines go to stderr."""
    env = {**os.environ, "YDATA_PROFILING_NO_ANALYTICS": "True"}  # no telemetry calls home
    done = subprocess.run(
        [python, __file__, "--child", *args],
        stdout=subprocess.PIPE,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    lines = done.stdout.decode().strip().splitlines()
    for line in lines[:-1]:
        print(line, file=sys.stderr)
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the child {args} exited with {done.returncode}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def rounds(python: str, args: list[str], count: int, timeout_s: float) -> dict[str, float]:
    """The median of each number the children of `count` runs report."""
    results = [measure(python, args, timeout_s) for _ in range(count)]
    say(f"{args[0]}: {[(round(r['seconds'], 2), round(r['peak_mb'])) for r in results]} (s, MB)")
    return {
        key: statistics.median(float(r[key]) for r in results)
        for key, value in results[0].items()
        if isinstance(value, int | float)
    }


# --- the children (the peer's runs in .venv-peer: standard library imports only up here) -----
def connect(backend: str, where: str) -> tuple[Any, str]:
    """A read-only ibis connection (as the sandbox's kernel opens one) and the table's name."""
    import ibis

    if backend == "duckdb":
        return ibis.duckdb.connect(where, read_only=True), f"main.{TABLE}"
    if backend == "postgres":
        con = ibis.postgres.connect(
            host="127.0.0.1",
            user="postgres",
            database=where,
            options="-c default_transaction_read_only=on",
        )
        return con, f"public.{TABLE}"
    con = ibis.mysql.connect(
        host="127.0.0.1",
        user="root",
        password="",
        database=where,
        init_command="SET SESSION TRANSACTION READ ONLY",
    )
    return con, f"{where}.{TABLE}"


def child_toolkit(backend: str, where: str) -> dict[str, Any]:
    from catalog_toolkit import profile_table

    con, table = connect(backend, where)
    try:
        started = time.perf_counter()
        profile = profile_table(con, table)
        seconds = time.perf_counter() - started
    finally:
        con.disconnect()
    if profile["errors"] or profile["rows"] != ROWS:
        raise RuntimeError(f"the profile has errors or a wrong row count: {profile['errors']}")
    return {"seconds": seconds, "scope": profile["scope"]["kind"]}


def child_one_pass(backend: str, where: str) -> dict[str, Any]:
    """The floor: one SELECT of every column's non-null count, min and max (count only for
    booleans), executed and fetched."""
    con, table = connect(backend, where)
    schema, _, name = table.partition(".")
    t = con.table(name, database=schema)
    started = time.perf_counter()
    aggs: dict[str, Any] = {}
    for i, (column, dtype) in enumerate(t.schema().items()):
        c = t[column]
        aggs[f"c{i}_n"] = c.count()
        if not dtype.is_boolean():
            aggs[f"c{i}_min"], aggs[f"c{i}_max"] = c.min(), c.max()
    result = con.raw_sql(str(ibis_sql(t.aggregate(**aggs), backend)))
    row = result.fetchall() if hasattr(result, "fetchall") else result
    seconds = time.perf_counter() - started
    with contextlib.suppress(Exception):
        result.close()
    con.disconnect()
    return {"seconds": seconds, "figures": len(aggs), "rows": len(row)}


def ibis_sql(expr: Any, backend: str) -> str:
    import ibis

    return str(ibis.to_sql(expr, dialect=backend))


def child_ydata(path: str) -> dict[str, Any]:
    duckdb = importlib.import_module("duckdb")
    pandas = importlib.import_module("pandas")
    ydata = importlib.import_module("ydata_profiling")
    say(f"ydata-profiling {ydata.__version__}, pandas {pandas.__version__}")
    started = time.perf_counter()
    con = duckdb.connect(path, read_only=True)
    frame = con.execute(f"SELECT * FROM main.{TABLE}").df()
    con.close()
    loaded = time.perf_counter()
    description = ydata.ProfileReport(frame, minimal=True, progress_bar=False).get_description()
    done = time.perf_counter()
    if len(frame) != ROWS or len(description.variables) != len(COLUMNS):
        raise RuntimeError(f"the frame holds {len(frame)} rows, not {ROWS}, or lacks columns")
    return {"seconds": done - loaded, "load_seconds": loaded - started}


def run_child(args: list[str]) -> None:
    kind, where = args
    works: dict[str, Callable[[], dict[str, Any]]] = {
        "duckdb": lambda: child_toolkit("duckdb", where),
        "postgres": lambda: child_toolkit("postgres", where),
        "one_pass": lambda: child_one_pass("duckdb", where),
        "postgres_one_pass": lambda: child_one_pass("postgres", where),
        "mysql": lambda: child_toolkit("mysql", where),
        "mysql_one_pass": lambda: child_one_pass("mysql", where),
        "ydata": lambda: child_ydata(where),
    }
    result = works[kind]()
    print(json.dumps({**result, "peak_mb": peak_mb()}), flush=True)


def peak_mb() -> float:
    """This process's peak resident set (VmHWM, kB), read at its end. Not the parent's
    ru_maxrss of the child: a child forked from a big parent starts with the parent's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


# --- the run --------------------------------------------------------------------------------
def measure_all(path: str) -> dict[str, dict[str, float]]:
    """Ours and the one-pass floor alternate on each backend (a pair a round), so both see the
    same load on this shared machine; MariaDB, single-threaded and slow, gets one round."""
    python = sys.executable
    peer = peer_python()
    figures: dict[str, dict[str, float]] = {}
    for ours, floor, where, count in (
        ("duckdb", "one_pass", path, DUCKDB_ROUNDS),
        ("postgres", "postgres_one_pass", PG_DATABASE, ROUNDS),
        ("mysql", "mysql_one_pass", MY_DATABASE, 1),
    ):
        pairs = [
            (
                measure(python, [ours, where], CHILD_TIMEOUT_S),
                measure(python, [floor, where], CHILD_TIMEOUT_S),
            )
            for _ in range(count)
        ]
        for kind, results in ((ours, [p[0] for p in pairs]), (floor, [p[1] for p in pairs])):
            times = [round(r["seconds"], 2) for r in results]
            say(f"{kind}: {times} s, load {os.getloadavg()[0]:.1f}")
            figures[kind] = {
                key: statistics.median(float(r[key]) for r in results)
                for key, value in results[0].items()
                if isinstance(value, int | float)
            }
    figures["ydata"] = rounds(peer, ["ydata", path], 1, YDATA_TIMEOUT_S)
    return figures


def main() -> None:
    started = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="bench-profile-")
    path, csv_path = os.path.join(folder, "shop.duckdb"), os.path.join(folder, "orders.csv")
    try:
        build_duckdb(path, csv_path)
        say(f"DuckDB file built ({time.perf_counter() - started:.1f} s)")
        load_postgres(csv_path)
        say(f"PostgreSQL loaded ({time.perf_counter() - started:.1f} s)")
        load_mysql(csv_path)
        os.remove(csv_path)
        say(f"MariaDB loaded ({time.perf_counter() - started:.1f} s)")
        figures = measure_all(path)
    finally:
        try:
            pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
            my_admin(f"DROP DATABASE IF EXISTS {MY_DATABASE}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    ours, pg, floor, ydata = (figures[k] for k in ("duckdb", "postgres", "one_pass", "ydata"))
    my, pg_floor, my_floor = (figures[k] for k in ("mysql", "postgres_one_pass", "mysql_one_pass"))
    emit("profile.seconds", ours["seconds"], "s")
    emit("profile.peak_mb", ours["peak_mb"], "MB")
    emit("profile.postgres.seconds", pg["seconds"], "s")
    emit("profile.postgres.peak_mb", pg["peak_mb"], "MB")
    emit("peer.ydata_load_seconds", ydata["load_seconds"], "s")
    emit("peer.ydata_minimal_seconds", ydata["seconds"], "s")
    emit("peer.ydata_minimal_peak_mb", ydata["peak_mb"], "MB")
    emit("peer.one_pass_seconds", floor["seconds"], "s")
    emit("peer.one_pass_peak_mb", floor["peak_mb"], "MB")
    emit("profile.speedup_x", ydata["seconds"] / ours["seconds"], "x")
    emit("profile.memory_ratio_x", ydata["peak_mb"] / ours["peak_mb"], "x")
    emit("profile.vs_one_pass_x", ours["seconds"] / floor["seconds"], "x")
    emit("profile.mysql.seconds", my["seconds"], "s")
    emit("peer.postgres.one_pass_seconds", pg_floor["seconds"], "s")
    emit("peer.mysql.one_pass_seconds", my_floor["seconds"], "s")
    emit("profile.postgres.vs_one_pass_x", pg["seconds"] / pg_floor["seconds"], "x")
    emit("profile.mysql.vs_one_pass_x", my["seconds"] / my_floor["seconds"], "x")
    say(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run_child(sys.argv[2:])
    else:
        main()
