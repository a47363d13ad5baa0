"""Page tokens for the List RPCs: opaque to callers and bound to the filter they were issued for.

A token from a call with another filter would silently skip or repeat rows of this one, so it is
refused (INVALID_ARGUMENT), as is a negative page size.
"""

from __future__ import annotations

import base64

from services.common.errors import InvalidArgument


def page_size(requested: int, default: int, most: int) -> int:
    """The page size to use: `default` for 0, at most `most`; negative is the caller's mistake."""
    if requested < 0:
        raise InvalidArgument(
            "page_size must not be negative", field_violations=[("page_size", "< 0")]
        )
    return min(requested or default, most)


def page_token(offset: int, filter_key: object) -> str:
    """The token of the page starting at `offset` under this filter."""
    return base64.urlsafe_b64encode(f"{filter_key}:{offset}".encode()).decode()


def page_offset(token: str, filter_key: object) -> int:
    """Where the page of `token` starts; 0 for no token."""
    if not token:
        return 0
    try:
        token_filter, offset = base64.urlsafe_b64decode(token).decode().rsplit(":", 1)
        if token_filter == str(filter_key) and int(offset) >= 0:
            return int(offset)
    except ValueError:  # binascii.Error and UnicodeDecodeError too
        pass
    raise InvalidArgument(
        "page_token was not issued for this filter by this service",
        field_violations=[("page_token", "pass the next_page_token of a call with this filter")],
    )
