"""What the database declares about a table: keys, relations, comments and its size estimate.

Read from the catalog each backend keeps, with parameters (never names pasted into SQL; on
DuckDB literals sqlglot writes, see _duckdb):
- PostgreSQL: `pg_constraint`, `pg_class.reltuples`, `obj_description`/`col_description`.
  `information_schema.table_constraints` shows a SELECT-only role nothing, so it is not used.
- MySQL/MariaDB: `information_schema.tables`, `.columns`, `.key_column_usage` (not
  `.table_constraints`, empty for a SELECT-only user).
- DuckDB: `duckdb_tables()`, `duckdb_columns()`, `duckdb_constraints()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlglot

from catalog_toolkit.database import Database, TableName


@dataclass
class Declared:
    schema: str = ""
    comment: str | None = None
    row_estimate: int | None = None
    column_comments: dict[str, str] = field(default_factory=dict)
    primary_key: list[str] = field(default_factory=list)
    unique: list[list[str]] = field(default_factory=list)
    foreign_keys: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "primary_key": self.primary_key,
            "unique": self.unique,
            "foreign_keys": self.foreign_keys,
        }


def read_declared(db: Database, name: TableName) -> Declared:
    """What the catalog declares about `name`, from the session's cache when it was read."""
    return read_many(db, [name])[name]


def read_many(db: Database, names: list[TableName]) -> dict[TableName, Declared]:
    """What the catalog declares about each of `names`: one catalog query per kind (table,
    columns, constraints) for all the tables of a schema, kept for the rest of the session
    (on the connection, so a new connection reads afresh)."""
    cache: dict[TableName, Declared] = db.con.__dict__.setdefault("_catalog_declared", {})
    reader = {"postgres": _postgres, "mysql": _mysql, "duckdb": _duckdb}.get(db.backend)
    missing = [n for n in dict.fromkeys(names) if n not in cache]
    by_schema: dict[str, list[TableName]] = {}
    for name in missing:
        by_schema.setdefault(name.schema, []).append(name)
    for schema, group in by_schema.items():
        if reader is None:
            cache.update({n: Declared(schema=schema) for n in group})
            continue
        resolved = schema or _current_schema(db)
        for i in range(0, len(group), CHUNK):
            found = reader(db, resolved, [n.name for n in group[i : i + CHUNK]])
            cache.update(
                {n: found.get(n.name) or Declared(schema=resolved) for n in group[i : i + CHUNK]}
            )
    for name in names:
        if not name.schema:
            _unqualify(cache[name])
    return {n: cache[n] for n in names}


def _unqualify(declared: Declared) -> None:
    """A table named without its schema refers to its schema's tables the same way, so the
    references match the run's names (`customers`, not `main.customers`): the catalog links
    them and the ER diagram draws one box per table."""
    prefix = f"{declared.schema}."
    for fk in declared.foreign_keys:
        ref = fk["references"]
        if declared.schema and ref["table"].startswith(prefix):
            ref["table"] = ref["table"][len(prefix) :]


CHUNK = 1000  # tables a catalog query names at most (as parameters)


def _current_schema(db: Database) -> str:
    sql = "SELECT DATABASE() AS s" if db.backend == "mysql" else "SELECT current_schema() AS s"
    return str(db.query(sql)[0]["s"])


def _postgres(db: Database, schema: str, tables: list[str]) -> dict[str, Declared]:
    found: dict[str, Declared] = {}
    by_oid: dict[int, Declared] = {}
    for row in db.query(
        "SELECT c.oid, c.relname::text AS name, c.reltuples::bigint AS estimate,"
        " obj_description(c.oid, 'pg_class') AS note"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (schema, tables),
    ):
        estimate = row["estimate"]
        declared = Declared(
            schema=schema,
            comment=row["note"],
            row_estimate=int(estimate) if estimate is not None and estimate >= 0 else None,
        )
        found[row["name"]] = by_oid[int(row["oid"])] = declared
    if not by_oid:
        return found
    oids = list(by_oid)
    for row in db.query(
        "SELECT attrelid AS oid, attname::text AS name, col_description(attrelid, attnum) AS note"
        " FROM pg_attribute WHERE attrelid = ANY(%s) AND attnum > 0 AND NOT attisdropped"
        " AND col_description(attrelid, attnum) IS NOT NULL",
        (oids,),
    ):
        by_oid[int(row["oid"])].column_comments[row["name"]] = row["note"]
    columns_of = (
        "ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY AS k(num, pos)"
        " JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.num ORDER BY k.pos)"
    )
    for row in db.query(
        "SELECT con.conrelid AS oid, con.contype::text AS kind, "
        + columns_of.format(keys="con.conkey", rel="con.conrelid")
        + " AS columns, fn.nspname AS ref_schema, fc.relname AS ref_table, "
        + columns_of.format(keys="con.confkey", rel="con.confrelid")
        + " AS ref_columns FROM pg_constraint con"
        " LEFT JOIN pg_class fc ON fc.oid = con.confrelid"
        " LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace"
        " WHERE con.conrelid = ANY(%s) AND con.contype IN ('p', 'u', 'f')"
        " ORDER BY con.conrelid, con.conname",
        (oids,),
    ):
        _add_constraint(
            by_oid[int(row["oid"])],
            {"p": "PRIMARY KEY", "u": "UNIQUE", "f": "FOREIGN KEY"}[row["kind"]],
            list(row["columns"]),
            f"{row['ref_schema']}.{row['ref_table']}" if row["ref_table"] else None,
            list(row["ref_columns"] or []),
        )
    return found


def _mysql(db: Database, schema: str, tables: list[str]) -> dict[str, Declared]:
    among = ", ".join(["%s"] * len(tables))
    params = (schema, *tables)
    found = _tables_and_columns(
        db,
        schema,
        params,
        "SELECT table_name AS t, table_rows AS estimate, table_comment AS note"
        f" FROM information_schema.tables WHERE table_schema = %s AND table_name IN ({among})",
        "SELECT table_name AS t, column_name AS name, column_comment AS note"
        f" FROM information_schema.columns WHERE table_schema = %s AND table_name IN ({among})",
    )
    # key_column_usage alone: a SELECT-only user sees no rows in table_constraints (MariaDB
    # 10.11), so the kind comes from the name (PRIMARY) and the reference.
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in db.query(
        "SELECT table_name AS t, constraint_name AS name, column_name AS col,"
        " referenced_table_schema AS ref_schema, referenced_table_name AS ref_table,"
        " referenced_column_name AS ref_col FROM information_schema.key_column_usage"
        f" WHERE table_schema = %s AND table_name IN ({among})"
        " ORDER BY table_name, constraint_name, ordinal_position",
        params,
    ):
        kind = (
            "PRIMARY KEY"
            if row["name"] == "PRIMARY"
            else "FOREIGN KEY"
            if row["ref_table"]
            else "UNIQUE"
        )
        group = groups.setdefault(
            (row["t"], row["name"]), {"kind": kind, "cols": [], "ref": None, "ref_cols": []}
        )
        group["cols"].append(row["col"])
        if row["ref_table"]:
            group["ref"] = f"{row['ref_schema']}.{row['ref_table']}"
            group["ref_cols"].append(row["ref_col"])
    for (table, _name), group in groups.items():
        if table in found:
            _add_constraint(
                found[table], group["kind"], group["cols"], group["ref"], group["ref_cols"]
            )
    return found


def _duckdb(db: Database, schema: str, tables: list[str]) -> dict[str, Declared]:
    # Names as literals that sqlglot writes (quotes doubled), not parameters: DuckDB's Python
    # client imports pandas on a process's first bound parameter (0.3 s, a profile's third).
    among = ", ".join(_duckdb_text(t) for t in tables)
    where = f"WHERE schema_name = {_duckdb_text(schema)} AND table_name IN ({among})"
    found = _tables_and_columns(
        db,
        schema,
        (),
        "SELECT table_name AS t, estimated_size AS estimate, comment AS note"
        f" FROM duckdb_tables() {where}",
        "SELECT table_name AS t, column_name AS name, comment AS note"
        f" FROM duckdb_columns() {where}",
    )
    for row in db.query(
        "SELECT table_name AS t, constraint_type AS kind, constraint_column_names AS cols,"
        " referenced_table AS ref_table, referenced_column_names AS ref_cols"
        f" FROM duckdb_constraints() {where}"
        " AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')"
        " ORDER BY table_name, constraint_index"
    ):
        if row["t"] in found:
            ref = f"{schema}.{row['ref_table']}" if row["ref_table"] else None
            cols, ref_cols = list(row["cols"]), list(row["ref_cols"] or [])
            _add_constraint(found[row["t"]], row["kind"], cols, ref, ref_cols)
    return found


def _duckdb_text(value: str) -> str:
    return str(sqlglot.exp.Literal.string(value).sql(dialect="duckdb"))


def _tables_and_columns(
    db: Database, schema: str, params: tuple[str, ...], table_sql: str, columns_sql: str
) -> dict[str, Declared]:
    """The size estimate and comments, where the catalog gives one row per table (`t`,
    `estimate`, `note`) and one per column (`t`, `name`, `note`): MySQL's and DuckDB's both do."""
    found: dict[str, Declared] = {}
    for row in db.query(table_sql, params):
        estimate = row["estimate"]
        found[row["t"]] = Declared(
            schema=schema,
            comment=row["note"] or None,
            row_estimate=int(estimate) if estimate is not None else None,
        )
    for row in db.query(columns_sql, params):
        if row["note"] and row["t"] in found:
            found[row["t"]].column_comments[row["name"]] = row["note"]
    return found


def _add_constraint(
    declared: Declared, kind: str, columns: list[str], ref: str | None, ref_columns: list[str]
) -> None:
    if kind == "PRIMARY KEY":
        declared.primary_key = columns
    elif kind == "UNIQUE":
        if columns not in declared.unique:
            declared.unique.append(columns)
    elif kind == "FOREIGN KEY" and ref:
        declared.foreign_keys.append(
            {"columns": columns, "references": {"table": ref, "columns": ref_columns}}
        )
