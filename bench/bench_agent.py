"""Agent benchmark: what one run of the built-in offline catalog agent costs on 10 tables.

Builds a DuckDB file in a temporary folder: 10 related tables (primary and foreign keys) of
100,000 rows each, 1,000,000 in all, with integers, doubles, decimals, text, dates, timestamps
(with and without time zone), booleans and NULLs. Then starts, on free ports, a sandbox manager
(`python -m services.sandbox_manager`, the process backend, so the kernel on the host opens the
file; 1 warm sandbox at most 1) and an agent runner (`python -m services.agent_runner`, with
ANTHROPIC_API_KEY removed from its environment, so it runs the offline agent), and waits for both
to report SERVING. With a lease on `duckdb:///<file>` it calls RunAgent for the 10 tables, 3
rounds (a fresh lease and run id each), and each time figure is the median of its 3 rounds:
- agent.offline_10_tables_seconds: wall clock of the RunAgent call, to its final result event;
- agent.offline_10_tables_turns: the result's turns (one cell a table, then the submission);
- agent.offline_page_bytes: size of the page's HTML (UTF-8 bytes);
- peer.describe_10_tables_seconds: ibis's `Table.describe()` executed on the same 10 tables, in
  this process, through `ibis.duckdb.connect(path, read_only=True)` (a round of it right after
  each of the agent's, so both see the same load; describe() scans once per column);
- agent.offline_vs_describe_x: the peer's time over ours.

Every run must end complete and offline, and its page must name every table; a table the agent
could not profile is reported on stderr. Both subprocesses are stopped with SIGTERM and the
temporary folder removed, also on failure. Prints one JSON object a line: {"name", "value", "unit"}.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid

from benchlib import START_TIMEOUT_S, Service, emit, free_port
from catalog.v1 import agent_pb2, agent_pb2_grpc

from services.common.clients import SandboxClient, SessionSettings
from services.common.control_plane import ControlPlane

ROWS = 100_000
ROUNDS = 3  # each figure is the median of this many rounds
RUN_TIMEOUT_S = 600.0
SYSTEM_PROMPT = "You document databases. Explore with execute_python, then submit_html."

# 10 related tables; `i` runs over range(ROWS). Values come from h(i, salt), a hash made signed
# (list indexes must be), so every run builds the same data. A table comes after those its keys
# refer to.
TABLES: dict[str, tuple[str, str]] = {
    "suppliers": (
        """supplier_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, country VARCHAR,
        rating DOUBLE, active BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL""",
        """i + 1, 'Supplier ' || (i + 1),
        ['DE', 'FR', 'US', 'JP', 'BR', 'IN', NULL][1 + h(i, 'c') % 7],
        CASE WHEN h(i, 'r') % 10 = 0 THEN NULL ELSE 1 + (h(i, 'rv') % 400) / 100.0 END,
        h(i, 'a') % 5 <> 0,
        TIMESTAMP '2015-01-01' + to_seconds((h(i, 't') % 300000000)::BIGINT)""",
    ),
    "products": (
        """product_id INTEGER PRIMARY KEY, supplier_id INTEGER NOT NULL
        REFERENCES suppliers (supplier_id), sku VARCHAR NOT NULL, name VARCHAR NOT NULL,
        category VARCHAR NOT NULL, price DECIMAL(10, 2) NOT NULL, weight_kg DOUBLE,
        discontinued BOOLEAN NOT NULL, launched_on DATE""",
        """i + 1, 1 + h(i, 's') % 100000, printf('SKU-%08d', i + 1),
        'Product ' || (i + 1),
        ['books', 'garden', 'toys', 'kitchen', 'sports', 'music'][1 + h(i, 'k') % 6],
        ((h(i, 'p') % 100000) / 100.0 + 0.99)::DECIMAL(10, 2),
        CASE WHEN h(i, 'w') % 8 = 0 THEN NULL ELSE (h(i, 'wv') % 50000) / 1000.0 END,
        h(i, 'd') % 20 = 0,
        CASE WHEN h(i, 'l') % 15 = 0 THEN NULL
             ELSE DATE '2010-01-01' + (h(i, 'lv') % 5000)::INTEGER END""",
    ),
    "customers": (
        """customer_id INTEGER PRIMARY KEY, email VARCHAR NOT NULL, full_name VARCHAR,
        country VARCHAR, birth_date DATE, is_vip BOOLEAN NOT NULL,
        signed_up_at TIMESTAMP NOT NULL, lifetime_value DOUBLE NOT NULL""",
        """i + 1, 'customer' || (i + 1) || '@example.com',
        CASE WHEN h(i, 'n') % 25 = 0 THEN NULL ELSE 'Customer ' || (i + 1) END,
        ['DE', 'FR', 'US', 'JP', 'BR', 'IN', 'GB', 'ES'][1 + h(i, 'c') % 8],
        CASE WHEN h(i, 'b') % 5 = 0 THEN NULL
             ELSE DATE '1940-01-01' + (h(i, 'bv') % 25000)::INTEGER END,
        h(i, 'v') % 50 = 0,
        TIMESTAMP '2016-01-01' + to_seconds((h(i, 't') % 250000000)::BIGINT),
        (h(i, 'ltv') % 1000000) / 100.0""",
    ),
    "orders": (
        """order_id BIGINT PRIMARY KEY, customer_id INTEGER NOT NULL
        REFERENCES customers (customer_id), ordered_at TIMESTAMP NOT NULL,
        status VARCHAR NOT NULL, total_amount DECIMAL(12, 2) NOT NULL, coupon_code VARCHAR,
        is_gift BOOLEAN""",
        """i + 1, 1 + h(i, 'c') % 100000,
        TIMESTAMP '2018-01-01' + to_seconds((h(i, 't') % 200000000)::BIGINT),
        ['placed', 'paid', 'shipped', 'delivered', 'cancelled', 'returned'][1 + h(i, 's') % 6],
        ((h(i, 'a') % 5000000) / 100.0)::DECIMAL(12, 2),
        CASE WHEN h(i, 'cc') % 4 = 0 THEN 'SAVE' || (h(i, 'ccv') % 50) ELSE NULL END,
        CASE WHEN h(i, 'g') % 30 = 0 THEN NULL ELSE h(i, 'gv') % 10 = 0 END""",
    ),
    "order_items": (
        """order_item_id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL
        REFERENCES orders (order_id), product_id INTEGER NOT NULL
        REFERENCES products (product_id), quantity SMALLINT NOT NULL,
        unit_price DECIMAL(10, 2) NOT NULL, discount DOUBLE""",
        """i + 1, 1 + h(i, 'o') % 100000, 1 + h(i, 'p') % 100000,
        (1 + h(i, 'q') % 12)::SMALLINT,
        ((h(i, 'u') % 100000) / 100.0 + 0.49)::DECIMAL(10, 2),
        CASE WHEN h(i, 'd') % 3 = 0 THEN (h(i, 'dv') % 50) / 100.0 ELSE NULL END""",
    ),
    "payments": (
        """payment_id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL REFERENCES orders (order_id),
        paid_at TIMESTAMPTZ NOT NULL, method VARCHAR NOT NULL, amount DOUBLE NOT NULL,
        succeeded BOOLEAN NOT NULL, failure_reason VARCHAR""",
        """i + 1, 1 + h(i, 'o') % 100000,
        TIMESTAMPTZ '2018-01-01 00:00:00+00' + to_seconds((h(i, 't') % 200000000)::BIGINT),
        ['card', 'paypal', 'bank_transfer', 'voucher'][1 + h(i, 'm') % 4],
        (h(i, 'a') % 5000000) / 100.0,
        h(i, 's') % 12 <> 0,
        CASE WHEN h(i, 's') % 12 = 0
             THEN ['declined', 'timeout', 'fraud_check'][1 + h(i, 'f') % 3] END""",
    ),
    "shipments": (
        """shipment_id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL REFERENCES orders (order_id),
        carrier VARCHAR NOT NULL, shipped_on DATE NOT NULL, delivered_at TIMESTAMP,
        tracking_number VARCHAR NOT NULL, weight_kg DOUBLE""",
        """i + 1, 1 + h(i, 'o') % 100000,
        ['DHL', 'UPS', 'FedEx', 'La Poste', 'Royal Mail'][1 + h(i, 'c') % 5],
        DATE '2018-01-02' + (h(i, 'd') % 2300)::INTEGER,
        CASE WHEN h(i, 'x') % 6 = 0 THEN NULL
             ELSE TIMESTAMP '2018-01-03' + to_seconds((h(i, 't') % 198000000)::BIGINT) END,
        printf('TRK%012d', h(i, 'n') % 1000000000000),
        CASE WHEN h(i, 'w') % 20 = 0 THEN NULL ELSE (h(i, 'wv') % 80000) / 1000.0 END""",
    ),
    "reviews": (
        """review_id BIGINT PRIMARY KEY, product_id INTEGER NOT NULL
        REFERENCES products (product_id), customer_id INTEGER NOT NULL
        REFERENCES customers (customer_id), stars TINYINT NOT NULL, body VARCHAR,
        reviewed_at TIMESTAMP NOT NULL, verified_purchase BOOLEAN NOT NULL""",
        """i + 1, 1 + h(i, 'p') % 100000, 1 + h(i, 'c') % 100000,
        (1 + h(i, 's') % 5)::TINYINT,
        CASE WHEN h(i, 'b') % 3 = 0 THEN NULL
             ELSE ['Great', 'Fine', 'Broke after a week', 'As described', 'Too small'][
                  1 + h(i, 'bv') % 5] || ' (' || (i + 1) || ')' END,
        TIMESTAMP '2018-02-01' + to_seconds((h(i, 't') % 190000000)::BIGINT),
        h(i, 'v') % 4 <> 0""",
    ),
    "inventory": (
        """inventory_id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL
        REFERENCES products (product_id), warehouse VARCHAR NOT NULL, on_hand INTEGER NOT NULL,
        reorder_level INTEGER, last_counted_on DATE, updated_at TIMESTAMP NOT NULL""",
        """i + 1, 1 + h(i, 'p') % 100000,
        ['BER-1', 'PAR-2', 'NYC-1', 'OSA-3'][1 + h(i, 'w') % 4],
        (h(i, 'h') % 5000)::INTEGER - 20,
        CASE WHEN h(i, 'r') % 10 = 0 THEN NULL ELSE (h(i, 'rv') % 200)::INTEGER END,
        CASE WHEN h(i, 'l') % 7 = 0 THEN NULL
             ELSE DATE '2023-01-01' + (h(i, 'lv') % 700)::INTEGER END,
        TIMESTAMP '2023-01-01' + to_seconds((h(i, 't') % 60000000)::BIGINT)""",
    ),
    "web_sessions": (
        """session_id BIGINT PRIMARY KEY, customer_id INTEGER REFERENCES customers (customer_id),
        started_at TIMESTAMP NOT NULL, duration_s DOUBLE NOT NULL, pages_viewed INTEGER NOT NULL,
        device VARCHAR, converted BOOLEAN NOT NULL""",
        """i + 1,
        CASE WHEN h(i, 'a') % 3 = 0 THEN NULL ELSE 1 + h(i, 'c') % 100000 END,
        TIMESTAMP '2022-01-01' + to_seconds((h(i, 't') % 90000000)::BIGINT),
        (h(i, 'd') % 360000) / 100.0,
        (1 + h(i, 'p') % 40)::INTEGER,
        ['desktop', 'mobile', 'tablet', NULL][1 + h(i, 'v') % 4],
        h(i, 'x') % 25 = 0""",
    ),
}


def build_database(path: str) -> None:
    import duckdb

    con = duckdb.connect(path)
    try:
        con.execute("CREATE TEMP MACRO h(i, salt) AS (hash(i, salt) >> 1)::BIGINT")
        for name, (columns, values) in TABLES.items():
            con.execute(f"CREATE TABLE {name} ({columns})")
            con.execute(f"INSERT INTO {name} SELECT {values} FROM range({ROWS}) AS r(i)")
        counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchone() for name in TABLES}
    finally:
        con.close()
    wrong = {name: count for name, count in counts.items() if count != (ROWS,)}
    if wrong:
        raise RuntimeError(f"the tables do not hold {ROWS} rows each: {wrong}")


def describe_seconds(path: str, rounds: int = ROUNDS) -> list[float]:
    """The peer: ibis's describe() of every table, executed, in this process; one time a round."""
    import ibis

    con = ibis.duckdb.connect(path, read_only=True)
    samples = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            for name in TABLES:
                described = con.table(name).describe().to_pyarrow()
                if described.num_rows == 0:
                    raise RuntimeError(f"describe() of {name} returned no rows")
            samples.append(time.perf_counter() - started)
    finally:
        con.disconnect()
    return samples


# The services measured require a service token, as deployed ones do.
PLANE = ControlPlane(service_token=secrets.token_urlsafe(24))


# --- the services ---------------------------------------------------------------------------
def manager_env(port: int, manager_id: str) -> dict[str, str]:
    return {
        **os.environ,
        "CATALOG_SANDBOX_MANAGER_ID": manager_id,
        "CATALOG_SANDBOX_HOST": "127.0.0.1",
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "CATALOG_SANDBOX_PORT": str(port),
        "CATALOG_SANDBOX_METRICS_PORT": "0",
        "CATALOG_SANDBOX_BACKEND": "process",
        "CATALOG_SANDBOX_MIN_WARM": "1",
        "CATALOG_SANDBOX_MAX_SIZE": "1",
    }


def runner_env(port: int, manager_address: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CATALOG_AGENT_STATE_DIR": "",  # each bench run's ids are new: nothing to keep on disk
        "CATALOG_AGENT_HOST": "127.0.0.1",
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "CATALOG_AGENT_PORT": str(port),
        "CATALOG_AGENT_METRICS_PORT": "0",
        "CATALOG_SANDBOX_MANAGERS": manager_address,
    }
    env.pop("ANTHROPIC_API_KEY", None)  # no key: the offline agent
    return env


# --- the run --------------------------------------------------------------------------------
async def run_agent(runner: str, lease_id: str, run_id: str) -> tuple[float, agent_pb2.AgentResult]:
    request = agent_pb2.RunAgentRequest(
        run_id=run_id,
        agent_name="catalog",
        system_prompt=SYSTEM_PROMPT,
        context_json=json.dumps({"tables": list(TABLES)}),
        sandbox=agent_pb2.SandboxRef(lease_id=lease_id),
    )
    result: agent_pb2.AgentResult | None = None
    async with PLANE.channel(runner) as channel:
        stub = agent_pb2_grpc.AgentRunnerServiceStub(channel)
        started = time.perf_counter()
        async for event in stub.RunAgent(request, timeout=RUN_TIMEOUT_S):
            if event.WhichOneof("event") == "result":
                result = event.result
        elapsed = time.perf_counter() - started
    if result is None:
        raise RuntimeError("the RunAgent stream ended without a result event")
    return elapsed, result


def check_page(result: agent_pb2.AgentResult) -> None:
    if not result.complete or not result.offline:
        raise RuntimeError(
            f"the run did not end complete and offline: complete={result.complete}, "
            f"offline={result.offline}, stop_reason="
            f"{agent_pb2.StopReason.Name(result.stop_reason)}, detail={result.stop_detail!r}"
        )
    missing = [name for name in TABLES if not re.search(rf"\b{name}\b", result.html)]
    if missing:
        raise RuntimeError(f"the page does not name the tables {missing}")
    failed = result.html.count("Could not profile this table")
    if failed:
        print(f"bench_agent: the page could not profile {failed} table(s)", file=sys.stderr)


async def main() -> None:
    run_id = uuid.uuid4().hex[:8]
    folder = tempfile.mkdtemp(prefix=f"bench-agent-{run_id}-")
    path = os.path.join(folder, "shop.duckdb")
    manager_port, runner_port = free_port(), free_port()
    with tempfile.TemporaryFile() as manager_log, tempfile.TemporaryFile() as runner_log:
        manager = Service(
            "services.sandbox_manager",
            manager_env(manager_port, f"bench-agent-{run_id}"),
            manager_port,
            manager_log,
        )
        runner = Service(
            "services.agent_runner",
            runner_env(runner_port, manager.address),
            runner_port,
            runner_log,
        )
        try:
            await asyncio.to_thread(build_database, path)
            await manager.start()
            await runner.start()
            await asyncio.gather(manager.wait_serving(), runner.wait_serving())
            agent_s: list[float] = []
            peer_s: list[float] = []
            async with SandboxClient([manager.address], plane=PLANE) as client:
                for round_ in range(ROUNDS):  # a fresh lease each round, as a workflow takes
                    async with client.lease(
                        SessionSettings(db_dsn=f"duckdb:///{path}"),
                        client_id="bench-agent",
                        lease_ttl_s=RUN_TIMEOUT_S + 60,
                        wait_timeout_s=START_TIMEOUT_S,
                    ) as lease:
                        if lease.session.connect_error:
                            raise RuntimeError(
                                f"the kernel could not open the file: {lease.session}"
                            )
                        elapsed, result = await run_agent(
                            runner.address, lease.lease_id, f"bench-agent-{run_id}-{round_}"
                        )
                    check_page(result)
                    agent_s.append(elapsed)
                    # The peer's round right after ours, so both see the same load on the
                    # shared cores (in a row, the peer's rounds alone moved from 1.4 to 6.4 s).
                    peer_s += await asyncio.to_thread(describe_seconds, path, 1)
        except BaseException:
            for service in (manager, runner):
                print(
                    f"{service.module}'s last log lines:",
                    *service.tail(),
                    sep="\n",
                    file=sys.stderr,
                )
            raise
        finally:
            try:
                try:
                    await runner.stop()
                finally:
                    await manager.stop()
            finally:
                shutil.rmtree(folder, ignore_errors=True)

    ours, peer = statistics.median(agent_s), statistics.median(peer_s)
    emit("agent.offline_10_tables_seconds", ours, "s")
    emit("agent.offline_10_tables_turns", result.turns, "count")
    emit("agent.offline_page_bytes", len(result.html.encode()), "count")
    emit("peer.describe_10_tables_seconds", peer, "s")
    emit("agent.offline_vs_describe_x", peer / ours, "x")


if __name__ == "__main__":
    asyncio.run(main())
