"""The held-out PII set's activity tables: patients, app events, bookings, orders."""

from __future__ import annotations

import random
from typing import Any

from heldout import pii_values as v
from heldout.pii_text import (
    CHANGELOG,
    CLEAN_NOTES,
    CLINIC_CLEAN,
    CLINIC_DIRTY,
    ORDER_DIRTY,
    TICKET_CLEAN,
    TICKET_DIRTY,
    mixed_text,
    payload,
)


def rng_code(r: random.Random, n: int) -> str:
    return str(r.randint(10 ** (n - 1), 10**n - 1))


def activity_tables() -> dict[str, list[tuple[Any, ...]]]:
    """(column, kind, generator, label, trap, null share, debatable) per table."""
    e, no = frozenset({"email"}), frozenset[str]()
    name, addr = frozenset({"person_name"}), frozenset({"postal_address"})
    dob, ph = frozenset({"date_of_birth"}), frozenset({"phone"})
    text = frozenset({"free_text"})
    c = lambda r: rng_code(r, 3)  # noqa: E731
    return {
        "patients": [
            (
                "mrn",
                "text",
                lambda r: f"MRN{r.randint(0, 99999999):08d}",
                no,
                False,
                0.0,
                "a medical record number is an identifier but none of the issue's types",
            ),
            ("patient_name", "text", v.full_name, name, False, 0.0, None),
            (
                "date_of_birth",
                "text",
                lambda r: v.birth_date(r).strftime("%m/%d/%Y"),
                dob,
                False,
                0.0,
                None,
            ),
            ("admit_date", "date", v.recent_date, no, True, 0.0, None),
            (
                "diagnosis_code",
                "text",
                lambda r: r.choice(["E11.9", "I10", "J45.909", "M54.5"]),
                no,
                False,
                0.0,
                None,
            ),
            ("acid_level", "double", lambda r: round(r.uniform(3.1, 7.9), 1), no, True, 0.1, None),
            ("emergency_contact", "text", v.us_phone, ph, False, 0.1, None),
            (
                "clinician_notes",
                "text",
                lambda r: mixed_text(r, 0.35, CLINIC_CLEAN, CLINIC_DIRTY),
                text,
                False,
                0.0,
                None,
            ),
            (
                "blood_type",
                "text",
                lambda r: r.choice(["A+", "O+", "B-", "AB+", "O-"]),
                no,
                False,
                0.0,
                None,
            ),
        ],
        "app_events": [
            ("event_id", "text", v.uuid4, no, False, 0.0, None),
            ("account_email", "text", v.email, e, False, 0.02, None),
            ("client_ip", "text", v.ipv4, frozenset({"ip_address"}), False, 0.0, None),
            ("user_agent", "text", v.user_agent, no, True, 0.0, None),
            ("app_version", "text", v.four_part_version, no, True, 0.0, None),
            ("scenario_code", "text", c, no, True, 0.0, None),
            ("email_domain", "text", lambda r: r.choice(v.DOMAINS), no, True, 0.0, None),
            ("hashed_email", "text", lambda r: v.hexstr(r, 64), no, True, 0.0, None),
            ("payload", "text", payload, frozenset({"free_text", "email"}), False, 0.0, None),
            ("release_notes", "text", lambda r: r.choice(CHANGELOG), no, True, 0.0, None),
            (
                "ticket_body",
                "text",
                lambda r: mixed_text(r, 0.4, TICKET_CLEAN, TICKET_DIRTY),
                text,
                False,
                0.5,
                None,
            ),
            ("session_seconds", "bigint", lambda r: r.randint(3, 7200), no, False, 0.0, None),
        ],
        "flight_bookings": [
            (
                "record_locator",
                "text",
                lambda r: "".join(r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6)),
                no,
                False,
                0.0,
                None,
            ),
            ("passenger_name", "text", v.pnr_name, name, False, 0.0, None),
            (
                "tailnum",
                "text",
                lambda r: f"N{r.randint(100, 999)}{r.choice(['UA', 'DL', 'AA', ''])}",
                no,
                False,
                0.0,
                None,
            ),
            (
                "frequent_flyer_no",
                "text",
                lambda r: v.digits(r, 9),
                no,
                False,
                0.4,
                "a loyalty number identifies a person but is none of the issue's types",
            ),
            ("contact_phone", "text", v.phone, ph, False, 0.1, None),
            (
                "seat",
                "text",
                lambda r: f"{r.randint(1, 40)}{r.choice('ABCDEF')}",
                no,
                False,
                0.0,
                None,
            ),
            ("dep_time", "timestamp", v.recent_time, no, False, 0.0, None),
            (
                "origin",
                "text",
                lambda r: r.choice(["JFK", "LGA", "EWR", "SFO", "ORD"]),
                no,
                False,
                0.0,
                None,
            ),
        ],
        "orders": [
            ("order_id", "bigint", lambda r: r.randint(1, 10**6), no, False, 0.0, None),
            ("shipping_address", "text", v.address, addr, False, 0.0, None),
            (
                "order_notes",
                "text",
                lambda r: mixed_text(r, 0.25, CLEAN_NOTES, ORDER_DIRTY),
                text,
                False,
                0.6,
                None,
            ),
            (
                "gift_message",
                "text",
                lambda r: r.choice(
                    [
                        "Happy birthday!",
                        "Congrats on the new job",
                        "Merry Christmas from all of us",
                        "Thank you for everything",
                    ]
                ),
                no,
                False,
                0.7,
                None,
            ),
            (
                "promo_code",
                "text",
                lambda r: r.choice(["SAVE20", "WELCOME10", "BF2024"]),
                no,
                False,
                0.6,
                None,
            ),
            ("ean13", "text", v.ean13, no, True, 0.0, None),
            (
                "tracking_number",
                "text",
                lambda r: v.digits(r, r.choice([12, 22])),
                no,
                True,
                0.1,
                None,
            ),
            (
                "phone",
                "bigint",
                lambda r: int(r.choice(v.AREA) + v.digits(r, 7)),
                ph,
                False,
                0.1,
                None,
            ),
            (
                "name",
                "text",
                lambda r: r.choice(
                    [
                        "Blue Widget",
                        "Garden Hose 15m",
                        "Desk Lamp",
                        "USB-C Cable",
                        "Espresso Beans 1kg",
                    ]
                ),
                no,
                True,
                0.0,
                None,
            ),
            (
                "company_name",
                "text",
                lambda r: r.choice(["Acme Corp", "Globex GmbH", "Initech", "Umbrella Ltd"]),
                no,
                False,
                0.5,
                None,
            ),
            ("city", "text", lambda r: r.choice(v.CITIES)[0], no, False, 0.0, None),
            (
                "country_code",
                "text",
                lambda r: r.choice(["840", "826", "276", "250"]),
                no,
                True,
                0.0,
                None,
            ),
        ],
    }
