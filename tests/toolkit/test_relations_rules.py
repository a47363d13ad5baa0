"""The relations agent's rules without a database: names, candidate pairs, confidence, the page."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from catalog_toolkit.kits import KITS
from catalog_toolkit.relation_facts import ColumnFacts, TableFacts, candidate_keys, from_profile
from catalog_toolkit.relation_names import name_score
from catalog_toolkit.relation_pairs import Pair, candidate_pairs, choose, confidence
from catalog_toolkit.relation_report import render_relations

from services.agent_runner.html import sanitize

HOSTILE = "<script>alert('x')</script>"


@pytest.mark.parametrize(
    ("child", "parent_table", "parent", "expected"),
    [
        ("customer_id", "shop.customers", "id", 1.0),
        ("customerId", "Customers", "ID", 1.0),
        ("customer_id", "customers", "customer_id", 1.0),
        ("category_id", "categories", "id", 1.0),
        ("tailnum", "planes", "tailnum", 0.9),
        ("billing_customer_id", "customers", "id", 0.85),
        ("cust_id", "customers", "id", 0.7),
        ("customer_ref", "customers", "id", 0.5),
        # a key column that carries its table's name, whole or abbreviated
        ("department_id", "departments", "dept_id", 1.0),
        ("employee_id", "staff.employees", "emp_id", 1.0),
        ("supervisor_employee_id", "employees", "emp_id", 0.85),
        # the head word of a lookup table named after the child's table, or of another one
        ("status_id", "order_statuses", "id", 0.8),
        ("status_id", "shipment_statuses", "id", 0.6),
        # a person's role, to a table of people (never to a table of things)
        ("approved_by", "employees", "emp_id", 0.6),
        ("author_id", "customers", "id", 0.6),
        ("user_id", "members", "member_id", 0.6),
        ("approved_by", "warehouses", "id", 0.0),
        ("customer_id", "employees", "id", 0.0),
        # a whole word of a longer table name abbreviates nothing
        ("order_id", "order_items", "id", 0.0),
        # generic names that two tables share say nothing; a measure is not a reference
        ("id", "customers", "id", 0.0),
        ("name", "customers", "name", 0.0),
        ("customer_rating", "customers", "id", 0.0),
        ("cu_id", "customers", "id", 0.0),
    ],
)
def test_names_score_how_strongly_they_say_reference(
    child: str, parent_table: str, parent: str, expected: float
) -> None:
    assert name_score("orders", child, parent_table, parent) == expected


def test_parent_id_refers_to_its_own_table_only() -> None:
    assert name_score("categories", "parent_id", "categories", "id") == 0.8
    assert name_score("categories", "parent_id", "products", "id") == 0.0


def test_a_self_reference_needs_a_parent_word_or_a_role() -> None:
    assert name_score("employees", "manager_id", "employees", "emp_id") == 0.8
    assert name_score("departments", "parent_dept_id", "departments", "dept_id") == 0.8
    assert name_score("categories", "parent_category_id", "categories", "id") == 0.85
    # the table's singular on its own table is its own thing: a flight number, a store code
    assert name_score("flights", "flight", "flights", "id") == 0.0
    assert name_score("stores", "store_code", "stores", "id") == 0.0


def col(table: str, name: str, kind: str = "integer", **figures: Any) -> ColumnFacts:
    return ColumnFacts(table, name, kind, distinct_exact=True, **figures)


def test_candidates_need_a_matching_kind_a_unique_parent_and_possible_counts() -> None:
    customers = TableFacts(
        "customers",
        100,
        [
            col("customers", "id", non_null=100, distinct=100, low=1, high=100),
            col("customers", "region", "text", non_null=100, distinct=5),
        ],
    )
    orders = TableFacts(
        "orders",
        500,
        [
            col("orders", "customer_id", non_null=500, distinct=90, low=1, high=100),
            col("orders", "old_customer_id", non_null=500, distinct=400, low=1, high=900),
            col("orders", "legacy_customer_id", non_null=500, distinct=50, low=5000, high=9000),
            col("orders", "cust_id", "text", non_null=500, distinct=20),
            col("orders", "region", "text", non_null=500, distinct=5),
        ],
    )
    pairs, ruled_out = candidate_pairs([customers, orders], min_coverage=0.9)
    assert [p.key for p in pairs] == [("orders", "customer_id", "customers", "id")]
    # 400 distinct values cannot fit in 100 keys; 5000..9000 cannot meet 1..100; a text
    # cust_id is not an integer id; region is not unique in customers, so nothing refers to it
    assert ruled_out == {"counts": 1, "ranges": 1, "empty": 0}


def test_a_declared_foreign_key_is_not_inferred_again() -> None:
    parent = TableFacts("customers", 10, [col("customers", "id", non_null=10, declared_key=True)])
    child = TableFacts(
        "orders",
        10,
        [col("orders", "customer_id", non_null=10, distinct=10)],
        foreign_keys=[
            {"columns": ["customer_id"], "references": {"table": "customers", "columns": ["id"]}}
        ],
    )
    assert candidate_pairs([parent, child], min_coverage=0.9)[0] == []


def test_without_a_name_signal_repeating_codes_pair_with_a_unique_text_key_in_range() -> None:
    airports = TableFacts(
        "airports",
        300,
        [
            col("airports", "faa", "text", non_null=300, distinct=300, low="ABE", high="YUM"),
            col("airports", "id", non_null=300, distinct=300, low=1, high=300),
            col("airports", "name", "text", non_null=300, distinct=300, low="Aa", high="Zz"),
        ],
        primary_key=["faa"],
    )
    flights = TableFacts(
        "flights",
        5000,
        [
            col("flights", "origin", "text", non_null=5000, distinct=3, low="EWR", high="LGA"),
            col("flights", "carrier", "text", non_null=5000, distinct=16, low="9E", high="YV"),
            col("flights", "tail", "text", non_null=5000, distinct=5000, low="N1", high="N9"),
            col("flights", "priority", non_null=5000, distinct=5, low=1, high=5),
            col("flights", "gate", "text", non_null=5000, distinct=2, low="A", high="B"),
        ],
    )
    pairs, _ = candidate_pairs([airports, flights], min_coverage=0.9)
    # origin repeats, lies within faa's range (and name's); carrier's `9E` is below both;
    # tail is unique (no many-to-one); an integer code needs a name; two values prove nothing
    assert [p.key for p in pairs] == [
        ("flights", "origin", "airports", "faa"),
        ("flights", "origin", "airports", "name"),
    ]
    assert {p.name for p in pairs} == {0.0}
    # on data alone, confidence is the evidence: three codes of three all found, or two of them
    assert confidence(pairs[0], 1.0, 3) == 0.875
    assert confidence(pairs[0], 0.67, 2) < 0.6


def test_a_primary_key_refers_elsewhere_only_as_a_one_to_one_extension() -> None:
    key = {"non_null": 100, "distinct": 100, "low": 1, "high": 100}
    items = TableFacts("order_items", 100, [col("order_items", "id", **key)], primary_key=["id"])
    users = TableFacts("users", 100, [col("users", "id", **key)], primary_key=["id"])
    orders = TableFacts(
        "orders",
        80,
        [col("orders", "order_id", non_null=80, distinct=80, low=1, high=80)],
        primary_key=["order_id"],
    )
    profiles = TableFacts(
        "profiles",
        70,
        [col("profiles", "user_id", non_null=70, distinct=70, low=1, high=100)],
        primary_key=["user_id"],
    )
    accounts = TableFacts(
        "accounts",
        90,
        [col("accounts", "user_ref", non_null=90, distinct=90, low=1, high=90)],
        primary_key=["user_ref"],
    )
    assert name_score("accounts", "user_ref", "users", "id") == 0.5  # a weak name, yet a key
    pairs, _ = candidate_pairs([items, users, orders, profiles, accounts], min_coverage=0.9)
    assert [p.key for p in pairs] == [("profiles", "user_id", "users", "id")]


def pair(name: float, kind: str = "integer", **parent: Any) -> Pair:
    return Pair(col("c", "x", kind), col("p", "y", kind, **parent), name)


def test_containment_in_dense_integer_keys_proves_little_but_in_text_keys_much() -> None:
    dense = pair(0.5, non_null=1000, distinct=1000, low=1, high=1000)
    sparse = pair(0.5, non_null=1000, distinct=1000, low=1, high=10_000_000)
    text = pair(0.5, "text", non_null=1000, distinct=1000)
    # five small codes all found among ids 1..1000: what any five small integers would do
    assert confidence(dense, 1.0, 5) < 0.51
    assert confidence(sparse, 1.0, 5) > 0.99
    assert confidence(text, 1.0, 5) > 0.95
    # a strong name is believed; orphans lower the confidence in proportion
    assert confidence(pair(1.0, non_null=10, distinct=10, low=1, high=10), 0.95, 5) == 0.95


def inferred(child: str, parent_table: str, conf: float, distinct: int = 10) -> dict[str, Any]:
    table, column = child.split(".")
    return {
        "table": table,
        "column": column,
        "references": {"table": parent_table, "column": "code"},
        "confidence": conf,
        "parent_declared_key": parent_table == "a",
        "parent_distinct": distinct,
    }


def test_each_column_keeps_its_best_parent_and_a_mutual_pair_one_direction() -> None:
    chosen = choose(
        [
            inferred("t.x", "u", 0.7),
            inferred("t.x", "v", 0.9),
            inferred("b.code", "a", 1.0),
            inferred("a.code", "b", 1.0),
        ]
    )
    assert [(i["table"], i["references"]["table"]) for i in chosen] == [("b", "a"), ("t", "v")]


def test_candidate_keys_come_from_exact_counts_over_the_whole_table() -> None:
    profile = {
        "table": "t",
        "rows": 3,
        "scope": {"kind": "full"},
        "primary_key": ["id"],
        "unique": [],
        "columns": [
            {
                "name": "id",
                "type": "!int32",
                "nulls": 0,
                "distinct": 3,
                "how": {"distinct": "exact"},
            },
            {
                "name": "sku",
                "type": "string",
                "nulls": 0,
                "distinct": 3,
                "how": {"distinct": "exact"},
            },
            {
                "name": "n",
                "type": "int64",
                "nulls": 0,
                "distinct": 3,
                "how": {"distinct": "approx"},
            },
            {
                "name": "e",
                "type": "string",
                "nulls": 1,
                "distinct": 2,
                "how": {"distinct": "exact"},
            },
            {
                "name": "f",
                "type": "float64",
                "nulls": 0,
                "distinct": 3,
                "how": {"distinct": "exact"},
            },
        ],
    }
    assert candidate_keys(from_profile(profile)) == [{"table": "t", "columns": ["sku"], "rows": 3}]


def hostile_result() -> dict[str, Any]:
    item = {
        "table": HOSTILE,
        "column": f"{HOSTILE}_id",
        "references": {"table": f"{HOSTILE}s", "column": "id"},
        "confidence": 0.95,
        "name_score": 1.0,
        "coverage": 0.979,
        "checked": 1000,
        "missing": 21,
        "sampled": False,
    }
    return {
        "tables": [HOSTILE, f"{HOSTILE}s"],
        "declared": [
            {"table": "a&b", "columns": ["x"], "references": {"table": HOSTILE, "columns": ["y"]}}
        ],
        "inferred": [item],
        "candidate_keys": [{"table": HOSTILE, "columns": [HOSTILE], "rows": 3}],
        "rejected": [{**item, "reason": HOSTILE}],
        "counts": {"tables": 2, "inferred": 1, "declared": 1, "checked": 2, "queries": 2},
        "errors": [{"table": HOSTILE, "error": HOSTILE}],
    }


def test_the_page_escapes_names_and_keeps_its_diagram_through_the_sanitizer() -> None:
    fragment = render_relations(hostile_result())
    page = sanitize(fragment, max_bytes=1024 * 1024)
    tags = re.findall(r"<[^>]*>", page)
    assert not [t for t in tags if "script" in t]
    assert "&lt;script&gt;alert(" in page  # the names show as text
    assert "97.9% of" in page and "21 of 1,000" in page
    (uri,) = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)"', page)
    svg = base64.b64decode(uri).decode()
    assert "<script" not in svg and "&lt;script&gt;" in svg
    # declared solid, inferred dashed: two edges, one of them dashed
    assert svg.count("<path d='M") == 3  # the arrow head, then one path per edge
    assert svg.count("stroke-dasharray") == 1


def test_the_kit_renders_what_it_exports(fresh_record: None) -> None:
    kit = KITS["relations"]
    data = kit.export(con=None, tables=[], unknown_keyword=1)
    assert data["kind"] == "relations" and data["errors"]
    assert "no database connection" in kit.render(data)
