"""Database values as JSON: every number, time and text a profile holds, in a stable shape."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from typing import Any

TEXT_LIMIT = 200  # characters of one value kept in samples and top values


def to_json(value: Any, *, text_limit: int = TEXT_LIMIT) -> Any:
    """A value as JSON: numbers stay numbers (NaN and infinities become strings), times become
    ISO 8601, bytes a hex preview, and long text is cut with a mark that says so."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return to_json(float(value)) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return "0x" + data[:32].hex() + ("…" if len(data) > 32 else "")
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_json(value.item(), text_limit=text_limit)
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= text_limit else text[:text_limit] + f"… [{len(text)} chars]"


def as_float(value: Any) -> float | None:
    """A number for arithmetic (means, quantiles, comparisons), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | decimal.Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def as_datetime(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from a date, datetime or ISO string, or None."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None
