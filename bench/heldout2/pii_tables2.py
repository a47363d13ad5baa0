"""The held-out PII set's other four tables: marketing, healthcare, service config, support."""

from __future__ import annotations

import datetime as dt
import json
import random

from heldout2 import values as v
from heldout2.pii_base import Builder, Table, day


def campaign_contacts(seed: int) -> Table:
    b = Builder("campaign_contacts", seed)
    r = b.rng
    b.add("contact_id", "int", lambda i: 1_000 + i, "none")
    b.add("recipient_email", "text", lambda i: v.email(r), "pii", "email")
    b.add("recipient_first_name", "text", lambda i: v.pick(r, v.FIRST), "pii", "person_name")
    b.add(
        "contact_json",
        "text",
        lambda i: contact_blob(r),
        "pii",
        "free_text email phone person_name",
    )
    b.add("last_login_ip", "text", lambda i: v.ipv4(r), "pii", "ip_address", nulls=0.2)
    b.add(
        "sender_address",
        "text",
        lambda i: v.pick(r, ["news@shop.example", "offers@shop.example"]),
        "debatable",
    )
    b.add(
        "utm_source",
        "text",
        lambda i: v.pick(r, ["newsletter", "google", "facebook", "partner_42"]),
        "trap",
    )
    b.add(
        "utm_campaign",
        "text",
        lambda i: v.pick(r, ["spring_sale_2025", "bf-2024", "welcome_series"]),
        "trap",
    )
    b.add("email_opt_in", "bool", lambda i: r.random() < 0.6, "trap")
    b.add("email_template_id", "int", lambda i: r.choice([101, 102, 215, 3301]), "trap")
    b.add("email_bounce_count", "int", lambda i: r.choice([0, 0, 0, 1, 2]), "trap")
    b.add("click_url", "text", lambda i: click_url(r), "trap", nulls=0.3)
    b.add("unsubscribe_token", "text", lambda i: v.hexstr(r, 32), "trap")
    b.add("email_sha256", "text", lambda i: v.hexstr(r, 64), "trap")
    b.add("ab_variant", "text", lambda i: v.pick(r, ["A", "B"]), "trap")
    b.add("send_hour", "int", lambda i: r.randint(6, 21), "none")
    return b.done()


def contact_blob(r: random.Random) -> str:
    name = v.full_name(r)
    return json.dumps(
        {"name": name, "email": v.email(r, name), "phone": v.phone(r), "source": "webform"},
        ensure_ascii=False,
    )


def click_url(r: random.Random) -> str:
    page = v.pick(r, ["sale", "new-in", "account/settings", "p/12345"])
    query = f"utm_source=newsletter&utm_medium=email&utm_content=btn{r.randint(1, 9)}"
    return f"https://shop.example/{page}?{query}"


def admissions(seed: int) -> Table:
    b = Builder("admissions", seed)
    r = b.rng
    b.add("admission_id", "int", lambda i: 40_000 + i, "none")
    b.add("nhs_number", "text", lambda i: nhs_number(r), "debatable")
    b.add("patient_name", "text", lambda i: v.full_name(r), "pii", "person_name")
    b.add("dob", "date", lambda i: day(r, 1930, 2015), "pii", "date_of_birth")
    b.add("home_address", "text", lambda i: v.address(r), "pii", "postal_address", nulls=0.05)
    b.add(
        "next_of_kin_phone",
        "text",
        lambda i: v.phone(r, r.choice(["uk", "fr"])),
        "pii",
        "phone",
        nulls=0.1,
    )
    b.add(
        "admitted_at",
        "timestamp",
        lambda i: dt.datetime(2025, 1, 1) + dt.timedelta(minutes=r.randint(0, 90_000)),
        "none",
    )
    b.add("ward_code", "text", lambda i: v.pick(r, ["W12", "ICU", "A3", "MAT2"]), "trap")
    b.add("bed_no", "int", lambda i: r.randint(1, 40), "trap")
    b.add(
        "icd10_code",
        "text",
        lambda i: v.pick(r, ["J45.9", "I10", "E11.9", "S72.00", "K35.80"]),
        "trap",
    )
    b.add("blood_pressure", "text", lambda i: f"{r.randint(100, 160)}/{r.randint(60, 100)}", "trap")
    b.add("triage_score", "int", lambda i: r.randint(1, 5), "none")
    b.add(
        "gp_practice_postcode",
        "text",
        lambda i: v.pick(r, ["LS1 4AP", "BS8 1TH", "M13 9WL"]),
        "trap",
    )
    b.add(
        "clinician_notes", "text", lambda i: clinical_note(r), "pii", "free_text phone person_name"
    )
    return b.done()


def nhs_number(r: random.Random) -> str:
    """Ten digits, the last a mod-11 check digit (weights 10 to 2); 10 is never issued."""
    while True:
        body = v.digits(r, 9)
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(body)) % 11
        if check != 10:
            digits = body + str(0 if check == 11 else check)
            return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def clinical_note(r: random.Random) -> str:
    if r.random() < 0.25:
        return f"Daughter {v.full_name(r)} to be called on {v.phone(r, 'uk')} before discharge."
    return v.pick(
        r,
        [
            "Obs stable overnight.",
            "Started on salbutamol 2.5 mg nebs.",
            "Pain 4/10, mobilising with frame.",
            "Awaiting CT head, NBM from 02:00.",
        ],
    )


def app_settings(seed: int) -> Table:
    b = Builder("app_settings", seed, rows=60)
    r = b.rng
    b.add("setting_id", "int", lambda i: i + 1, "none")
    b.add("service", "text", lambda i: v.pick(r, ["billing-svc", "auth-svc", "search-api"]), "none")
    b.add(
        "version",
        "text",
        lambda i: f"{r.randint(1, 12)}.{r.randint(0, 30)}.{r.randint(0, 9)}.{r.randint(0, 250)}",
        "trap",
    )
    b.add(
        "ip_allowlist",
        "text",
        lambda i: f"{v.ipv4(r, private=True)}/{r.choice([8, 16, 24, 32])}",
        "debatable",
    )
    b.add(
        "sku",
        "text",
        lambda i: f"SKU-{r.randint(10_000, 99_999)}-{v.pick(r, ['RED', 'BLU', 'BLK'])}",
        "trap",
    )
    b.add("isbn", "text", lambda i: v.isbn13(r), "trap")
    b.add("commit_sha", "text", lambda i: v.hexstr(r, 40), "trap")
    b.add("build_number", "int", lambda i: r.randint(1_000, 9_999), "trap")
    b.add(
        "cron_expr",
        "text",
        lambda i: v.pick(r, ["0 3 * * 1", "*/15 * * * *", "30 2 1 * *"]),
        "trap",
    )
    b.add("timezone", "text", lambda i: v.pick(r, ["Europe/Berlin", "Europe/Paris", "UTC"]), "trap")
    b.add("locale", "text", lambda i: v.pick(r, ["de_DE", "fr_FR", "en_GB"]), "trap")
    b.add("release_date", "date", lambda i: day(r, 2019, 2025), "trap")
    b.add("admin_contact", "text", lambda i: v.email(r), "pii", "email")
    b.add("max_connections", "int", lambda i: r.choice([50, 100, 200]), "none")
    return b.done()


def support_tickets(seed: int) -> Table:
    b = Builder("support_tickets", seed)
    r = b.rng
    b.add("ticket_ref", "text", lambda i: f"TCK-2025-{i:05d}", "trap")
    b.add(
        "subject",
        "text",
        lambda i: v.pick(r, ["Order delayed", "Refund request", "Login problem", "Wrong size"]),
        "trap",
    )
    b.add(
        "body",
        "text",
        lambda i: ticket_body(r),
        "pii",
        "free_text email phone postal_address person_name",
    )
    b.add("customer_email", "text", lambda i: v.email(r), "pii", "email")
    b.add("customer_ssn", "text", lambda i: v.ssn(r), "pii", "ssn", nulls=0.5)
    b.add("product_review", "text", lambda i: review(r), "trap", nulls=0.4)
    b.add(
        "opened_at",
        "timestamp",
        lambda i: dt.datetime(2025, 2, 1) + dt.timedelta(minutes=r.randint(0, 50_000)),
        "none",
    )
    b.add("csat", "int", lambda i: r.randint(1, 5), "none")
    return b.done()


def ticket_body(r: random.Random) -> str:
    kind = r.random()
    if kind < 0.2:
        return f"Bitte rufen Sie mich zurück: {v.phone(r, 'de')}. Danke!"
    if kind < 0.35:
        return f"Merci d'envoyer la facture à {v.email(r)}."
    if kind < 0.45:
        return f"Please ship the replacement to {v.address(r)} instead."
    return v.pick(
        r,
        [
            "The parcel never arrived.",
            "App crashes when I open my basket.",
            "Size 42 was too small, need 43.",
            "Charged twice on 03/02 for 19.99.",
        ],
    )


def review(r: random.Random) -> str:
    return v.pick(
        r,
        [
            "Great fit, ordered 2 more.",
            "Arrived in Paris after 3 days, 5 stars.",
            "Colour differs from photo #4.",
            "Bought on 12/01/2024, still works.",
            "Version 2.1 of the app is much better.",
            "Too big: 44 instead of 42.",
        ],
    )


def tables(seed: int) -> list[Table]:
    return [
        campaign_contacts(seed + 5),
        admissions(seed + 6),
        app_settings(seed + 7),
        support_tickets(seed + 8),
    ]
