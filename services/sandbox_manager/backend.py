"""What the pool needs from a way of running sandboxes: start one, and clean up after itself.

Two implementations: ``docker_backend`` (isolated containers, the default) and
``process_backend`` (kernel subprocesses on the host, no isolation: development only).
"""

from __future__ import annotations

from typing import Protocol

from services.sandbox_manager.hardening import ContainerLimits
from services.sandbox_manager.kernel_client import KernelClient

# The label every container carries: the manager that owns it, for clean-up after a crash.
MANAGER_LABEL = "catalog-agents.manager"
SANDBOX_LABEL = "catalog-agents.sandbox"


class SandboxInstance(Protocol):
    """One running sandbox: its kernel, and how to get rid of it."""

    @property
    def kernel(self) -> KernelClient: ...

    @property
    def container_id(self) -> str: ...

    async def open_database(self, dsn: str, statement_timeout_s: float, name: str = "") -> str:
        """Make a database of the lease reachable; return the DSN the kernel must use instead.

        `name` "" is a session's one `db_dsn` (every earlier database is closed first); a name is
        one of several databases, reachable on its own way, apart from the others.
        Raises DatabaseUnreachable when that cannot be done (an unknown host name)."""
        ...

    async def close_database(self) -> None:
        """Make every database unreachable again, cutting open connections; idempotent, never
        raises."""
        ...

    async def destroy(self) -> None:
        """Stop and remove it; idempotent, never raises."""
        ...


class Backend(Protocol):
    kind: str  # "docker" or "process"
    image: str
    limits: ContainerLimits

    async def start(self, sandbox_id: str) -> SandboxInstance:
        """Start a sandbox whose kernel has said hello; raise BackendUnavailable otherwise."""
        ...

    async def remove_orphans(self) -> int:
        """Remove what an earlier run of this manager left behind; return how many."""
        ...

    async def close(self) -> None: ...
