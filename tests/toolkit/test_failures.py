"""A failure's words as catalog.json and the pages show them: the drivers' own messages about an
unreachable or refused database keep what went wrong and lose where the database is and who
logged in (the spec: never a host in catalog.json), and a lost connection says so in words."""

from __future__ import annotations

import pytest
from catalog_toolkit.failures import failure_text, without_addresses

# Messages as psycopg and MySQLdb write them, with a host, an address and a user in each.
DRIVER_MESSAGES = [
    'connection to server at "db.internal.corp" (10.0.0.5), port 5432 failed: Connection refused',
    'FATAL:  password authentication failed for user "reader"',
    "(2003, \"Can't connect to MySQL server on 'db.internal.corp' (111)\")",
    "(1045, \"Access denied for user 'reader'@'10.0.0.5' (using password: YES)\")",
    "(2005, \"Unknown server host 'mariadb.prod' (-2)\")",
    "could not connect: host=db.internal.corp port=5432 user=reader",
]


@pytest.mark.parametrize("message", DRIVER_MESSAGES)
def test_no_host_address_or_user_is_left_in_a_driver_message(message: str) -> None:
    shown = without_addresses(message)
    for secret in ("db.internal.corp", "10.0.0.5", "reader", "mariadb.prod"):
        assert secret not in shown, shown
    assert "[redacted]" in shown


def test_a_lost_mysql_connection_is_said_in_words() -> None:
    class OperationalError(Exception):
        pass

    assert failure_text(OperationalError(2006, "")).startswith(
        "the connection to the database was lost (OperationalError: (2006, ''))"
    )
    assert failure_text(ValueError("no such column: x")) == "ValueError: no such column: x"
