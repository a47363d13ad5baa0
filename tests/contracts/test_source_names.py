"""The services and the sandbox's toolkit name sources and tables by the same rules (the toolkit
keeps its own copy: it cannot import the services). A drift would let the orchestrator accept a
source name the sandbox reads as part of a table name, or the other way round."""

from __future__ import annotations

import pytest
from catalog_toolkit import sources as toolkit

from services.common import source_names as services


def test_the_name_rule_and_the_default_source_agree() -> None:
    assert toolkit.NAME.pattern == services.NAME.pattern
    assert (toolkit.DEFAULT, toolkit.SEPARATOR) == (services.DEFAULT, services.SEPARATOR)


@pytest.mark.parametrize(
    ("source", "table"),
    [("default", "shop.orders"), ("billing", "invoices"), ("app", "public.orders")],
)
def test_a_table_is_named_and_split_alike(source: str, table: str) -> None:
    named = services.qualify(source, table)
    assert toolkit.qualify(source, table) == named
    assert services.split(named) == (source, table)
    assert toolkit.source_of(named) == source and toolkit.split(named)[1] == table
