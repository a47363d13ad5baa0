"""What the held-out relations schemas are made of: tables of columns, declared keys, the truth."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# (child table, child column, parent table, parent column), tables as `schema.table`
Edge = tuple[str, str, str, str]


@dataclass
class RelTable:
    name: str
    columns: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)  # name -> (sql, values)
    primary_key: list[str] = field(default_factory=list)  # declared; empty: left undeclared

    def add(self, name: str, sql: str, values: list[Any]) -> list[Any]:
        if self.columns and len(values) != self.rows:
            raise ValueError(f"{self.name}.{name}: {len(values)} values for {self.rows} rows")
        self.columns[name] = (sql, values)
        return values

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))[1]) if self.columns else 0


@dataclass
class Schema:
    name: str
    seed: int
    tables: dict[str, RelTable] = field(default_factory=dict)
    truth: set[Edge] = field(default_factory=set)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def table(self, name: str, primary_key: list[str] | None = None) -> RelTable:
        t = RelTable(name, primary_key=primary_key or [])
        self.tables[name] = t
        return t

    def fk(self, child: str, column: str, parent: str, key: str) -> None:
        """A true foreign key, never declared: the set checks it holds."""
        values = set(self.tables[parent].columns[key][1])
        child_values = self.tables[child].columns[column][1]
        if not {x for x in child_values if x is not None} <= values:
            raise ValueError(f"{child}.{column} is not contained in {parent}.{key}")
        self.truth.add((f"{self.name}.{child}", column, f"{self.name}.{parent}", key))

    def refs(self, values: list[Any], n: int, nulls: float = 0.0, skew: bool = False) -> list[Any]:
        """`n` references drawn from `values`, some null; `skew` favours the first ones."""
        out: list[Any] = []
        for _ in range(n):
            if self.rng.random() < nulls:
                out.append(None)
            elif skew:
                out.append(values[min(int(self.rng.expovariate(4 / len(values))), len(values) - 1)])
            else:
                out.append(self.rng.choice(values))
        return out
