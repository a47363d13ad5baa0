"""Free text and mixed values for the held-out PII set: notes, tickets, payloads."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from heldout import pii_values as v

Gen = Callable[[random.Random], Any]


def mixed_text(rng: random.Random, pii_share: float, clean: list[str], dirty: list[Gen]) -> str:
    if rng.random() < pii_share:
        return str(rng.choice(dirty)(rng))
    return rng.choice(clean)


CLEAN_NOTES = [
    "Leave the parcel at the back door please",
    "Customer asked for gift wrapping",
    "Delivery window moved to the afternoon",
    "Fragile items, handle with care",
    "Reorder of the usual monthly supplies",
    "Paid by bank transfer, confirmed by finance",
    "Second attempt after failed delivery",
    "No substitutions on this order",
]
ORDER_DIRTY: list[Gen] = [
    lambda r: f"Please call {v.us_phone(r)} on arrival, gate code is broken",
    lambda r: f"Send the invoice to {v.email(r)} instead of the account email",
    lambda r: f"Deliver to neighbour {v.full_name(r)} if nobody answers",
]
CLINIC_CLEAN = [
    "Pt seen for follow-up. BP 128/82, HR 71. Continue current meds.",
    "Routine annual physical, no acute complaints. Labs ordered.",
    "Wound healing well, sutures removed today. RTC 2 weeks.",
    "Reports mild headache x3 days, no red flags. Advised hydration.",
]
CLINIC_DIRTY: list[Gen] = [
    lambda r: f"Daughter {v.full_name(r)} is emergency contact, reachable at {v.us_phone(r)}.",
    lambda r: f"Pt asked for results by email to {v.email(r)}. Consent on file.",
    lambda r: f"Transferred care from Dr. {v.last(r)}; pt now lives at {v.address(r)}.",
]
CHANGELOG = [
    "Fix rounding of tax in checkout (#4312)",
    "Bump okhttp to 4.12.0",
    "Release 4.2.1.1057 to the beta channel",
    "Revert 'Use 10.0.0.0/8 for the VPC' (#4410)",
    "Add index on orders(created_at) for the nightly job",
    "Refactor: split billing module",
    "Retry S3 uploads 3 times with backoff",
    "Docs: explain the 2024-06-01 migration",
]
TICKET_DIRTY: list[Gen] = [
    lambda r: f"Cannot log in, my account email is {v.email(r)} and reset never arrives",
    lambda r: f"Charged twice on card ending 4242, call me back on {v.phone(r)}",
]
TICKET_CLEAN = [
    "The export button does nothing in Firefox",
    "Dashboard loads slowly since Monday",
    "Feature request: dark mode for the reports page",
    "Webhook retries look duplicated",
]


def payload(rng: random.Random) -> str:
    plan = rng.choice(["free", "pro", "team"])
    if rng.random() < 0.6:
        return f'{{"email": "{v.email(rng)}", "plan": "{plan}", "source": "signup_form"}}'
    return f'{{"plan": "{plan}", "seats": {rng.randint(1, 50)}, "source": "upgrade"}}'


def contact(rng: random.Random) -> str:
    return v.email(rng) if rng.random() < 0.6 else v.phone(rng)
