"""The pii agent's kit: its page fragment, its digest and its stored data, without a database."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_toolkit import pii_report, record
from catalog_toolkit.kits import KITS
from catalog_toolkit.pii import DEFAULT_MIN_SHARE, DEFAULT_MIN_TEXT_SHARE, judge_column
from catalog_toolkit.pii_rules import name_rule

HOSTILE = "<script>alert('x')</script>"
SETTINGS = {"min_share": DEFAULT_MIN_SHARE, "min_text_share": DEFAULT_MIN_TEXT_SHARE}


def _result(table: str, columns: dict[str, list[Any]]) -> dict[str, Any]:
    judged = [
        {"name": name, "type": "string", **judge_column(values, name_rule(name), SETTINGS)}
        for name, values in columns.items()
    ]
    tables = {table: {"table": table, "columns": judged, "errors": [], "sample": {"rows": 50}}}
    found = pii_report.findings(tables)
    return {
        "format": 1,
        "kind": "pii",
        "settings": {"sample_rows": 50, **SETTINGS},
        "tables": tables,
        "findings": found,
        "counts": pii_report.counts(tables, found),
    }


@pytest.fixture
def result() -> dict[str, Any]:
    return _result(
        f"shop.{HOSTILE}",
        {
            "email": [f"user{i}@example.com" for i in range(40)],
            "card": ["4242 4242 4242 4242"] * 40,
            "email_flag": [True] * 40,
            "status": ["open"] * 40,
        },
    )


def test_findings_carry_severity_confidence_and_evidence(result: dict[str, Any]) -> None:
    found = {f["column"]: f for f in result["findings"]}
    assert set(found) == {"email", "card"}
    assert found["card"]["severity"] == "bad" and found["email"]["severity"] == "neutral"
    assert found["card"]["reason"] == "100% of 40 sampled values match"
    assert result["counts"]["sensitive_columns"] == 2 and result["counts"]["bad"] == 1


def test_the_fragment_escapes_every_value_and_shows_masked_examples(
    result: dict[str, Any],
) -> None:
    html = KITS["pii"].render(result)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<code>**** **** **** 4242</code>" in html
    assert "4242 4242 4242 4242" not in html and "user0@example.com" not in html
    assert "<code>u***@e***.com</code>" in html
    assert "Sensitive columns (2)" in html


def test_the_digest_has_a_headline_and_short_items(result: dict[str, Any]) -> None:
    record.remember("pii", result)
    digest = pii_report.digest(result)
    assert digest["headline"].startswith("2 of 4 columns checked hold personal data, in 1 of 1")
    assert len(digest["items"]) == 2 and "a payment card number" in digest["items"][1]


def test_the_data_has_a_headline_for_the_summary(result: dict[str, Any]) -> None:
    headline = pii_report.headline(result["findings"], result["counts"])
    assert headline == "2 sensitive columns in 1 table, 1 with card numbers."
    assert pii_report.headline([], {"tables": 3}) == "No personal data found in 3 tables checked."


def test_export_returns_what_was_recorded_and_ignores_unknown_context(
    result: dict[str, Any],
) -> None:
    record.remember("pii", result)
    exported = KITS["pii"].export(con=None, tables=[], history_dir="/x", other="ignored")
    assert exported is result


def test_export_without_a_result_or_a_connection_is_empty_but_well_formed() -> None:
    record.results.pop("pii", None)
    exported = KITS["pii"].export(con=None, tables=["shop.customers"])
    assert (exported["format"], exported["kind"], exported["findings"]) == (1, "pii", [])
    assert exported["counts"]["tables"] == 0
    assert "Sensitive columns (0)" in KITS["pii"].render(exported)
