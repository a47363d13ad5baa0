"""What the orchestrator makes of a sandbox's report on the run's sources: a source it could not
open, or says nothing of, is not open (a run would otherwise go on without it, unsaid), and
every DSN of the run is redacted from what the sandbox said."""

from __future__ import annotations

from services.common.clients import DatabaseSession, SandboxSession
from services.orchestrator.steps.sandbox import _unopened

DSNS = {
    "app": "postgresql://reader:App-pw-1234@db:5432/app",
    "billing": "mysql://reader:Billing-pw-5678@db/billing",
}


def test_a_source_the_sandbox_does_not_report_counts_as_not_open() -> None:
    session = SandboxSession(
        "postgres", True, None, (DatabaseSession("app", "postgres", True, None),)
    )
    assert [name for name, _ in _unopened(session, DSNS)] == ["billing"]


def test_every_dsn_of_the_run_is_redacted_from_a_source_error() -> None:
    said = "could not connect with mysql://reader:Billing-pw-5678@db/billing (App-pw-1234)"
    session = SandboxSession(
        "postgres",
        True,
        None,
        (
            DatabaseSession("app", "postgres", True, None),
            DatabaseSession("billing", "", False, said),
        ),
    )
    ((name, error),) = _unopened(session, DSNS)
    assert name == "billing" and "pw" not in error and "[redacted]" in error


def test_a_one_database_session_fully_open_has_nothing_unopened() -> None:
    one = {"default": DSNS["app"]}
    session = SandboxSession(
        "postgres", True, None, (DatabaseSession("default", "postgres", True, None),)
    )
    assert _unopened(session, one) == []
