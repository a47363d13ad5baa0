"""The heavy imports a kernel loads once, before it forks any worker.

Every worker inherits them through fork, so a reset costs a fork instead of the second a new
interpreter spends importing ibis, pandas, polars, pyarrow and boto3.
"""

from __future__ import annotations

import importlib
import sys
import time

DEFAULT_MODULES = (
    "pandas",
    "pyarrow",
    "polars",
    "duckdb",
    "psycopg",
    "MySQLdb",
    "ibis",
    "ibis.backends.duckdb",
    "ibis.backends.postgres",
    "ibis.backends.mysql",
    "boto3",
    "botocore.session",
    "catalog_toolkit",  # the profiling toolkit agents import (sandbox/catalog_toolkit)
)


def preload(modules: tuple[str, ...]) -> float:
    """Import the modules; return the milliseconds it took. A missing one is reported, not fatal."""
    started = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a kernel without one driver still serves the others
            print(f"catalog_kernel: could not preload {name}: {exc}", file=sys.stderr)
    return (time.perf_counter() - started) * 1000
