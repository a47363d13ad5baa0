"""What the held-out PII tables are made of: labelled columns, built row by row with a seed."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ROWS = 150


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    sql: str  # text, int, float, date, timestamp, bool
    values: list[Any]
    role: str  # pii, trap, none, debatable
    kinds: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Table:
    name: str
    columns: list[Column]


Maker = Callable[[int], Any]


class Builder:
    """Columns of one table, each made row by row with the table's own generator."""

    def __init__(self, table: str, seed: int, rows: int = ROWS) -> None:
        self.table = table
        self.rng = random.Random(seed)
        self.rows = rows
        self.columns: list[Column] = []

    def add(
        self, name: str, sql: str, make: Maker, role: str, kinds: str = "", nulls: float = 0.0
    ) -> None:
        if role == "pii" and not kinds:
            raise ValueError(f"{self.table}.{name}: a pii column needs its kinds")
        values = [None if self.rng.random() < nulls else make(i) for i in range(self.rows)]
        self.columns.append(
            Column(
                self.table,
                name,
                sql,
                values,
                role,
                frozenset(kinds.split()) if kinds else frozenset(),
            )
        )

    def done(self) -> Table:
        return Table(self.table, self.columns)


def day(rng: random.Random, start: int, end: int) -> dt.date:
    """A day between the years `start` and `end`."""
    first = dt.date(start, 1, 1).toordinal()
    return dt.date.fromordinal(rng.randint(first, dt.date(end, 12, 28).toordinal()))
