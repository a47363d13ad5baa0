"""The drivers' words for a refused login, as the kernel reports them, become
DATABASE_AUTH_FAILED; anything else stays DATABASE_UNREACHABLE. (The real servers' refusals run
in test_database_errors.py; these are the wordings local servers cannot produce, such as a
wrong PostgreSQL password under trust authentication.)"""

from __future__ import annotations

import pytest

from services.orchestrator.connect_errors import connect_failure

PG = 'OperationalError: connection failed: connection to server on socket "/run/catalog-db/.s.PGSQL.5432" failed: FATAL:  '  # noqa: E501


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (PG + 'password authentication failed for user "reader"', 'for user "reader"'),
        (PG + 'role "reader" is not permitted to log in', "not permitted to log in"),
        (PG + 'no pg_hba.conf entry for host "10.0.0.2", user "r"', "no pg_hba.conf entry"),
        ("OperationalError: (1698, \"Access denied for user 'root'@'localhost'\")", "(1698, "),
        ("OperationalError: (1044, \"Access denied for user 'r'@'%' to database 'shop'\")", "1044"),
    ],
)
def test_a_refused_login_is_auth_failed(error: str, shown: str) -> None:
    code, message = connect_failure(error)
    assert code == "DATABASE_AUTH_FAILED"
    assert message.startswith("the database refused the user: ")
    assert shown in message
    assert "/run/catalog-db" not in message  # the relay's socket means nothing to the caller


def test_a_database_that_does_not_exist_is_not_a_refused_user() -> None:
    code, message = connect_failure(PG + 'database "shopp" does not exist')
    assert code == "DATABASE_UNREACHABLE"
    assert 'database "shopp" does not exist' in message
