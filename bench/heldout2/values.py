"""Value makers for the second held-out PII set: checksummed identifiers, names, phones, places.

Written from public format rules only (ISO 13616 IBAN, Luhn, GS1, ISBN-13), never from the
detectors. Every maker takes the table's own `random.Random`, so a seed fixes the set.
"""

from __future__ import annotations

import random
import string
import unicodedata

FIRST = [
    "Anna",
    "Lukas",
    "Chloé",
    "Mathieu",
    "Sofía",
    "Javier",
    "Priya",
    "Arjun",
    "Mei",
    "Wei",
    "Olga",
    "Dmitri",
    "Fatima",
    "Omar",
    "Aoife",
    "Sean",
    "Ingrid",
    "Lars",
    "Giulia",
    "Marco",
    "Emily",
    "James",
    "Noah",
    "Olivia",
    "Kwame",
    "Amara",
    "Yuki",
    "Haruto",
    "Zofia",
    "Piotr",
]
LAST = [
    "Schmidt",
    "Müller",
    "Dubois",
    "Lefèvre",
    "García",
    "Fernández",
    "Sharma",
    "Patel",
    "Chen",
    "Wang",
    "Ivanova",
    "Petrov",
    "Haddad",
    "Nasser",
    "Murphy",
    "O'Brien",
    "Johansson",
    "Nilsen",
    "Rossi",
    "Bianchi",
    "Smith",
    "Taylor",
    "Brown",
    "Wilson",
    "Mensah",
    "Okafor",
    "Tanaka",
    "Sato",
    "Kowalska",
    "Nowak",
]
STREETS = [
    (
        "de",
        "{s}straße {n}, {z} {c}",
        ["Haupt", "Bahnhof", "Linden", "Garten"],
        ["Berlin", "Köln", "München"],
    ),
    (
        "fr",
        "{n} rue {s}, {z} {c}",
        ["de la Paix", "Victor Hugo", "des Lilas", "du Moulin"],
        ["Paris", "Lyon", "Nantes"],
    ),
    (
        "uk",
        "{n} {s} Road, {c} {z}",
        ["Station", "Church", "Mill", "Victoria"],
        ["London", "Leeds", "Bristol"],
    ),
    (
        "us",
        "{n} {s} St, {c}, {st} {z}",
        ["Oak", "Maple", "Pine", "Cedar"],
        ["Austin", "Denver", "Portland"],
    ),
    (
        "nl",
        "{s} {n}, {z} {c}",
        ["Keizersgracht", "Prinsengracht", "Damrak", "Herengracht"],
        ["Amsterdam", "Utrecht"],
    ),
    (
        "es",
        "Calle {s} {n}, {z} {c}",
        ["Mayor", "de Alcalá", "del Prado", "Real"],
        ["Madrid", "Sevilla"],
    ),
]


def pick(rng: random.Random, items: list[str]) -> str:
    return items[rng.randrange(len(items))]


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def full_name(rng: random.Random) -> str:
    return f"{pick(rng, FIRST)} {pick(rng, LAST)}"


def luhn_digit(body: str) -> str:
    """The Luhn check digit that makes `body + digit` valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    """A Luhn-valid Visa, Mastercard or Amex number, written as people write them."""
    prefix, length = rng.choice([("4", 16), ("51", 16), ("2221", 16), ("37", 15), ("34", 15)])
    body = prefix + digits(rng, length - len(prefix) - 1)
    number = body + luhn_digit(body)
    style = rng.randrange(3)
    if style == 0 or length == 15:
        return number
    sep = " " if style == 1 else "-"
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def _alnum_to_digits(text: str) -> str:
    return "".join(str(int(ch, 36)) for ch in text)


def iban(rng: random.Random, country: str | None = None) -> str:
    """A mod-97-valid IBAN of one of several countries, grouped by four half the time."""
    formats = {
        "DE": lambda: digits(rng, 18),
        "FR": lambda: digits(rng, 23),
        "GB": lambda: pick(rng, ["NWBK", "BARC", "HBUK", "LOYD"]) + digits(rng, 14),
        "NL": lambda: pick(rng, ["ABNA", "INGB", "RABO"]) + digits(rng, 10),
        "ES": lambda: digits(rng, 20),
        "IT": lambda: "X" + digits(rng, 22),
        "BE": lambda: digits(rng, 12),
        "CH": lambda: digits(rng, 17),
    }
    cc = country or pick(rng, list(formats))
    bban = formats[cc]()
    check = 98 - int(_alnum_to_digits(bban + cc + "00")) % 97
    value = f"{cc}{check:02d}{bban}"
    if rng.random() < 0.5:
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def phone(rng: random.Random, country: str | None = None) -> str:
    """A phone number in one of the ways each country writes them."""
    styles = {
        "de": [
            lambda: f"+49 30 {digits(rng, 7)}",
            lambda: f"0151 {digits(rng, 4)} {digits(rng, 4)}",
            lambda: f"+49 (0)89 {digits(rng, 3)} {digits(rng, 4)}",
        ],
        "fr": [
            lambda: "0" + rng.choice("1679") + "".join(f" {digits(rng, 2)}" for _ in range(4)),
            lambda: "+33 6" + "".join(f" {digits(rng, 2)}" for _ in range(4)),
            lambda: "+33 (0)1" + "".join(f".{digits(rng, 2)}" for _ in range(4)),
        ],
        "uk": [
            lambda: f"07700 {digits(rng, 6)}",
            lambda: f"+44 20 7946 {digits(rng, 4)}",
            lambda: f"+44 7{digits(rng, 3)} {digits(rng, 6)}",
        ],
        "us": [lambda: f"({rng.randint(201, 989)}) 555-{digits(rng, 4)}"],
        "in": [lambda: f"+91 9{digits(rng, 4)} {digits(rng, 5)}"],
        "es": [lambda: f"+34 6{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}"],
    }
    cc = country or pick(rng, list(styles))
    return rng.choice(styles[cc])()


def msisdn(rng: random.Random) -> str:
    """An international mobile number as a telecom stores it: digits only, no plus."""
    prefix, rest = rng.choice(
        [("447700", 6), ("49151", 8), ("49176", 8), ("336", 8), ("346", 8), ("919", 9)]
    )
    return prefix + digits(rng, rest)


def email(rng: random.Random, name: str | None = None) -> str:
    first, last = (name or full_name(rng)).split(" ", 1)
    local = rng.choice(
        [f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}", f"{last}+news"]
    )
    local = unicodedata.normalize("NFKD", local.lower().replace("'", "").replace("ü", "ue"))
    local = local.encode("ascii", "ignore").decode()
    host = pick(
        rng, ["gmail.com", "web.de", "orange.fr", "outlook.co.uk", "uni-koeln.de", "yahoo.es"]
    )
    return local + "@" + host if rng.random() < 0.85 else (local + "@" + host).upper()


def address(rng: random.Random) -> str:
    country, fmt, streets, cities = STREETS[rng.randrange(len(STREETS))]
    zips = {
        "de": lambda: digits(rng, 5),
        "fr": lambda: "750" + digits(rng, 2),
        "uk": lambda: uk_postcode(rng),
        "us": lambda: digits(rng, 5),
        "nl": lambda: f"{rng.randint(1000, 9999)} {rng.choice('ABCDEFGH')}{rng.choice('JKLMNPRS')}",
        "es": lambda: "280" + digits(rng, 2),
    }
    return fmt.format(
        s=pick(rng, streets),
        n=rng.randint(1, 240),
        z=zips[country](),
        c=pick(rng, cities),
        st=pick(rng, ["TX", "CO", "OR"]),
    )


def uk_postcode(rng: random.Random) -> str:
    area = pick(rng, ["SW", "NW", "E", "LS", "BS", "M"])
    inward = f"{rng.randint(1, 9)}{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRSTU')}"
    return f"{area}{rng.randint(1, 19)} {inward}"


def ipv4(rng: random.Random, private: bool = False) -> str:
    head = rng.choice([10, 172, 192]) if private else rng.randint(11, 223)
    return f"{head}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    return "2001:db8:" + ":".join(f"{rng.randrange(65536):x}" for _ in range(6))


def imei(rng: random.Random) -> str:
    """15 digits with a Luhn check digit: a device, not a card."""
    body = pick(rng, ["35", "86", "01", "99"]) + digits(rng, 12)
    return body + luhn_digit(body)


def iccid(rng: random.Random) -> str:
    """A SIM card's serial: 89, country and issuer, then a Luhn check digit (19 digits)."""
    body = "89" + pick(rng, ["44", "49", "33"]) + digits(rng, 14)
    return body + luhn_digit(body)


def gs1_digit(body: str) -> str:
    """The GS1 mod-10 check digit (weights 3 and 1 from the right)."""
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def sscc(rng: random.Random) -> str:
    body = "3" + "40" + digits(rng, 14)
    return body + gs1_digit(body)


def isbn13(rng: random.Random) -> str:
    body = pick(rng, ["978", "979"]) + digits(rng, 9)
    return body + gs1_digit(body)


def ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    sep = rng.choice(["-", " ", ""])
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


def hexstr(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))
