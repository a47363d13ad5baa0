"""The cell that proves, inside the sandbox, that the agent's database connection is read only.

The kernel opens PostgreSQL and MySQL sessions read only, but a session setting is undone by
one statement (`SET default_transaction_read_only = off`, `SET SESSION TRANSACTION READ WRITE`),
and an agent's code can be steered by what the tables hold. So the proof is about the user's
rights, not the session's mode:
- PostgreSQL: a superuser, or CREATE on any schema, or INSERT/UPDATE/DELETE/TRUNCATE on any table
  (`has_schema_privilege`, `has_table_privilege`; they work for a SELECT-only role too);
- MySQL/MariaDB: any privilege in `SHOW GRANTS` beyond reading ones;
- DuckDB: the file is opened `read_only`, which no statement undoes: a CREATE TABLE must fail.
- and on PostgreSQL and MySQL a write attempt on every requested table: an INSERT of no rows
  (`... SELECT * ... WHERE 1 = 0`) in a READ WRITE transaction that is rolled back. It changes
  nothing, and it catches rights the inspection above could miss (a grant through a role).
It also checks that every requested table can be opened. It prints one JSON line after MARKER.
"""

from __future__ import annotations

MARKER = "CATALOG_PROBE_JSON "

PROBE_CELL = """
import json, re, uuid
_probe = {{"writable": False, "why": "", "missing": []}}

def _rows(sql):
    cursor = con.raw_sql(sql)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()

if con.name == "postgres":
    _system = "n.nspname NOT LIKE 'pg\\\\_%' AND n.nspname <> 'information_schema'"
    (_super, _create, _modify), = _rows(
        "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
        "EXISTS (SELECT 1 FROM pg_namespace n WHERE " + _system +
        " AND has_schema_privilege(n.oid, 'CREATE')), "
        "EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND " + _system +
        " AND has_table_privilege(c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE'))")
    _probe["writable"] = bool(_super or _create or _modify)
    _probe["why"] = ("a superuser" if _super else "may create objects in a schema" if _create
                     else "may change a table's rows" if _modify else "")
elif con.name == "mysql":
    _reading = {{"SELECT", "SHOW VIEW", "USAGE", "SHOW DATABASES", "PROCESS", "REPLICATION CLIENT",
                "EXECUTE", "BINLOG MONITOR", "SLAVE MONITOR", "REPLICA MONITOR"}}
    for (_grant,) in _rows("SHOW GRANTS FOR CURRENT_USER()"):
        _match = re.match(r"GRANT (.+?) ON ", _grant)
        _privileges = {{p.strip().upper() for p in _match.group(1).split(",")}} if _match else set()
        _extra = sorted(p for p in _privileges if p not in _reading and not p.startswith("PROXY"))
        if _extra:
            _probe["writable"], _probe["why"] = True, "holds " + ", ".join(_extra[:5])
            break
else:
    _name = "catalog_agents_write_probe_" + uuid.uuid4().hex[:12]
    try:
        con.raw_sql(f"CREATE TABLE {{_name}} (x INTEGER)")
    except Exception:
        pass
    else:
        _probe["writable"], _probe["why"] = True, "created a table"
        try:
            con.raw_sql(f"DROP TABLE {{_name}}")
        except Exception:
            pass

def _quoted(table):
    _q = "`" if con.name == "mysql" else '"'
    return ".".join(_q + part.replace(_q, _q + _q) + _q for part in table.rsplit(".", 1))

def _write_attempt(table):
    # An INSERT of no rows in a read-write transaction that is rolled back: it fails unless
    # the user may write to the table, and it changes nothing either way.
    begin = "BEGIN READ WRITE" if con.name == "postgres" else "START TRANSACTION READ WRITE"
    cursor = con.con.cursor()
    try:
        cursor.execute(begin)
        try:
            _t = _quoted(table)
            cursor.execute(f"INSERT INTO {{_t}} SELECT * FROM {{_t}} WHERE 1 = 0")
            return True
        except Exception:
            return False
        finally:
            cursor.execute("ROLLBACK")
    finally:
        cursor.close()

for _table in {tables!r}:
    _db, _, _t = _table.rpartition(".")
    try:
        con.table(_t, database=_db) if _db else con.table(_t)
    except Exception:
        _probe["missing"].append(_table)
        continue
    if con.name in ("postgres", "mysql") and not _probe["writable"] and _write_attempt(_table):
        _probe["writable"], _probe["why"] = True, f"could insert into {{_table}}"
print({marker!r} + json.dumps(_probe))
"""
