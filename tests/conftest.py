"""Fixtures that start or reach the real parts: databases, Docker, the sandbox image.

Nothing here skips: `make test` installs and starts every part, so a missing one is a failure
that says what to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_URL = os.environ.get(
    "CATALOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MYSQL_URL = os.environ.get("CATALOG_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
SANDBOX_IMAGE = os.environ.get("CATALOG_SANDBOX_IMAGE", "catalog-agents/sandbox:latest")
# Every container a test starts carries TEST_LABEL=TEST_RUN, so a run removes its own only.
TEST_LABEL = "catalog-agents.test"
TEST_RUN = uuid.uuid4().hex[:12]


# The real part each fixture needs. A test using one, directly or through another fixture, gets
# that marker, so `make check` (-m "not docker and not postgres and not mysql") leaves it out.
NEEDS_BY_FIXTURE = {
    "docker_image": "docker",
    "postgres_table": "postgres",
    "mysql_table": "mysql",
    "pg": "postgres",  # tests/security/test_read_only.py's scratch database and roles
    "pg_system_database": "postgres",  # DBOS on PostgreSQL, for replicas (tests/orchestrator)
    "my": "mysql",  # the same on MariaDB
}
# Parametrized fixtures whose parameter names the part a test runs on (the toolkit's shop,
# the kernel in a process or in a container).
NEEDS_BY_PARAM = {"postgres": "postgres", "mysql": "mysql", "container": "docker"}
PARAMETRIZED_BY_BACKEND = ("shop", "backend", "kernel_client")


def needs_of(item: pytest.Item) -> set[str]:
    """The markers `item` needs, from the fixtures it uses and the backends it is run on."""
    fixtures = set(getattr(item, "fixturenames", ()))
    needs = {marker for name, marker in NEEDS_BY_FIXTURE.items() if name in fixtures}
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in PARAMETRIZED_BY_BACKEND:
        value = params.get(name)
        if isinstance(value, str) and value in NEEDS_BY_PARAM:
            needs.add(NEEDS_BY_PARAM[value])
    return needs


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted(needs_of(item)):
            item.add_marker(marker)


def _missing(part: str, fix: str) -> None:
    pytest.fail(f"{part} is not available: {fix}", pytrace=False)


@pytest.fixture(scope="session")
def docker_image() -> str:
    """The sandbox image, built by `make image`."""
    if shutil.which("docker") is None:
        _missing("the docker client", "run `make test`, which installs Docker")
    probe = subprocess.run(["docker", "image", "inspect", SANDBOX_IMAGE], capture_output=True)
    if probe.returncode != 0:
        _missing(f"the image {SANDBOX_IMAGE}", "run `make image` (make test does)")
    return SANDBOX_IMAGE


@pytest.fixture(scope="session", autouse=True)
def _remove_labelled_containers() -> Iterator[None]:
    """No container this run started outlives it."""
    yield
    if shutil.which("docker") is None:
        return
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={TEST_LABEL}={TEST_RUN}"],
        capture_output=True,
        text=True,
    )
    ids = listed.stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


@pytest.fixture
def postgres_table() -> Iterator[tuple[str, str]]:
    """A fresh schema with a 1,000-row table in PostgreSQL; yields (server URL, schema)."""
    import psycopg

    schema = f"kernel_test_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _missing("PostgreSQL on 127.0.0.1:5432", f"run `make databases` ({exc})")
    with conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.orders AS SELECT g AS id, g * 1.5 AS amount "
            "FROM generate_series(1, 1000) AS g"
        )
        try:
            yield POSTGRES_URL, schema
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def mysql_table() -> Iterator[tuple[str, str]]:
    """A fresh database with a 1,000-row table in MariaDB; yields (server URL, database)."""
    import MySQLdb

    database = f"kernel_test_{uuid.uuid4().hex[:10]}"
    try:
        conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    except MySQLdb.OperationalError as exc:
        _missing("MariaDB on 127.0.0.1:3306", f"run `make databases` ({exc})")
    cursor = conn.cursor()
    cursor.execute(f"CREATE DATABASE {database}")
    cursor.execute(f"CREATE TABLE {database}.orders (id INT PRIMARY KEY, amount DOUBLE)")
    cursor.executemany(
        f"INSERT INTO {database}.orders VALUES (%s, %s)", [(i, i * 1.5) for i in range(1, 1001)]
    )
    conn.commit()
    try:
        yield MYSQL_URL.rsplit("/", 1)[0], database
    finally:
        cursor.execute(f"DROP DATABASE {database}")
        conn.close()
