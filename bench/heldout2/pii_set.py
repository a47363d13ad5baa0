"""The second held-out PII set: eight tables from domains the first set left out.

Each column has a role: `pii` (its `kinds` are the types a right tag may give), `trap` (no
personal data, but a name or shape that invites a tag), `none` (plainly not personal data) or
`debatable` (reasonable people disagree: left out of the scoring, listed on stderr).
Domains: logistics, education, banking, telecom, marketing, healthcare, service config and
international support tickets. Fixed seeds: `tables()` returns the same values every time.
"""

from __future__ import annotations

import datetime as dt
import random

from heldout2 import pii_tables2
from heldout2 import values as v
from heldout2.pii_base import Builder, Column, Table, day

SEED = 202_602


def shipments() -> Table:
    b = Builder("shipments", SEED + 1)
    r = b.rng
    names = [v.full_name(r) for _ in range(b.rows)]
    b.add("shipment_id", "int", lambda i: 500_000 + i, "none")
    b.add("tracking_no", "text", lambda i: "1Z" + v.hexstr(r, 6).upper() + v.digits(r, 10), "trap")
    b.add("pallet_sscc", "text", lambda i: v.sscc(r), "trap")
    b.add("consignee_name", "text", lambda i: names[i], "pii", "person_name")
    b.add("consignee_phone", "text", lambda i: v.phone(r), "pii", "phone", nulls=0.05)
    b.add("consignee_email", "text", lambda i: v.email(r, names[i]), "pii", "email", nulls=0.1)
    b.add("delivery_address", "text", lambda i: v.address(r), "pii", "postal_address")
    b.add("sender_company", "text", lambda i: v.pick(r, COMPANIES), "trap")
    b.add(
        "hub_zip",
        "text",
        lambda i: v.pick(r, ["10115", "60311", "75002", "94107", "20095"]),
        "trap",
    )
    b.add("dest_lat", "float", lambda i: round(r.uniform(36.0, 60.0), 6), "trap")
    b.add("dest_lon", "float", lambda i: round(r.uniform(-9.0, 24.0), 6), "trap")
    b.add("weight_kg", "float", lambda i: round(r.uniform(0.2, 31.5), 2), "none")
    b.add("carrier_code", "text", lambda i: v.pick(r, ["DHL", "UPS", "DPD", "GLS", "COL"]), "trap")
    b.add(
        "eta",
        "timestamp",
        lambda i: dt.datetime(2025, 3, 1) + dt.timedelta(hours=r.randint(0, 900)),
        "none",
    )
    b.add("driver_notes", "text", lambda i: driver_note(r), "pii", "free_text phone", nulls=0.2)
    return b.done()


COMPANIES = [
    "Müller Logistik GmbH",
    "Acme Ltd",
    "Dupont & Fils SARL",
    "Globex Inc",
    "Hansa Trade KG",
]


def driver_note(r: random.Random) -> str:
    plain = [
        "Leave at back door",
        "Fragile, keep upright",
        "Deliver before noon",
        "Use loading bay 3",
        "Gate code 4417",
        "No delivery on Sundays",
    ]
    if r.random() < 0.35:
        return f"Call {v.phone(r)} on arrival"
    return v.pick(r, plain)


def students() -> Table:
    b = Builder("students", SEED + 2)
    r = b.rng
    firsts = [v.pick(r, v.FIRST) for _ in range(b.rows)]
    lasts = [v.pick(r, v.LAST) for _ in range(b.rows)]
    guardians = [f"{v.pick(r, v.FIRST)} {lasts[i]}" for i in range(b.rows)]
    b.add("student_no", "text", lambda i: f"S{r.choice([2021, 2022, 2023])}-{i:05d}", "none")
    b.add("first_name", "text", lambda i: firsts[i], "pii", "person_name")
    b.add("last_name", "text", lambda i: lasts[i], "pii", "person_name")
    b.add("date_of_birth", "date", lambda i: day(r, 2004, 2008), "pii", "date_of_birth")
    b.add("guardian_name", "text", lambda i: guardians[i], "pii", "person_name")
    b.add(
        "guardian_phone", "text", lambda i: v.phone(r, r.choice(["uk", "de", "fr"])), "pii", "phone"
    )
    b.add("guardian_email", "text", lambda i: v.email(r, guardians[i]), "pii", "email", nulls=0.15)
    b.add("guardian_email_verified", "bool", lambda i: r.random() < 0.7, "trap")
    b.add("ACADEMIC_YEAR_CODE", "text", lambda i: v.pick(r, ["2223", "2324", "2425"]), "trap")
    b.add("course_code", "text", lambda i: v.pick(r, ["CS101", "MA204", "PH110", "EN300"]), "trap")
    b.add("grade_point", "float", lambda i: round(r.uniform(1.0, 4.0), 2), "none")
    b.add("enrollment_date", "date", lambda i: day(r, 2021, 2023), "trap")
    b.add("cohort_year", "int", lambda i: r.choice([2021, 2022, 2023]), "trap")
    b.add("home_postcode", "text", lambda i: v.uk_postcode(r), "debatable")
    b.add("locker_pin", "text", lambda i: v.digits(r, 4), "trap")
    return b.done()


def accounts() -> Table:
    b = Builder("accounts", SEED + 3)
    r = b.rng
    holders = [v.full_name(r) for _ in range(b.rows)]
    b.add("account_id", "int", lambda i: 9_000 + i, "none")
    b.add("iban", "text", lambda i: v.iban(r), "pii", "iban")
    b.add(
        "bic",
        "text",
        lambda i: v.pick(r, ["DEUTDEFF", "BNPAFRPP", "NWBKGB2L", "INGBNL2A", "CAIXESBBXXX"]),
        "trap",
    )
    b.add(
        "sort_code", "text", lambda i: f"{v.digits(r, 2)}-{v.digits(r, 2)}-{v.digits(r, 2)}", "trap"
    )
    b.add("account_number", "text", lambda i: v.digits(r, 8), "debatable")
    b.add("account_holder", "text", lambda i: holders[i], "pii", "person_name")
    b.add(
        "holder_birthdate",
        "text",
        lambda i: day(r, 1950, 2000).strftime("%d.%m.%Y"),
        "pii",
        "date_of_birth",
    )
    b.add("statement_email", "text", lambda i: v.email(r, holders[i]), "pii", "email")
    b.add("card_pan", "text", lambda i: v.card(r), "pii", "payment_card", nulls=0.3)
    b.add("card_last4", "text", lambda i: v.digits(r, 4), "trap")
    b.add("card_expiry", "text", lambda i: f"{r.randint(1, 12):02d}/{r.randint(25, 31)}", "trap")
    b.add("cvv_check_result", "text", lambda i: v.pick(r, ["M", "N", "P", "U"]), "trap")
    b.add("creditor_id", "text", lambda i: "DE" + v.digits(r, 2) + "ZZZ" + v.digits(r, 11), "trap")
    b.add("mandate_reference", "text", lambda i: f"MNDT-2024-{i:06d}", "trap")
    b.add("iban_verified", "bool", lambda i: r.random() < 0.9, "trap")
    b.add("balance", "float", lambda i: round(r.uniform(-500, 25_000), 2), "none")
    b.add("currency", "text", lambda i: v.pick(r, ["EUR", "GBP", "CHF"]), "trap")
    b.add("opened_on", "date", lambda i: day(r, 2001, 2024), "none")
    return b.done()


def subscribers() -> Table:
    b = Builder("subscribers", SEED + 4)
    r = b.rng
    b.add("subscriber_id", "int", lambda i: 70_000 + i, "none")
    b.add("msisdn", "text", lambda i: v.msisdn(r), "pii", "phone")
    b.add("alt_contact_number", "text", lambda i: v.phone(r, "fr"), "pii", "phone", nulls=0.4)
    b.add("subscriber_name", "text", lambda i: v.full_name(r), "pii", "person_name")
    b.add("imei", "text", lambda i: v.imei(r), "trap")
    b.add(
        "imsi", "text", lambda i: v.pick(r, ["23415", "26201", "20801"]) + v.digits(r, 10), "trap"
    )
    b.add("iccid", "text", lambda i: v.iccid(r), "trap")
    b.add(
        "device_ip",
        "text",
        lambda i: v.ipv6(r) if r.random() < 0.4 else v.ipv4(r),
        "pii",
        "ip_address",
    )
    b.add("plan_code", "text", lambda i: v.pick(r, ["UNL5G", "S10", "M25", "PAYG"]), "trap")
    b.add("porting_pin", "text", lambda i: v.digits(r, 4), "trap")
    b.add(
        "apn",
        "text",
        lambda i: v.pick(r, ["internet.t-mobile.de", "orange.fr", "web.vodafone.de"]),
        "trap",
    )
    b.add("last_cell_id", "int", lambda i: r.randint(10_000, 99_999), "none")
    b.add("data_used_mb", "float", lambda i: round(r.uniform(0, 50_000), 1), "none")
    b.add(
        "support_transcript",
        "text",
        lambda i: transcript(r),
        "pii",
        "free_text email phone",
        nulls=0.3,
    )
    return b.done()


def transcript(r: random.Random) -> str:
    if r.random() < 0.3:
        return f"Customer asked to be reached at {v.email(r)} instead of SMS."
    if r.random() < 0.3:
        return f"Callback requested on {v.phone(r, 'de')}, roaming issue in Spain."
    return v.pick(
        r,
        [
            "Reset voicemail PIN.",
            "Upgraded plan to 5G.",
            "Network outage ticket 4471 closed.",
            "Explained roaming charges for 12 GB.",
        ],
    )


def tables() -> list[Table]:
    return [shipments(), students(), accounts(), subscribers(), *pii_tables2.tables(SEED)]


def columns() -> list[Column]:
    return [c for t in tables() for c in t.columns]
