"""The held-out relations set: five schemas as found in the wild, their true foreign keys known.

No foreign key is declared (that is what the agent must find); primary keys are declared on
about half the tables, as in warehouses that load without constraints. Integer surrogate keys
all start at 1 with gaps (deleted rows), so most small integers sit in most parents: only
names, uniqueness and coverage tell a reference from a code. References carry NULLs and a few
orphans (rows whose parent was deleted). Decoys: small integer codes with no parent table
(`channel_id`, `quantity`, `grade`, `http_status`), ids of other systems (`stripe_customer_id`,
`external_customer_id`), shared non-key names (`country`), years.
"""

from __future__ import annotations

import random

from heldout.relations_kit import Edge, Schema, codes, ids, money, refs, small, table, uuid4, words
from heldout.relations_more import air, clinic

SEED = 777
__all__ = ["SEED", "Edge", "Schema", "schemas"]


def shop(rng: random.Random) -> Schema:
    cust = ids(rng, 1500)
    addr = ids(rng, 2400)
    cats = list(range(1, 41))
    prods = ids(rng, 600)
    coupons = codes(
        rng, 30, lambda r: r.choice(["SAVE", "WELCOME", "BF", "VIP"]) + str(r.randint(5, 60))
    )
    orders = ids(rng, 5000)
    n_items, n_orders = 12000, len(orders)
    countries = ["US", "DE", "GB", "FR", "NL", "ES"]
    tables = [
        table(
            "customers",
            "id",
            id=("bigint", cust),
            country=("text", words(rng, countries, 1500)),
            external_customer_id=("bigint", small(rng, 10**11, 10**12, 1500)),
        ),
        table(
            "addresses",
            None,
            id=("bigint", addr),
            customer_id=("bigint", refs(rng, cust, 2400)),
            country=("text", words(rng, countries, 2400)),
        ),
        table(
            "categories",
            None,
            id=("bigint", cats),
            parent_id=("bigint", [None] * 8 + refs(rng, cats[:8], 32, skew=False)),
        ),
        table(
            "products",
            "product_id",
            product_id=("bigint", prods),
            category_id=("bigint", refs(rng, cats[8:], 600)),
            rating=("bigint", small(rng, 1, 5, 600)),
            weight_grams=("bigint", small(rng, 50, 20000, 600)),
        ),
        table(
            "coupons", None, code=("text", coupons), discount_pct=("bigint", small(rng, 5, 40, 30))
        ),
        table(
            "order_statuses",
            None,
            id=("bigint", list(range(1, 7))),
            label=("text", ["new", "paid", "packed", "shipped", "delivered", "returned"]),
        ),
        table(
            "orders",
            "order_id",
            order_id=("bigint", orders),
            customer_id=("bigint", refs(rng, cust, n_orders)),
            shipping_address_id=("bigint", refs(rng, addr, n_orders)),
            billing_address_id=("bigint", refs(rng, addr, n_orders, nulls=0.2)),
            coupon_code=("text", refs(rng, coupons, n_orders, nulls=0.85)),
            status_id=("bigint", refs(rng, list(range(1, 7)), n_orders)),
            channel_id=("bigint", small(rng, 1, 4, n_orders)),
            external_customer_id=("bigint", small(rng, 10**11, 10**12, n_orders)),
        ),
        table(
            "order_items",
            None,
            id=("bigint", list(range(1, n_items + 1))),
            order_id=("bigint", refs(rng, orders, n_items, skew=False)),
            product_id=("bigint", refs(rng, prods, n_items)),
            quantity=("bigint", small(rng, 1, 10, n_items)),
        ),
        table(
            "reviews",
            None,
            id=("bigint", ids(rng, 900)),
            product_id=("bigint", refs(rng, prods, 900)),
            author_id=("bigint", refs(rng, cust, 900, orphans=0.02)),
            stars=("bigint", small(rng, 1, 5, 900)),
        ),
        table(
            "carts",
            None,
            cart_id=("text", [f"c_{rng.getrandbits(48):012x}" for _ in range(700)]),
            user_id=("bigint", refs(rng, cust, 700, nulls=0.3)),
            item_count=("bigint", small(rng, 1, 12, 700)),
        ),
        table(
            "payments",
            None,
            id=("bigint", ids(rng, 4800)),
            order_id=("bigint", refs(rng, orders, 4800, skew=False)),
            installments=("bigint", small(rng, 1, 12, 4800)),
            amount=("double", money(rng, 4800)),
            cc_last4=("text", [f"{rng.randint(0, 9999):04d}" for _ in range(4800)]),
        ),
    ]
    s = "shop"
    truth = {
        (s, "addresses", "customer_id", "customers", "id"),
        (s, "categories", "parent_id", "categories", "id"),
        (s, "products", "category_id", "categories", "id"),
        (s, "orders", "customer_id", "customers", "id"),
        (s, "orders", "shipping_address_id", "addresses", "id"),
        (s, "orders", "billing_address_id", "addresses", "id"),
        (s, "orders", "coupon_code", "coupons", "code"),
        (s, "orders", "status_id", "order_statuses", "id"),
        (s, "order_items", "order_id", "orders", "order_id"),
        (s, "order_items", "product_id", "products", "product_id"),
        (s, "reviews", "product_id", "products", "product_id"),
        (s, "reviews", "author_id", "customers", "id"),  # weakly named: an author is a customer
        (s, "carts", "user_id", "customers", "id"),  # the shop has no users table
        (s, "payments", "order_id", "orders", "order_id"),
    }
    return Schema(s, tables, truth)


def hr(rng: random.Random) -> Schema:
    emps = ids(rng, 1400, start=1001)
    depts = list(range(100, 100 + 10 * 30, 10))
    jobs = [f"{f}{lvl}" for f in ("ENG", "OPS", "FIN", "MKT", "HR", "SAL") for lvl in range(1, 6)]
    iso = [
        "US",
        "CA",
        "MX",
        "GB",
        "IE",
        "DE",
        "FR",
        "ES",
        "IT",
        "NL",
        "PL",
        "SE",
        "IN",
        "JP",
        "SG",
        "AU",
        "BR",
        "AR",
        "ZA",
        "NG",
        "KE",
        "EG",
        "AE",
        "CN",
        "KR",
    ]
    locs = list(range(1, 26))
    n = len(emps)
    managers = emps[:120]
    manager_ids = [None, *refs(rng, managers, n - 1, nulls=0.01)]
    profiles = sorted(rng.sample(emps, int(n * 0.7)))
    tables = [
        table(
            "departments",
            None,
            dept_id=("bigint", depts),
            parent_dept_id=("bigint", [None] * 5 + refs(rng, depts[:5], 25, skew=False)),
            head_employee_id=("bigint", refs(rng, managers, 30, skew=False)),
        ),
        table("jobs", None, job_code=("text", jobs), title=("text", [f"{j} title" for j in jobs])),
        table("countries", None, iso2=("text", iso), name=("text", [f"Country {c}" for c in iso])),
        table(
            "locations",
            None,
            id=("bigint", locs),
            iso_country=("text", refs(rng, iso[:15], 25)),
            floor_count=("bigint", small(rng, 1, 30, 25)),
        ),
        table(
            "employees",
            "emp_id",
            emp_id=("bigint", emps),
            department_id=("bigint", refs(rng, depts, n)),
            manager_id=("bigint", manager_ids),
            location_id=("bigint", refs(rng, locs, n, nulls=0.05)),
            job_code=("text", refs(rng, jobs, n)),
            grade=("bigint", small(rng, 1, 12, n)),
            floor=("bigint", small(rng, 1, 9, n)),
        ),
        table(
            "employee_profiles",
            None,
            emp_id=("bigint", profiles),
            pronouns=("text", words(rng, ["she/her", "he/him", "they/them", ""], len(profiles))),
        ),
        table(
            "salaries",
            None,
            id=("bigint", list(range(1, 4 * n + 1))),
            emp_id=("bigint", refs(rng, emps, 4 * n, skew=False)),
            amount=("double", money(rng, 4 * n, 30e3, 250e3)),
            year=("bigint", small(rng, 2015, 2024, 4 * n)),
        ),
        table(
            "time_off",
            None,
            id=("bigint", ids(rng, 2500)),
            employee_id=("bigint", refs(rng, emps, 2500)),
            approved_by=("bigint", refs(rng, managers, 2500, nulls=0.1)),
            days=("bigint", small(rng, 1, 15, 2500)),
        ),
    ]
    s = "hr"
    truth = {
        (s, "departments", "parent_dept_id", "departments", "dept_id"),
        (s, "departments", "head_employee_id", "employees", "emp_id"),
        (s, "employees", "department_id", "departments", "dept_id"),
        (s, "employees", "manager_id", "employees", "emp_id"),
        (s, "employees", "location_id", "locations", "id"),
        (s, "employees", "job_code", "jobs", "job_code"),
        (s, "locations", "iso_country", "countries", "iso2"),
        (s, "employee_profiles", "emp_id", "employees", "emp_id"),  # one-to-one, 70% of them
        (s, "salaries", "emp_id", "employees", "emp_id"),
        (s, "time_off", "employee_id", "employees", "emp_id"),
        (s, "time_off", "approved_by", "employees", "emp_id"),  # weakly named
    }
    return Schema(s, tables, truth)


def saas(rng: random.Random) -> Schema:
    accounts = [uuid4(rng) for _ in range(400)]
    plans = [1, 2, 3, 4]
    users = ids(rng, 3000)
    sessions = [f"{rng.getrandbits(64):016x}" for _ in range(6000)]
    session_user = refs(rng, users, 6000)
    subs = ids(rng, 520)
    n_ev = 20000
    ev_sessions = refs(rng, sessions, n_ev, skew=False)
    by_session = dict(zip(sessions, session_user, strict=True))
    tables = [
        table(
            "accounts",
            "account_id",
            account_id=("text", accounts),
            employees=("bigint", small(rng, 1, 5000, 400)),
        ),
        table(
            "plans",
            None,
            id=("bigint", plans),
            name=("text", ["free", "starter", "pro", "enterprise"]),
        ),
        table(
            "users",
            "user_id",
            user_id=("bigint", users),
            account_id=("text", refs(rng, accounts, 3000)),
            seat_count=("bigint", small(rng, 1, 50, 3000)),
            stripe_customer_id=("text", [f"cus_{rng.getrandbits(56):014x}" for _ in range(3000)]),
        ),
        table("sessions", None, session_id=("text", sessions), user_id=("bigint", session_user)),
        table(
            "events",
            None,
            event_id=("bigint", list(range(1, n_ev + 1))),
            session_id=("text", ev_sessions),
            user_id=("bigint", [by_session[x] for x in ev_sessions]),
            http_status=("bigint", words(rng, [200, 200, 200, 201, 204, 301, 404, 500], n_ev)),
            duration_ms=("bigint", small(rng, 1, 30000, n_ev)),
        ),
        table(
            "subscriptions",
            None,
            id=("bigint", subs),
            account_id=("text", refs(rng, accounts, 520)),
            plan_id=("bigint", refs(rng, plans, 520)),
        ),
        table(
            "invoices",
            None,
            id=("bigint", ids(rng, 3100)),
            subscription_id=("bigint", refs(rng, subs, 3100)),
            account_id=("text", refs(rng, accounts, 3100)),
            external_invoice_id=("text", [f"in_{rng.getrandbits(64):016x}" for _ in range(3100)]),
            amount_cents=("bigint", small(rng, 0, 500000, 3100)),
        ),
        table(
            "api_keys",
            None,
            id=("bigint", ids(rng, 300)),
            account_id=("text", refs(rng, accounts, 300)),
            created_by=("bigint", refs(rng, users, 300, orphans=0.01)),
        ),
    ]
    s = "saas"
    truth = {
        (s, "users", "account_id", "accounts", "account_id"),
        (s, "sessions", "user_id", "users", "user_id"),
        (s, "events", "session_id", "sessions", "session_id"),
        (s, "events", "user_id", "users", "user_id"),
        (s, "subscriptions", "account_id", "accounts", "account_id"),
        (s, "subscriptions", "plan_id", "plans", "id"),
        (s, "invoices", "subscription_id", "subscriptions", "id"),
        (s, "invoices", "account_id", "accounts", "account_id"),
        (s, "api_keys", "account_id", "accounts", "account_id"),
        (s, "api_keys", "created_by", "users", "user_id"),  # weakly named
    }
    return Schema(s, tables, truth)


def schemas() -> list[Schema]:
    """The five schemas, each from its own fixed seed."""
    return [make(random.Random(SEED + i)) for i, make in enumerate((shop, hr, saas, air, clinic))]
