"""Generated schemas with known foreign keys and decoys, for bench_relations.py.

Each schema is drawn from `random.Random(seed)`: 6 to 8 tables named after business entities,
each with one key (a dense integer `id`, a sparse integer `id`, `{entity}_id`, or a text code
`{entity}_code`), a few attributes, and references to earlier tables named as people name
them: `customer_id`, `billing_customer_id`, `cust_id`, `customer`, `customer_ref`, the
parent's own key name, `parent_id` on its own table. References hold up to 3% orphans and up
to 10% NULLs. Half the schemas declare their primary keys; none declares a foreign key.

Decoys, none of them a foreign key:
- `external_{entity}_id`: named like a reference, its values come from another system;
- `old_{entity}_id`: half its values are keys, half are not;
- `{entity}_type_id`: small integer codes (1 to 4), which any dense id range contains;
- `country_code`: the same non-generic name in several tables, unique in none.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

_ENTITY_NAMES = (
    "customers suppliers employees departments stores regions warehouses carriers invoices "
    "orders payments shipments categories accounts projects teams vendors airports planes "
    "courses students teachers rooms doctors patients devices sensors books authors "
    "publishers members clubs events venues tickets agents policies claims"
)
ENTITIES = tuple(_ENTITY_NAMES.split())
ROLES = ("billing", "shipping", "primary", "home", "origin", "backup", "assigned", "owner")
COUNTRIES = ("DE", "FR", "US", "GB", "NL", "ES")


@dataclass
class Column:
    name: str
    sql: str  # INTEGER, BIGINT, VARCHAR, DOUBLE PRECISION
    values: list[Any]


@dataclass
class Table:
    name: str
    key: str
    columns: list[Column] = field(default_factory=list)
    declare_key: bool = False

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass
class Schema:
    name: str
    tables: list[Table]
    truth: set[tuple[str, str, str, str]]  # (child table, column, parent table, column)


def singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


def _keys(rng: random.Random, entity: str, rows: int) -> tuple[str, Column]:
    style = rng.choice(("dense", "sparse", "named", "code"))
    one = singular(entity)
    if style == "dense":
        return "id", Column("id", "INTEGER", list(range(1, rows + 1)))
    if style == "sparse":
        return "id", Column("id", "BIGINT", rng.sample(range(1, 10_000_000), rows))
    if style == "named":
        return f"{one}_id", Column(f"{one}_id", "INTEGER", list(range(1, rows + 1)))
    prefix = one[:2].upper()
    codes = [f"{prefix}-{n:05d}" for n in rng.sample(range(100_000), rows)]
    return f"{one}_code", Column(f"{one}_code", "VARCHAR", codes)


def _table(rng: random.Random, entity: str, declare: bool) -> Table:
    rows = rng.randint(30, 800)
    key, column = _keys(rng, entity, rows)
    table = Table(entity, key, [column], declare_key=declare)
    table.columns.append(
        Column("label", "VARCHAR", [f"{singular(entity)} {i}" for i in range(rows)])
    )
    table.columns.append(
        Column("amount", "DOUBLE PRECISION", [round(rng.random() * 100, 2)] * rows)
    )
    if rng.random() < 0.5:
        table.columns.append(Column("country_code", "VARCHAR", _choices(rng, COUNTRIES, rows)))
    return table


def _choices(rng: random.Random, pool: Any, rows: int, nulls: float = 0.0) -> list[Any]:
    return [None if rng.random() < nulls else rng.choice(pool) for _ in range(rows)]


def _reference_name(rng: random.Random, parent: Table, taken: set[str]) -> str:
    one = singular(parent.name)
    word = parent.key.rpartition("_")[2]  # id or code
    names = [f"{one}_{word}"]
    names += [f"{role}_{one}_{word}" for role in rng.sample(ROLES, 2)]
    if parent.key == "id":
        names += [one[: rng.choice((3, 4))] + "_id", one]
    names.append(f"{one}_ref")
    return rng.choice([n for n in names if n not in taken])


def _orphan(rng: random.Random, parent: Table, keys: list[Any]) -> Any:
    if isinstance(keys[0], str):
        return "ZZ-" + "".join(rng.choices(string.digits, k=6))
    return max(keys) + rng.randint(1, 1000)


def _refer(rng: random.Random, child: Table, parent: Table, name: str) -> None:
    keys = parent.column(parent.key).values
    rows = len(child.columns[0].values)
    nulls, orphans = rng.choice((0.0, 0.0, 0.05, 0.1)), rng.choice((0.0, 0.0, 0.01, 0.03))
    values = _choices(rng, keys, rows, nulls)
    for i in rng.sample(range(rows), int(rows * orphans)):
        values[i] = _orphan(rng, parent, keys)
    child.columns.append(Column(name, parent.column(parent.key).sql, values))


def _decoys(rng: random.Random, child: Table, parent: Table) -> None:
    one, rows = singular(parent.name), len(child.columns[0].values)
    keys = parent.column(parent.key).values
    if isinstance(keys[0], int) and rng.random() < 0.5:
        outside = [rng.randint(20_000_000, 30_000_000) for _ in range(rows)]
        child.columns.append(Column(f"external_{one}_id", "BIGINT", outside))
    if rng.random() < 0.4:
        half = [rng.choice(keys) if i % 2 else _orphan(rng, parent, keys) for i in range(rows)]
        child.columns.append(Column(f"old_{one}_id", parent.column(parent.key).sql, half))
    if rng.random() < 0.5:
        child.columns.append(Column(f"{one}_type_id", "INTEGER", _choices(rng, range(1, 5), rows)))


def schema(seed: int) -> Schema:
    """One generated schema (see the module notes); the same `seed` gives the same schema."""
    rng = random.Random(seed)
    declare = seed % 2 == 0
    tables = [_table(rng, e, declare) for e in rng.sample(ENTITIES, rng.randint(6, 8))]
    truth: set[tuple[str, str, str, str]] = set()
    for i, child in enumerate(tables[1:], start=1):
        taken = {c.name for c in child.columns}
        for parent in rng.sample(tables[:i], min(i, rng.choice((1, 1, 2)))):
            name = _reference_name(rng, parent, taken)
            taken.add(name)
            _refer(rng, child, parent, name)
            truth.add((child.name, name, parent.name, parent.key))
            _decoys(rng, child, parent)
    for table in tables:
        if table.key == "id" and table.column("id").sql == "INTEGER" and rng.random() < 0.25:
            _refer(rng, table, table, "parent_id")
            truth.add((table.name, "parent_id", table.name, "id"))
    return Schema(f"gen_{seed}", tables, truth)
