"""The catalog workflow's steps: every piece of I/O it does, each a named DBOS step.

    runtime   what the steps share: the process's settings (installed once), logs, clients
    sandbox   lease, read-only check, reset, loss check and release of a sandbox
    history   copying the runs' pages into the sandbox for an agent that reads history
    agent_runs  running an agent through the runner
    pages     the run's timestamp, and storing an agent's page and its data

Each step takes one frozen dataclass (or a LeaseRef) and returns plain, secret-free values:
DBOS stores both in its tables. The sealed connection string is opened only inside the steps
that hand it to the sandbox or the runner. A step that was running at a crash runs again on
recovery, so each one is safe to repeat: agent runs carry a run id the runner deduplicates,
and pages are written once. The step names (`name=`) are what DBOS recovers by: keep them.
"""
