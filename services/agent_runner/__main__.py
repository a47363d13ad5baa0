"""`python -m services.agent_runner`: serve catalog.v1.AgentRunnerService."""

from __future__ import annotations

from services.agent_runner.app import run
from services.agent_runner.config import Settings
from services.common.main import run_service


def main() -> None:
    run_service("agent_runner", Settings.from_env, run)


if __name__ == "__main__":
    main()
