"""`python -m services.sandbox_manager`: serve catalog.v1.SandboxManagerService."""

from __future__ import annotations

import asyncio
import os
import sys

from services.common.logging import configure_logging
from services.sandbox_manager.app import run
from services.sandbox_manager.config import Settings, SettingsError
from services.sandbox_manager.errors import BackendUnavailable


def main() -> None:
    configure_logging("sandbox_manager", os.environ.get("CATALOG_LOG_LEVEL", "INFO"))
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"sandbox_manager: {exc}")
    try:
        asyncio.run(run(settings))
    except (OSError, SettingsError) as exc:  # a taken port; no token off loopback
        sys.exit(f"sandbox_manager: {exc}")
    except BackendUnavailable as exc:  # e.g. no image, or an unregistered runtime
        sys.exit(f"sandbox_manager: {exc.message}")


if __name__ == "__main__":
    main()
