"""The body of every `python -m services.<name>`: logs, settings once, serve until stopped.

A problem an operator must fix ends the process with one line on stderr naming it and exit
status 1, never a traceback: a setting the service cannot use (SettingsError, which includes
a bad prompt or sealing key), a taken port (OSError), or a dependency that cannot start
(ServiceError, e.g. the sandbox manager's BackendUnavailable: no image, unknown runtime).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from services.common.env import SettingsError
from services.common.errors import ServiceError
from services.common.logging import configure_logging

_Settings = TypeVar("_Settings")


def run_service(
    name: str,
    settings_from_env: Callable[[], _Settings],
    serve: Callable[[_Settings], Coroutine[Any, Any, None]],
) -> None:
    """Configure logging for `name`, read its settings, and run `serve` until it returns."""
    configure_logging(name, os.environ.get("CATALOG_LOG_LEVEL", "INFO"))
    try:
        settings = settings_from_env()
        asyncio.run(serve(settings))
    except (SettingsError, OSError, ServiceError) as exc:  # no token off loopback; a taken port
        sys.exit(f"{name}: {exc}")
