"""`python -m services.sandbox_manager`: serve catalog.v1.SandboxManagerService."""

from __future__ import annotations

from services.common.main import run_service
from services.sandbox_manager.app import run
from services.sandbox_manager.config import Settings


def main() -> None:
    run_service("sandbox_manager", Settings.from_env, run)


if __name__ == "__main__":
    main()
