"""Values as they appear in real tables, for the held-out PII set: formats vary, as they do.

Every generator takes the set's seeded `random.Random`; checksummed identifiers (cards,
IBANs) are valid, and SSNs follow the issuing rules, because real columns hold valid ones.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata

FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "Michael",
    "Jennifer",
    "David",
    "Linda",
    "William",
    "Elizabeth",
    "Richard",
    "Susan",
    "Thomas",
    "Jessica",
    "Daniel",
    "Karen",
    "Matthew",
    "Nancy",
    "Emily",
    "Andrew",
    "Olivia",
    "Ethan",
    "Sophia",
    "Noah",
    "Chloe",
    "Lucas",
    "Grace",
    # names from outside the US Census lists, as a global customer base has them
    "Priya",
    "Wei",
    "Oluwaseun",
    "Siobhan",
    "Mateo",
    "Aiko",
    "Fatima",
    "Dmitri",
    "Ngozi",
    "Joaquín",
    "Björn",
    "Anaïs",
    "Thanh",
    "Kwame",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "Nguyen",
    "Raghunathan",
    "Okafor",
    "O'Brien",
    "Müller",
    "Kowalski",
    "Tanaka",
    "Haddad",
    "Ivanova",
    "Fernández",
    "Lindqvist",
    "Dubois",
    "Mensah",
    "Zhang",
]
STREETS = [
    "Maple Ave",
    "Oak Street",
    "Main St",
    "Elm Drive",
    "Sunset Blvd",
    "Pine Road",
    "Cedar Lane",
    "Lakeview Terrace",
    "Washington St",
    "Park Avenue",
]
CITIES = [
    ("Springfield", "IL", "62704"),
    ("Austin", "TX", "78701"),
    ("Portland", "OR", "97205"),
    ("Denver", "CO", "80202"),
    ("Columbus", "OH", "43215"),
    ("Raleigh", "NC", "27601"),
    ("Madison", "WI", "53703"),
    ("Tampa", "FL", "33602"),
]
DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.co.uk",
    "icloud.com",
    "proton.me",
    "web.de",
    "acme-corp.com",
    "uni-example.edu",
]
AREA = ["212", "415", "646", "312", "617", "206", "512", "303", "404", "919"]


def first(rng: random.Random) -> str:
    return rng.choice(FIRST)


def last(rng: random.Random) -> str:
    return rng.choice(LAST)


def full_name(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.7:
        return f"{first(rng)} {last(rng)}"
    if style < 0.85:
        return f"{first(rng)} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {last(rng)}"
    return f"{last(rng)}, {first(rng)}"


def pnr_name(rng: random.Random) -> str:
    """Airline style: SURNAME/FIRSTNAME MR."""
    title = rng.choice(["MR", "MRS", "MS", ""])
    return f"{last(rng).upper()}/{first(rng).upper()} {title}".strip()


def _ascii(text: str) -> str:
    """Mailbox names as providers allow them: accents dropped (José -> jose)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower().replace("'", "")


def email(rng: random.Random) -> str:
    f, s = _ascii(first(rng)), _ascii(last(rng))
    local = rng.choice([f"{f}.{s}", f"{f[0]}{s}", f"{f}{rng.randint(1, 99)}", f"{s}.{f}"])
    address = f"{local}@{rng.choice(DOMAINS)}"
    return address.upper() if rng.random() < 0.05 else address


def us_phone(rng: random.Random) -> str:
    a, b, c = rng.choice(AREA), rng.randint(201, 989), rng.randint(0, 9999)
    return rng.choice(
        [
            f"({a}) {b}-{c:04d}",
            f"{a}-{b}-{c:04d}",
            f"+1 {a} {b} {c:04d}",
            f"{a}.{b}.{c:04d}",
            f"+1{a}{b}{c:04d}",
        ]
    )


def intl_phone(rng: random.Random) -> str:
    return rng.choice(
        [
            f"+44 20 {rng.randint(7000, 8999)} {rng.randint(0, 9999):04d}",
            f"+49 30 {rng.randint(10000000, 99999999)}",
            f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} "
            f"{rng.randint(10, 99)}",
            f"+91 {rng.randint(70000, 99999)} {rng.randint(10000, 99999)}",
        ]
    )


def phone(rng: random.Random) -> str:
    return us_phone(rng) if rng.random() < 0.7 else intl_phone(rng)


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16)]
    )
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    number = body + _luhn_digit(body)
    style = rng.random()
    if style < 0.4:
        return number
    sep = " " if style < 0.8 else "-"
    if length == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def _iban_check(country: str, bban: str) -> str:
    moved = bban + country + "00"
    digits = "".join(str(int(ch, 36)) for ch in moved)
    return f"{98 - int(digits) % 97:02d}"


def iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "GB", "FR", "NL", "ES"])
    banks = {"GB": ["NWBK", "BARC", "HBUK"], "NL": ["ABNA", "RABO", "INGB"]}
    lengths = {"DE": 18, "GB": 14, "FR": 23, "NL": 10, "ES": 20}
    bank = rng.choice(banks[country]) if country in banks else ""
    bban = bank + digits(rng, lengths[country])
    value = country + _iban_check(country, bban) + bban
    if rng.random() < 0.5:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def ssn(rng: random.Random, dashed: bool = True) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    return (
        f"{area:03d}-{group:02d}-{serial:04d}" if dashed else f"{area:03d}{group:02d}{serial:04d}"
    )


def ipv4(rng: random.Random) -> str:
    first_octet = rng.choice([24, 50, 68, 73, 81, 92, 104, 142, 176, 185, 203, 10, 192])
    if first_octet == 192:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"{first_octet}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(4)]
    return "2001:db8:" + ":".join(groups) + "::" + f"{rng.randint(1, 0xFFFF):x}"


def address(rng: random.Random) -> str:
    city, state, zipcode = rng.choice(CITIES)
    street = f"{rng.randint(1, 9899)} {rng.choice(STREETS)}"
    unit = rng.choice(["", "", "", f", Apt {rng.randint(1, 40)}{rng.choice('ABCD')}"])
    style = rng.random()
    if style < 0.75:
        return f"{street}{unit}, {city}, {state} {zipcode}"
    if style < 0.9:
        return f"{rng.randint(1, 220)} Baker Street, London NW1 {rng.randint(1, 9)}XE"
    return f"Hauptstraße {rng.randint(1, 120)}, 10115 Berlin"


def birth_date(rng: random.Random) -> dt.date:
    return dt.date(1942, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 64))


def recent_date(rng: random.Random) -> dt.date:
    return dt.date(2019, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 5))


def recent_time(rng: random.Random) -> dt.datetime:
    return dt.datetime(2024, 1, 1) + dt.timedelta(seconds=rng.randint(0, 86400 * 300))


def digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


def hexstr(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def uuid4(rng: random.Random) -> str:
    h = hexstr(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def user_agent(rng: random.Random) -> str:
    chrome = f"{rng.randint(110, 124)}.0.{rng.randint(5000, 6400)}.{rng.randint(50, 200)}"
    return rng.choice(
        [
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{chrome} Safari/537.36",
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            f"Gecko) Version/17.{rng.randint(0, 4)} Safari/605.1.15",
            f"okhttp/4.{rng.randint(9, 12)}.{rng.randint(0, 3)}",
            f"MyApp/{rng.randint(3, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)} (iPhone; iOS "
            f"17.{rng.randint(0, 5)}; Scale/3.00)",
        ]
    )


def four_part_version(rng: random.Random) -> str:
    """Build versions: some have every part under 256 and so the shape of an IPv4 address."""
    if rng.random() < 0.5:
        return f"{rng.randint(1, 6)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 250)}"
    return f"{rng.randint(1, 6)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}.{rng.randint(1000, 9999)}"


def ean13(rng: random.Random) -> str:
    body = rng.choice(["400", "500", "890", "030"]) + digits(rng, 9)
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)
