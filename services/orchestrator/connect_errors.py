"""Why a sandbox could not open the database, as the run's CatalogError.

The kernel reports the driver's own words (scrubbed of secrets). A server that answered and
refused the login is not "unreachable": the fix is the user or the password, not the network,
so it gets a code of its own. The manager's relay words an unreachable host itself, from where
it dials (it alone knows whether it runs in a container), so no hint is added here.
"""

from __future__ import annotations

import re

# What each driver says when the server refused the login (the pgbouncer that relays PostgreSQL
# passes the server's FATAL through):
#  - PostgreSQL: a wrong password, an unknown role, a role without LOGIN, pg_hba.conf
#    refusing this user from the manager's host;
#  - MySQL/MariaDB: 1045 access denied, 1044 no access to the database, 1698 (auth plugin).
_REFUSED = re.compile(
    r"password authentication failed for user .*"
    r"|role \".*\" does not exist.*"
    r"|role \".*\" is not permitted to log in.*"
    r"|no password supplied.*"
    r"|pg_hba\.conf rejects connection.*"
    r"|no pg_hba\.conf entry for .*"
    r"|\((?:1044|1045|1698), .*",
    re.DOTALL,
)


def connect_failure(connect_error: str) -> tuple[str, str]:
    """(CatalogError.code, message) for a session whose database would not open."""
    refused = _REFUSED.search(connect_error)
    if refused:
        return (
            "DATABASE_AUTH_FAILED",
            f"the database refused the user: {refused.group(0).strip()}; check the user name "
            "and password in db_conn_string, and that the user may log in from the sandbox "
            "manager's host",
        )
    return "DATABASE_UNREACHABLE", f"the sandbox could not open the database: {connect_error}"
