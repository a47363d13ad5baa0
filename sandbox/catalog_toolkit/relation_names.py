"""How much a column's name says it refers to another table's key: the name half of a relation.

A name score is a prior, from 0 (the names say nothing) to 1 (`customer_id` -> `customers.id`).
The data then confirms or refutes it (relations.py). The rules, strongest first:

| rule | example | score |
| --- | --- | --- |
| the table's singular and the key | `customer_id` -> `customers.id` (or `.customer_id`) | 1.0 |
| the same name, not a generic one | `tailnum` -> `planes.tailnum`, `sku` -> `products.sku` | 0.9 |
| a role before the table and key | `billing_customer_id` -> `customers.id` | 0.85 |
| `parent_` on its own table | `categories.parent_id` -> `categories.id` | 0.8 |
| an abbreviation of the table | `cust_id` -> `customers.id` | 0.7 |
| the table's singular alone | `orders.customer` -> `customers.id` | 0.7 |
| the table's singular and a key word | `customer_ref`, `old_customer_no` -> `customers.id` | 0.5 |

Generic names (`id`, `code`, `name`, ...) never match by being the same: two tables' `id`
columns are each their own key, not a relation.
"""

from __future__ import annotations

import re

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
MENTION = 0.5
MIN_ABBREVIATION = 3  # `cus` for customers; two letters say too little


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


def table_words(table: str) -> list[str]:
    """The words of a table's own name (no schema), the last one singular: `order_items` ->
    ["order", "item"]."""
    words = tokens(table.rpartition(".")[2])
    return [*words[:-1], singular(words[-1])] if words else []


def name_score(child_table: str, child: str, parent_table: str, parent: str) -> float:
    """How strongly the name of column `child` (in `child_table`) says it refers to column
    `parent` of `parent_table` (see the module notes)."""
    c, p, t = tokens(child), tokens(parent), table_words(parent_table)
    if not c or not p or not t:
        return 0.0
    key = p[len(t) :] if p[: len(t)] == t and len(p) > len(t) else p  # customers.customer_id
    if c == t + key:
        return STRONG
    if c == p and not set(p) <= GENERIC:
        return SAME_NAME
    if len(c) > len(t + key) and c[-len(t + key) :] == t + key:
        return ROLE
    same_table = child_table.rpartition(".")[2] == parent_table.rpartition(".")[2]
    if same_table and c == ["parent", *key]:
        return PARENT
    return _weak_score(c, t, key)


def _weak_score(c: list[str], t: list[str], key: list[str]) -> float:
    if len(c) > len(key) and c[-len(key) :] == key and len(c) - len(key) == 1:
        stem, whole = c[0], "".join(t)
        if len(stem) >= MIN_ABBREVIATION and whole.startswith(stem) and stem != whole:
            return ABBREVIATION
    if c == t and set(key) <= KEY_WORDS:
        return BARE_TABLE
    if _contains(c, t) and set(key) <= KEY_WORDS and set(c) - set(t) & KEY_WORDS:
        return MENTION
    return 0.0


def _contains(words: list[str], part: list[str]) -> bool:
    return any(words[i : i + len(part)] == part for i in range(len(words) - len(part) + 1))
