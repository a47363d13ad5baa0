"""A profile masks personal data before anyone reads it, on DuckDB and PostgreSQL: what
profile_table returns (what a model reads), the catalog's stored data and its page hold no raw
email, card number, IBAN or phone number, and the traps (`scenario_code`, `email_verified`)
keep their values."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from catalog_toolkit import profile_table, record
from catalog_toolkit.kits import KITS
from catalog_toolkit.masking import mask_profile

from tests.toolkit.conftest import connect

EMAILS = [f"{n}@example.com" for n in ("jane.doe", "omar.haddad", "li.wei", "ana.souza")]
CARDS = ["4111 1111 1111 1111", "5500-0055-5555-5559", "378282246310005", "6011111111111117"]
IBANS = ["DE89370400440532013000", "GB82WEST12345698765432", "NL91ABNA0417164300"]
IBANS.append("FR1420041010050500013M02606")
PHONES = ["+1 415 555 0199", "+44 20 7946 0958", "(212) 555-0100", "+49 30 901820"]
NOTES = ["write to zoe.quinn@example.net", "called twice", "no answer", "paid by card"]
CODES = [101, 2045, 330, 9999]  # three and four digits: no card data
CARD_NUMBERS = [4012888888881881, 5105105105105100, 371449635398431, 6011000990139424]
ROWS = [
    (i + 1, EMAILS[i], CARDS[i], IBANS[i], PHONES[i], CODES[i], i % 2 == 0, NOTES[i], card)
    for i, card in enumerate(CARD_NUMBERS)
]
COLUMNS = "id, email, card_number, iban, phone, scenario_code, email_verified, note, card_digits"
RAW = EMAILS + CARDS + IBANS + PHONES + ["zoe.quinn@example.net"]
RAW += [c.replace(" ", "").replace("-", "") for c in CARDS] + [str(n) for n in CARD_NUMBERS]
MASKED_EMAIL = re.compile(r"\w\*\*\*@e\*\*\*\.com")


@pytest.fixture(params=["postgres", "duckdb"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def contacts(backend: str, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A read-only connection and the `contacts` table's name, in `backend`."""
    if backend == "duckdb":
        import duckdb

        path = tmp_path / "contacts.duckdb"
        with duckdb.connect(str(path)) as db:
            _create(db, "main", "BOOLEAN")
        con = connect(f"duckdb://{path}")
        yield con, "main.contacts"
        con.disconnect()
        return
    import psycopg

    from tests.conftest import POSTGRES_URL

    schema = f"masking_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
        try:
            _create(db, schema, "BOOLEAN")
            con = connect(POSTGRES_URL)
            yield con, f"{schema}.contacts"
            con.disconnect()
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


def _create(db: Any, schema: str, boolean: str) -> None:
    db.execute(
        f"CREATE TABLE {schema}.contacts (id INTEGER PRIMARY KEY, email TEXT, card_number TEXT,"
        f" iban TEXT, phone TEXT, scenario_code INTEGER, email_verified {boolean}, note TEXT,"
        " card_digits BIGINT)"
    )
    marks = ", ".join(["(" + ", ".join(["%s"] * 9) + ")"] * len(ROWS))
    if "duckdb" in type(db).__module__:
        marks = marks.replace("%s", "?")
    db.execute(
        f"INSERT INTO {schema}.contacts ({COLUMNS}) VALUES {marks}",
        [value for row in ROWS for value in row],
    )


def _leaked(text: str) -> list[str]:
    return [value for value in RAW if value in text]


@pytest.fixture
def clean_profiles() -> Iterator[None]:
    record.profiles.clear()
    yield
    record.profiles.clear()


def test_no_raw_value_reaches_the_profile_its_data_or_its_page(
    contacts: tuple[Any, str], clean_profiles: None
) -> None:
    con, table = contacts
    profile = profile_table(con, table)  # what a model that calls it reads
    columns = {c["name"]: c for c in profile["columns"]}
    assert not _leaked(json.dumps(profile))
    exported = KITS["catalog"].export(con=con, tables=[table])
    page = KITS["catalog"].render(exported)
    assert not _leaked(json.dumps(exported)) and not _leaked(page)

    assert columns["email"]["masked"] == ["email"]
    assert columns["card_number"]["masked"] == ["payment_card"]
    assert columns["iban"]["masked"] == ["iban"]
    assert columns["phone"]["masked"] == ["phone"]
    assert columns["note"]["masked"] == ["free_text"]  # a column the pii agent would tag
    assert columns["card_digits"]["masked"] == ["payment_card"]
    assert "mean" not in columns["card_digits"] and "histogram" not in columns["card_digits"]
    assert MASKED_EMAIL.search(json.dumps(profile["samples"]))
    assert "**** **** **** 1111" in [v["value"] for v in columns["card_number"]["top_values"]]
    assert [s["note"] for s in profile["samples"]][:2] == ["w*** t*** z***", "c*** t***"]
    assert profile["masking"] == {"columns": 6, "values": profile["masking"]["values"]}
    assert "masked: email" in page and "Personal data masked in" in page


def test_the_traps_keep_their_values(contacts: tuple[Any, str], clean_profiles: None) -> None:
    con, table = contacts
    profile = profile_table(con, table)
    columns = {c["name"]: c for c in profile["columns"]}
    for name in ("id", "scenario_code", "email_verified"):
        assert "masked" not in columns[name], name
    codes = columns["scenario_code"]
    assert (codes["min"], codes["max"]) == (101, 9999)
    assert sorted(v["value"] for v in codes["top_values"]) == sorted(CODES)
    assert "histogram" in codes and "mean" in codes
    assert [s["scenario_code"] for s in profile["samples"]] == CODES
    assert [s["email_verified"] for s in profile["samples"]] == [True, False, True, False]


def test_a_flag_quoting_a_masked_value_quotes_it_masked() -> None:
    """Masking reads the profile only (no query): a hand-made profile is enough."""
    profile: dict[str, Any] = {
        "columns": [
            {"name": "contact", "type": "string", "max": "jane.doe@example.com"},
            {"name": "remark", "type": "string", "max": "see omar.haddad@example.com today"},
        ],
        "samples": [],
        "flags": [{"column": "contact", "code": "x", "message": "max jane.doe@example.com"}],
        "errors": [{"pass": "top values", "error": "bad value 'li.wei@example.com'"}],
    }
    mask_profile(profile)
    assert not _leaked(json.dumps(profile))
    assert profile["flags"][0]["message"] == "max j***@e***.com"
    assert profile["columns"][1]["max"] == "see o***@e***.com today"  # masked in place
