"""The pii agent's pure parts: value checks, name rules, masks, and one column's verdict."""

from __future__ import annotations

import datetime as dt

import pytest
from catalog_toolkit import pii_detectors as d
from catalog_toolkit.pii import DEFAULT_MIN_SHARE, DEFAULT_MIN_TEXT_SHARE, judge_column
from catalog_toolkit.pii_masks import mask, scan_text
from catalog_toolkit.pii_rules import name_rule

SETTINGS = {"min_share": DEFAULT_MIN_SHARE, "min_text_share": DEFAULT_MIN_TEXT_SHARE}


@pytest.mark.parametrize(
    ("value", "network"),
    [
        ("4242 4242 4242 4242", "visa"),
        ("5555-5555-5555-4444", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
    ],
)
def test_luhn_valid_numbers_of_a_network_are_cards(value: str, network: str) -> None:
    digits = d.card_digits(value)
    assert digits is not None and d.card_network(digits) == network
    assert d.classify(value)[0] == "payment_card"


@pytest.mark.parametrize(
    "value",
    [
        "4242 4242 4242 4241",  # Luhn fails
        "356938035643809",  # a Luhn-valid IMEI: 15 digits, no network has that prefix and length
        "9781234567897",  # an ISBN
        "123",
        "4242",
        "0421",
    ],
)
def test_other_digit_strings_are_not_cards(value: str) -> None:
    assert d.card_digits(value) is None


@pytest.mark.parametrize("code", ["123", "4242", "0421", "999", "7310"])
def test_codes_of_three_or_four_digits_are_nothing(code: str) -> None:
    assert d.classify(code) == (None, set())
    assert d.classify(int(code))[0] is None


def test_ibans_check_their_mod_97_digits() -> None:
    assert d.iban_ok("DE89370400440532013000")
    assert d.iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not d.iban_ok("DE89370400440532013001")
    assert not d.iban_ok("DE8937040044053201300")  # one character short for Germany


def test_ssns_follow_the_issuing_rules() -> None:
    assert d.ssn_ok("123-45-6789")
    for invalid in ("000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"):
        assert not d.ssn_ok(invalid), invalid
    assert d.classify(123456789) == (None, {"ssn"})  # plain digits: only if the name says so


def test_ip_addresses_need_their_full_form() -> None:
    assert d.ip_ok("192.168.0.10") and d.ip_ok("2001:db8::1")
    for value in ("1.2.3", "300.1.1.1", "12345", "00:1A:2B:3C:4D:5E"):
        assert not d.ip_ok(value), value


def test_phones_are_international_or_grouped_and_dates_are_not_phones() -> None:
    for value in ("+1 (555) 123-4567", "+44 20 7946 0958", "555-123-4567", "+4930123456"):
        assert d.phone_ok(value), value
    for value in ("2024-01-15", "12/03/2024", "5551234567", "1234.5678", "+44"):
        assert not d.phone_ok(value), value


def test_person_names_need_a_known_name_and_capitals() -> None:
    assert d.person_name("John Smith") == "strong"
    assert d.person_name("Smith, John") == "strong"
    assert d.person_name("Hiroshi Brown") == "strong"  # a known surname closes it
    assert d.person_name("Blue Widget") == "plausible"  # words only: a name column may say so
    assert d.person_name("Paris") == "plausible"
    assert d.person_name("the quick fox") is None
    assert d.person_name("web-01.internal") is None


def test_addresses_need_a_house_number_and_a_street() -> None:
    for value in ("12 Main Street", "4b Elm Ave., Springfield", "Hauptstraße 5, Berlin"):
        assert d.classify(value)[0] == "postal_address", value
    assert d.classify("Springfield")[0] is None


def test_a_birth_date_is_never_recognized_from_the_value_alone() -> None:
    assert d.classify(dt.date(1984, 5, 2)) == (None, {"date_of_birth"})
    assert d.classify(dt.date(2999, 1, 1)) == (None, set())


def test_text_dates_are_read_in_the_common_locale_orders_within_plausible_ranges() -> None:
    for value in ("1984-05-02", "05/02/1984", "31/12/1970", "12/31/1970", "02.05.1984"):
        assert d.classify(value) == (None, {"date_of_birth"}), value
    for value in ("1984/05/02", "2 May 1984", "May 2, 1984", "15-03-1990 08:30"):
        assert "date_of_birth" in d.classify(value)[1], value
    assert d.text_dates("10/11/1958") == [dt.date(1958, 10, 11), dt.date(1958, 11, 10)]
    # Not a day (month 13, day 32), a two-digit year, before 1900 or in the future: no date.
    for value in ("13/13/1970", "32/01/1970", "10/11/58", "01/02/1850", "01/02/2999", "4.2.1.1057"):
        assert "date_of_birth" not in d.classify(value)[1], value
    births = [f"{1 + i % 12:02d}/{1 + i % 28:02d}/{1940 + i}" for i in range(40)]
    verdict = judge_column(births, name_rule("date_of_birth"), SETTINGS)["pii"]
    assert [(v["type"], v["basis"]) for v in verdict] == [("date_of_birth", "name and values")]
    assert verdict[0]["examples"][0] == "**/**/****"


def test_airline_style_names_are_surname_slash_given_names_and_a_title() -> None:
    for value in ("SMITH/JOHN MR", "GARCIA/MARIA ELENA MRS", "NGUYEN/LINDA", "OBRIEN/JAMES DR"):
        assert d.person_name(value) == "strong", value
    for value in ("TCP/IP", "Home/Garden", "n/a", "km/h", "SMITH/", "/JOHN MR"):
        assert d.person_name(value) != "strong", value
    names = ["SMITH/JOHN MR", "JONES/MARY MRS", "BROWN/JAMES", "MILLER/LINDA MS"] * 10
    verdict = judge_column(names, None, SETTINGS)["pii"]
    assert [(v["type"], v["basis"]) for v in verdict] == [("person_name", "values")]
    assert "SMITH" not in " ".join(verdict[0]["examples"])


def test_network_ranges_and_versions_in_text_are_not_ip_addresses() -> None:
    for text in (
        "Route 10.0.0.0/8 and 192.168.0.0/16 through the VPN",
        "Release 4.2.1.100 to the beta channel",
        "upgrade the agent to v1.2.3.4 tonight",
        "Bump build 10.0.19041.1 on the runners",
    ):
        assert "ip_address" not in {t for t, _ in scan_text(text)}, text
    for text in ("login from 203.0.113.7 failed", "blocked 198.51.100.23.", "ip=10.1.2.3, port 80"):
        assert [t for t, _ in scan_text(text)] == ["ip_address"], text
    notes = [f"Allow 10.{i}.0.0/16 in the firewall for the new subnet" for i in range(30)]
    assert judge_column(notes, None, SETTINGS)["pii"] == []


@pytest.mark.parametrize(
    "name",
    [
        "scenario_code",
        "ACADEMIC_YEAR_CODE",
        "email_verified",
        "acid_level",
        "is_email",
        "voicemail",
        "email_domain",
        "product_name",
        "user_name",
        "mac_address",
        "phone_country_code",
        "branch_code",
    ],
)
def test_trap_names_fire_no_rule(name: str) -> None:
    assert name_rule(name) is None


@pytest.mark.parametrize(
    ("name", "pii_type"),
    [
        ("customerEmail", "email"),
        ("EmailAddress", "email"),
        ("e_mail", "email"),
        ("phone_e164", "phone"),
        ("creditCardNumber", "payment_card"),
        ("iban", "iban"),
        ("social_security_number", "ssn"),
        ("client_ip", "ip_address"),
        ("FirstName", "person_name"),
        ("address_line_1", "postal_address"),
        ("date_of_birth", "date_of_birth"),
    ],
)
def test_names_fire_by_their_head_word(name: str, pii_type: str) -> None:
    rule = name_rule(name)
    assert rule is not None and rule.pii_type == pii_type and not rule.generic


def test_masks_keep_the_shape_and_never_the_value() -> None:
    assert mask("email", "john.smith@example.com") == "j***@e***.com"
    assert mask("payment_card", "4242-4242-4242-4242") == "**** **** **** 4242"
    assert mask("ssn", "123-45-6789") == "***-**-6789"
    assert mask("iban", "DE89 3704 0044 0532 0130 00") == "DE** **** **** 3000"
    assert mask("phone", "+1 (555) 123-4567") == "+* (***) ***-**67"
    assert mask("ip_address", "192.168.0.10") == "192.*.*.*"
    assert mask("person_name", "John Smith") == "J*** S***"
    assert mask("date_of_birth", "1984-05-02") == "198*-**-**"


def test_free_text_yields_masked_findings_only() -> None:
    text = "Call John Smith at +44 20 7946 0958 or write to john@example.com, card 4242424242424242"
    found = scan_text(text)
    assert {t for t, _ in found} == {"person_name", "phone", "email", "payment_card"}
    shown = " ".join(m for _, m in found)
    for raw in ("John", "Smith", "7946", "john@", "example", "424242424242"):
        assert raw not in shown


def test_values_decide_over_names() -> None:
    booleans = judge_column([True, False] * 50, name_rule("email"), SETTINGS)
    assert booleans["pii"] == []
    assert "not tagged (values decide)" in booleans["notes"][0]
    emails = judge_column([f"user{i}@example.com" for i in range(50)], None, SETTINGS)
    assert [(v["type"], v["basis"]) for v in emails["pii"]] == [("email", "values")]
    assert emails["pii"][0]["confidence"] >= 0.9 and emails["pii"][0]["share"] == 1.0


def test_a_name_alone_gives_a_low_confidence_and_says_so() -> None:
    verdict = judge_column([], name_rule("phone_number"), SETTINGS)["pii"][0]
    assert (verdict["type"], verdict["basis"], verdict["confidence"]) == (
        "phone",
        "name only",
        0.35,
    )
    assert verdict["name_rule"] == "name ends with 'phone number'"


def test_plain_digits_are_a_phone_only_where_the_name_says_so() -> None:
    digits = [5550000000 + i * 7919 for i in range(40)]
    assert judge_column(digits, None, SETTINGS)["pii"] == []
    tagged = judge_column(digits, name_rule("phone"), SETTINGS)["pii"]
    assert [(v["type"], v["basis"]) for v in tagged] == [("phone", "name and values")]
    assert tagged[0]["confidence"] < 0.9


def test_a_generic_name_needs_values_that_are_names() -> None:
    products = ["Blue Widget", "Classic Lamp", "Smart Kettle"] * 20
    assert judge_column(products, name_rule("name"), SETTINGS)["pii"] == []
    people = ["Mary Jones", "James Miller", "Hiroshi Tanaka", "Linda Clark"] * 15
    assert judge_column(people, name_rule("name"), SETTINGS)["pii"][0]["type"] == "person_name"


def test_free_text_columns_are_tagged_with_what_they_hold() -> None:
    notes = ["Parcel left at the door as asked."] * 80 + [
        f"Please email me at buyer{i}@example.com instead." for i in range(20)
    ]
    verdict = judge_column(notes, None, SETTINGS)["pii"][0]
    assert (verdict["type"], verdict["contains"], verdict["share"]) == ("free_text", ["email"], 0.2)
    assert all("@e***.com" in e for e in verdict["examples"])
    quiet = ["Parcel left at the door as asked."] * 99 + ["Ring twice please, thanks a lot."]
    assert judge_column(quiet, None, SETTINGS)["pii"] == []
