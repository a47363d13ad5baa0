"""A labelled set of columns for the pii agent, generated from a seed and built in a backend.

Six tables, 70 columns: 33 hold one kind of personal data (the label), 37 hold none, and 9 of
those are traps a name-based tagger falls into (`scenario_code`, `ACADEMIC_YEAR_CODE`,
`email_verified`, `acid_level`, 3- and 4-digit codes, a boolean column named like an email).
Values are drawn with `random.Random(seed)`: people's names mix common English ones with names
from elsewhere, phone numbers come in several national formats, card numbers are Luhn-valid
numbers of real networks, IBANs carry correct check digits. Some columns hold NULLs, one is
almost all NULL. A city, a ZIP code or an account number is labelled as no personal data of
the agent's types (person name, email, phone, card, IBAN, SSN, IP, postal address, date of
birth, free text holding any of these).

Used by bench/bench_pii.py and by tests/toolkit/test_pii_backends.py.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SEED = 20260513
ROWS = {"customers": 400, "payments": 400, "events": 3000, "items": 300, "codes": 400, "notes": 400}


@dataclass(frozen=True)
class Case:
    table: str
    column: str
    kind: str  # text, bigint, date, timestamp, bool, double
    values: list[Any]
    label: str | None  # the PII type the column holds, or None
    trap: bool = False  # a name that misleads name-only taggers


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "James Mary Robert Linda Michael Barbara David Susan Daniel Karen Kevin Nancy "
    "Brian Laura Jason Emily Eric Rachel Steven Megan Thomas Anna Paul Julia George "
    "Helen Peter Grace"
)
FIRST_ELSEWHERE = _words(
    "Priya Hiroshi Oluwaseun Sven Giulia Mehmet Aarav Xin Fatima Kwame Leilani"
)
LAST = _words(
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas "
    "Moore Martin Jackson Thompson White Harris Clark Lewis Walker Young Allen King "
    "Wright Scott Green Baker"
)
LAST_ELSEWHERE = _words("Tanaka Okafor Nguyen Kowalski Rossi Yilmaz Sharma Haddad Lindqvist Mensah")
STREETS = _words("Main Oak Maple Cedar Elm Park Lake Hill Washington Sunset Church River")
SUFFIXES = _words("Street St Avenue Ave Road Rd Lane Drive Blvd Court Way Place")
CITIES = _words("Springfield Austin Paris Madison London Berlin Jackson Denver Charlotte Tokyo")
DOMAINS = _words("gmail.com example.org mail.co.uk firma.de uni.edu outlook.com")


def _person(rng: random.Random) -> tuple[str, str]:
    first = rng.choice(FIRST_ELSEWHERE if rng.random() < 0.25 else FIRST)
    last = rng.choice(LAST_ELSEWHERE if rng.random() < 0.25 else LAST)
    return first, last


def _email(rng: random.Random) -> str:
    first, last = _person(rng)
    local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}"])
    return f"{local.lower()}@{rng.choice(DOMAINS)}"


def _phone(rng: random.Random) -> str:
    def d(n: int) -> str:
        return "".join(rng.choice(string.digits) for _ in range(n))

    return rng.choice(
        [
            f"+1 ({rng.randint(201, 989)}) {d(3)}-{d(4)}",
            f"{rng.randint(201, 989)}-{d(3)}-{d(4)}",
            f"+44 20 {d(4)} {d(4)}",
            f"+49 30 {d(8)}",
            f"+33 {rng.randint(1, 9)} {d(2)} {d(2)} {d(2)} {d(2)}",
            f"({rng.randint(201, 989)}) {d(3)} {d(4)}",
        ]
    )


def luhn_complete(body: str) -> str:
    """`body` with the check digit that makes it Luhn-valid."""
    for check in string.digits:
        number = body + check
        total = sum(
            (int(c) * 2 - 9 if int(c) > 4 else int(c) * 2) if i % 2 else int(c)
            for i, c in enumerate(reversed(number))
        )
        if total % 10 == 0:
            return number
    raise AssertionError("unreachable")


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = luhn_complete(body)
    style = rng.random()
    if style < 0.4:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return "-".join(number[i : i + 4] for i in range(0, len(number), 4)) if style < 0.6 else number


def _iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 22), ("FR", 27), ("GB", 22), ("NL", 18), ("ES", 24)])
    if country in ("GB", "NL"):
        bank = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        bban = bank + "".join(rng.choice(string.digits) for _ in range(length - 8))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban


def _ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _ip(rng: random.Random, v6: float = 0.1) -> str:
    if rng.random() < v6:
        return ":".join(f"{rng.randint(0, 65535):x}" for _ in range(8))
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _address(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return f"{rng.choice(['Haupt', 'Linden', 'Berg'])}straße {rng.randint(1, 120)}, Berlin"
    line = f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    return line + (f", {rng.choice(CITIES)}" if rng.random() < 0.5 else "")


def _date(rng: random.Random, start: int, end: int) -> dt.date:
    return dt.date(start, 1, 1) + dt.timedelta(days=rng.randint(0, (end - start) * 365))


SENTENCES = [
    "Customer asked about the delivery window for the order.",
    "Package left at the front desk, signed by reception.",
    "Refund approved after the item arrived damaged.",
    "Wants to change the size of the jacket to medium.",
    "Follow up next week about the warranty question.",
]


def _text(rng: random.Random, share: float, pii: Callable[[random.Random], str]) -> str:
    sentence = rng.choice(SENTENCES)
    if rng.random() < share:
        return f"{sentence} Contact: {pii(rng)} if anything changes."
    return sentence


def _column(rng: random.Random, n: int, make: Callable[[], Any], nulls: float = 0.0) -> list[Any]:
    return [None if rng.random() < nulls else make() for _ in range(n)]


def cases(seed: int = SEED) -> list[Case]:
    """Every labelled column, with its values, the same for the same seed."""
    rng = random.Random(seed)
    out: list[Case] = []

    def add(
        table: str,
        column: str,
        kind: str,
        make: Callable[[], Any],
        label: str | None,
        trap: bool = False,
        nulls: float = 0.0,
    ) -> None:
        out.append(Case(table, column, kind, _column(rng, ROWS[table], make, nulls), label, trap))

    def full() -> str:
        return " ".join(_person(rng))

    add("customers", "customer_id", "bigint", lambda: rng.randint(1, 10**6), None)
    add("customers", "full_name", "text", full, "person_name")
    add("customers", "first_name", "text", lambda: _person(rng)[0], "person_name")
    add("customers", "last_name", "text", lambda: _person(rng)[1], "person_name", nulls=0.1)
    add("customers", "email", "text", lambda: _email(rng), "email", nulls=0.2)
    add("customers", "EmailAddress", "text", lambda: _email(rng), "email")
    add("customers", "login", "text", lambda: _email(rng), "email")
    add("customers", "email_verified", "bool", lambda: rng.random() < 0.7, None, trap=True)
    add("customers", "newsletter_email", "bool", lambda: rng.random() < 0.4, None, trap=True)
    add("customers", "email_domain", "text", lambda: rng.choice(DOMAINS), None, trap=True)
    add("customers", "phone", "text", lambda: _phone(rng), "phone", nulls=0.3)
    add("customers", "mobile_number", "text", lambda: _phone(rng), "phone")
    add("customers", "contact", "text", lambda: _phone(rng), "phone")
    add("customers", "phone_digits", "bigint", lambda: rng.randint(2012000000, 9899999999), "phone")
    add("customers", "phone_country_code", "text", lambda: rng.choice(["+1", "+44", "+49"]), None)
    add("customers", "dob", "date", lambda: _date(rng, 1940, 2006), "date_of_birth")
    add(
        "customers",
        "birth_date",
        "text",
        lambda: _date(rng, 1950, 2005).isoformat(),
        "date_of_birth",
    )
    add(
        "customers",
        "date_of_birth",
        "date",
        lambda: _date(rng, 1945, 2004),
        "date_of_birth",
        nulls=0.97,
    )
    add("customers", "address", "text", lambda: _address(rng), "postal_address")
    add("customers", "shipping_address", "text", lambda: _address(rng), "postal_address")
    add("customers", "location", "text", lambda: _address(rng), "postal_address")
    add("customers", "address_line_1", "text", lambda: _address(rng), "postal_address")
    add("customers", "city", "text", lambda: rng.choice(CITIES), None)
    add("customers", "zip_code", "text", lambda: f"{rng.randint(1001, 99950):05d}", None)
    add(
        "customers",
        "created_at",
        "timestamp",
        lambda: dt.datetime(2024, 1, 1) + dt.timedelta(minutes=rng.randint(0, 10**6)),
        None,
    )
    add("payments", "card_number", "text", lambda: _card(rng), "payment_card")
    add("payments", "payment_instrument", "text", lambda: _card(rng), "payment_card")
    add("payments", "cc", "text", lambda: _card(rng), "payment_card", nulls=0.5)
    add("payments", "iban", "text", lambda: _iban(rng), "iban")
    add("payments", "beneficiary_account", "text", lambda: _iban(rng), "iban")
    add("payments", "ssn", "text", lambda: _ssn(rng), "ssn")
    add("payments", "tax_ref", "text", lambda: _ssn(rng), "ssn")
    add("payments", "ssn_plain", "bigint", lambda: int(_ssn(rng).replace("-", "")), "ssn")
    add("payments", "account_number", "text", lambda: str(rng.randint(10**9, 10**10 - 1)), None)
    add("payments", "order_ref", "bigint", lambda: rng.randint(10**15, 10**16 - 1), None)
    add("payments", "amount", "double", lambda: round(rng.uniform(1, 900), 2), None)
    add("payments", "currency", "text", lambda: rng.choice(["EUR", "USD", "GBP"]), None)
    add("payments", "isbn", "text", lambda: luhn_isbn(rng), None)
    add("events", "event_id", "bigint", lambda: rng.randint(1, 10**9), None)
    add("events", "ip_address", "text", lambda: _ip(rng), "ip_address")
    add("events", "client_ip", "text", lambda: _ip(rng, v6=0.6), "ip_address")
    add("events", "seen_from", "text", lambda: _ip(rng), "ip_address")
    add("events", "app_version", "text", lambda: _version(rng), None)
    add(
        "events",
        "mac_address",
        "text",
        lambda: ":".join(f"{rng.randint(0, 255):02X}" for _ in range(6)),
        None,
    )
    add("events", "user_agent", "text", lambda: rng.choice(USER_AGENTS), None)
    add("events", "event_date", "date", lambda: _date(rng, 2023, 2025), None)
    add("events", "hostname", "text", lambda: f"web-{rng.randint(1, 40):02d}.internal", None)
    add("events", "url", "text", lambda: f"https://shop.example.com/p/{rng.randint(1, 9999)}", None)
    add("items", "name", "text", lambda: f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}", None)
    add(
        "items",
        "product_name",
        "text",
        lambda: f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
        None,
    )
    add(
        "items",
        "colour",
        "text",
        lambda: rng.choice(["Brown", "Green", "White", "Black", "Gray"]),
        None,
    )
    add(
        "items", "sku", "text", lambda: f"SKU-{rng.randint(10000, 99999)}-{rng.choice('ABC')}", None
    )
    add("items", "description", "text", lambda: rng.choice(DESCRIPTIONS), None)
    add("items", "weight_kg", "double", lambda: round(rng.uniform(0.1, 20), 2), None)
    add("codes", "scenario_code", "text", lambda: f"SCN-{rng.randint(100, 999)}", None, trap=True)
    add(
        "codes",
        "ACADEMIC_YEAR_CODE",
        "text",
        lambda: rng.choice(["2022-23", "2023-24", "AY2425"]),
        None,
        trap=True,
    )
    add("codes", "acid_level", "double", lambda: round(rng.uniform(0, 14), 1), None, trap=True)
    add("codes", "branch_code", "bigint", lambda: rng.randint(100, 9999), None, trap=True)
    add("codes", "dept_code", "text", lambda: str(rng.randint(100, 9999)), None, trap=True)
    add("codes", "security_code", "text", lambda: f"{rng.randint(0, 999):03d}", None, trap=True)
    add("codes", "status", "text", lambda: rng.choice(["open", "closed", "pending"]), None)
    add("codes", "quantity", "bigint", lambda: rng.randint(1, 50), None)
    add("notes", "note_id", "bigint", lambda: rng.randint(1, 10**6), None)
    add("notes", "notes", "text", lambda: _text(rng, 0.3, _email), "free_text")
    add("notes", "comment", "text", lambda: _text(rng, 0.2, _phone), "free_text")
    add("notes", "message", "text", lambda: _text(rng, 0.15, _card), "free_text")
    add("notes", "remarks", "text", lambda: rng.choice(SENTENCES), None)
    add("notes", "author", "text", full, "person_name")
    add("notes", "reviewer_name", "text", full, "person_name")
    add(
        "notes",
        "subject",
        "text",
        lambda: rng.choice(["Delivery", "Refund", "Size", "Other"]),
        None,
    )
    return out


def luhn_isbn(rng: random.Random) -> str:
    body = "978" + "".join(rng.choice(string.digits) for _ in range(9))
    check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
    return body + str(check)


def _version(rng: random.Random) -> str:
    parts = [rng.randint(0, 9), rng.randint(0, 20), rng.randint(0, 30)]
    if rng.random() < 0.2:
        parts.append(rng.randint(0, 200))
    return ".".join(map(str, parts))


ADJECTIVES = _words("Blue Classic Deluxe Compact Smart Ultra Premium Golden Urban Rustic Silver")
NOUNS = _words("Widget Lamp Chair Kettle Backpack Notebook Speaker Blender Mug Jacket")
DESCRIPTIONS = [
    "Durable steel kettle with a 1.7 l capacity and automatic shut-off.",
    "Water-resistant backpack with a padded laptop sleeve for 15 inch screens.",
    "Ceramic mug, dishwasher safe, holds 350 ml.",
    "Wireless speaker with 12 hours of battery life and a USB-C port.",
]
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15",
    "curl/8.5.0",
]


def tables(all_cases: list[Case]) -> dict[str, list[Case]]:
    grouped: dict[str, list[Case]] = {}
    for case in all_cases:
        grouped.setdefault(case.table, []).append(case)
    return grouped
