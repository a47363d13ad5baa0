"""What the database declares about a table: keys, relations, comments and its size estimate.

Read from the catalog each backend keeps, with parameters (never names pasted into SQL):
- PostgreSQL: `pg_constraint`, `pg_class.reltuples`, `obj_description`/`col_description`.
  `information_schema.table_constraints` shows a SELECT-only role nothing, so it is not used.
- MySQL/MariaDB: `information_schema.tables`, `.columns`, `.key_column_usage` (not
  `.table_constraints`, empty for a SELECT-only user).
- DuckDB: `duckdb_tables()`, `duckdb_columns()`, `duckdb_constraints()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    reader = {"postgres": _postgres, "mysql": _mysql, "duckdb": _duckdb}.get(db.backend)
    declared = reader(db, name) if reader else Declared(schema=name.schema)
    if not name.schema:
        _unqualify(declared)
    return declared


def _unqualify(declared: Declared) -> None:
    """A table named without its schema refers to its schema's tables the same way, so the
    references match the run's names (`customers`, not `main.customers`): the catalog links
    them and the ER diagram draws one box per table."""
    prefix = f"{declared.schema}."
    for fk in declared.foreign_keys:
        ref = fk["references"]
        if declared.schema and ref["table"].startswith(prefix):
            ref["table"] = ref["table"][len(prefix) :]


def _postgres(db: Database, name: TableName) -> Declared:
    schema = name.schema or str(db.query("SELECT current_schema() AS s")[0]["s"])
    found = db.query(
        "SELECT c.oid, c.reltuples::bigint AS estimate, obj_description(c.oid, 'pg_class') AS note"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, name.name),
    )
    if not found:
        return Declared(schema=schema)
    oid = found[0]["oid"]
    estimate = found[0]["estimate"]
    declared = Declared(
        schema=schema,
        comment=found[0]["note"],
        row_estimate=int(estimate) if estimate is not None and estimate >= 0 else None,
    )
    for row in db.query(
        "SELECT attname, col_description(attrelid, attnum) AS note FROM pg_attribute"
        " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
        (oid,),
    ):
        if row["note"]:
            declared.column_comments[row["attname"]] = row["note"]
    columns_of = (
        "ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY AS k(num, pos)"
        " JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.num ORDER BY k.pos)"
    )
    for row in db.query(
        "SELECT con.contype::text AS kind, "
        + columns_of.format(keys="con.conkey", rel="con.conrelid")
        + " AS columns, fn.nspname AS ref_schema, fc.relname AS ref_table, "
        + columns_of.format(keys="con.confkey", rel="con.confrelid")
        + " AS ref_columns FROM pg_constraint con"
        " LEFT JOIN pg_class fc ON fc.oid = con.confrelid"
        " LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace"
        " WHERE con.conrelid = %s AND con.contype IN ('p', 'u', 'f') ORDER BY con.conname",
        (oid,),
    ):
        _add_constraint(
            declared,
            {"p": "PRIMARY KEY", "u": "UNIQUE", "f": "FOREIGN KEY"}[row["kind"]],
            list(row["columns"]),
            f"{row['ref_schema']}.{row['ref_table']}" if row["ref_table"] else None,
            list(row["ref_columns"] or []),
        )
    return declared


def _mysql(db: Database, name: TableName) -> Declared:
    schema = name.schema or str(db.query("SELECT DATABASE() AS s")[0]["s"])
    params = (schema, name.name)
    declared = _table_and_columns(
        db,
        params,
        "SELECT table_rows AS estimate, table_comment AS note FROM information_schema.tables"
        " WHERE table_schema = %s AND table_name = %s",
        "SELECT column_name AS name, column_comment AS note FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
    )
    # key_column_usage alone: a SELECT-only user sees no rows in table_constraints (MariaDB
    # 10.11), so the kind comes from the name (PRIMARY) and the reference.
    groups: dict[str, dict[str, Any]] = {}
    for row in db.query(
        "SELECT constraint_name AS name, column_name AS col,"
        " referenced_table_schema AS ref_schema, referenced_table_name AS ref_table,"
        " referenced_column_name AS ref_col FROM information_schema.key_column_usage"
        " WHERE table_schema = %s AND table_name = %s"
        " ORDER BY constraint_name, ordinal_position",
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
            row["name"], {"kind": kind, "cols": [], "ref": None, "ref_cols": []}
        )
        group["cols"].append(row["col"])
        if row["ref_table"]:
            group["ref"] = f"{row['ref_schema']}.{row['ref_table']}"
            group["ref_cols"].append(row["ref_col"])
    for group in groups.values():
        _add_constraint(declared, group["kind"], group["cols"], group["ref"], group["ref_cols"])
    return declared


def _duckdb(db: Database, name: TableName) -> Declared:
    schema = name.schema or str(db.query("SELECT current_schema() AS s")[0]["s"])
    params = (schema, name.name)
    declared = _table_and_columns(
        db,
        params,
        "SELECT estimated_size AS estimate, comment AS note FROM duckdb_tables()"
        " WHERE schema_name = ? AND table_name = ?",
        "SELECT column_name AS name, comment AS note FROM duckdb_columns()"
        " WHERE schema_name = ? AND table_name = ?",
    )
    for row in db.query(
        "SELECT constraint_type AS kind, constraint_column_names AS cols,"
        " referenced_table AS ref_table, referenced_column_names AS ref_cols"
        " FROM duckdb_constraints() WHERE schema_name = ? AND table_name = ?"
        " AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')"
        " ORDER BY constraint_index",
        params,
    ):
        ref = f"{schema}.{row['ref_table']}" if row["ref_table"] else None
        _add_constraint(declared, row["kind"], list(row["cols"]), ref, list(row["ref_cols"] or []))
    return declared


def _table_and_columns(
    db: Database, params: tuple[str, str], table_sql: str, columns_sql: str
) -> Declared:
    """The size estimate and comments, where the catalog gives one row for the table
    (`estimate`, `note`) and one per column (`name`, `note`): MySQL's and DuckDB's both do."""
    declared = Declared(schema=params[0])
    found = db.query(table_sql, params)
    if found:
        estimate = found[0]["estimate"]
        declared.row_estimate = int(estimate) if estimate is not None else None
        declared.comment = found[0]["note"] or None
    for row in db.query(columns_sql, params):
        if row["note"]:
            declared.column_comments[row["name"]] = row["note"]
    return declared


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
