"""`python -m services.agent_runner`: serve catalog.v1.AgentRunnerService."""

from __future__ import annotations

import asyncio
import os
import sys

from services.agent_runner.app import run
from services.agent_runner.config import Settings, SettingsError
from services.common.logging import configure_logging


def main() -> None:
    configure_logging("agent_runner", os.environ.get("CATALOG_LOG_LEVEL", "INFO"))
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"agent_runner: {exc}")
    try:
        asyncio.run(run(settings))
    except (OSError, SettingsError) as exc:  # a taken port; no token off loopback
        sys.exit(f"agent_runner: {exc}")


if __name__ == "__main__":
    main()
