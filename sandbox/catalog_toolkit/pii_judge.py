"""The verdict on one column from its name and its sampled values: pure, no database.

pii.py samples the values and calls `judge_column`; masking.py calls it on the values a
profile already holds, when a profile is recorded. Kept apart from pii.py (which reads the
database through ibis) so that recording a profile, and the modules that import the record
(compare.py, read by the orchestrator's web UI, where ibis is not installed), import nothing
heavy. The rules are in pii.py's module notes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from catalog_toolkit import pii_report
from catalog_toolkit.pii_detectors import PRIORITY, as_text, classify
from catalog_toolkit.pii_masks import mask, scan_text
from catalog_toolkit.pii_rules import NameRule

DEFAULT_MIN_SHARE = 0.8
DEFAULT_MIN_TEXT_SHARE = 0.05
MIN_VALUES = 3  # values alone tag nothing on fewer non-null values than this
EXAMPLES = 3  # masked examples kept per finding
TEXT_WORDS = 3  # a value of at least this many words is scanned as free text


def judge_column(
    values: list[Any], rule: NameRule | None, settings: dict[str, Any]
) -> dict[str, Any]:
    """The verdict on one column's sampled non-null `values` (see the module notes): its
    `pii` (type, confidence, evidence, masked examples) and `notes`."""
    n = len(values)
    strong: Counter[str] = Counter()
    plausible: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    text_hits, text_types, words = 0, Counter[str](), 0
    for value in values:
        kind, could_be = classify(value)
        plausible.update(could_be)
        text = as_text(value)
        for pii_type in could_be:
            _example(examples, pii_type, text)
        if kind is not None:
            strong[kind] += 1
        elif text is not None and len(text.split()) >= TEXT_WORDS:
            words += 1
            found = scan_text(text)
            text_hits += bool(found)
            text_types.update({pii_type for pii_type, _ in found})
            for _, masked in found:
                _add(examples, "free_text", masked)
    verdicts = _verdicts(n, strong, plausible, rule, settings["min_share"])
    if not verdicts and n and words >= n / 2:
        share = text_hits / n
        if text_hits >= 2 and share >= settings["min_text_share"]:
            confidence = 0.55 + 0.4 * min(1.0, share / 0.5) * n / (n + 5)
            verdicts.append(
                _verdict("free_text", "values", text_hits, n, confidence, None)
                | {"contains": sorted(text_types)}
            )
    for verdict in verdicts:
        verdict["examples"] = examples.get(verdict["type"], [])[:EXAMPLES]
    return {"sampled": n, "pii": verdicts, "notes": _notes(n, rule, verdicts, plausible)}


def _example(examples: dict[str, list[str]], pii_type: str, text: str | None) -> None:
    if text is not None and len(examples.get(pii_type, [])) < EXAMPLES:
        _add(examples, pii_type, mask(pii_type, text))


def _add(examples: dict[str, list[str]], pii_type: str, masked: str) -> None:
    kept = examples.setdefault(pii_type, [])
    if masked not in kept and len(kept) < EXAMPLES:
        kept.append(masked)


def _verdicts(
    n: int, strong: Counter[str], plausible: Counter[str], rule: NameRule | None, min_share: float
) -> list[dict[str, Any]]:
    named = rule.pii_type if rule else None
    if n == 0:
        return [_verdict(named, "name only", 0, 0, 0.35, rule)] if rule else []
    size = n / (n + 5)  # few values make a weak case
    found = []
    for pii_type in PRIORITY:
        s, p = strong[pii_type] / n, plausible[pii_type] / n
        ruled = pii_type == named
        if n >= MIN_VALUES and s >= min_share:
            confidence = 0.5 + 0.45 * s * size + 0.04 * ruled
            found.append(_verdict(pii_type, "values", strong[pii_type], n, confidence, rule))
        elif ruled and (s >= min_share / 2 or (p >= min_share and not rule.generic)):  # type: ignore[union-attr]
            agreed = max(strong[pii_type], plausible[pii_type] if not rule.generic else 0)  # type: ignore[union-attr]
            confidence = 0.45 + 0.4 * (agreed / n) * size
            found.append(_verdict(pii_type, "name and values", agreed, n, confidence, rule))
    if not found and n >= MIN_VALUES and sum(strong.values()) >= min_share * n:
        # A column of several kinds (emails and phone numbers): each kind that is common.
        for pii_type in PRIORITY:
            if strong[pii_type] >= 0.2 * n:
                confidence = 0.4 + 0.4 * strong[pii_type] / n * size
                found.append(
                    _verdict(pii_type, "values, mixed", strong[pii_type], n, confidence, rule)
                )
    return found


def _verdict(
    pii_type: str | None, basis: str, matched: int, n: int, confidence: float, rule: NameRule | None
) -> dict[str, Any]:
    ruled = rule is not None and rule.pii_type == pii_type
    return {
        "type": pii_type,
        "confidence": round(min(confidence, 0.99), 2),
        "basis": basis,
        "share": round(matched / n, 4) if n else None,
        "matched": matched,
        "sampled": n,
        "name_rule": rule.describe() if ruled and rule else None,
    }


def _notes(
    n: int, rule: NameRule | None, verdicts: list[dict[str, Any]], plausible: Counter[str]
) -> list[str]:
    if rule is None or any(v["type"] == rule.pii_type for v in verdicts):
        return []
    share = plausible[rule.pii_type] / n if n else 0.0
    return [
        f"the {rule.describe()}, suggesting {pii_report.LABELS[rule.pii_type]}, but only "
        f"{share:.0%} of {n:,} sampled values could be one: not tagged (values decide)"
    ]
