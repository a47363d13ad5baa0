"""Runs written straight to a file:// prefix, as the workflow stores them, for the UI's tests
and its bench: catalog.json with per-table profiles, summary.json, and a page per agent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HOSTILE_TABLE = "<img src=x onerror=alert(1)>"
HOSTILE_COMMENT = "ends here </script><script>alert(2)</script>"
START = datetime(2026, 1, 1, tzinfo=UTC)


def timestamp(i: int) -> str:
    moment = START + timedelta(hours=i)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def profile(name: str, run: int, extra_column: bool = False) -> dict[str, Any]:
    columns = [
        {"name": "id", "type": "int64", "nullable": False, "comment": None, "null_rate": 0.0,
         "distinct": 100 + run, "min": 1, "max": 100 + run, "key": "declared"},
        {"name": "email", "type": "string", "nullable": True, "comment": HOSTILE_COMMENT,
         "null_rate": 0.05 + (run % 5) / 100, "distinct": 90},
        {"name": "created_at", "type": "timestamp", "nullable": True, "comment": None,
         "null_rate": 0.0, "min": "2025-01-01T00:00:00",
         "max": (START + timedelta(hours=run)).isoformat()},
    ]  # fmt: skip
    if extra_column:
        columns.append({"name": "loyalty_tier", "type": "string", "nullable": True,
                        "comment": "customer loyalty level", "null_rate": 0.5})  # fmt: skip
    return {
        "format": 1, "table": name, "backend": "duckdb", "comment": None, "rows": 100 + run * 3,
        "primary_key": ["id"], "unique": [], "foreign_keys": [], "columns": columns,
        "samples": [{"id": 1, "email": "<b>x</b>", "created_at": "2025-01-01T00:00:00"}],
        "flags": [{"column": "email", "code": "nulls", "severity": "info", "message": "some"}],
    }  # fmt: skip


def write_runs(prefix_dir: Path, runs: int, tables: int, hostile: bool = True) -> list[str]:
    """`runs` runs of `tables` tables each (the hostile name among them); their timestamps."""
    names = [f"table_{i:03d}" for i in range(tables - int(hostile))]
    names += [HOSTILE_TABLE] * hostile
    stamps = []
    for run in range(runs):
        stamp = timestamp(run)
        folder = prefix_dir / stamp
        folder.mkdir(parents=True)
        last = run == runs - 1
        data = {"format": 1, "kind": "catalog", "headline": f"{tables} tables",
                "counts": {"tables": tables, "warnings": 0}, "requested": names,
                "tables": {n: profile(n, run, extra_column=last and i == 0)
                           for i, n in enumerate(names)}}  # fmt: skip
        (folder / "catalog.json").write_text(json.dumps(data))
        summary = {"format": 1, "kind": "summary", "counts": {"bad": 1, "good": 2, "neutral": 3}}
        (folder / "summary.json").write_text(json.dumps(summary))
        for agent in ("catalog", "summary"):
            page = f"<html><body><h1>{agent} page of run {run}</h1></body></html>"
            (folder / f"{agent}.html").write_text(page)
        stamps.append(stamp)
    return stamps
