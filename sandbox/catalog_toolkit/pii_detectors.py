"""What one VALUE looks like: pure checks per PII type, with checksums where a type has one.

Each check answers for a single value: `strong` (the value is one on its own: a Luhn-valid card
number of a known network, an IBAN whose mod-97 checks, an email, ...), `plausible` (it could be
one if the column's name says so: ten plain digits for a phone, any past date for a birth date,
a capitalized word for a surname), or neither. pii.py turns the shares into a verdict.

Person names use the Census name lists in pii_data/ (see its README): a value is a strong name
when it is two to four capitalized words (or `Surname, First`, or `SURNAME/FIRST MR` as
airlines write it) that open with a known first name or close with a known surname. Postal
addresses are strong when they hold a house number and a street word.
A birth date is never strong: a date alone does not say whose birthday it is. Text dates are
read as ISO or in the common locale orders (text_dates), each a real day from 1900 to today.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from pathlib import Path
from typing import Any

# One strong type per value, the most specific first: a 15-digit Amex number is also shaped
# like a phone number, and a checksum says more than a shape.
PRIORITY = (
    "email",
    "payment_card",
    "iban",
    "ssn",
    "ip_address",
    "phone",
    "postal_address",
    "person_name",
    "date_of_birth",
)
TEXT_SCAN_CHARS = 2000  # of a long value, what is scanned

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}")
_PHONE_CHARS = re.compile(r"\+?[\d\s().-]+(?:\s*(?:x|ext\.?)\s*\d{1,5})?", re.IGNORECASE)
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")
# 10/11/1958, 11.10.1958, 11-10-1958, 1958/10/11 (one separator, twice), maybe a time after.
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?"
_DAY_MONTH_YEAR = re.compile(rf"(\d{{1,2}})([/.-])(\d{{1,2}})\2(\d{{4}}){_TIME}")
_YEAR_MONTH_DAY = re.compile(rf"(\d{{4}})([/.])(\d{{1,2}})\2(\d{{1,2}}){_TIME}")
_NAMED_MONTH = re.compile(r"(?:\d{1,2} [A-Za-z]{3,9}\.?|[A-Za-z]{3,9}\.? \d{1,2},?) \d{4}")
_MONTH_FORMS = ("%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y")  # English names (the C locale)
_CARD_SHAPE = re.compile(r"\d{4}(?:[ -]?\d{2,7}){2,4}|\d{13,19}")
_SSN = re.compile(r"(\d{3})-(\d{2})-(\d{4})")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_STREET_WORDS = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|"
    r"terrace|ter|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|crescent|close"
)
_STREET = [
    re.compile(  # 12 Main Street, 4b Elm Ave. Apt 3
        rf"\b\d{{1,6}}[A-Za-z]?\s+(?:[A-Za-z][\w.'-]*\s+){{1,4}}(?:{_STREET_WORDS})\b\.?",
        re.IGNORECASE,
    ),
    re.compile(  # Hauptstraße 5, Keizersgracht-laan 12
        r"\b[A-ZÄÖÜ][\w'-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|laan|straat|gracht|"
        r"vej|gade|gatan|vägen)\s+\d{1,5}[a-z]?\b",
    ),
    re.compile(  # 5 rue de Rivoli, 10 avenida Paulista
        r"\b\d{1,5},?\s+(?:rue|avenue|boulevard|allée|chemin|impasse|avenida|rua)\s+\w+",
        re.IGNORECASE,
    ),
    re.compile(  # Via Roma 10, Calle Mayor 3
        r"\b(?:via|viale|piazza|calle|carrer|avenida|rua)\s+[A-Z][\w' ]{1,30}?,?\s+\d{1,5}\b",
    ),
    re.compile(r"\bp\.?\s?o\.?\s?box\s+\d+", re.IGNORECASE),
]
_NAME_WORD = re.compile(r"[^\W\d_][^\W\d_'\u2019.-]*(?:['\u2019-][^\W\d_]+)*\.?")
_TITLES = frozenset({"MR", "MRS", "MS", "MISS", "MSTR", "DR", "PROF", "REV", "SIR", "MX"})
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "del", "la", "le", "bin"})
# IBAN lengths of the countries most often met; others need 15 to 34 characters.
_IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "GR": 27, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "SE": 24,
}  # fmt: skip


@functools.cache
def _names(kind: str) -> frozenset[str]:
    path = Path(__file__).with_name("pii_data") / f"{kind}.txt"
    return frozenset(line.strip() for line in path.read_text("utf-8").splitlines() if line)


def first_names() -> frozenset[str]:
    return _names("first_names")


def surnames() -> frozenset[str]:
    return _names("surnames")


def as_text(value: Any) -> str | None:
    """The value as the text a check reads (dates as ISO), or None for what holds no PII."""
    if value is None or isinstance(value, bool | float):
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    text = value if isinstance(value, str) else str(value)
    return text.strip()[:TEXT_SCAN_CHARS] or None


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_network(digits: str) -> str | None:
    """The network whose prefix and length the number has, or None."""
    n, two, four = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "mastercard"
    if two in (34, 37) and n == 15:
        return "amex"
    if (digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649) and n >= 16:
        return "discover"
    if 3528 <= four <= 3589 and n >= 16:
        return "jcb"
    if (two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305) and 14 <= n <= 16:
        return "diners"
    if two == 62 and n >= 16:
        return "unionpay"
    return None


def card_digits(text: str) -> str | None:
    """The digits of a payment card number (checksum and network checked), or None."""
    if not _CARD_SHAPE.fullmatch(text):
        return None
    number = re.sub(r"[ -]", "", text)
    if not 13 <= len(number) <= 19 or not luhn_ok(number) or card_network(number) is None:
        return None
    return number


def iban_ok(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not _IBAN_SHAPE.fullmatch(compact):
        return False
    if len(compact) != _IBAN_LENGTHS.get(compact[:2], len(compact)):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _ssn_parts_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ssn_ok(text: str) -> bool:
    match = _SSN.fullmatch(text)
    return bool(match) and _ssn_parts_ok(*match.groups())  # type: ignore[union-attr]


def ip_ok(text: str) -> bool:
    if "." not in text and ":" not in text:
        return False  # a bare integer parses as an IPv4 address
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def phone_ok(text: str) -> bool:
    """International (+ and 8-15 digits) or grouped with separators (10-15 digits)."""
    if not _PHONE_CHARS.fullmatch(text) or _DATE_LIKE.fullmatch(text):
        return False
    count = len(digits(re.split(r"(?i)x|ext", text)[0]))
    if text.startswith("+"):
        return 8 <= count <= 15
    grouped = bool(re.search(r"\d[\s().-]+\d", text)) and text.count(".") != 1
    return grouped and 10 <= count <= 15


def street_address(text: str) -> re.Match[str] | None:
    for pattern in _STREET:
        found = pattern.search(text)
        if found:
            return found
    return None


def _name_words(text: str) -> list[str] | None:
    if text.count("/") == 1 and text.isupper():  # SURNAME/FIRST MIDDLE MR, as airlines write it
        # (IATA's passenger name form); only upper case, so `Home/Garden` stays a path
        last, _, rest = text.partition("/")
        given = rest.split()
        if given and given[-1].upper().rstrip(".") in _TITLES:
            given = given[:-1]
        if not given or not last.strip():
            return None
        words = given + last.split()
    elif "," in text:  # Surname, First
        last, _, rest = text.partition(",")
        words = rest.split() + last.split()
    else:
        words = text.split()
    if not 1 <= len(words) <= 4 or not all(_NAME_WORD.fullmatch(w) for w in words):
        return None
    if text.isupper():
        words = [w.title() for w in words]
    if not all(w[0].isupper() or w in _PARTICLES for w in words):
        return None
    return words


def person_name(text: str) -> str | None:
    """`strong`, `plausible` (capitalized words: a surname, a first name, a name not in the
    lists) or None."""
    words = _name_words(text)
    if words is None:
        return None
    known = words[0].rstrip(".") in first_names() or words[-1] in surnames()
    if len(words) >= 2 and len(words[-1]) > 1 and known:
        return "strong"
    return "plausible"


def past_date(value: Any, text: str) -> bool:
    """A date between 1900 and today: a birth date if the column's name says so."""
    if isinstance(value, dt.datetime):
        days = [value.date()]
    elif isinstance(value, dt.date):
        days = [value]
    else:
        days = text_dates(text)
    return any(dt.date(1900, 1, 1) <= day <= dt.date.today() for day in days)


def text_dates(text: str) -> list[dt.date]:
    """The calendar dates a text date can be read as: ISO (`1958-10-11`, with a time or not),
    or day, month and a four-digit year in the common locale orders (`10/11/1958` is 11 October
    in the US and 10 November in Europe: both, when both are valid days). Two-digit years say
    too little (`10/11/58` could be a code), and so do months or days out of range."""
    try:
        return [dt.date.fromisoformat(text[:10])]
    except ValueError:
        pass
    if match := _YEAR_MONTH_DAY.fullmatch(text):
        year, month, day = (int(part) for part in match.group(1, 3, 4))
        orders = [(year, month, day)]
    elif match := _DAY_MONTH_YEAR.fullmatch(text):
        a, b, year = (int(part) for part in match.group(1, 3, 4))
        orders = [(year, a, b), (year, b, a)]  # month/day (US), day/month (most of the world)
    else:
        return _named_month(text)
    days = []
    for year, month, day in orders:
        try:
            days.append(dt.date(year, month, day))
        except ValueError:
            continue
    return days


def _named_month(text: str) -> list[dt.date]:
    """`Oct 11, 1958`, `October 11 1958`, `11 Oct 1958`: the month's name says the order."""
    if not _NAMED_MONTH.fullmatch(text):
        return []
    for form in _MONTH_FORMS:
        try:
            return [dt.datetime.strptime(re.sub(r"[.,]", "", text), form).date()]
        except ValueError:
            continue
    return []


def classify(value: Any) -> tuple[str | None, set[str]]:
    """The value's strong type (one, by PRIORITY) and every type it is plausible for."""
    text = as_text(value)
    if text is None:
        return None, set()
    strong = [t for t in PRIORITY if _strong(t, text)]
    plausible = _plausible(value, text) | set(strong)
    return (strong[0] if strong else None), plausible


def _strong(pii_type: str, text: str) -> bool:
    if pii_type == "email":
        return bool(EMAIL.fullmatch(text))
    if pii_type == "payment_card":
        return card_digits(text) is not None
    if pii_type == "iban":
        return iban_ok(text)
    if pii_type == "ssn":
        return ssn_ok(text)
    if pii_type == "ip_address":
        return ip_ok(text)
    if pii_type == "phone":
        return phone_ok(text)
    if pii_type == "postal_address":
        found = street_address(text)
        return found is not None and len(found.group(0)) >= len(text) // 3
    if pii_type == "person_name":
        return person_name(text) == "strong"
    return False


def _plausible(value: Any, text: str) -> set[str]:
    found = set()
    if text.isdigit():
        if 10 <= len(text) <= 15:
            found.add("phone")
        if len(text) == 9 and _ssn_parts_ok(text[:3], text[3:5], text[5:]):
            found.add("ssn")
    if person_name(text):
        found.add("person_name")
    if any(c.isdigit() for c in text) and any(c.isalpha() for c in text) and " " in text:
        found.add("postal_address")
    if past_date(value, text):
        found.add("date_of_birth")
    return found
