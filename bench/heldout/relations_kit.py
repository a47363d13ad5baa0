"""What the held-out relations schemas are made of: tables, keys, references with NULLs and
orphans, codes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

Edge = tuple[str, str, str, str, str]  # schema, child table, column, parent table, column


@dataclass
class Table:
    name: str
    columns: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)  # kind, values
    primary_key: str | None = None


@dataclass
class Schema:
    name: str
    tables: list[Table]
    truth: set[Edge]


def ids(rng: random.Random, n: int, start: int = 1, gap: float = 0.03) -> list[int]:
    """Sequence values with deleted rows: n ids from `start`, about `gap` of them skipped."""
    out: list[int] = []
    i = start
    while len(out) < n:
        if rng.random() >= gap:
            out.append(i)
        i += 1
    return out


def refs(
    rng: random.Random,
    parent: list[Any],
    n: int,
    nulls: float = 0.0,
    orphans: float = 0.0,
    skew: bool = True,
) -> list[Any]:
    """n references to `parent` values, some NULL, a few to deleted parents."""
    top = max(v for v in parent if isinstance(v, int)) if isinstance(parent[0], int) else None
    out: list[Any] = []
    for _ in range(n):
        r = rng.random()
        if r < nulls:
            out.append(None)
        elif r < nulls + orphans:
            # the same few deleted parents come up again and again
            pool = rng.randint(1, 40)
            out.append(top + pool if top is not None else f"{parent[0][:1]}ZZ{pool}")
        else:
            k = int(len(parent) * rng.random() ** 1.5) if skew else rng.randrange(len(parent))
            out.append(parent[min(k, len(parent) - 1)])
    return out


def codes(rng: random.Random, n: int, make: Any) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen[make(rng)] = None
    return list(seen)


def table(table_name: str, pk: str | None = None, /, **columns: tuple[str, list[Any]]) -> Table:
    return Table(table_name, dict(columns), pk)


def small(rng: random.Random, lo: int, hi: int, n: int) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(n)]


def money(rng: random.Random, n: int, lo: float = 5, hi: float = 500) -> list[float]:
    return [round(rng.uniform(lo, hi), 2) for _ in range(n)]


def words(rng: random.Random, choices: list[Any], n: int) -> list[Any]:
    return [rng.choice(choices) for _ in range(n)]


def uuid4(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
