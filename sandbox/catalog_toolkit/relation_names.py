"""How much a column's name says it refers to another table's key: the name half of a relation.

A name score is a prior, from 0 (the names say nothing) to 1 (`customer_id` -> `customers.id`).
The data then confirms or refutes it (relations.py). The rules, strongest first:

| rule | example | score |
| --- | --- | --- |
| the table's singular and the key | `customer_id` -> `customers.id` (`.cust_id`) | 1.0 |
| the same name, not a generic one | `tailnum` -> `planes.tailnum`, `sku` -> `products.sku` | 0.9 |
| a role before the table and key | `billing_customer_id` -> `customers.id` | 0.85 |
| a parent word on its own table | `categories.parent_id`, `employees.manager_id` -> `.id` | 0.8 |
| the head word of a table named after the child's | `status_id` -> `order_statuses.id` | 0.8 |
| an abbreviation of the table | `cust_id` -> `customers.id` | 0.7 |
| the table's singular alone | `orders.customer` -> `customers.id` | 0.7 |
| a person's role, to a table of people | `approved_by`, `author_id` -> `employees.id` | 0.6 |
| the table's head word and the key | `status_id` -> `shipment_statuses.id` | 0.6 |
| the table's singular and a key word | `customer_ref`, `old_customer_no` -> `customers.id` | 0.5 |

A key column may carry its table's name or an abbreviation of it (`departments.dept_id`): the
rest of it is the key (`id`). On its own table a column refers to another row only with a
parent word or a role (`parent_id`, `manager_id`, `parent_category_id`): `flights.flight` is a
flight number, not a flight. An abbreviation is three letters or more, in order, of the
table's word, starting with its first (`cust`, `dept`, `emp`); a whole word of a longer table
name is no abbreviation of it (`order_id` does not abbreviate `order_items`).
Generic names (`id`, `code`, `name`, ...) never match by being the same: two tables' `id`
columns are each their own key, not a relation.
"""

from __future__ import annotations

import re

from catalog_toolkit.sources import split

GENERIC = frozenset(
    {
        *("id", "key", "code", "name", "no", "num", "number", "uuid", "guid", "type", "kind"),
        *("value", "label", "title", "status", "description", "comment", "note"),
        *("created", "updated", "date", "time", "at"),
    }
)
# Parts that say "a key of" rather than naming a thing: `customer_ref`, `customer_fk`.
KEY_WORDS = frozenset(["id", "key", "code", "no", "num", "number", "ref", "fk", "uuid", "guid"])
STRONG = 1.0
SAME_NAME = 0.9
ROLE = 0.85
PARENT = 0.8
ABBREVIATION = 0.7
BARE_TABLE = 0.7
HEAD = 0.8
PERSON = 0.6
HEAD_ONLY = 0.6
MENTION = 0.5
MIN_ABBREVIATION = 3  # `cus` for customers; two letters say too little
# Words that say "another row of this table" in a self-reference.
PARENT_WORDS = frozenset(
    {"parent", "manager", "supervisor", "boss", "head", "lead", "mentor", "reports", "root"}
    | {"predecessor", "successor", "previous", "prior", "next", "original", "replaced", "merged"}
)
# Roles a person plays in a row, named without the table: `approved_by`, `author_id`.
PERSON_ROLES = frozenset(
    {"user", "manager", "author", "owner", "creator", "approver", "reviewer", "assignee"}
    | {"reporter", "supervisor", "head", "lead", "referrer", "editor", "sender", "recipient"}
    | {"requester", "updater", "modifier", "signer", "agent", "buyer", "seller", "mentor"}
)
# Tables of people, by their singular.
PEOPLE = frozenset(
    {"user", "customer", "employee", "member", "person", "people", "staff", "account", "client"}
    | {"provider", "patient", "doctor", "physician", "student", "teacher", "contact", "author"}
    | {"agent", "driver", "worker", "admin", "owner", "seller", "buyer", "subscriber"}
)


def tokens(name: str) -> list[str]:
    """`billingCustomerID` or `Billing Customer_Id` -> ["billing", "customer", "id"]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return [t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t]


def singular(word: str) -> str:
    """A plural English noun's singular, for table names (`categories` -> `category`)."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "uses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 2:
        return word[:-1]
    return word


def own_name(table: str) -> str:
    """A table's own name, without its source (`billing/`) or schema: `billing/shop.invoices`
    -> invoices."""
    return split(table)[1].rpartition(".")[2]


def table_words(table: str) -> list[str]:
    """The words of a table's own name (no schema), the last one singular: `order_items` ->
    ["order", "item"]."""
    words = tokens(own_name(table))
    return [*words[:-1], singular(words[-1])] if words else []


def name_score(child_table: str, child: str, parent_table: str, parent: str) -> float:
    """How strongly the name of column `child` (in `child_table`) says it refers to column
    `parent` of `parent_table` (see the module notes)."""
    c, p, t = tokens(child), tokens(parent), table_words(parent_table)
    if not c or not p or not t:
        return 0.0
    key = _key_part(p, t)
    same_table = own_name(child_table) == own_name(parent_table)
    if same_table:  # another row of this table: only a parent word or a role says so
        return _self_score(c, t, key)
    if c == t + key:
        return STRONG
    if c == p and not set(p) <= GENERIC:
        return SAME_NAME
    if len(c) > len(t + key) and c[-len(t + key) :] == t + key:
        return ROLE
    return max(_weak_score(c, t, key), _head_score(c, t, key, child_table), _person(c, t, key))


def _key_part(p: list[str], t: list[str]) -> list[str]:
    """The key of a parent column without its table's name: `customer_id`, `dept_id` -> id."""
    if p[: len(t)] == t and len(p) > len(t):
        return p[len(t) :]
    if len(t) == 1 and len(p) > 1 and _abbreviates(p[0], t[0]):
        return p[1:]
    return p


def _abbreviates(stem: str, word: str) -> bool:
    """`cust`, `dept`, `emp` for customer, department, employee: letters in order, first kept."""
    if len(stem) < MIN_ABBREVIATION or stem == word or stem[0] != word[0]:
        return False
    rest = iter(word[1:])
    return all(ch in rest for ch in stem[1:])


def _self_score(c: list[str], t: list[str], key: list[str]) -> float:
    if len(c) > len(key) and c[-len(key) :] == key:
        role = c[: -len(key)]
        if role[-len(t) :] == t and len(role) > len(t):
            return ROLE  # parent_category_id
        if role[0] in PARENT_WORDS and (len(role) == 1 or _names(role[1:], t)):
            return PARENT  # parent_id, manager_id, parent_dept_id
    if len(c) == 2 and c[0] in PARENT_WORDS and c[1] == "by":
        return PARENT
    return 0.0


def _names(words: list[str], t: list[str]) -> bool:
    """The words name the table: its words, or an abbreviation of its one word."""
    return words == t or (len(words) == len(t) == 1 and _abbreviates(words[0], t[0]))


def _head_score(c: list[str], t: list[str], key: list[str], child_table: str) -> float:
    """`status_id` -> `order_statuses.id`: the head word of a table named after its child's."""
    if len(t) < 2 or c != t[-1:] + key or not set(key) <= KEY_WORDS:
        return 0.0
    return HEAD if t[:-1] == table_words(child_table) else HEAD_ONLY


def _person(c: list[str], t: list[str], key: list[str]) -> float:
    """`approved_by`, `author_id`, `user_id` -> a table of people, when no table is named."""
    if t[-1] not in PEOPLE:
        return 0.0
    by = len(c) == 2 and c[1] == "by"  # created_by, approved_by
    role = len(c) > len(key) and c[-len(key) :] == key and c[-len(key) - 1] in PERSON_ROLES
    return PERSON if by or role else 0.0


def _weak_score(c: list[str], t: list[str], key: list[str]) -> float:
    if len(c) > len(key) and c[-len(key) :] == key and len(c) - len(key) == 1:
        stem = c[0]
        if _abbreviates(stem, t[0]) if len(t) == 1 else _prefix(stem, t):
            return ABBREVIATION
    if c == t and set(key) <= KEY_WORDS:
        return BARE_TABLE
    if _contains(c, t) and set(key) <= KEY_WORDS and set(c) - set(t) & KEY_WORDS:
        return MENTION
    return 0.0


def _prefix(stem: str, t: list[str]) -> bool:
    """`orditm` for order_items: a prefix of the joined words, not one of the words."""
    whole = "".join(t)
    return len(stem) >= MIN_ABBREVIATION and whole.startswith(stem) and stem not in t


def _contains(words: list[str], part: list[str]) -> bool:
    return any(words[i : i + len(part)] == part for i in range(len(words) - len(part) + 1))
