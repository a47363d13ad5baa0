"""Data-quality flags a reader should see first, computed from a profile's own figures.

Each flag names its column, a code a program can match, a severity (`warning` for what is
probably wrong, `info` for what is worth knowing) and a sentence that says why.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from catalog_toolkit.values import as_datetime, as_float

HIGH_NULL_RATE = 0.5
STALE_AFTER_DAYS = 30
FUTURE_SLACK = dt.timedelta(days=1)
EARLIEST_PLAUSIBLE = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
# Names whose values cannot be negative: a negative one is out of range.
_NON_NEGATIVE = re.compile(
    r"(^|_)(qty|quantity|count|price|amount|cost|total|weight|age|size|length|height|width|"
    r"stock|units|duration|distance)(_|$)",
    re.IGNORECASE,
)
# Names of columns that record when a row arrived or changed: freshness is read from them.
_ACTIVITY = re.compile(r"(_at|_on|_time|_ts|date|timestamp|created|updated|modified)$", re.I)


def _flag(column: str | None, code: str, severity: str, message: str) -> dict[str, Any]:
    return {"column": column, "code": code, "severity": severity, "message": message}


def quality_flags(profile: dict[str, Any], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    now = now or dt.datetime.now(dt.UTC)
    rows = profile.get("rows")
    flags: list[dict[str, Any]] = []
    if rows == 0:
        flags.append(_flag(None, "empty_table", "info", "the table has no rows"))
        return flags
    if not rows:
        return flags
    for column in profile.get("columns", []):
        flags.extend(_column_flags(column, rows, now))
    return flags


def _column_flags(column: dict[str, Any], rows: int, now: dt.datetime) -> list[dict[str, Any]]:
    name, found = column["name"], []
    nulls, distinct = column.get("nulls"), column.get("distinct")
    if nulls is not None and nulls == rows:
        found.append(_flag(name, "all_null", "warning", "every value is null"))
    elif distinct == 1 and rows > 1:
        found.append(_flag(name, "constant", "warning", "every non-null value is the same"))
    rate = column.get("null_rate")
    if rate is not None and HIGH_NULL_RATE <= rate < 1:
        found.append(_flag(name, "high_nulls", "warning", f"{rate:.0%} of the values are null"))
    duplicates = column.get("duplicates") or 0
    if duplicates and column.get("key") == "declared":
        found.append(
            _flag(
                name, "duplicate_key", "warning", f"a declared key with {duplicates:,} duplicates"
            )
        )
    elif duplicates:
        severity = "warning" if _looks_like_id(name) else "info"
        found.append(
            _flag(
                name,
                "duplicate_key",
                severity,
                f"{duplicates:,} duplicates in a column whose "
                "values are almost all distinct (a key, or an identifier, that repeats?)",
            )
        )
    low = as_float(column.get("min"))
    if low is not None and low < 0 and _NON_NEGATIVE.search(name):
        found.append(
            _flag(
                name,
                "out_of_range",
                "warning",
                f"negative values (min {low:g}) in a column whose name says it cannot be negative",
            )
        )
    if column.get("type", "").startswith(("timestamp", "date")):
        found.extend(_time_flags(column, now))
    return found


def _looks_like_id(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("id", "uuid", "key", "code", "email") or lowered.endswith(("_id", "_key"))


def _time_flags(column: dict[str, Any], now: dt.datetime) -> list[dict[str, Any]]:
    name, found = column["name"], []
    newest, oldest = as_datetime(column.get("max")), as_datetime(column.get("min"))
    if newest is not None and newest > now + FUTURE_SLACK:
        found.append(
            _flag(name, "out_of_range", "warning", f"values in the future (max {column['max']})")
        )
    if oldest is not None and oldest < EARLIEST_PLAUSIBLE:
        found.append(
            _flag(name, "out_of_range", "warning", f"implausibly old values (min {column['min']})")
        )
    if (
        newest is not None
        and _ACTIVITY.search(name)
        and newest < now - dt.timedelta(days=STALE_AFTER_DAYS)
    ):
        age = (now - newest).days
        found.append(_flag(name, "stale", "info", f"the newest value is {age} days old"))
    return found
