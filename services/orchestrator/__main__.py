"""`python -m services.orchestrator`: serve catalog.v1.CatalogService and the HTTP API."""

from __future__ import annotations

from services.common.main import run_service
from services.orchestrator.app import run
from services.orchestrator.config import Settings


def main() -> None:
    run_service("orchestrator", Settings.from_env, run)


if __name__ == "__main__":
    main()
