from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MYSQL_URL, POSTGRES_URL
from tests.toolkit.shop import Shop, duckdb_shop, mysql_shop, postgres_shop


@pytest.fixture(params=["postgres", "mysql", "duckdb"])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    """The shop in each backend in turn."""
    if request.param == "postgres":
        with postgres_shop(POSTGRES_URL) as built:
            yield built
    elif request.param == "mysql":
        with mysql_shop(MYSQL_URL.rsplit("/", 1)[0]) as built:
            yield built
    else:
        with duckdb_shop(tmp_path) as built:
            yield built


def connect(dsn: str) -> Any:
    """A read-only ibis connection, as the sandbox kernel opens one."""
    from catalog_kernel.connections import open_read_only

    con, info = open_read_only(dsn, statement_timeout_s=60)
    assert info.read_only
    return con
