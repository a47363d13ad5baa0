from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.toolkit.shop import BACKENDS, Shop, shop_in


@pytest.fixture(params=BACKENDS)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    """The shop in each backend in turn."""
    with shop_in(request.param, tmp_path) as built:
        yield built


def connect(dsn: str) -> Any:
    """A read-only ibis connection, as the sandbox kernel opens one."""
    from catalog_kernel.connections import open_read_only

    con, info = open_read_only(dsn, statement_timeout_s=60)
    assert info.read_only
    return con


@pytest.fixture
def fresh_record() -> Iterator[None]:
    """No agent result recorded before the test, nor left after it (a session's record)."""
    from catalog_toolkit import record

    record.results.clear()
    yield
    record.results.clear()
