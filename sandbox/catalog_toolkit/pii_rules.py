"""Which PII type a column's NAME suggests: token-aware rules, so traps stay quiet.

A name is split into lower-case tokens (`customerEmail` -> customer, email; `ADDRESS_LINE_1`
-> address, line, 1). A rule fires only when the name ENDS with its phrase, token for token:
in a compound the last word is the head (`email_verified` is about verification, a flag;
`customer_email` is an email). A phrase written as one word counts too (`emailaddress`).
Substrings never do: `acid_level` holds no `id`, `voicemail` is not `mail`, and
`scenario_code` or `ACADEMIC_YEAR_CODE` end in `code`, which no rule names. Names that read
as flags (`is_email`, `has_phone`) fire nothing.

A name only suggests: the values decide (see pii.py). `name` alone is the one generic rule
(it may be a product's name), so its values must look like person names on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPLIT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_FLAG_PREFIXES = frozenset({"is", "has", "was", "can", "should", "allow", "allows", "no", "opt"})
# Trailing words that qualify the head without changing it: which one (`phone_primary`,
# `email_2`) or how it is written (`phone_e164`, `ssn_plain`, `email_normalized`).
_QUALIFIERS = frozenset(
    {"primary", "secondary", "alt", "alternate", "main", "other"}
    | {"raw", "plain", "digits", "formatted", "normalized", "clean", "e", "text", "str"}
)
# `X address` that is no postal address.
_NOT_POSTAL = frozenset(
    {"email", "mail", "ip", "mac", "web", "url", "wallet", "memory", "server", "host", "btc"}
)
# People a `<role>_name` column names (`product_name`, `user_name` are not person names).
_PERSON_ROLES = [
    *("customer", "client", "person", "contact", "employee", "patient", "member", "holder"),
    *("owner", "recipient", "sender", "student", "passenger", "guest", "buyer", "payer"),
    *("payee", "beneficiary", "cardholder", "account_holder", "applicant", "manager", "author"),
]

_PHRASES: dict[str, list[str]] = {
    "email": ["email", "mail", "email address", "mail address"],  # e_mail ends in `mail`
    "phone": [
        "phone",
        "telephone",
        "tel",
        "mobile",
        "cellphone",
        "cell phone",
        "fax",
        "msisdn",
        "phone number",
        "phone no",
        "phone num",
        "mobile number",
        "mobile no",
        "contact number",
        "tel no",
        "telephone number",
    ],
    "payment_card": [
        "card number",
        "card no",
        "card num",
        "credit card",
        "debit card",
        "payment card",
        "credit card number",
        "cc number",
        "cc num",
        "ccn",
    ],
    "iban": ["iban", "iban number", "bank account", "bank account number"],
    "ssn": ["ssn", "social security", "social security number", "social security no"],
    "ip_address": ["ip", "ip address", "ip addr", "ipv", "remote addr", "client ip"],
    "person_name": [
        "first name",
        "last name",
        "full name",
        "given name",
        "family name",
        "middle name",
        "maiden name",
        "surname",
        "forename",
        *(f"{role.replace('_', ' ')} name" for role in _PERSON_ROLES),
    ],
    "postal_address": [
        "address",
        "addr",
        "street",
        "street address",
        "address line",
        "home address",
        "mailing address",
        "postal address",
        "billing address",
        "shipping address",
        "delivery address",
    ],
    "date_of_birth": [
        "dob",
        "date of birth",
        "birth date",
        "birthdate",
        "birthday",
        "birth dt",
        "born on",
    ],
}
_GENERIC = {"person_name": ["name"]}


@dataclass(frozen=True)
class NameRule:
    pii_type: str
    phrase: str  # the words that matched, e.g. "email address"
    generic: bool  # a weak hint: values must carry the tag on their own

    def describe(self) -> str:
        return f"name ends with '{self.phrase}'" + (" (generic)" if self.generic else "")


def tokens(name: str) -> list[str]:
    """`customerEmail_2` -> ["customer", "email", "2"]."""
    return [t.lower() for t in _SPLIT.findall(name)]


def _head(words: list[str]) -> list[str]:
    while words and (words[-1].isdigit() or words[-1] in _QUALIFIERS):
        words = words[:-1]
    return words


def _ends_with(words: list[str], phrase: list[str]) -> bool:
    if len(words) >= len(phrase) and words[-len(phrase) :] == phrase:
        return True
    return len(phrase) > 1 and bool(words) and words[-1] == "".join(phrase)


def _matches(words: list[str], phrase: list[str], pii_type: str) -> bool:
    if not _ends_with(words, phrase):
        return False
    if pii_type == "postal_address" and phrase[0] in ("address", "addr"):
        before = words[-len(phrase) - 1] if len(words) > len(phrase) else ""
        return before not in _NOT_POSTAL
    return True


def name_rule(column: str) -> NameRule | None:
    """The rule `column`'s name fires, if any; the longest matching phrase wins."""
    words = tokens(column)
    if not words or words[0] in _FLAG_PREFIXES:
        return None
    words = _head(words)
    best: NameRule | None = None
    for rules, generic in ((_PHRASES, False), (_GENERIC, True)):
        for pii_type, phrases in rules.items():
            for text in phrases:
                phrase = text.split()
                if generic and words != phrase:
                    continue  # `name` alone: `product_name` is no person's
                if _matches(words, phrase, pii_type) and (
                    best is None or len(text) > len(best.phrase)
                ):
                    best = NameRule(pii_type, text, generic)
        if best is not None:
            return best
    return None
