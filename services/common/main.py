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
from services.common.telemetry import setup_tracing, shutdown_tracing

_Settings = TypeVar("_Settings")


def run_service(
    name: str,
    settings_from_env: Callable[[], _Settings],
    serve: Callable[[_Settings], Coroutine[Any, Any, None]],
) -> None:
    """Configure logging and tracing (the OTEL_* variables) for `name`, read its settings, and
    run `serve` until it returns; the spans still buffered are sent at the end."""
    configure_logging(name, os.environ.get("CATALOG_LOG_LEVEL", "INFO"))
    try:
        settings = settings_from_env()
        setup_tracing("catalog-" + name.replace("_", "-"), os.environ)
        asyncio.run(serve(settings))
    except (SettingsError, OSError, ServiceError) as exc:  # no token off loopback; a taken port
        sys.exit(f"{name}: {exc}")
    finally:
        shutdown_tracing()
