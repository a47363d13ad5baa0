"""Personal data in a profile, masked before anyone reads it: the page, catalog.json, a model.

A profile holds values from the table: sample rows, top values, a column's min and max and its
quantiles, and the flags that quote them. Before a profile is recorded (record.py), and so
before profile_table returns it, each of those values is masked as the pii agent masks its
examples (pii_masks.py), when
- the value is, on its own, an email, a payment card (Luhn), an IBAN (mod 97), a US SSN, an
  IP address or a phone number (pii_detectors.py), or holds one in its text (masked in place);
- or its column is personal data by the pii agent's own rules (pii_judge.judge_column: the name and
  the values agree, or the values say so), judged on the values the profile already holds.
  Then every value of the column is masked.
A masked column's quantiles, histogram, mean and standard deviation are left out.
It reads no row: only what the profile fetched. A masked column says which types it held in
`masked`; the profile's `masking` counts the columns and values. Masking cannot be turned off:
the model reads what profile_table returns, and a switch it could reach would be no guarantee.
Counts, null rates and lengths stay as they are; so do the pii agent's findings, the place to
see what a column holds.
"""

from __future__ import annotations

from typing import Any

from catalog_toolkit.pii_detectors import as_text, classify
from catalog_toolkit.pii_judge import DEFAULT_MIN_SHARE, DEFAULT_MIN_TEXT_SHARE, judge_column
from catalog_toolkit.pii_masks import mask, redact_text
from catalog_toolkit.pii_rules import name_rule

# What a value alone gives away, whatever its column: these types need no name to be sure.
VALUE_TYPES = frozenset({"email", "payment_card", "iban", "ssn", "ip_address", "phone"})
_SETTINGS = {"min_share": DEFAULT_MIN_SHARE, "min_text_share": DEFAULT_MIN_TEXT_SHARE}
# Left out of a masked column: individuals' values, or figures made of a few of them (a
# histogram's edges are the min and max; the mean of one row is its value).
_WHOLE_COLUMN = ("quantiles", "histogram", "mean", "std")
# Flags whose message a column's values make (a date's age, a min or max): in a column of
# personal data they say what they found without the figure.
_QUOTING = {
    "stale": "the newest value is old (its age is left out: the column holds personal data)",
    "out_of_range": "values out of range (left out: the column holds personal data)",
}


class _Column:
    """One column's masking: the types its values held, and each raw text's masked form."""

    def __init__(self, tagged: list[str]) -> None:
        self.tagged = tagged
        self.types: set[str] = set()
        self.replaced: dict[str, str] = {}

    def apply(self, value: Any) -> Any:
        """`value`, masked if it is personal data (see the module notes)."""
        text = as_text(value)
        if text is None:
            return value
        kind, _ = classify(value)
        if self.tagged:
            chosen = kind if kind in self.tagged else self.tagged[0]
            types, masked = [chosen], mask(chosen, text)
        elif kind in VALUE_TYPES:
            types, masked = [kind], mask(kind, text)
        else:
            masked, types = redact_text(text)
            if not types:
                return value
        self.types.update(types)
        self.replaced[str(value)] = masked
        return masked


def mask_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """Mask `profile`'s personal data in place (see the module notes); returns it."""
    samples = profile.get("samples") or []
    columns, values = 0, 0
    for column in profile.get("columns", []):
        masking = _Column(_tagged(column, samples))
        _mask_values(column, samples, masking)
        if not masking.types:
            continue
        columns, values = columns + 1, values + len(masking.replaced)
        column["masked"] = sorted(masking.types)
        for key in _WHOLE_COLUMN:
            column.pop(key, None)
            column.get("how", {}).pop(key, None)
        _mask_flags(profile, column["name"], masking)
    for error in profile.get("errors", []):
        error["error"] = redact_text(str(error.get("error", "")))[0]
    profile["masking"] = {"columns": columns, "values": values}
    return profile


def _tagged(column: dict[str, Any], samples: list[dict[str, Any]]) -> list[str]:
    """The PII types the pii agent's rules give the column, from the values the profile holds."""
    name = column["name"]
    held = [row.get(name) for row in samples]
    held += [entry.get("value") for entry in column.get("top_values") or []]
    held += [column.get(key) for key in ("min", "max")]
    judged = judge_column([v for v in held if v is not None], name_rule(name), _SETTINGS)
    return [verdict["type"] for verdict in judged["pii"] if verdict["basis"] != "name only"]


def _mask_values(column: dict[str, Any], samples: list[dict[str, Any]], masking: _Column) -> None:
    name = column["name"]
    for row in samples:
        if name in row:
            row[name] = masking.apply(row[name])
    for entry in column.get("top_values") or []:
        entry["value"] = masking.apply(entry["value"])
    for key in ("min", "max"):
        if key in column:
            column[key] = masking.apply(column[key])
    quantiles = column.get("quantiles") or {}
    for key, value in quantiles.items():
        quantiles[key] = masking.apply(value)


def _mask_flags(profile: dict[str, Any], name: str, masking: _Column) -> None:
    for flag in profile.get("flags", []):
        if flag.get("column") != name:
            continue
        if masking.tagged and flag.get("code") in _QUOTING:
            flag["message"] = _QUOTING[flag["code"]]
        else:
            flag["message"] = _replace(str(flag.get("message", "")), masking.replaced)


def _replace(message: str, replaced: dict[str, str]) -> str:
    for raw, masked in sorted(replaced.items(), key=lambda item: -len(item[0])):
        message = message.replace(raw, masked)
    return message
