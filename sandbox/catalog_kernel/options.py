"""How a kernel is set up: read once by ``__main__`` from its arguments and environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog_kernel.isolation import SessionFolders, SessionIdentity


@dataclass(frozen=True)
class KernelOptions:
    scratch: str
    default_timeout_s: float = 600.0
    interrupt_grace_s: float = 1.0
    default_max_output_bytes: int = 100_000
    connect_timeout_s: float = 60.0
    preload_ms: float = 0.0
    identity: SessionIdentity | None = None  # None: not isolated (the process backend)
    # Emptied at reset and when a session ends: the scratch folder, and /dev/shm and the like.
    folders: SessionFolders = field(default_factory=lambda: SessionFolders(()))
