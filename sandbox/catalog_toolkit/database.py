"""One ibis connection seen as rows: compiled queries, parameters, and a time limit on each.

Queries are compiled by ibis and run through the driver's cursor, so values arrive as the driver
gives them (Decimal, datetime) rather than through Arrow, whose conversions fail on some
aggregates (PostgreSQL's AVG of a NUMERIC is declared float64 by ibis but arrives as Decimal).

The time limit is the database's own where it has one (PostgreSQL `statement_timeout`, MariaDB
`max_statement_time`, MySQL `max_execution_time`), set for the query and put back after it;
DuckDB has none, so a timer interrupts the connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import ibis


class QueryTimeout(RuntimeError):
    """A profiling query ran over its time limit and was stopped by the database."""


@dataclass(frozen=True)
class TableName:
    """A table as the user wrote it: `schema.table` (or `table` in the default schema)."""

    schema: str
    name: str

    @classmethod
    def parse(cls, text: str) -> TableName:
        schema, _, name = text.rpartition(".")
        if not name:
            raise ValueError(f"{text!r} names no table; write schema.table or table")
        return cls(schema, name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


class Database:
    def __init__(self, con: Any, timeout_s: float) -> None:
        self.con = con
        self.backend: str = con.name  # duckdb, postgres, mysql
        self.timeout_s = timeout_s
        self._mariadb: bool | None = None

    def table(self, name: TableName) -> Any:
        if name.schema:
            return self.con.table(name.name, database=name.schema)
        return self.con.table(name.name)

    def sql(self, expr: Any) -> str:
        return str(ibis.to_sql(expr, dialect=self.backend))

    def fetch(self, expr: Any) -> list[dict[str, Any]]:
        """Run an ibis table expression; its rows as dicts, under the time limit."""
        return self.query(self.sql(expr))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run SQL with driver parameters (`%s` on PostgreSQL and MySQL, `?` on DuckDB)."""
        with self._limited():
            if self.backend == "duckdb":
                # Through Arrow: DuckDB's own Python conversion of TIMESTAMPTZ needs pytz,
                # which the sandbox does not have; Arrow's uses zoneinfo.
                rows: list[dict[str, Any]] = (
                    self.con.con.execute(sql, list(params)).to_arrow_table().to_pylist()
                )
                return rows
            cursor = self.con.con.cursor()
            try:
                cursor.execute(sql, tuple(params) if params else None)
                names = [d[0] for d in cursor.description or []]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            finally:
                cursor.close()

    def arrow(self, sql: str) -> Any:
        """DuckDB only: the rows of `sql` as an Arrow table, under the time limit."""
        with self._limited():
            return self.con.con.execute(sql).to_arrow_table()

    def columns(self, sql: str) -> tuple[list[str], list[list[Any]]]:
        """The rows of `sql` column by column (names, values), as the driver gives them."""
        with self._limited():
            cursor = self.con.con.cursor()
            try:
                cursor.execute(sql)
                names = [d[0] for d in cursor.description or []]
                rows = cursor.fetchall()
            finally:
                cursor.close()
        return names, [list(values) for values in zip(*rows, strict=True)] or [[] for _ in names]

    @contextlib.contextmanager
    def _limited(self) -> Iterator[None]:
        try:
            if self.backend == "duckdb":
                with self._duckdb_timer():
                    yield
            elif self.backend == "postgres":
                with self._postgres_timeout():
                    yield
            elif self.backend == "mysql":
                with self._mysql_timeout():
                    yield
            else:
                yield
        except QueryTimeout:
            raise
        except Exception as exc:
            if _is_timeout(exc):
                raise QueryTimeout(
                    f"the query ran over its {self.timeout_s:g} s limit and was stopped"
                ) from exc
            raise

    @contextlib.contextmanager
    def _duckdb_timer(self) -> Iterator[None]:
        timer = threading.Timer(self.timeout_s, self.con.con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            # Joined, so no timer thread holds the connection into interpreter shutdown
            # (DuckDB then aborts the process now and then).
            timer.join()

    @contextlib.contextmanager
    def _postgres_timeout(self) -> Iterator[None]:
        # In milliseconds, put back by a plain SET: the kernel's session guard lets a plain
        # SET of the limit through (capped at the session's own) and refuses set_config.
        # JIT off too: it compiled the CASEs of a 500-column table's histogram bins for seconds
        # a query (74 s of queries against 17 s without, for a 10,000-row table).
        before = {
            row["name"]: row["setting"]
            for row in self._rows(
                "SELECT name, setting FROM pg_settings WHERE name IN ('statement_timeout', 'jit')"
            )
        }
        self._execute(f"SET statement_timeout = {int(self.timeout_s * 1000)}")
        if before.get("jit") == "on":
            self._execute("SET jit = off")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # an aborted transaction is rolled back below
                self.con.con.rollback() if not self.con.con.autocommit else None
            self._execute(f"SET statement_timeout = {int(before['statement_timeout'])}")
            if before.get("jit") == "on":
                self._execute("SET jit = on")

    @contextlib.contextmanager
    def _mysql_timeout(self) -> Iterator[None]:
        if self._mariadb is None:
            (version,) = self._scalar_row("SELECT VERSION()")
            self._mariadb = "mariadb" in str(version).lower()
        variable = "max_statement_time" if self._mariadb else "max_execution_time"
        limit = self.timeout_s if self._mariadb else int(self.timeout_s * 1000)
        (before,) = self._scalar_row(f"SELECT @@session.{variable}")
        self._execute(f"SET SESSION {variable} = {limit}")
        try:
            yield
        finally:
            self._execute(f"SET SESSION {variable} = {before}")

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        cursor = self.con.con.cursor()
        try:
            cursor.execute(sql)
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _scalar_row(self, sql: str) -> tuple[Any, ...]:
        cursor = self.con.con.cursor()
        try:
            cursor.execute(sql)
            return tuple(cursor.fetchone())
        finally:
            cursor.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        cursor = self.con.con.cursor()
        try:
            cursor.execute(sql, tuple(params) if params else None)
        finally:
            cursor.close()


def _is_timeout(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    markers = (
        "querycanceled",  # psycopg: canceling statement due to statement timeout
        "statement timeout",
        "max_statement_time",  # MariaDB 1969
        "maximum statement execution time",  # MySQL 3024
        "interrupted",  # DuckDB: INTERRUPT Error
    )
    return any(marker in text for marker in markers)
