"""Page tokens: a page follows on from the one before it, under the same filter only."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.common.paging import page_offset, page_size, page_token


def test_a_token_leads_to_its_page_under_the_same_filter() -> None:
    assert page_offset("", "RUNNING") == 0
    assert page_offset(page_token(50, "RUNNING"), "RUNNING") == 50
    assert page_offset(page_token(7, 3), 3) == 7


@pytest.mark.parametrize(
    "token",
    [page_token(50, "RUNNING"), page_token(50, ""), "50", "not base64!", page_token(-1, "FAILED")],
)
def test_a_token_from_another_filter_or_made_up_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_offset(token, "FAILED")
    assert [name for name, _ in caught.value.field_violations] == ["page_token"]


def test_page_size_defaults_caps_and_refuses_negative() -> None:
    assert (page_size(0, 50, 200), page_size(10, 50, 200), page_size(999, 50, 200)) == (50, 10, 200)
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1, 50, 200)
    assert [name for name, _ in caught.value.field_violations] == ["page_size"]
