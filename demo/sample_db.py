"""The demo's sample database: a small shop in DuckDB, with related tables and dirty data.

`python demo/sample_db.py PATH` builds it (about 480,000 rows, seeded, so every build is the
same); `python demo/sample_db.py PATH --evolve` changes it the way a week of business and one
migration would: new orders, a new column, a dropped table, a new table, emails gone missing.
What is dirty on purpose: invalid and duplicate e-mail addresses, mixed-case status values,
negative weights, zero and negative quantities, orders dated in the future, an all-null column
and a constant one.

What each agent should find: personal data in `customers.email` and `payments.card_number`
(the card networks' published test numbers, which pass Luhn and charge nobody), and a relation
left undeclared, `payments.order_id` -> `orders.id` (0.2% of payments name no order); the
anomalies agent needs a history, which run_demo.py generates before the first run.

The warehouse (`python demo/sample_db.py WAREHOUSE --warehouse-of PATH`) is a second DuckDB
file holding a copy of the shop's `orders`, as a nightly load left it: the orders placed up to
its watermark, four days before the newest, so it lags behind (fewer rows, an older newest
`ordered_at`), and without the orders dated in the future, which its load never reaches. The
catalog's cross-source findings show both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

BUILD = """
SELECT setseed(0.4711);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, email VARCHAR, country VARCHAR(2),
    created_at TIMESTAMP NOT NULL, is_active BOOLEAN);
INSERT INTO customers SELECT i, 'Customer ' || i,
    CASE WHEN random() < 0.05 THEN NULL WHEN random() < 0.02 THEN 'not-an-email'
         WHEN i % 997 = 0 THEN 'shared@example.com' ELSE 'user' || i || '@example.com' END,
    ['DE', 'FR', 'US', 'GB', 'NL', 'ES'][1 + (i % 6)],
    TIMESTAMP '2022-01-01' + INTERVAL (i * 37 % 1000) DAY, random() > 0.1
FROM range(1, 20001) t(i);

CREATE TABLE products (
    id INTEGER PRIMARY KEY, sku VARCHAR NOT NULL, name VARCHAR NOT NULL, category VARCHAR,
    price DECIMAL(10, 2) NOT NULL, weight_kg DOUBLE, discontinued BOOLEAN NOT NULL);
INSERT INTO products SELECT i, 'SKU-' || lpad(i::VARCHAR, 5, '0'), 'Product ' || i,
    ['books', 'garden', 'kitchen', 'toys', NULL][1 + (i % 5)],
    round(1 + random() * 199, 2)::DECIMAL(10, 2),
    CASE WHEN i % 250 = 0 THEN -1.0 ELSE round(random() * 20, 3) END, i % 40 = 0
FROM range(1, 2001) t(i);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id),
    ordered_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL, total DECIMAL(12, 2),
    currency VARCHAR(3) NOT NULL);
INSERT INTO orders SELECT i, 1 + (i * 7919 % 20000),
    CASE WHEN i % 5000 = 0 THEN TIMESTAMP '2031-01-01'
         ELSE TIMESTAMP '2024-01-01' + INTERVAL (i * 13 % 600) DAY
              + INTERVAL (i % 86400) SECOND END,
    ['shipped', 'SHIPPED', 'pending', 'cancelled', 'Shipped'][1 + (i % 5)],
    NULL, 'EUR'
FROM range(1, 100001) t(i);

CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders (id), line INTEGER NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products (id), quantity INTEGER NOT NULL,
    unit_price DECIMAL(10, 2) NOT NULL, PRIMARY KEY (order_id, line));
INSERT INTO order_items SELECT o.id, l.line, 1 + ((o.id * 31 + l.line * 17) % 2000),
    CASE WHEN (o.id + l.line) % 1000 = 0 THEN 0 WHEN (o.id + l.line) % 1777 = 0 THEN -2
         ELSE 1 + ((o.id + l.line) % 4) END,
    round(1 + random() * 99, 2)::DECIMAL(10, 2)
FROM orders o, range(1, 1 + 1 + (hash(o.id) % 4)::INTEGER) l(line);

CREATE TABLE events (
    id INTEGER PRIMARY KEY, customer_id INTEGER, kind VARCHAR, happened_at TIMESTAMPTZ,
    legacy_flag VARCHAR, source VARCHAR);
INSERT INTO events SELECT i, 1 + (i % 20000), ['login', 'view', 'cart', 'logout'][1 + (i % 4)],
    TIMESTAMPTZ '2024-06-01 00:00:00+00' + INTERVAL (i * 11) MINUTE, NULL, 'web'
FROM range(1, 50001) t(i);

CREATE TABLE payments (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, card_number VARCHAR NOT NULL,
    amount DECIMAL(10, 2) NOT NULL, paid_at TIMESTAMP NOT NULL);
INSERT INTO payments SELECT i, CASE WHEN i % 500 = 0 THEN 200000 + i ELSE i END,
    {cards}[1 + (hash(i) % {n_cards})::INTEGER], round(5 + random() * 195, 2)::DECIMAL(10, 2),
    TIMESTAMP '2024-01-01' + INTERVAL (i * 13 % 600) DAY + INTERVAL (i % 86400 + 60) SECOND
FROM range(1, 60001) t(i);
"""

EVOLVE = """
SELECT setseed(0.815);
INSERT INTO orders SELECT i, 1 + (i * 7919 % 20000),
    TIMESTAMP '2025-09-01' + INTERVAL (i % 86400) SECOND, 'pending', NULL, 'EUR'
FROM range(100001, 105001) t(i);
INSERT INTO order_items SELECT i, 1, 1 + (i % 2000), 1, 9.99 FROM range(100001, 105001) t(i);
ALTER TABLE orders ADD COLUMN channel VARCHAR DEFAULT 'web';
UPDATE customers SET email = NULL WHERE id % 4 = 0;
DROP TABLE events;
CREATE TABLE refunds (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders (id),
    amount DECIMAL(10, 2), refunded_at TIMESTAMP);
INSERT INTO refunds SELECT i, i * 3, round(random() * 50, 2), TIMESTAMP '2025-09-02'
FROM range(1, 1001) t(i);
INSERT INTO payments SELECT i + 100000, i, {cards}[1 + (i % {n_cards})], 9.99,
    TIMESTAMP '2025-09-01' + INTERVAL (i % 86400 + 60) SECOND
FROM range(100001, 103001) t(i);
"""

# Published test card numbers (Visa, Mastercard, Amex, Discover, Diners): valid by Luhn,
# refused by every real network.
TEST_CARDS = [
    "4242424242424242", "4000056655665556", "4111111111111111", "4012888888881881",
    "5555555555554444", "5105105105105100", "5454545454545454", "2223003122003222",
    "378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
    "3056930009020004", "36227206271667",
]  # fmt: skip
TABLES = ["customers", "products", "orders", "order_items", "events", "payments"]
TABLES_AFTER = ["customers", "products", "orders", "order_items", "refunds", "payments"]
WAREHOUSE_TABLES = ["orders"]
# The warehouse's load copies the orders placed before this (the shop's newest: 2025-08-22).
WATERMARK = "2025-08-19"


def _with_cards(sql: str) -> str:
    cards = "[" + ", ".join(f"'{c}'" for c in TEST_CARDS) + "]"
    return sql.replace("{cards}", cards).replace("{n_cards}", str(len(TEST_CARDS)))


def build(path: Path) -> None:
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as db:
        db.execute(_with_cards(BUILD))


def build_warehouse(path: Path, shop: Path) -> None:
    """The warehouse's copy of the shop's `orders`, as its last load left it."""
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as db:
        db.execute(f"ATTACH '{shop}' AS shop (READ_ONLY)")
        db.execute(
            "CREATE TABLE orders AS SELECT * FROM shop.orders WHERE ordered_at < ? ORDER BY id",
            [WATERMARK],
        )
        db.execute("DETACH shop")


def evolve(path: Path) -> None:
    with duckdb.connect(str(path)) as db:
        db.execute(_with_cards(EVOLVE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--evolve", action="store_true", help="change an existing database")
    parser.add_argument(
        "--warehouse-of", type=Path, metavar="SHOP", help="build the warehouse's copy of SHOP"
    )
    args = parser.parse_args()
    if args.warehouse_of:
        build_warehouse(args.path, args.warehouse_of)
    else:
        (evolve if args.evolve else build)(args.path)


if __name__ == "__main__":
    main()
