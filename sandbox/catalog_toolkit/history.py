"""Load the catalog data of earlier runs, staged by the summary step as one folder per run.

Both formats read alike: a format-1 `catalog.json` (bare table names, no `sources`) is one
source, `default`, whose tables are its keys; format 2 names each source (session.py).
A run whose `catalog.json` is missing, unreadable or not a catalog is skipped rather than
failing the comparison: one bad run in the history should not hide what the others show.
"""

from __future__ import annotations

import json
import os
from typing import Any


def load_runs(history_dir: str, current: str) -> list[tuple[str, dict[str, Any]]]:
    """`(timestamp, catalog data)` for every run up to `current`, oldest first."""
    runs = []
    names = sorted(os.listdir(history_dir)) if history_dir and os.path.isdir(history_dir) else []
    for timestamp in names:
        path = os.path.join(history_dir, timestamp, "catalog.json")
        if timestamp > current or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("tables"), dict):
            runs.append((timestamp, with_sources(data)))
    return runs


def with_sources(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with a `sources` block: a format-1 file's is one `default` source."""
    if isinstance(data.get("sources"), dict):
        return data
    tables = data["tables"]
    kinds = [p.get("backend") for p in tables.values() if isinstance(p, dict)]
    source = {"backend": next(filter(None, kinds), ""), "version": "", "tables": list(tables)}
    return {**data, "sources": {"default": source | {"failed": {}}}}
