"""The held-out PII set: seven tables as found in the wild, every column labelled.

A label is the set of PII types that are a right answer for the column (empty: not personal
data). A trap is a column whose name or values look like personal data and are not: the
OpenMetadata false positives the issue names, and ours. A column whose label reasonable people
would argue about keeps its reason in `debatable` and is left out of the scoring; the bench
still prints what the agent said about it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heldout import pii_values as v
from heldout.pii_more import activity_tables, rng_code
from heldout.pii_text import CLEAN_NOTES, ORDER_DIRTY, contact, mixed_text

SEED = 20240613
ROWS = 240

Gen = Callable[[random.Random], Any]


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    kind: str  # text, bigint, date, timestamp, bool, double
    values: list[Any]
    label: frozenset[str]
    trap: bool = False
    debatable: str | None = None


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    """(column, kind, generator, label, trap, null share, debatable) per table."""
    e, no = frozenset({"email"}), frozenset[str]()
    name, addr = frozenset({"person_name"}), frozenset({"postal_address"})
    dob, ph = frozenset({"date_of_birth"}), frozenset({"phone"})
    text = frozenset({"free_text"})
    c = lambda r: rng_code(r, 3)  # noqa: E731
    return {
        "crm_contacts": [
            ("contact", "text", contact, frozenset({"email", "phone"}), False, 0.05, None),
            ("full_name", "text", v.full_name, name, False, 0.0, None),
            ("billing_address", "text", v.address, addr, False, 0.1, None),
            (
                "zip",
                "text",
                lambda r: r.choice(v.CITIES)[2],
                no,
                False,
                0.1,
                "a ZIP code alone is a quasi-identifier, not one of the issue's types",
            ),
            ("email_verified", "bool", lambda r: r.random() < 0.8, no, True, 0.0, None),
            ("is_phone_verified", "bool", lambda r: r.random() < 0.5, no, True, 0.0, None),
            ("dob", "date", v.birth_date, dob, False, 0.2, None),
            ("customer_since", "date", v.recent_date, no, True, 0.0, None),
            (
                "iso_country",
                "text",
                lambda r: r.choice(["US", "GB", "DE", "FR", "IN"]),
                no,
                False,
                0.0,
                None,
            ),
            (
                "notes",
                "text",
                lambda r: mixed_text(r, 0.3, CLEAN_NOTES, ORDER_DIRTY),
                text,
                False,
                0.3,
                None,
            ),
            ("created_by", "text", v.email, e, False, 0.0, None),  # staff who keyed the contact
            (
                "updated_by",
                "text",
                lambda r: r.choice(["sync-bot", "admin", "etl_service", "hubspot-import"]),
                no,
                False,
                0.0,
                None,
            ),
            (
                "address_type",
                "text",
                lambda r: r.choice(["billing", "shipping", "both"]),
                no,
                True,
                0.0,
                None,
            ),
        ],
        "payments": [
            ("card_number", "text", v.card, frozenset({"payment_card"}), False, 0.0, None),
            ("cc_last4", "text", lambda r: v.digits(r, 4), no, True, 0.0, None),
            ("card_token", "text", lambda r: "tok_" + v.hexstr(r, 24), no, False, 0.0, None),
            ("payer_iban", "text", v.iban, frozenset({"iban"}), False, 0.3, None),
            (
                "swift_bic",
                "text",
                lambda r: r.choice(["DEUTDEFF", "NWBKGB2L", "BNPAFRPP"]),
                no,
                False,
                0.3,
                None,
            ),
            (
                "mcc",
                "text",
                lambda r: r.choice(["5411", "5812", "5999", "4111", "7011"]),
                no,
                True,
                0.0,
                None,
            ),
            ("auth_code", "text", lambda r: v.hexstr(r, 6).upper(), no, False, 0.0, None),
            (
                "ref_code",
                "text",
                lambda r: f"RF-2024-{r.randint(1, 99999):05d}",
                no,
                False,
                0.0,
                None,
            ),
            (
                "payer_ip",
                "text",
                lambda r: v.ipv4(r) if r.random() < 0.85 else v.ipv6(r),
                frozenset({"ip_address"}),
                False,
                0.05,
                None,
            ),
            ("amount", "double", lambda r: round(r.uniform(3, 900), 2), no, False, 0.0, None),
            (
                "external_order_id",
                "bigint",
                lambda r: r.randint(10**12, 10**13 - 1),
                no,
                True,
                0.0,
                None,
            ),
            ("cvv_check", "text", lambda r: r.choice(["M", "N", "P", "U"]), no, True, 0.0, None),
        ],
        "employees": [
            ("emp_id", "bigint", lambda r: r.randint(10000, 99999), no, False, 0.0, None),
            ("first_name", "text", v.first, name, False, 0.0, None),
            ("last_name", "text", v.last, name, False, 0.0, None),
            ("tax_id", "text", v.ssn, frozenset({"ssn"}), False, 0.05, None),
            ("ssn_last4", "text", lambda r: v.digits(r, 4), no, True, 0.0, None),
            ("birth_date", "date", v.birth_date, dob, False, 0.0, None),
            ("hire_date", "date", v.recent_date, no, True, 0.0, None),
            ("home_address", "text", v.address, addr, False, 0.05, None),
            ("work_email", "text", v.email, e, False, 0.0, None),
            ("personal_phone", "text", v.phone, ph, False, 0.15, None),
            ("phone_ext", "text", lambda r: v.digits(r, r.choice([3, 4])), no, True, 0.2, None),
            ("manager_id", "bigint", lambda r: r.randint(10000, 99999), no, False, 0.05, None),
            ("department_code", "text", c, no, True, 0.0, None),
            (
                "ACADEMIC_YEAR_CODE",
                "text",
                lambda r: r.choice(["2122", "2223", "2324", "2425"]),
                no,
                True,
                0.0,
                None,
            ),
            (
                "salary",
                "double",
                lambda r: round(r.uniform(38000, 210000), 0),
                no,
                False,
                0.0,
                None,
            ),
            (
                "birth_year",
                "bigint",
                lambda r: v.birth_date(r).year,
                no,
                False,
                0.0,
                "a birth year alone: part of a date of birth or not, frameworks differ",
            ),
        ],
        **activity_tables(),
    }


def build() -> list[Column]:
    """Every column of the set, values included (ROWS a table, fixed seed)."""
    rng = random.Random(SEED)
    columns = []
    for table, specs in _tables().items():
        for name, kind, gen, label, trap, nulls, debatable in specs:
            values = [None if rng.random() < nulls else gen(rng) for _ in range(ROWS)]
            columns.append(Column(table, name, kind, values, label, trap, debatable))
    return columns


def tables(columns: list[Column]) -> dict[str, list[Column]]:
    out: dict[str, list[Column]] = {}
    for column in columns:
        out.setdefault(column.table, []).append(column)
    return out
