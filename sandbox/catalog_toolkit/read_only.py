"""The read-only proof the orchestrator runs in the sandbox before any agent (one cell, a call).

``probe_read_only(con, tables)`` judges the rights of the database user the sandbox connected
as, on one connection or on each source of ``cons`` (reported per source in ``by_source``),
since a read-only session is a session setting and the user's rights are what no cell can
change. It uses the plain driver cursor, past the kernel's session guard, because its write
attempt needs a READ WRITE transaction. Writable means any lasting change is possible, to data
or to the schema:

- PostgreSQL, for the user and every role it is a member of (``pg_has_role`` MEMBER, so roles
  it may only ``SET ROLE`` to count too): superuser, CREATEROLE, CREATEDB, the predefined
  roles that write (``pg_write_all_data``, server files and programs); owning the database, a
  schema or a relation; CREATE on the database or on a schema; INSERT, UPDATE, DELETE,
  TRUNCATE or TRIGGER on a table, view or foreign table, column rights included; USAGE or
  UPDATE on a sequence (``nextval``/``setval`` write); EXECUTE on a SECURITY DEFINER function
  (not an extension's) whose owner can write; USAGE on a foreign server (``dblink`` writes
  through it); writing large objects. TEMP is allowed: temporary objects outlive nothing.
  CREATE on a schema that PUBLIC holds too (``public`` before PostgreSQL 15) is a warning, not
  a refusal: every role on such a database has it, and an object created there changes no
  existing row (see docs/read-only.md on what it does allow).
- MySQL/MariaDB: any privilege beyond reading ones in ``SHOW GRANTS``, for the user and for
  every role granted to it (default or not: a cell may ``SET ROLE``). EXECUTE counts, as a
  routine may write with its definer's rights, except on the system databases.
- DuckDB: a ``CREATE TABLE`` must fail (the file is opened read only).
- Then, on PostgreSQL and MySQL, an INSERT of no rows into every requested table inside a READ
  WRITE transaction that is rolled back: it changes nothing and catches what the above missed.

A source the request names no tables of (``list_sources``) has its tables listed first
(table_choice.py, up to ``limit`` in all) and reported as ``chosen``; the write attempt is
made on the first one chosen (they exist: they were just listed, and trying thousands would
outlast the check).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from catalog_toolkit import record, sources
from catalog_toolkit.server import backend, server_version
from catalog_toolkit.table_choice import choose_tables

_MEMBER = "(SELECT oid FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER'))"
_OURS = "{n}.nspname NOT LIKE 'pg\\_%' AND {n}.nspname <> 'information_schema'"
_PUBLIC_CREATE = (
    "EXISTS (SELECT 1 FROM aclexplode({n}.nspacl) a "
    "WHERE a.grantee = 0 AND a.privilege_type = 'CREATE')"
)
_USER_SCHEMA = _OURS.format(n="n")
_KIND = (
    "CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'f' THEN 'foreign table ' "
    "WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence ' ELSE 'table ' END"
)


def _writer(role: str) -> str:
    """SQL true when ``role`` can write (what a SECURITY DEFINER function's owner lends)."""
    ours, public = _OURS.format(n="n2"), _PUBLIC_CREATE.format(n="n2")
    return (
        f"(EXISTS (SELECT 1 FROM pg_roles w WHERE w.oid = {role} AND w.rolsuper)"
        f" OR has_database_privilege({role}, current_database(), 'CREATE')"
        f" OR EXISTS (SELECT 1 FROM pg_namespace n2 WHERE {ours} AND NOT {public}"
        f" AND has_schema_privilege({role}, n2.oid, 'CREATE'))"
        " OR EXISTS (SELECT 1 FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace"
        f" WHERE {ours} AND c2.relkind IN ('r', 'p', 'v', 'f')"
        f" AND has_table_privilege({role}, c2.oid, 'INSERT,UPDATE,DELETE,TRUNCATE')))"
    )


# Each finds one reason the user can write, or nothing.
_POSTGRES_CHECKS = (
    "SELECT CASE WHEN rolsuper THEN 'is, or may become, the superuser '"
    " WHEN rolcreaterole THEN 'may create roles, through ' ELSE 'may create databases, through '"
    f" END || quote_ident(rolname) FROM pg_roles WHERE oid IN {_MEMBER}"
    " AND (rolsuper OR rolcreaterole OR rolcreatedb) ORDER BY rolsuper DESC LIMIT 1",
    "SELECT 'is a member of ' || rolname FROM pg_roles WHERE oid IN " + _MEMBER + " AND rolname"
    " IN ('pg_write_all_data', 'pg_write_server_files', 'pg_execute_server_program') LIMIT 1",
    "SELECT 'owns the database' FROM pg_database"
    f" WHERE datname = current_database() AND datdba IN {_MEMBER}",
    "SELECT 'may create schemas in the database' FROM pg_roles m"
    f" WHERE m.oid IN {_MEMBER} AND has_database_privilege(m.oid, current_database(), 'CREATE')"
    " LIMIT 1",
    "SELECT 'owns schema ' || quote_ident(n.nspname) FROM pg_namespace n"
    f" WHERE {_USER_SCHEMA} AND n.nspowner IN {_MEMBER} LIMIT 1",
    "SELECT 'may create objects in schema ' || quote_ident(n.nspname)"
    f" FROM pg_namespace n, pg_roles m WHERE m.oid IN {_MEMBER} AND {_USER_SCHEMA}"
    f" AND NOT {_PUBLIC_CREATE.format(n='n')} AND has_schema_privilege(m.oid, n.oid, 'CREATE')"
    " LIMIT 1",
    f"SELECT 'owns ' || {_KIND} || c.oid::regclass::text FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    f" WHERE {_USER_SCHEMA} AND c.relowner IN {_MEMBER} LIMIT 1",
    f"SELECT 'may change the rows of ' || {_KIND} || c.oid::regclass::text FROM pg_class c"
    f" JOIN pg_namespace n ON n.oid = c.relnamespace, pg_roles m WHERE m.oid IN {_MEMBER}"
    f" AND {_USER_SCHEMA} AND c.relkind IN ('r', 'p', 'v', 'f')"
    " AND (has_table_privilege(m.oid, c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE,TRIGGER')"
    " OR has_any_column_privilege(m.oid, c.oid, 'INSERT,UPDATE')) LIMIT 1",
    "SELECT 'may advance sequence ' || c.oid::regclass::text FROM pg_class c"
    f" JOIN pg_namespace n ON n.oid = c.relnamespace, pg_roles m WHERE m.oid IN {_MEMBER}"
    f" AND {_USER_SCHEMA} AND c.relkind = 'S'"
    " AND has_sequence_privilege(m.oid, c.oid, 'USAGE,UPDATE') LIMIT 1",
    "SELECT 'may run ' || p.oid::regprocedure::text || ', a SECURITY DEFINER function of '"
    " || quote_ident(o.rolname) || ', who can write' FROM pg_proc p"
    " JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles o ON o.oid = p.proowner,"
    f" pg_roles m WHERE m.oid IN {_MEMBER} AND {_USER_SCHEMA} AND p.prosecdef"
    " AND has_function_privilege(m.oid, p.oid, 'EXECUTE')"
    " AND has_schema_privilege(m.oid, n.oid, 'USAGE')"
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
    " AND d.objid = p.oid AND d.deptype = 'e')"
    f" AND {_writer('o.oid')} LIMIT 1",
    "SELECT 'may use foreign server ' || quote_ident(s.srvname) || ' (dblink writes through it)'"
    f" FROM pg_foreign_server s, pg_roles m WHERE m.oid IN {_MEMBER}"
    " AND has_server_privilege(m.oid, s.oid, 'USAGE') LIMIT 1",
    "SELECT 'may change large objects' FROM pg_largeobject_metadata l"
    f" WHERE l.lomowner IN {_MEMBER} OR current_setting('lo_compat_privileges')::boolean"
    " OR EXISTS (SELECT 1 FROM aclexplode(l.lomacl) a WHERE a.privilege_type = 'UPDATE'"
    f" AND (a.grantee = 0 OR a.grantee IN {_MEMBER})) LIMIT 1",
)
_POSTGRES_PUBLIC_SCHEMAS = (
    f"SELECT quote_ident(n.nspname) FROM pg_namespace n WHERE {_USER_SCHEMA}"
    f" AND {_PUBLIC_CREATE.format(n='n')} ORDER BY 1"
)
_PUBLIC_CREATE_WARNING = (
    "every role, this one too, may create objects in schema {schema} (PUBLIC holds CREATE "
    "there, the default before PostgreSQL 15): that changes no existing data, but a function "
    "planted there can be picked up by other users' queries; consider "
    "REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC"
)

_MYSQL_READING = {
    "SELECT",
    "SHOW VIEW",
    "USAGE",
    "SHOW DATABASES",
    "PROCESS",
    "REPLICATION CLIENT",
    "BINLOG MONITOR",
    "SLAVE MONITOR",
    "REPLICA MONITOR",
    "CREATE TEMPORARY TABLES",  # like TEMP on PostgreSQL: gone with the session
}
_MYSQL_SYSTEM = {"information_schema", "performance_schema", "sys"}
_GRANT = re.compile(r"GRANT (.+?) ON (.+?) TO ", re.S)
_ROLE_GRANT = re.compile(r"GRANT ((?:`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?\s*,?\s*)+) TO ", re.S)


def probe_read_only(
    con: Any, tables: list[str], list_sources: list[str] | None = None, limit: int = 0
) -> dict[str, Any]:
    """What the orchestrator reads: writable, why, warnings, the tables that are missing (run
    names), and `by_source`: the same per source, with its backend and server version; with
    `list_sources`, `chosen`: their tables, listed (table_choice.choose_tables).

    `con` is one connection or `cons`; every source of `cons` is judged, with tables or not.
    A table whose source the session has not open is missing, and its source says why."""
    chosen = choose_tables(con, list_sources, limit) if list_sources else {}
    tried = [c["tables"][0] for c in chosen.values() if c.get("tables")]
    groups, unavailable = sources.plan(con, [*tables, *tried])
    by_source: dict[str, dict[str, Any]] = {}
    for name in sources.names(con):
        connection = con[name] if sources.is_many(con) else con
        group = groups.get(name, [])
        report = _probe(connection, [r.bare for r in group])
        bare_to_run = {r.bare: r.run for r in group}
        report["missing"] = [bare_to_run[t] for t in report["missing"]]
        report["backend"], report["version"] = backend(connection), server_version(connection)
        record.servers[name] = {"backend": report["backend"], "version": report["version"]}
        by_source[name] = report
    for r in unavailable:
        entry = by_source.setdefault(r.source, _unavailable(r.why))
        entry["missing"].append(r.run)
    return _overall(by_source) | ({"chosen": chosen} if list_sources else {})


def _unavailable(why: str) -> dict[str, Any]:
    report = {"writable": False, "why": "", "warnings": [], "missing": []}
    return report | {"backend": "", "version": "", "error": why}


def _overall(by_source: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The top-level fields over every source, prefixed with the source's name when several."""
    many = len(by_source) > 1

    def named(source: str, text: str) -> str:
        return f"{source}: {text}" if many else text

    writable = [(n, r["why"]) for n, r in by_source.items() if r["writable"]]
    return {
        "writable": bool(writable),
        "why": "; ".join(named(n, why) for n, why in writable),
        "warnings": [named(n, w) for n, r in by_source.items() for w in r["warnings"]],
        "missing": [t for r in by_source.values() for t in r["missing"]],
        "by_source": by_source,
    }


def _probe(con: Any, tables: list[str]) -> dict[str, Any]:
    """The proof on one connection, `tables` named as in its database."""
    report: dict[str, Any] = {"writable": False, "why": "", "warnings": [], "missing": []}
    if con.name == "postgres":
        why = _postgres_rights(con, report["warnings"])
    elif con.name == "mysql":
        why = _mysql_rights(con)
    else:
        why = _duckdb_write(con)
    for table in tables:
        schema, _, name = table.rpartition(".")
        try:
            con.table(name, database=schema) if schema else con.table(name)
        except Exception:
            report["missing"].append(table)
            continue
        if not why and con.name in ("postgres", "mysql") and _write_attempt(con, table):
            why = f"could insert into {table}"
    report["writable"], report["why"] = bool(why), why
    return report


def _cursor(con: Any) -> Any:
    """The driver's own cursor: the session guard would refuse the READ WRITE transaction."""
    if con.name == "postgres":
        import psycopg

        return psycopg.Cursor(con.con)
    import MySQLdb.cursors

    return MySQLdb.cursors.Cursor(con.con)


def _rows(con: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = _cursor(con)
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _postgres_rights(con: Any, warnings: list[str]) -> str:
    for check in _POSTGRES_CHECKS:
        found = _rows(con, check)
        if found:
            return str(found[0][0])
    for (schema,) in _rows(con, _POSTGRES_PUBLIC_SCHEMAS):
        warnings.append(_PUBLIC_CREATE_WARNING.format(schema=schema))
    return ""


def _mysql_rights(con: Any) -> str:
    mariadb = "mariadb" in str(_rows(con, "SELECT VERSION()")[0][0]).lower()
    lines = [str(row[0]) for row in _rows(con, "SHOW GRANTS FOR CURRENT_USER()")]
    roles = [m.group(1).strip().rstrip(",") for m in map(_ROLE_GRANT.match, lines) if m]
    why = _writing_grant(lines, "")
    if why or not roles:
        return why
    if not mariadb:  # MySQL 8 shows a role's rights only for roles named in USING
        using = ", ".join(roles)
        granted = _rows(con, f"SHOW GRANTS FOR CURRENT_USER() USING {using}")
        return _writing_grant([str(row[0]) for row in granted], f" through a role ({using})")
    (current,) = _rows(con, "SELECT CURRENT_ROLE()")[0]
    try:
        for role in (r.strip() for role_list in roles for r in role_list.split(",")):
            try:  # MariaDB shows a role's grants only while it is the current role
                _rows(con, f"SET ROLE {role}")
                granted = _rows(con, f"SHOW GRANTS FOR {role}")
            except Exception:
                return f"has role {role}, whose rights could not be read"
            why = _writing_grant([str(row[0]) for row in granted], f" through role {role}")
            if why:
                return why
    finally:
        restore = "NONE" if current is None else "`" + str(current).replace("`", "``") + "`"
        _rows(con, f"SET ROLE {restore}")
    return ""


def _writing_grant(lines: list[str], via: str) -> str:
    for line in lines:
        match = _GRANT.match(line)
        if not match:
            continue
        names = re.sub(r"\([^)]*\)", "", match.group(1)).split(",")  # drop column lists
        database = _database_of(match.group(2))
        extra = sorted(
            p
            for p in {n.strip().upper() for n in names}
            if p not in _MYSQL_READING
            and not p.startswith("PROXY")
            and not (p == "EXECUTE" and database in _MYSQL_SYSTEM)
        )
        if extra:
            return f"holds {', '.join(extra[:5])} on {match.group(2)}{via}"
    return ""


def _database_of(target: str) -> str:
    target = re.sub(
        r"^(PROCEDURE|FUNCTION|PACKAGE BODY|PACKAGE)\s+", "", target.strip(), flags=re.I
    )
    quoted = re.match(r"`((?:[^`]|``)*)`", target)
    if quoted:
        return quoted.group(1).replace("``", "`").lower()
    return target.split(".", 1)[0].lower()


def _duckdb_write(con: Any) -> str:
    name = "catalog_agents_write_probe_" + uuid.uuid4().hex[:12]
    try:
        con.raw_sql(f"CREATE TABLE {name} (x INTEGER)")
    except Exception:
        return ""
    try:
        con.raw_sql(f"DROP TABLE {name}")
    except Exception:  # the table stays behind; the run is refused all the same
        return "created a table, and could not drop it"
    return "created a table"


def _quoted(con: Any, table: str) -> str:
    q = "`" if con.name == "mysql" else '"'
    return ".".join(q + part.replace(q, q + q) + q for part in table.rsplit(".", 1))


def _write_attempt(con: Any, table: str) -> bool:
    """An INSERT of no rows in a READ WRITE transaction that is rolled back: it fails unless
    the user may write to the table, and changes nothing either way."""
    begin = "BEGIN READ WRITE" if con.name == "postgres" else "START TRANSACTION READ WRITE"
    cursor = _cursor(con)
    try:
        cursor.execute(begin)
        try:
            quoted = _quoted(con, table)
            cursor.execute(f"INSERT INTO {quoted} SELECT * FROM {quoted} WHERE 1 = 0")
            return True
        except Exception:
            return False
        finally:
            cursor.execute("ROLLBACK")
    finally:
        cursor.close()
