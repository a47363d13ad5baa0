"""Findings about the figures of each column, and the data-quality flags raised or resolved.

Figures are compared only when both runs made them the same way (the caller checks the scope),
and each threshold sits above the noise of how the figure is made, so a finding means a change
in the data rather than in the measurement.
"""

from __future__ import annotations

import json
from typing import Any

from catalog_toolkit.findings import add
from catalog_toolkit.schema_rules import normalize_type
from catalog_toolkit.values import as_float

NULL_JUMP = 0.05  # absolute change in null rate worth reporting...
NULL_JUMP_RATIO = 1.5  # ...when it is also this many times the earlier rate
DISTINCT_CHANGE = 0.10  # relative change in distinct count, beyond the approximation error
HLL_ERROR = 0.02
SAMPLE_ESTIMATE_ERROR = 0.25  # a distinct count estimated from a sample (Duj1)
SHARE_CHANGE = 0.10  # change in a top value's share of the rows
SAMPLE_NEW_VALUE_SHARE = 0.01  # a value new in a big table's sample: news from this share up
MEDIAN_SHIFT_IQR = 0.5  # median moved by this many interquartile ranges
# (severity, kind, message prefix, reason) for a warning newly raised, then one resolved.
_FLAG_CHANGES = (
    ("bad", "new_flag", "new data-quality flag: ", "it was not raised in the earlier run"),
    ("good", "resolved_flag", "resolved: ", "it was raised in the earlier run"),
)


def compare_columns(
    result: dict[str, Any], name: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    """Compare the figures of every column of table `name` whose type did not change. A table
    that crossed the size where its details come from a sample (detail.py) keeps its exact
    figures compared (nulls); the ones a sample gives are not, against a full count."""
    then_columns = {c["name"]: c for c in then.get("columns", [])}
    crossed = _detail_sampled(now) != _detail_sampled(then)
    for column in now.get("columns", []):
        before = then_columns.get(column["name"])
        if before is None or normalize_type(before["type"]) != normalize_type(column["type"]):
            continue
        _compare_nulls(result, name, column, before)
        if crossed:
            continue
        _compare_distinct(result, name, column, before)
        _compare_duplicates(result, name, column, before)
        _compare_quantiles(result, name, column, before)
        _compare_top_values(result, name, column, before, _counted_over(now), _counted_over(then))


def _detail_sampled(profile: dict[str, Any]) -> bool:
    return "detail" in (profile.get("scope") or {})


def _counted_over(profile: dict[str, Any]) -> int | None:
    """The rows a profile's top values were counted in: a big table's sample (detail.py)
    counts them in its own rows, not the table's."""
    detail = (profile.get("scope") or {}).get("detail")
    return int(detail["rows_read"]) if detail and detail.get("rows_read") else profile.get("rows")


def _compare_nulls(
    result: dict[str, Any], table: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    new, old = now.get("null_rate"), then.get("null_rate")
    if new is None or old is None or abs(new - old) < NULL_JUMP:
        return
    if new > old and new >= old * NULL_JUMP_RATIO:
        add(
            result,
            "bad",
            table,
            now["name"],
            "null_rate_up",
            f"null rate rose from {old:.1%} to {new:.1%}",
            "values that used to be filled in are now missing",
        )
    elif new < old and old >= new * NULL_JUMP_RATIO:
        add(
            result,
            "good",
            table,
            now["name"],
            "null_rate_down",
            f"null rate fell from {old:.1%} to {new:.1%}",
            "more values are filled in",
        )


def _compare_distinct(
    result: dict[str, Any], table: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    new, old = now.get("distinct"), then.get("distinct")
    if not new or not old:
        return
    labels = (now.get("how", {}).get("distinct", ""), then.get("how", {}).get("distinct", ""))
    approx = any("approx" in label for label in labels)
    # A sample's estimate (detail.py) moves with the sample: only a big change is news.
    estimate = any("estimate" in label for label in labels)
    error = SAMPLE_ESTIMATE_ERROR if estimate else 3 * HLL_ERROR if approx else 0.0
    change = (new - old) / old
    if new == 1 and old > 1:
        add(
            result,
            "bad",
            table,
            now["name"],
            "became_constant",
            f"only one distinct value now (was {old:,})",
            "the column no longer varies",
        )
    elif abs(change) > max(DISTINCT_CHANGE, error):
        add(
            result,
            "neutral",
            table,
            now["name"],
            "distinct_changed",
            f"distinct values {old:,} → {new:,} ({change:+.0%})",
            "beyond the approximation error" if approx else "exact counts",
        )


def _compare_duplicates(
    result: dict[str, Any], table: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    new, old = now.get("duplicates"), then.get("duplicates")
    if new and old == 0:
        add(
            result,
            "bad",
            table,
            now["name"],
            "key_duplicates",
            f"{new:,} duplicate values in a column that had none",
            "it was unique in the earlier run; joins on it will now multiply rows",
        )
    elif new == 0 and old:
        add(
            result,
            "good",
            table,
            now["name"],
            "key_deduplicated",
            f"no duplicates any more (had {old:,})",
            "the column is unique again",
        )


def _compare_quantiles(
    result: dict[str, Any], table: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    new, old = now.get("quantiles") or {}, then.get("quantiles") or {}
    if not now.get("type", "").startswith(("int", "float", "decimal", "uint")):
        return
    raw = (old.get("p25"), old.get("p50"), old.get("p75"), new.get("p50"))
    values = [v for x in raw if (v := as_float(x)) is not None]
    if len(values) < len(raw):
        return
    p25, p50, p75, median = values
    spread = (p75 - p25) or abs(p50) * 0.2 or 1.0
    if abs(median - p50) > MEDIAN_SHIFT_IQR * spread:
        add(
            result,
            "neutral",
            table,
            now["name"],
            "distribution_shift",
            f"median moved from {p50:g} to {median:g}",
            f"more than {MEDIAN_SHIFT_IQR:g}x the earlier interquartile range ({spread:g})",
        )


def _compare_top_values(
    result: dict[str, Any],
    table: str,
    now: dict[str, Any],
    then: dict[str, Any],
    rows_now: int | None,
    rows_then: int | None,
) -> None:
    new, old = now.get("top_values"), then.get("top_values")
    if not new or not old or not rows_now or not rows_then:
        return
    old_share = {json.dumps(v["value"]): v["count"] / rows_then for v in old}
    sampled = "sample" in str(now.get("how", {}).get("top_values", ""))
    for entry in new:
        key, share = json.dumps(entry["value"]), entry["count"] / rows_now
        # in a sample, a rare value comes and goes with the draw: news only when it is common
        if (
            key not in old_share
            and len(old) < 10
            and (share >= SAMPLE_NEW_VALUE_SHARE or not sampled)
        ):
            add(
                result,
                "neutral",
                table,
                now["name"],
                "new_value",
                f"new value {entry['value']!r} ({share:.1%} of rows)",
                "it did not occur among the values of the earlier run",
            )
        elif key in old_share and abs(share - old_share[key]) >= SHARE_CHANGE:
            add(
                result,
                "neutral",
                table,
                now["name"],
                "share_changed",
                f"{entry['value']!r} went from {old_share[key]:.1%} to {share:.1%} of rows",
                "the mix of values shifted",
            )


def compare_flags(
    result: dict[str, Any], name: str, now: dict[str, Any], then: dict[str, Any]
) -> None:
    """Warnings raised in this run and not the last (bad), and the other way round (good)."""

    def keys(profile: dict[str, Any]) -> dict[tuple[Any, str], dict[str, Any]]:
        return {(f.get("column"), f["code"]): f for f in profile.get("flags", [])}

    now_flags, then_flags = keys(now), keys(then)
    changes = (
        [now_flags[key] for key in now_flags.keys() - then_flags.keys()],
        [then_flags[key] for key in then_flags.keys() - now_flags.keys()],
    )
    for flags, (severity, kind, prefix, reason) in zip(changes, _FLAG_CHANGES, strict=True):
        for flag in flags:
            if flag["severity"] == "warning":
                add(
                    result,
                    severity,
                    name,
                    flag.get("column"),
                    f"{kind}:{flag['code']}",
                    f"{prefix}{flag['message']}",
                    reason,
                )
