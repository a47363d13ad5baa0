"""The orchestrator tests' stack (a Docker manager, the offline runner, orchestrator processes),
for the end-to-end tests of the client, the CLI and the documented examples."""

from tests.orchestrator.schedule_kit import receiver  # noqa: F401
from tests.orchestrator.stack import (  # noqa: F401
    manager,
    offline_runner,
    reader_table,
    start,
)
