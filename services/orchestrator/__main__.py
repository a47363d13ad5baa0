"""`python -m services.orchestrator`: serve catalog.v1.CatalogService and the HTTP API."""

from __future__ import annotations

import asyncio
import os
import sys

from services.common.logging import configure_logging
from services.orchestrator.app import run
from services.orchestrator.config import Settings, SettingsError


def main() -> None:
    configure_logging("orchestrator", os.environ.get("CATALOG_LOG_LEVEL", "INFO"))
    try:
        asyncio.run(run(Settings.from_env()))
    except (SettingsError, OSError, ValueError) as exc:  # PromptError, SealingError too
        sys.exit(f"orchestrator: {exc}")


if __name__ == "__main__":
    main()
