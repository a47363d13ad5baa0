"""Masked examples, and the PII that free text holds: what may leave the sandbox.

A mask keeps enough to recognize the kind of value and never enough to recover it: an email's
first letters and top-level domain (`j***@e***.com`), a card's or an IBAN's last four digits,
a phone's last two, an IP's first octet, a person's initials, the decade of a date. Free text
is never shown: only the masked PII found in it.
"""

from __future__ import annotations

import re

from catalog_toolkit import pii_detectors as d

_PHONE_IN_TEXT = re.compile(
    r"(?<![\w+])(?:\+\d[\d\s().-]{7,18}\d|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4})(?![\w])"
)
_CARD_IN_TEXT = re.compile(r"(?<!\d)\d{4}(?:[ -]?\d{2,7}){2,4}(?!\d)|(?<!\d)\d{13,19}(?!\d)")
_IBAN_IN_TEXT = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_SSN_IN_TEXT = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
# Not a network range (`10.0.0.0/8`: CIDR names many hosts, no one's address) nor a version
# (`v1.2.3.4`, `release 4.2.1.10`: see _VERSION_BEFORE).
_IP_IN_TEXT = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d|/\d)")
_VERSION_BEFORE = re.compile(r"\b(?:version|release|build|ver|rev)\.?\s*$", re.IGNORECASE)
_BORN = re.compile(
    r"\b(?:born(?: on)?|dob|date of birth|birthday)\W{0,3}"
    r"(\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{4})",
    re.IGNORECASE,
)
# Overlapping pairs (a lookahead), so `Call John Smith` yields `John Smith` too.
_WORD_PAIR = re.compile(r"\b([A-Z][a-z]+)\s+(?=([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b)")


def mask(pii_type: str, text: str) -> str:
    """`text`, a value of `pii_type`, masked."""
    masker = _MASKS.get(pii_type, _mask_words)
    return masker(text)


def _mask_email(text: str) -> str:
    local, _, domain = text.partition("@")
    labels = domain.split(".")
    return f"{local[:1]}***@{labels[0][:1]}***.{labels[-1]}"


def _mask_card(text: str) -> str:
    return "**** **** **** " + d.digits(text)[-4:]


def _mask_iban(text: str) -> str:
    compact = text.replace(" ", "").upper()
    return f"{compact[:2]}** **** **** {compact[-4:]}"


def _mask_ssn(text: str) -> str:
    return "***-**-" + d.digits(text)[-4:]


def _mask_phone(text: str) -> str:
    total = sum(ch.isdigit() for ch in text)
    seen, out = 0, []
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > total - 2 else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_ip(text: str) -> str:
    if ":" in text:
        return text.split(":")[0] + ":****:…"
    return text.split(".")[0] + ".*.*.*"


def _mask_date(text: str) -> str:
    return text[:3] + "*-**-**" if text[:4].isdigit() else "**/**/****"


def _mask_words(text: str) -> str:
    """Each word's first letter, digits as `*`: `J*** S***`, `** M*** St***`."""
    words = []
    for word in text.split()[:6]:
        first = word[:1]
        words.append("*" if first.isdigit() else f"{first}***")
    return " ".join(words)


_MASKS = {
    "email": _mask_email,
    "payment_card": _mask_card,
    "iban": _mask_iban,
    "ssn": _mask_ssn,
    "phone": _mask_phone,
    "ip_address": _mask_ip,
    "date_of_birth": _mask_date,
}


def scan_text(text: str) -> list[tuple[str, str]]:
    """The PII that a piece of free text holds, as (type, masked example) pairs."""
    found = [(pii_type, mask(pii_type, text[a:b])) for pii_type, a, b in value_spans(text)]
    street = d.street_address(text)
    if street:
        found.append(("postal_address", mask("postal_address", street.group(0))))
    found += [("date_of_birth", mask("date_of_birth", m.group(1))) for m in _BORN.finditer(text)]
    found += [
        ("person_name", mask("person_name", f"{m.group(1)} {m.group(2)}"))
        for m in _WORD_PAIR.finditer(text)
        if m.group(1) in d.first_names() and m.group(2) in d.surnames()
    ]
    return found


def value_spans(text: str) -> list[tuple[str, int, int]]:
    """Where `text` holds an email, a payment card, an IBAN, an SSN, an IP address or a phone
    number: (type, start, end), by type in that order (a card's digits are no phone)."""
    found = [("email", m.start(), m.end()) for m in d.EMAIL.finditer(text)]
    cards = [m for m in _CARD_IN_TEXT.finditer(text) if d.card_digits(m.group(0))]
    found += [("payment_card", m.start(), m.end()) for m in cards]
    found += [
        ("iban", m.start(), m.end()) for m in _IBAN_IN_TEXT.finditer(text) if d.iban_ok(m.group(0))
    ]
    found += [
        ("ssn", m.start(), m.end()) for m in _SSN_IN_TEXT.finditer(text) if d.ssn_ok(m.group(0))
    ]
    found += [
        ("ip_address", m.start(), m.end())
        for m in _IP_IN_TEXT.finditer(text)
        if d.ip_ok(m.group(0)) and not _VERSION_BEFORE.search(text[: m.start()][-12:])
    ]
    taken = {m.group(0) for m in cards}
    found += [
        ("phone", m.start(), m.end())
        for m in _PHONE_IN_TEXT.finditer(text)
        if m.group(0) not in taken and d.phone_ok(m.group(0))
    ]
    return found


def redact_text(text: str) -> tuple[str, list[str]]:
    """`text` with every value that value_spans finds masked in place, and their types (a span
    inside one already masked is left to it)."""
    out, types, end = [], [], 0
    for pii_type, start, stop in sorted(value_spans(text), key=lambda s: (s[1], -s[2])):
        if start < end:
            continue
        out += [text[end:start], mask(pii_type, text[start:stop])]
        types.append(pii_type)
        end = stop
    return "".join(out) + text[end:], types
